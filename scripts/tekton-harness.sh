#!/usr/bin/env bash
# Builds the Tekton interoperability harness (tests/tekton-interop: Tekton Pipelines'
# own pkg/spire, pkg/entrypoint and pkg/pod, pinned in its go.mod) and caches the binary
# outside the clone, keyed by a hash of the harness's sources. Prints the binary's path.
#
#   ./scripts/tekton-harness.sh                 build (or reuse) and print the binary's path
#   TEKTON_HARNESS_NO_BUILD=1 ./scripts/tekton-harness.sh
#                                               only look in the cache (tests set this)
#
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'tekton-harness.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/lib/go-build.sh
source "$root/scripts/lib/go-build.sh"
GB_NO_BUILD=${TEKTON_HARNESS_NO_BUILD:-}
go_build_local "$root/tests/tekton-interop" tekton-interop
