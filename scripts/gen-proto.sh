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
# The HTTP/JSON gateway and the OpenAPI document: the generators come from
# the grpc-gateway module go.mod requires, so the generated code matches
# the runtime it is compiled against.
GATEWAY_VERSION="$(go list -m -f '{{.Version}}' github.com/grpc-ecosystem/grpc-gateway/v2)"

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

# stamp records which generators produced the code: a generator is
# reinstalled only when the pinned version changes.
stamp="$GOBIN/.floe-grpc-gateway-$GATEWAY_VERSION"
if [ ! -f "$stamp" ] || ! command -v protoc-gen-grpc-gateway >/dev/null || ! command -v protoc-gen-openapiv2 >/dev/null; then
  echo "== installing protoc-gen-grpc-gateway and protoc-gen-openapiv2 $GATEWAY_VERSION (cached in $GOBIN)"
  (cd /tmp && GOFLAGS= go install "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$GATEWAY_VERSION" \
    "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$GATEWAY_VERSION")
  touch "$stamp"
fi

echo "== protoc $(protoc --version)"
find proto -name '*.proto' -print0 | sort -z | xargs -0 \
  protoc -I proto \
    --go_out=proto --go_opt=paths=source_relative \
    --go-grpc_out=proto --go-grpc_opt=paths=source_relative
# The public API (floe.v1) and the cluster service share one HTTP mapping
# (proto/floe/v1/floe_http.yaml) and one OpenAPI document.
protoc -I proto \
  --grpc-gateway_out=proto --grpc-gateway_opt=paths=source_relative \
  --grpc-gateway_opt=grpc_api_configuration=proto/floe/v1/floe_http.yaml \
  --grpc-gateway_opt=generate_unbound_methods=false \
  --openapiv2_out=proto/floe/v1 \
  --openapiv2_opt=grpc_api_configuration=proto/floe/v1/floe_http.yaml \
  --openapiv2_opt=allow_merge=true,merge_file_name=floe \
  --openapiv2_opt=generate_unbound_methods=false \
  floe/v1/floe.proto floe/cluster/v1/cluster.proto
echo "== generated:"
find proto -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' | sort
