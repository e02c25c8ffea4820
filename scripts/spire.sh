#!/usr/bin/env bash
# Builds the pinned spire-server and spire-agent from the Go module proxy and caches them
# outside the clone, keyed by version (v1.13.3: v1.15.x does not resolve on the proxy, its
# spire-server needs a module the proxy refuses). Prints the directory that holds both.
#
#   ./scripts/spire.sh            build (or reuse) and print the directory
#   SPIRE_VERSION=v1.13.3 ./scripts/spire.sh
#
# Progress goes to stderr; stdout carries only the directory, so callers can do
#   SPIRE_BIN=$(./scripts/spire.sh)
# With SPIRE_NO_BUILD=1 it only looks in the cache and fails if the build is missing.
set -euo pipefail

SPIRE_VERSION=${SPIRE_VERSION:-v1.13.3}

say() { printf 'spire.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/lib/go-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-build.sh"
GB_NO_BUILD=${SPIRE_NO_BUILD:-}

# spire-server's SQLite datastore needs cgo.
GB_NAME=spire-$SPIRE_VERSION GB_MODULE=github.com/spiffe/spire GB_VERSION=$SPIRE_VERSION GB_CGO=1
GB_PKGS=(cmd/spire-server=spire-server cmd/spire-agent=spire-agent)
GB_LDFLAGS="-X github.com/spiffe/spire/pkg/common/version.gittag=${SPIRE_VERSION#v}"
go_build
