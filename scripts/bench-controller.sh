#!/usr/bin/env bash
# The controller benchmark (docs/controller-benchmark.md): real etcd + kube-apiserver, real
# SPIRE servers, the release controller and spire-controller-manager, one table at the end.
#
#   ./scripts/bench-controller.sh [OPTIONS]
#       -h, --help          this text
#       --pods N            burst size (default 1000)
#       --nodes N           Node objects the pods are spread over (default 10)
#       --reconcile-pods N  pods (and owned entries) of the full-reconcile phase (default 10000)
#       --no-scm            skip spire-controller-manager
#       --baseline BIN      an earlier tekton-spire binary, measured as "before" in the burst
#                           and step-transition phases
#       --small-objects     small synthetic objects instead of Tekton-shaped ones
#       --rounds N          N rounds of each phase (1-9, default 1), alternating which
#                           controller goes first; every row gives the median, and each
#                           round's headline figures follow (about 12 minutes a round)
#       --keep DIR          work in DIR and leave it (logs, configs) instead of a temp dir
#   ./scripts/bench-controller.sh build-scm
#       only builds (or finds) spire-controller-manager and prints its cache directory
#
# Builds: `cargo build --release` (the controller and examples/bench-controller.rs, the
# driver), SPIRE and kube-apiserver via scripts/spire.sh and scripts/kube.sh (cached), and
# spire-controller-manager $SCM_VERSION through scripts/programs.sh, cached in
# ~/.cache/tekton-spire/scm-$SCM_VERSION (binary + the module's config/crd/bases).
# Needs 2 cores and ~3 GB of free memory; takes 10-20 minutes with the default sizes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# v0.6.6 and v0.6.5 are refused by the proxy ("not available"); v0.6.4 resolves.
SCM_VERSION=${SCM_VERSION:-v0.6.4}
cache=${TEKTON_SPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tekton-spire}

say() { printf 'bench-controller: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# spire-controller-manager $SCM_VERSION and its CRDs (scripts/programs.sh, cached).
build_scm() {
  SCM_VERSION=$SCM_VERSION "$root/scripts/programs.sh" scm
}

case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
if [[ ${1:-} == build-scm ]]; then
  build_scm
  exit 0
fi

pods=1000 nodes=10 reconcile_pods=10000 scm=1 keep="" baseline="" small=0 rounds=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --pods) pods=$2; shift ;;
    --nodes) nodes=$2; shift ;;
    --reconcile-pods) reconcile_pods=$2; shift ;;
    --no-scm) scm=0 ;;
    --baseline) baseline=$2; shift ;;
    --small-objects) small=1 ;;
    --rounds) rounds=$2; shift ;;
    --keep) keep=$2; shift ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

for tool in cargo go curl openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

say "building SPIRE, etcd and kube-apiserver (cached after the first run)"
"$root/scripts/spire.sh" >/dev/null
"$root/scripts/kube.sh" >/dev/null
scm_bin=""
if [[ $scm == 1 ]]; then
  scm_dir=$(build_scm)
  scm_bin="$scm_dir/spire-controller-manager"
fi

say "building the controller and the driver (cargo build --release)"
(cd "$root" && cargo build --release --quiet --bin tekton-spire --example bench-controller)
controller="$root/target/release/tekton-spire"
driver="$root/target/release/examples/bench-controller"

if [[ -n $keep ]]; then
  work=$(mkdir -p "$keep" && cd "$keep" && pwd)
else
  work=$(mktemp -d -t tsp-bench-XXXXXX)
fi
cleanup() {
  # The controllers the driver started, should it have died before stopping them.
  if [[ -f "$work/pids" ]]; then
    while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$work/pids"
  fi
  "$root/scripts/kube-local.sh" stop "$work/kube" >/dev/null 2>&1 || true
  [[ -n $keep ]] || rm -rf "$work"
}
trap cleanup EXIT

say "starting etcd and kube-apiserver in $work/kube"
KUBE_NO_BUILD=1 "$root/scripts/kube-local.sh" start "$work/kube" --watch $$
if [[ -n $scm_bin ]]; then
  # The CRDs exactly as the module ships them (config/crd/bases).
  # shellcheck source=/dev/null
  source "$work/kube/env"
  for crd in "$scm_dir"/crd/*.yaml; do
    curl -sS --fail-with-body -X POST --cacert "$KUBE_CA" --cert "$KUBE_ADMIN_CERT" --key "$KUBE_ADMIN_KEY" \
      -H 'Content-Type: application/yaml' --data-binary "@$crd" \
      "$KUBE_API_URL/apis/apiextensions.k8s.io/v1/customresourcedefinitions" >/dev/null \
      || die "installing $(basename "$crd") failed"
  done
  say "installed spire-controller-manager's CRDs: $(cd "$scm_dir/crd" && echo *.yaml)"
fi

args=(--kubeconfig "$work/kube/kubeconfig" --controller "$controller" --work "$work"
      --pods "$pods" --nodes "$nodes" --reconcile-pods "$reconcile_pods" --rounds "$rounds")
[[ -z $scm_bin ]] || args+=(--scm "$scm_bin" --scm-version "$SCM_VERSION")
[[ -z $baseline ]] || args+=(--baseline "$baseline")
[[ $small == 0 ]] || args+=(--small-objects)
"$driver" "${args[@]}"
