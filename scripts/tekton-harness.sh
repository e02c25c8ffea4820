#!/usr/bin/env bash
# Builds the Tekton interoperability harness (tests/tekton-interop: Tekton Pipelines'
# own pkg/spire, pkg/entrypoint and pkg/pod, pinned in its go.mod) and caches the binary
# outside the clone, keyed by the Tekton version and a hash of the harness's sources.
# Prints the path of the binary.
#
#   ./scripts/tekton-harness.sh                 build (or reuse) and print the binary's path
#   TEKTON_HARNESS_NO_BUILD=1 ./scripts/tekton-harness.sh
#                                               only look in the cache (tests set this)
#
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/tests/tekton-interop"
cache=${TEKTON_SPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tekton-spire}

say() { printf 'tekton-harness.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

version=$(awk '$1 != "//" { for (i = 1; i < NF; i++) if ($i == "github.com/tektoncd/pipeline") { print $(i + 1); exit } }' "$src/go.mod")
[[ $version == v* ]] || die "$src/go.mod does not require github.com/tektoncd/pipeline at a version"
hash=$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
dest="$cache/tekton-interop-$version-$hash"
bin="$dest/tekton-interop"

if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi
# Tests must not start a build of several minutes behind the user's back.
[[ -z "${TEKTON_HARNESS_NO_BUILD:-}" ]] || die "the Tekton $version interop harness is not built ($bin); run ./scripts/test.sh (or ./scripts/tekton-harness.sh) first"
command -v go >/dev/null || die "go is not installed; install Go 1.26.4 or newer (Tekton $version requires it)"

say "building the Tekton $version interop harness from the Go module proxy (first run: a few minutes)"
mkdir -p "$cache"
staging="$cache/.tekton-interop-$version-$hash.$$"
rm -rf "$staging"
mkdir -p "$staging"
trap 'rm -rf "$staging"' EXIT
# go.sum pins every module; -mod=readonly fails instead of editing the checked-in files.
if ! (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -buildvcs=false -trimpath -o "$staging/tekton-interop" .) >"$staging/build.log" 2>&1; then
  cat "$staging/build.log" >&2
  die "building the harness failed (see above); check GOPROXY ($(go env GOPROXY)) and the Go version ($(go env GOVERSION))"
fi
rm -f "$staging/build.log"
# Publish atomically: a half-copied cache entry must never look complete.
rm -rf "$dest"
mv "$staging" "$dest"
trap - EXIT
say "cached in $dest"
echo "$bin"
