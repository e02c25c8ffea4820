#!/usr/bin/env bash
# Installs what the tests need on a fresh machine and runs every test:
#   Debian's packages for the node (containerd, runc, CNI plugins, iptables, busybox-static,
#   glibc's static libraries) and Python packages for the independent implementations;
#   SPIRE, etcd, the Kubernetes programs, the SPIFFE CSI driver, CoreDNS, Tekton Pipelines
#   and spire-controller-manager built from the Go module proxy (cached in
#   ~/.cache/tekton-spire, keyed by version: the first run on a machine takes about
#   an hour on 2 cores, later runs reuse them); the images (scripts/images.sh); a one-node
#   cluster (scripts/cluster-local.sh) for the node tests; then the Rust workspace's tests
#   (unit, fixtures, real SPIRE and kube-apiserver, the node) and the Python tests.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
started=$SECONDS
say() { printf '\n== [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

say "checking tools"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup"
command -v go >/dev/null || die "go is missing: install Go 1.24 or newer (needed to build SPIRE and Kubernetes from the Go module proxy)"
command -v python3 >/dev/null || die "python3 is missing"
packages=()
for need in gcc:gcc containerd:containerd runc:runc ctr:containerd iptables:iptables ip:iproute2 \
    openssl:openssl curl:curl file:file; do
  command -v "${need%%:*}" >/dev/null || packages+=("${need#*:}")
done
[[ -x /usr/lib/cni/bridge ]] || packages+=(containernetworking-plugins)
[[ -x /bin/busybox ]] && file -L /bin/busybox | grep -q 'statically linked' || packages+=(busybox-static)
[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || packages+=(libc6-dev)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || packages+=(ca-certificates)
if [[ ${#packages[@]} -gt 0 ]]; then
  say "installing Debian packages: ${packages[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null; } \
    || die "apt-get could not install ${packages[*]}"
fi

say "installing Python test packages"
if ! python3 -c 'import pytest, cryptography, yaml' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check pytest cryptography PyYAML \
    || die "pip could not install pytest, cryptography and PyYAML"
fi

# shellcheck source=lib/node-programs.sh
source "$root/scripts/lib/node-programs.sh"
node_programs say
say "building the Tekton interop harness (tests/tekton-interop, cached likewise)"
./scripts/tekton-harness.sh

say "starting the one-node cluster (scripts/cluster-local.sh)"
node_dir=$(mktemp -d /tmp/tekton-spire-node.XXXXXX)
# The watchdog stops the node and deletes its directory when this script exits, however.
./scripts/cluster-local.sh start "$node_dir" --watch $$ --remove-dir
export TEKTON_SPIRE_NODE=$node_dir

say "Rust tests (cargo test --workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

say "Python tests (independent implementations and fixture checks)"
python3 -m pytest -q tests/python

say "stopping the node: nothing may be left behind (processes, mounts, devices, rules)"
./scripts/cluster-local.sh stop "$node_dir" || die "the node left things behind (see above)"
rm -rf "$node_dir"
say "all tests passed in $((SECONDS - started)) s"
