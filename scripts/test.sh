#!/usr/bin/env bash
# Installs what the tests need on a fresh machine and runs every test:
#   Python packages (pytest, cryptography, PyYAML) for the independent implementations,
#   SPIRE, etcd and kube-apiserver built from the Go module proxy (scripts/spire.sh,
#   scripts/kube.sh; cached outside the clone) and Tekton's CRDs from its module,
#   then the Rust workspace's tests (unit, fixtures, real SPIRE) and the Python tests.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf '\n== %s\n' "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

say "checking tools"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup"
command -v go >/dev/null || die "go is missing: install Go 1.24 or newer (needed to build SPIRE from the Go module proxy)"
command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc; } || die "gcc is missing and could not be installed (apt-get install gcc)"
command -v python3 >/dev/null || die "python3 is missing"

say "installing Python test packages"
if ! python3 -c 'import pytest, cryptography, yaml' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check pytest cryptography PyYAML \
    || die "pip could not install pytest, cryptography and PyYAML"
fi

say "building SPIRE (cached after the first build on this machine)"
./scripts/spire.sh

say "building etcd and kube-apiserver, fetching Tekton's CRDs (cached likewise)"
./scripts/kube.sh

say "building the Tekton interop harness (tests/tekton-interop, cached likewise)"
./scripts/tekton-harness.sh

say "Rust tests (cargo test --workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

say "Python tests (independent implementations and fixture checks)"
python3 -m pytest -q tests/python
