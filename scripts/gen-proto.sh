#!/usr/bin/env bash
# Regenerates the Go code of every .proto under proto/ (committed next to
# its .proto). Installs the code generators it needs, once, into
# $(go env GOPATH)/bin; protoc itself comes from the system
# (Debian/Ubuntu: apt-get install -y protobuf-compiler).
#
#   scripts/gen-proto.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# protoc-gen-go must match google.golang.org/protobuf in go.mod.
PROTOC_GEN_GO_VERSION="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"

if ! command -v protoc >/dev/null 2>&1; then
  echo "protoc not found: install it (Debian/Ubuntu: apt-get install -y protobuf-compiler)" >&2
  exit 1
fi

# version prints the version a generator reports, or nothing.
version() { "$1" --version 2>/dev/null | awk '{print $NF}' || true; }

if [ "$(version protoc-gen-go)" != "$PROTOC_GEN_GO_VERSION" ]; then
  echo "== installing protoc-gen-go $PROTOC_GEN_GO_VERSION (cached in $GOBIN)"
  (cd /tmp && GOFLAGS= go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION")
fi
if [ "$(version protoc-gen-go-grpc)" != "${PROTOC_GEN_GO_GRPC_VERSION#v}" ]; then
  echo "== installing protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION (cached in $GOBIN)"
  (cd /tmp && GOFLAGS= go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION")
fi

echo "== protoc $(protoc --version)"
find proto -name '*.proto' -print0 | sort -z | xargs -0 \
  protoc -I proto \
    --go_out=proto --go_opt=paths=source_relative \
    --go-grpc_out=proto --go-grpc_opt=paths=source_relative
echo "== generated:"
find proto -name '*.pb.go' | sort
