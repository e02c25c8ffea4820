#!/usr/bin/env bash
# Builds etcd and kube-apiserver from the Go module proxy and takes Tekton's TaskRun CRD from
# the tektoncd/pipeline module, caching all three outside the clone, keyed by version.
# Prints one directory holding `etcd`, `kube-apiserver`, `taskrun-crd.yaml` (the file shipped
# in Tekton's config/, unchanged), `crds/` (all of Tekton's CRDs) and `versions`.
#
#   ./scripts/kube.sh            build (or reuse) and print the directory
#   KUBE_VERSION=v1.37.2 ETCD_VERSION=v3.6.16 TEKTON_VERSION=v1.15.1 ./scripts/kube.sh
#
# Progress goes to stderr; stdout carries only the directory, so callers can do
#   KUBE_BIN=$(./scripts/kube.sh)
# With KUBE_NO_BUILD=1 it only looks in the cache and fails if anything is missing.
#
# Each program is built in its own throwaway module. etcd's and Kubernetes' own go.sum seed
# the throwaway go.sum, so the checksum database is asked only about the top modules (and,
# for Kubernetes, the k8s.io staging modules, which its go.sum cannot list).
set -euo pipefail

# The newest that resolve on the proxy and build with Go 1.26 (the proxy lists no versions
# of github.com/tektoncd/pipeline: it is pinned by exact tag, v1.15.2 is refused).
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
TEKTON_VERSION=${TEKTON_VERSION:-v1.15.1}
cache=${TEKTON_SPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tekton-spire}
etcd_dest="$cache/etcd-$ETCD_VERSION"
kube_dest="$cache/kube-apiserver-$KUBE_VERSION"
tekton_dest="$cache/tekton-crds-$TEKTON_VERSION"
set_dest="$cache/kube-$KUBE_VERSION+etcd-$ETCD_VERSION+tekton-$TEKTON_VERSION"

say() { printf 'kube.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

have_etcd() { [[ -x "$etcd_dest/etcd" ]]; }
have_kube() { [[ -x "$kube_dest/kube-apiserver" ]]; }
have_tekton() { [[ -f "$tekton_dest/taskrun-crd.yaml" ]]; }
have_set() { [[ -x "$set_dest/etcd" && -x "$set_dest/kube-apiserver" && -f "$set_dest/taskrun-crd.yaml" ]]; }

if have_set; then
  echo "$set_dest"
  exit 0
fi
# Tests set this: they must not start a build of many minutes behind the user's back.
if [[ -n "${KUBE_NO_BUILD:-}" ]]; then
  missing=()
  have_etcd || missing+=("etcd $ETCD_VERSION")
  have_kube || missing+=("kube-apiserver $KUBE_VERSION")
  have_tekton || missing+=("Tekton $TEKTON_VERSION CRDs")
  list=$(IFS=,; echo "${missing[*]:-the set $set_dest}")
  die "${list//,/, } not in the cache ($cache); run ./scripts/test.sh (or ./scripts/kube.sh) first"
fi

command -v go >/dev/null || die "go is not installed; install Go 1.24 or newer (the build uses 'go get -tool')"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache"

# publish SRC DEST: a half-copied cache entry must never look complete.
publish() {
  local staging
  staging="$(dirname "$2")/.$(basename "$2").$$"
  rm -rf "$staging"
  cp -R "$1" "$staging"
  rm -rf "$2"
  mv "$staging" "$2"
}

# module_dir MODULE@VERSION LOG: downloads a module (with the checksum database's blessing)
# and prints its directory in the module cache.
module_dir() {
  go mod download -json "$1" 2>"$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' || true
}

# new_module NAME: a fresh throwaway module in $work/NAME; the caller is inside it.
new_module() {
  mkdir -p "$work/$1"
  cd "$work/$1"
  go mod init "tekton-spire.local/build-$1" >/dev/null 2>&1
}

build_etcd() {
  local started=$SECONDS dir
  say "building etcd $ETCD_VERSION from the Go module proxy (first run on this machine: a few minutes)"
  new_module etcd
  dir=$(module_dir "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "$work/etcd.log")
  [[ -n "$dir" && -f "$dir/go.sum" ]] || { cat "$work/etcd.log" >&2; die "could not download go.etcd.io/etcd/server/v3@$ETCD_VERSION from the Go module proxy ($(go env GOPROXY)); pick a v3.6.x that resolves with ETCD_VERSION=…"; }
  cp "$dir/go.sum" go.sum
  chmod u+w go.sum
  # server/v3's replace lines (../api, ../pkg, …) are ignored in a dependency; its requires
  # name the same release of its sibling modules, which the proxy serves.
  if ! go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >"$work/etcd.log" 2>&1; then
    cat "$work/etcd.log" >&2
    die "could not resolve etcd $ETCD_VERSION from the Go module proxy; check GOPROXY ($(go env GOPROXY)) or pick another version with ETCD_VERSION=…"
  fi
  mkdir -p "$work/out-etcd"
  # The package's binary would be named `server` (its path ends in /v3): build it by name.
  if ! CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/out-etcd/etcd" \
      go.etcd.io/etcd/server/v3 >"$work/etcd.log" 2>&1; then
    cat "$work/etcd.log" >&2
    die "building etcd $ETCD_VERSION failed (see above)"
  fi
  publish "$work/out-etcd" "$etcd_dest"
  say "etcd $ETCD_VERSION cached in $etcd_dest ($((SECONDS - started)) s)"
}

build_kube() {
  local started=$SECONDS dir staging_version minor patch
  say "building kube-apiserver $KUBE_VERSION from the Go module proxy (first run on this machine: 10-20 minutes)"
  new_module kube
  dir=$(module_dir "k8s.io/kubernetes@$KUBE_VERSION" "$work/kube.log")
  [[ -n "$dir" && -f "$dir/go.mod" && -f "$dir/go.sum" ]] || { cat "$work/kube.log" >&2; die "could not download k8s.io/kubernetes@$KUBE_VERSION from the Go module proxy ($(go env GOPROXY)); pick a v1.3x that resolves with KUBE_VERSION=…"; }
  cp "$dir/go.sum" go.sum
  chmod u+w go.sum
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
  # ./staging/src/…; as a dependency those replaces are ignored, so pin each module it
  # replaces to the matching published release: v1.37.2 -> v0.37.2.
  minor=${KUBE_VERSION#v1.}; patch=${minor#*.}; minor=${minor%%.*}
  staging_version="v0.$minor.$patch"
  local replaces=()
  while read -r module; do
    replaces+=("-replace=$module=$module@$staging_version")
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1} $1 == "replace" && $3 == "=>" && $4 ~ /^\.\/staging\// {print $2}' "$dir/go.mod")
  [[ ${#replaces[@]} -gt 0 ]] || die "found no ./staging replace lines in $dir/go.mod; has the layout of k8s.io/kubernetes changed?"
  say "pinning ${#replaces[@]} staging modules to $staging_version"
  go mod edit "${replaces[@]}"
  if ! go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >"$work/kube.log" 2>&1; then
    cat "$work/kube.log" >&2
    die "could not resolve kube-apiserver $KUBE_VERSION (with staging modules at $staging_version) from the Go module proxy; check GOPROXY ($(go env GOPROXY)) or pick another version with KUBE_VERSION=…"
  fi
  mkdir -p "$work/out-kube"
  local pkg=k8s.io/component-base/version
  if ! CGO_ENABLED=0 go build -trimpath -o "$work/out-kube/kube-apiserver" \
      -ldflags "-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
      k8s.io/kubernetes/cmd/kube-apiserver >"$work/kube.log" 2>&1; then
    cat "$work/kube.log" >&2
    die "building kube-apiserver $KUBE_VERSION failed (see above); a release whose go.mod needs a newer Go than $(go env GOVERSION) will not build here"
  fi
  publish "$work/out-kube" "$kube_dest"
  say "kube-apiserver $KUBE_VERSION cached in $kube_dest ($((SECONDS - started)) s)"
}

fetch_tekton() {
  local dir crd
  say "fetching Tekton Pipelines $TEKTON_VERSION's CRDs from the Go module proxy"
  new_module tekton
  dir=$(module_dir "github.com/tektoncd/pipeline@$TEKTON_VERSION" "$work/tekton.log")
  [[ -n "$dir" && -d "$dir/config" ]] || { cat "$work/tekton.log" >&2; die "could not download github.com/tektoncd/pipeline@$TEKTON_VERSION from the Go module proxy ($(go env GOPROXY)); the proxy lists no versions of it, so name an exact v1.x tag with TEKTON_VERSION=…"; }
  # Wherever the release keeps it (config/300-crds/300-taskrun.yaml in v1.x).
  crd=$(grep -rlx --include='*.yaml' '  name: taskruns.tekton.dev' "$dir/config" | head -n 1 || true)
  [[ -n "$crd" ]] || die "no CustomResourceDefinition taskruns.tekton.dev under $dir/config"
  mkdir -p "$work/out-tekton/crds"
  cp "$(dirname "$crd")"/*.yaml "$work/out-tekton/crds/"
  cp "$crd" "$work/out-tekton/taskrun-crd.yaml"
  chmod -R u+w "$work/out-tekton"
  printf 'source: github.com/tektoncd/pipeline@%s/%s\n' "$TEKTON_VERSION" "${crd#"$dir/"}" >"$work/out-tekton/SOURCE"
  publish "$work/out-tekton" "$tekton_dest"
  say "Tekton $TEKTON_VERSION CRDs cached in $tekton_dest (TaskRun CRD from ${crd#"$dir/"})"
}

# Fastest first, so a failure in the long build does not hide a quick one. (Not `have || build`:
# errexit is off inside the right-hand side of ||.)
if ! have_tekton; then fetch_tekton; fi
if ! have_etcd; then build_etcd; fi
if ! have_kube; then build_kube; fi

mkdir -p "$work/out-set"
ln -s "$etcd_dest/etcd" "$work/out-set/etcd"
ln -s "$kube_dest/kube-apiserver" "$work/out-set/kube-apiserver"
ln -s "$tekton_dest/taskrun-crd.yaml" "$work/out-set/taskrun-crd.yaml"
ln -s "$tekton_dest/crds" "$work/out-set/crds"
cat >"$work/out-set/versions" <<EOF
KUBE_VERSION=$KUBE_VERSION
ETCD_VERSION=$ETCD_VERSION
TEKTON_VERSION=$TEKTON_VERSION
EOF
publish "$work/out-set" "$set_dest"
say "etcd, kube-apiserver and the TaskRun CRD ready in $set_dest"
echo "$set_dest"
