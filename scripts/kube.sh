#!/usr/bin/env bash
# Builds etcd and the Kubernetes programs (kube-apiserver, and for the one-node cluster the
# kubelet, kube-scheduler, kube-controller-manager, kube-proxy and kubectl) from the Go
# module proxy, and takes Tekton's CRDs from the tektoncd/pipeline module, caching all of
# them outside the clone, keyed by version. Prints one directory holding the programs,
# `taskrun-crd.yaml` (the file shipped in Tekton's config/, unchanged), `crds/` (all of
# Tekton's CRDs) and `versions`.
#
#   ./scripts/kube.sh            build (or reuse) and print the directory
#   KUBE_VERSION=v1.37.2 ETCD_VERSION=v3.6.16 TEKTON_VERSION=v1.15.1 ./scripts/kube.sh
#
# Progress goes to stderr; stdout carries only the directory, so callers can do
#   KUBE_BIN=$(./scripts/kube.sh)
# With KUBE_NO_BUILD=1 it only looks in the cache and fails if anything is missing.
set -euo pipefail

# The newest that resolve on the proxy and build with Go 1.26 (the proxy lists no versions
# of github.com/tektoncd/pipeline: it is pinned by exact tag, v1.15.2 is refused).
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
TEKTON_VERSION=${TEKTON_VERSION:-v1.15.1}

say() { printf 'kube.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/lib/go-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-build.sh"

GB_NO_BUILD=${KUBE_NO_BUILD:-}
set_dest="$gb_cache/kube-$KUBE_VERSION+etcd-$ETCD_VERSION+tekton-$TEKTON_VERSION"
programs=(etcd kube-apiserver kubelet kube-scheduler kube-controller-manager kube-proxy kubectl)
have_set() {
  local p
  for p in "${programs[@]}"; do [[ -x "$set_dest/$p" ]] || return 1; done
  [[ -f "$set_dest/taskrun-crd.yaml" ]]
}
if have_set; then
  echo "$set_dest"
  exit 0
fi

# Tekton's CRDs: files of a module, nothing to build.
tekton_crds() {
  local dest="$gb_cache/tekton-crds-$TEKTON_VERSION" work dir crd
  if [[ -f "$dest/taskrun-crd.yaml" ]]; then echo "$dest"; return 0; fi
  [[ -z "$GB_NO_BUILD" ]] || die "Tekton $TEKTON_VERSION's CRDs are not in the cache; run ./scripts/test.sh first"
  say "fetching Tekton Pipelines $TEKTON_VERSION's CRDs from the Go module proxy"
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  dir=$(cd "$work" && gb_module_dir "github.com/tektoncd/pipeline@$TEKTON_VERSION" "$work/log")
  [[ -n "$dir" && -d "$dir/config" ]] || { cat "$work/log" >&2; die "could not download github.com/tektoncd/pipeline@$TEKTON_VERSION from the Go module proxy ($(go env GOPROXY)); the proxy lists no versions of it, so name an exact v1.x tag with TEKTON_VERSION=…"; }
  # Wherever the release keeps it (config/300-crds/300-taskrun.yaml in v1.x).
  crd=$(grep -rlx --include='*.yaml' '  name: taskruns.tekton.dev' "$dir/config" | head -n 1 || true)
  [[ -n "$crd" ]] || die "no CustomResourceDefinition taskruns.tekton.dev under $dir/config"
  mkdir -p "$work/out/crds"
  cp "$(dirname "$crd")"/*.yaml "$work/out/crds/"
  cp "$crd" "$work/out/taskrun-crd.yaml"
  chmod -R u+w "$work/out"
  printf 'source: github.com/tektoncd/pipeline@%s/%s\n' "$TEKTON_VERSION" "${crd#"$dir/"}" >"$work/out/SOURCE"
  gb_publish "$work/out" "$dest"
  echo "$dest"
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
# ./staging/src/…; as a dependency those replaces are ignored, so pin each module it
# replaces to the matching published release: v1.37.2 -> v0.37.2.
pin_staging() {
  local minor=${KUBE_VERSION#v1.} patch replaces=() module
  patch=${minor#*.}; minor=${minor%%.*}
  while read -r module; do
    replaces+=("-replace=$module=$module@v0.$minor.$patch")
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1} $1 == "replace" && $3 == "=>" && $4 ~ /^\.\/staging\// {print $2}' "$1/go.mod")
  [[ ${#replaces[@]} -gt 0 ]] || die "found no ./staging replace lines in $1/go.mod; has the layout of k8s.io/kubernetes changed?"
  say "  pinning ${#replaces[@]} staging modules to v0.$minor.$patch"
  go mod edit "${replaces[@]}"
}

# Fastest first, so a failure in the long build does not hide a quick one.
crds=$(tekton_crds)

# server/v3's replace lines (../api, ../pkg, …) are ignored in a dependency; its requires
# name the same release of its sibling modules, which the proxy serves.
GB_NAME=etcd-$ETCD_VERSION GB_MODULE=go.etcd.io/etcd/server/v3 GB_VERSION=$ETCD_VERSION
GB_PKGS=(.=etcd)
etcd=$(go_build)

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
vpkg=k8s.io/component-base/version
GB_NAME=kubernetes-$KUBE_VERSION GB_MODULE=k8s.io/kubernetes GB_VERSION=$KUBE_VERSION
GB_PKGS=(cmd/kube-apiserver=kube-apiserver cmd/kubelet=kubelet cmd/kube-scheduler=kube-scheduler
  cmd/kube-controller-manager=kube-controller-manager cmd/kube-proxy=kube-proxy cmd/kubectl=kubectl)
GB_LDFLAGS="-X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
GB_PREPARE=pin_staging
kube=$(go_build)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$etcd/etcd" "$work/etcd"
for p in "${programs[@]:1}"; do ln -s "$kube/$p" "$work/$p"; done
ln -s "$crds/taskrun-crd.yaml" "$work/taskrun-crd.yaml"
ln -s "$crds/crds" "$work/crds"
cat >"$work/versions" <<EOV
KUBE_VERSION=$KUBE_VERSION
ETCD_VERSION=$ETCD_VERSION
TEKTON_VERSION=$TEKTON_VERSION
EOV
gb_publish "$work" "$set_dest"
say "etcd, the Kubernetes programs and Tekton's CRDs ready in $set_dest"
echo "$set_dest"
