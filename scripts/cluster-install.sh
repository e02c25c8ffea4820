#!/usr/bin/env bash
# README's "Install in a cluster", step by step, on the node that scripts/cluster-local.sh
# runs in DIR: the node tests (crates/testbed/src/node.rs) and `demo.sh --cluster` install
# through this script, so what they run is what README says. Every step is safe to repeat.
#
#   scripts/cluster-install.sh DIR [--tekton]
#
#   0. Tekton's CRDs (the controller watches TaskRuns); with --tekton, Tekton Pipelines
#      itself from its release configuration (scripts/tekton-install.sh).
#   1. SPIRE: server, agent, SPIFFE CSI driver, with the images built here and
#      spire-controller-manager beside them as the spiffe/helm-charts-hardened chart runs
#      it (tests/cluster/spire, an overlay of spire-config/kubernetes).
#   2. The controller's admin identity and the verdict controller's plain one, on this
#      node (register-controller.sh).
#   3. The entry and verdict controllers, from deploy/ as written.
#
# Progress on stderr; stdout stays empty. Needs the programs and images already built
# (scripts/programs.sh, scripts/images.sh): nothing is built here.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'cluster-install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $# -ge 1 ]] || die "usage: cluster-install.sh DIR [--tekton] (DIR: a node started by scripts/cluster-local.sh)"
dir=$1
shift
tekton=0
for arg in "$@"; do
  case $arg in
    --tekton) tekton=1 ;;
    *) die "unknown argument $arg" ;;
  esac
done
[[ -f $dir/env ]] || die "$dir/env is missing: start the node first (scripts/cluster-local.sh start $dir)"
# shellcheck disable=SC1091
source "$dir/env"
export KUBECONFIG
kubectl=$KUBE_BIN/kubectl

if [[ $tekton == 1 ]]; then
  say "0. Tekton Pipelines from its release configuration"
  PROGRAMS_NO_BUILD=1 "$root/scripts/tekton-install.sh" "$kubectl"
else
  say "0. Tekton's CRDs"
  # kubectl reads no directory through a symbolic link: resolve it.
  "$kubectl" apply --server-side --force-conflicts -f "$(readlink -f "$KUBE_BIN/crds")" >/dev/null
fi

say "1. SPIRE: server, agent, SPIFFE CSI driver (and spire-controller-manager beside them)"
scm=$(PROGRAMS_NO_BUILD=1 "$root/scripts/programs.sh" scm) || die "spire-controller-manager is not built: ./scripts/programs.sh scm"
"$kubectl" apply --server-side --force-conflicts -f "$scm/crd" >/dev/null
"$kubectl" apply -k "$root/tests/cluster/spire" >/dev/null
for what in statefulset/spire-server daemonset/spire-agent daemonset/spiffe-csi-driver; do
  "$kubectl" -n spire rollout status "$what" --timeout=300s >/dev/null \
    || die "$what is not ready (kubectl -n spire get pods; kubectl -n spire logs …)"
done

say "2. the controller's SPIRE admin identity and the verdict controller's, bound to node $NODE_NAME"
KUBECTL=$kubectl CLUSTER=demo-cluster "$root/spire-config/kubernetes/register-controller.sh" "$NODE_NAME"

say "3. the entry and verdict controllers, from deploy/ as written"
"$kubectl" apply -k "$root/deploy" >/dev/null
for what in deployment/tekton-spire-controller deployment/tekton-spire-verdict; do
  "$kubectl" -n tekton-spire rollout status "$what" --timeout=300s >/dev/null \
    || die "$what is not ready (kubectl -n tekton-spire describe pods)"
done
say "installed"
