#!/usr/bin/env bash
# Builds container images as OCI archives, without a container daemon (scripts/oci-image.py
# writes the layout; nothing is pulled).
#
#   ./scripts/images.sh [--out DIR] ours   the two images of tekton-spire, from this checkout:
#                                          tekton-spire (controller and CLI) and
#                                          tekton-spire-sign (the signing helper)
#   ./scripts/images.sh [--out DIR] node   the images the one-node cluster runs, from the
#                                          programs the other scripts build and cache:
#                                          `cluster` (pause, a shell, CoreDNS, SPIRE, the
#                                          SPIFFE CSI driver and its registrar) and `beside`
#                                          (Tekton Pipelines,
#                                          spire-controller-manager)
#   ./scripts/images.sh [--out DIR] all    both (default)
#
# Our images: static binaries (the gnu target linked with crt-static; rustup cannot fetch
# the musl target here) in an otherwise empty image: /etc/passwd and /etc/group, the CA
# certificates, /tmp; user 65532, no shell, no package manager. Reproducible: paths are
# remapped out of the binaries and every date is the commit's (SOURCE_DATE_EPOCH), so the
# same commit gives the same digests on any checkout; `--check` builds a second time from
# a fresh checkout elsewhere, with its own target directory, and compares the digests.
# Containerfile builds the same layout with docker, podman or buildah.
#
# Prints one line per image: reference, manifest digest, compressed size, and writes
# DIR/images.tsv with the same (DIR defaults to target/images). Image names and tags:
# $TEKTON_SPIRE_TAG (default: the crate version) for ours; deploy/kustomization.yaml maps
# the names deploy/ uses to where a user publishes them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf 'images.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

out=$root/target/images
check=
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    ours|cluster|beside|node|all) what=$1; shift ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
what=${what:-all}
mkdir -p "$out"
: >"$out/images.tsv.new"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tag=${TEKTON_SPIRE_TAG:-$version}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
ca_bundle=/etc/ssl/certs/ca-certificates.crt

# image NAME ARGS...: one archive, $out/<name without tag and registry>.tar.
image() {
  local name=$1 file line
  shift
  file=${name%:*}; file=${file##*/}
  line=$(python3 "$root/scripts/oci-image.py" --name "$name" --out "$out/$file.tar" "$@") || die "could not write the image $name"
  printf '%s\n' "$line" >>"$out/images.tsv.new"
  awk -F'\t' '{ printf "  %-60s %s %6.1f MiB\n", $1, $2, $3 / 1048576 }' <<<"$line" >&2
}

# The Rust programs, static. A separate target directory: other RUSTFLAGS than a normal
# build, and no rebuild of the developer's target/ either way.
build_static() {
  local target=x86_64-unknown-linux-gnu
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || die "glibc's static libraries are missing (apt-get install libc6-dev)"
  say "building static binaries: $* (cargo build --release, first run: a few minutes)"
  CARGO_TARGET_DIR=$root/target/static \
  RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    cargo build --locked --release --target "$target" "$@" >&2 || die "cargo build failed (see above)"
  static_dir=$root/target/static/$target/release
}

build_ours() {
  [[ -f $ca_bundle ]] || die "$ca_bundle is missing (apt-get install ca-certificates)"
  build_static -p tekton-spire --bin tekton-spire --bin tekton-spire-sign
  say "images of tekton-spire $tag"
  image "tekton-spire:$tag" --file "$static_dir/tekton-spire=/usr/local/bin/tekton-spire:0755" \
    --file "$ca_bundle=/etc/ssl/certs/ca-certificates.crt:0644" \
    --entrypoint /usr/local/bin/tekton-spire \
    --label org.opencontainers.image.title=tekton-spire
  image "tekton-spire-sign:$tag" --file "$static_dir/tekton-spire-sign=/usr/local/bin/tekton-spire-sign:0755" \
    --entrypoint /usr/local/bin/tekton-spire-sign \
    --label org.opencontainers.image.title=tekton-spire-sign
}

# with_libs BINARY DEST: --file arguments for a dynamically linked program and the shared
# libraries it loads (spire-server needs cgo for SQLite), at the same paths as here.
with_libs() {
  local lib
  printf -- '--file\n%s=%s:0755\n' "$1" "$2"
  while read -r lib; do
    printf -- '--file\n%s=%s:0755\n' "$(readlink -f "$lib")" "$lib"
  done < <(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
}

# The node itself and SPIRE on it.
build_cluster() {
  local spire csi dns registrar args
  spire=$("$root/scripts/spire.sh")
  registrar=$("$root/scripts/programs.sh" csi-registrar)
  csi=$("$root/scripts/programs.sh" spiffe-csi)
  dns=$("$root/scripts/programs.sh" coredns)
  command -v busybox >/dev/null || [[ -x /bin/busybox ]] || die "busybox is missing (apt-get install busybox-static)"
  file -L /bin/busybox | grep -q 'statically linked' || die "/bin/busybox is not the static one (apt-get install busybox-static)"
  build_static -p tekton-spire-pause
  say "images of the one-node cluster (tekton-spire.local/…)"
  local reg=tekton-spire.local
  image "$reg/pause:1" --file "$static_dir/pause=/pause:0755" --entrypoint /pause --user 65535:65535
  # A shell for Tekton's script steps and init containers, and for test steps: busybox.
  local applets=(sh cat cp mkdir ls printf sleep sha256sum head cut echo env test true false chmod ln rm tee wc date)
  args=(--file /bin/busybox=/bin/busybox:0755)
  for a in "${applets[@]}"; do args+=(--symlink "/bin/$a=busybox"); done
  image "$reg/busybox:1" "${args[@]}" --user 0:0 --cmd /bin/sh
  image "$reg/csi-registrar:1" --file "$registrar/csi-registrar=/usr/local/bin/csi-registrar:0755" \
    --entrypoint /usr/local/bin/csi-registrar --user 0:0
  mapfile -t args < <(with_libs "$spire/spire-server" /opt/spire/bin/spire-server)
  image "$reg/spire-server:$(version_of "$spire")" "${args[@]}" --dir /run/spire/data:0700:65532 \
    --entrypoint /opt/spire/bin/spire-server --cmd run
  # Built with cgo like the server (one build of SPIRE): the agent links glibc too.
  mapfile -t args < <(with_libs "$spire/spire-agent" /opt/spire/bin/spire-agent)
  image "$reg/spire-agent:$(version_of "$spire")" "${args[@]}" \
    --entrypoint /opt/spire/bin/spire-agent --cmd run --user 0:0
  image "$reg/spiffe-csi-driver:$(version_of "$csi")" --file "$csi/spiffe-csi-driver=/spiffe-csi-driver:0755" \
    --entrypoint /spiffe-csi-driver --user 0:0
  image "$reg/coredns:$(version_of "$dns")" --file "$dns/coredns=/coredns:0755" --entrypoint /coredns
}

# What runs beside tekton-spire: Tekton Pipelines, spire-controller-manager. (Tekton
# Chains: `./scripts/programs.sh chains`, refused by the Go module proxy for every
# version tried; see docs/measurements.md.)
build_beside() {
  local tekton scm p v reg=tekton-spire.local
  tekton=$("$root/scripts/programs.sh" tekton)
  scm=$("$root/scripts/programs.sh" scm)
  say "images of Tekton Pipelines and spire-controller-manager (tekton-spire.local/…)"
  v=$(version_of "$tekton")
  for p in controller webhook entrypoint nop workingdirinit sidecarlogresults; do
    image "$reg/tekton-$p:$v" --file "$tekton/$p=/ko-app/$p:0755" --entrypoint "/ko-app/$p" \
      --env KO_DATA_PATH=/var/run/ko --dir /var/run/ko
  done
  image "$reg/spire-controller-manager:$(version_of "$scm")" --file "$scm/spire-controller-manager=/spire-controller-manager:0755" \
    --entrypoint /spire-controller-manager
}

# version_of CACHE_DIR: the tag in a cache directory's name (spire-v1.13.3 -> v1.13.3).
version_of() {
  local name
  name=$(basename "$1")
  echo "${name##*-}"
}

case $what in
  ours) build_ours ;;
  cluster) build_cluster ;;
  beside) build_beside ;;
  node) build_cluster; build_beside ;;
  all) build_ours; build_cluster; build_beside ;;
esac
# One table for every image in DIR: earlier lines of images not rebuilt now are kept.
if [[ -f $out/images.tsv ]]; then
  awk -F'\t' 'NR == FNR { built[$1] = 1; next } !($1 in built)' "$out/images.tsv.new" "$out/images.tsv" >>"$out/images.tsv.new"
fi
mv "$out/images.tsv.new" "$out/images.tsv"

# --check: the same commit, checked out elsewhere and built from scratch, must give the
# same digests (paths, dates and the build directory must not leak into the images).
if [[ -n $check ]]; then
  [[ -z $(git status --porcelain --untracked-files=no) ]] || die "--check compares builds of a commit: commit your changes first"
  second=$(mktemp -d /tmp/tekton-spire-images-check.XXXXXX)
  say "--check: building our images again from a fresh checkout of $(git rev-parse --short HEAD) in $second"
  git worktree add --detach "$second/src" HEAD >/dev/null 2>&1 || die "git worktree add failed"
  (cd "$second/src" && ./scripts/images.sh --out "$second/images" ours >/dev/null) || { git worktree remove --force "$second/src"; die "the second build failed"; }
  first_set=$(grep -v $'^tekton-spire.local/' "$out/images.tsv" | cut -f1,2 | sort)
  second_set=$(cut -f1,2 "$second/images/images.tsv" | sort)
  git worktree remove --force "$second/src"
  rm -rf "$second"
  if [[ "$first_set" != "$second_set" ]]; then
    say "the two builds differ:"; diff <(echo "$first_set") <(echo "$second_set") >&2 || true
    exit 1
  fi
  say "reproducible: a second checkout gave the same digests:"
  printf '%s\n' "$second_set" >&2
fi
cat "$out/images.tsv"
