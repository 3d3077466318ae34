#!/usr/bin/env bash
# The test command: sets up what the tests need on a fresh machine, then runs
# every test (unit, fault injection, e2e with a real S3-compatible server and
# separate floe processes killed with SIGKILL), a short fuzz run of every
# decoder, a 3-minute soak of one node with maintenance on, and the race
# detector on the concurrent packages.
#
#   scripts/test.sh            everything (what CI runs)
#   FUZZTIME=200000x scripts/test.sh   longer fuzzing (executions per target)
set -euo pipefail
cd "$(dirname "$0")/.."

GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"

# A real S3-compatible server for the S3 tests, built once and cached.
if ! command -v versitygw >/dev/null 2>&1; then
  echo "== installing versitygw (S3-compatible server for tests; cached in $GOBIN)"
  (cd /tmp && GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)
fi

# ClickHouse, embedded in Node through the npm package chdb (~550 MB), reads
# the e2e tables back independently of floe and iceberg-go. Installed once
# into a cache outside the repository (never node_modules in the tree).
CHDB_VERSION=3.4.0
export FLOE_CHDB_DIR="${FLOE_CHDB_DIR:-$(go env GOPATH)/floe-test-tools/chdb-$CHDB_VERSION}"
if [ ! -f "$FLOE_CHDB_DIR/.installed" ]; then
  command -v npm >/dev/null 2>&1 || { echo "scripts/test.sh: npm (Node.js 18+) is needed for the ClickHouse checks" >&2; exit 1; }
  echo "== installing chdb $CHDB_VERSION (ClickHouse for the e2e oracle; cached in $FLOE_CHDB_DIR)"
  mkdir -p "$FLOE_CHDB_DIR"
  (cd "$FLOE_CHDB_DIR" && npm install --prefix "$FLOE_CHDB_DIR" --save-exact --no-audit --no-fund "chdb@$CHDB_VERSION")
  touch "$FLOE_CHDB_DIR/.installed"
fi

# Playwright drives Debian's Chromium for the console's browser test; the
# npm package playwright-core downloads no browser and runs no install
# script. Cached like chdb.
PLAYWRIGHT_VERSION=1.65.1
export FLOE_PLAYWRIGHT_DIR="${FLOE_PLAYWRIGHT_DIR:-$(go env GOPATH)/floe-test-tools/playwright-core-$PLAYWRIGHT_VERSION}"
if [ ! -f "$FLOE_PLAYWRIGHT_DIR/.installed" ]; then
  echo "== installing playwright-core $PLAYWRIGHT_VERSION (drives Chromium for the console test; cached in $FLOE_PLAYWRIGHT_DIR)"
  mkdir -p "$FLOE_PLAYWRIGHT_DIR"
  (cd "$FLOE_PLAYWRIGHT_DIR" && npm install --prefix "$FLOE_PLAYWRIGHT_DIR" --save-exact --no-audit --no-fund "playwright-core@$PLAYWRIGHT_VERSION")
  touch "$FLOE_PLAYWRIGHT_DIR/.installed"
fi

# PostgreSQL for the Postgres catalog tests (machine service; start if down).
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "== starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi

# Debian packages the checks need: protoc (the generated-code check) and
# Chromium (the console's browser test).
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { echo "scripts/test.sh: install ${missing[*]} (Debian/Ubuntu packages)" >&2; exit 1; }
  echo "== installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y "${missing[@]}" >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null; }
}
apt_install protobuf-compiler chromium

# The committed generated code (protobuf, gRPC, the HTTP gateway, the
# OpenAPI document) must be what the .proto files generate.
echo "== generated code is up to date"
scripts/gen-proto.sh >/dev/null
if ! git diff --quiet -- proto/ || [ -n "$(git ls-files --others --exclude-standard -- proto/)" ]; then
  git status --short -- proto/
  echo "scripts/test.sh: the generated code in proto/ is out of date: run scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi

# Tests that need a service skip without it on a developer machine, but must
# fail here if it is missing.
export CI="${CI:-1}"

echo "== go vet"
go vet ./...

echo "== go test"
# The console's browser test keeps its screenshot here.
export FLOE_CONSOLE_SCREENSHOT="${FLOE_CONSOLE_SCREENSHOT:-$(mktemp -d)/console.png}"
go test -count=1 -timeout 20m ./...
echo "== the console as the browser test saw it: $FLOE_CONSOLE_SCREENSHOT"

# Budgets are counted in executions, not seconds: with a duration, Go's
# fuzz coordinator (go1.26) can report "context deadline exceeded" as a
# failure when the deadline catches a worker mid-run on a loaded machine,
# with no failing input. A count has no deadline to race.
echo "== fuzz (${FUZZTIME:-10000x} per target)"
# Every target of every package: two packages may name a target alike.
grep -rHo 'func Fuzz[A-Za-z0-9_]*' --include='*_test.go' . | sort -u | while IFS=: read -r file fn; do
  target=${fn#func }
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-10000x}" "./$(dirname "${file#./}")"
done

# One floe process at 20k records/s, 1-second commits, maintenance at its
# defaults, for 3 minutes: the figures are printed beside their targets, not
# asserted (a run this short compares its last third with its middle third);
# it fails only when the run does (the process exits, a commit never comes).
echo "== soak (3 minutes)"
go run ./cmd/floe bench soak --duration 3m --sample 10s --png "$(mktemp -d)/soak.png"

echo "== race detector (concurrent packages)"
go test -count=1 -race -timeout 15m ./commit/ ./ingest/... ./internal/node/ ./cluster/ ./raftstore/ ./maintain/ ./upsert/
# The cluster runtime under the race detector: three members in one process.
go test -count=1 -race -timeout 10m -run TestClusterInProcess ./e2e/
