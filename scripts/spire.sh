#!/usr/bin/env bash
# Builds the pinned spire-server and spire-agent from the Go module proxy and caches them
# outside the clone, keyed by version (v1.13.3: v1.15.x does not resolve on the proxy,
# its spire-server needs a module the proxy refuses). Prints the directory that holds both binaries.
#
#   ./scripts/spire.sh            build (or reuse) and print the directory
#   SPIRE_VERSION=v1.13.3 ./scripts/spire.sh
#
# Progress goes to stderr; stdout carries only the directory, so callers can do
#   SPIRE_BIN=$(./scripts/spire.sh)
# With SPIRE_NO_BUILD=1 it only looks in the cache and fails if the build is missing.
set -euo pipefail

SPIRE_VERSION=${SPIRE_VERSION:-v1.13.3}
cache=${TEKTON_SPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tekton-spire}
dest="$cache/spire-$SPIRE_VERSION"

say() { printf 'spire.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [[ -x "$dest/spire-server" && -x "$dest/spire-agent" ]]; then
  echo "$dest"
  exit 0
fi
# Tests set this: they must not start a build of several minutes behind the user's back.
[[ -z "${SPIRE_NO_BUILD:-}" ]] || die "SPIRE $SPIRE_VERSION is not built in $dest; run ./scripts/test.sh (or ./scripts/spire.sh) first"


command -v go >/dev/null || die "go is not installed; install Go 1.24 or newer (the build uses 'go get -tool')"
command -v gcc >/dev/null || die "gcc is not installed; spire-server's SQLite datastore needs cgo (apt-get install gcc)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

say "building SPIRE $SPIRE_VERSION from the Go module proxy (first run on this machine: several minutes)"
cd "$work"
go mod init tekton-spire.local/build-spire >/dev/null 2>&1
# Seed go.sum with SPIRE's own: every dependency is then checked against the hashes SPIRE
# recorded, and the checksum database (which lacks some of them) is asked only for SPIRE.
spire_dir=$(go mod download -json "github.com/spiffe/spire@$SPIRE_VERSION" 2>"$work/get.log" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
[[ -n "$spire_dir" && -f "$spire_dir/go.sum" ]] || { cat "$work/get.log" >&2; die "could not download SPIRE $SPIRE_VERSION from the Go module proxy ($(go env GOPROXY))"; }
cp "$spire_dir/go.sum" go.sum
chmod u+w go.sum
# The proxy lists no versions of this module, so it is pinned by exact tag inside a module.
if ! go get -tool "github.com/spiffe/spire/cmd/spire-server@$SPIRE_VERSION" \
                  "github.com/spiffe/spire/cmd/spire-agent@$SPIRE_VERSION" >"$work/get.log" 2>&1; then
  cat "$work/get.log" >&2
  die "could not resolve SPIRE $SPIRE_VERSION from the Go module proxy; check GOPROXY ($(go env GOPROXY)) or pick another version with SPIRE_VERSION=v1.13.3"
fi
mkdir -p "$work/bin"
if ! CGO_ENABLED=1 GOBIN="$work/bin" go install -trimpath \
    -ldflags "-s -w -X github.com/spiffe/spire/pkg/common/version.gittag=${SPIRE_VERSION#v}" tool >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  die "building SPIRE $SPIRE_VERSION failed (see above); a C compiler is needed for spire-server"
fi

# Publish atomically: a half-copied cache entry must never look complete.
staging="$cache/.spire-$SPIRE_VERSION.$$"
rm -rf "$staging"
mkdir -p "$staging"
cp "$work/bin/spire-server" "$work/bin/spire-agent" "$staging/"
rm -rf "$dest"
mv "$staging" "$dest"
say "SPIRE $SPIRE_VERSION cached in $dest"
echo "$dest"
