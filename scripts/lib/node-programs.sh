# shellcheck shell=bash
# What the one-node cluster runs, built once per machine and cached in ~/.cache/tekton-spire
# (the first build takes about an hour on 2 cores; each program prints its progress), then
# the images (scripts/images.sh): test.sh and demo.sh --cluster both build through this.
#
#   source scripts/lib/node-programs.sh
#   node_programs SAY   SAY: a function that prints one progress line
node_programs() {
  local say=$1 root program
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  "$say" "building SPIRE (scripts/spire.sh; cached after the first build on this machine)"
  "$root/scripts/spire.sh" >/dev/null
  "$say" "building etcd and the Kubernetes programs, fetching Tekton's CRDs (scripts/kube.sh; cached likewise)"
  "$root/scripts/kube.sh" >/dev/null
  for program in spiffe-csi coredns tekton scm csi-registrar; do
    "$say" "building $program (scripts/programs.sh $program; cached likewise)"
    "$root/scripts/programs.sh" "$program" >/dev/null
  done
  "$say" "building the images (scripts/images.sh all)"
  "$root/scripts/images.sh" all >/dev/null
}
