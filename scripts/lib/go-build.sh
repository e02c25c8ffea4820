# The one way this project builds a Go program from the Go module proxy (sourced, not run):
# a throwaway module of its own, go.sum seeded from the upstream module's go.sum, the
# programs recorded with `go get -tool MODULE/PKG@VERSION` (the proxy lists few versions,
# so exact tags are asked for), `go build` per program, and the result published
# atomically in the project cache, keyed by name and version. Used by spire.sh, kube.sh,
# images-go.sh and bench-controller.sh.
#
# The caller defines say() and die() and sets, before calling go_build:
#   GB_NAME     cache key, e.g. spire-v1.13.3 (the directory under the cache)
#   GB_MODULE   the upstream module, e.g. github.com/spiffe/spire
#   GB_VERSION  its exact tag
#   GB_PKGS     array of PACKAGE=BINARY (PACKAGE relative to GB_MODULE, "." for its root)
# and optionally:
#   GB_CGO      1 to build with cgo (default 0: static binaries)
#   GB_LDFLAGS  extra -ldflags (appended to -s -w)
#   GB_TAGS     build tags
#   GB_NO_BUILD non-empty: only look in the cache, fail if something is missing
#   GB_NOSUMDB  module patterns the checksum database has no entry for (GONOSUMDB): their
#               hashes are then only those the proxy served, recorded in the cache's SOURCE
#   GB_PREPARE  a function's name, run in the throwaway module with the upstream module's
#               directory as $1, after go.sum is seeded (e.g. to add replace lines)
#   GB_COLLECT  a function's name, run after the build with the upstream module's directory
#               as $1 and the output directory as $2 (e.g. to copy manifests beside them)
# go_build prints the cache directory on stdout; progress goes to stderr.

gb_cache=${TEKTON_SPIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tekton-spire}

# gb_complete DIR: every binary GB_PKGS names is there (entries are published whole).
gb_complete() {
  local spec
  for spec in "${GB_PKGS[@]}"; do
    [[ -x "$1/${spec#*=}" ]] || return 1
  done
}

# gb_publish SRC DEST: a half-copied cache entry must never look complete.
gb_publish() {
  local staging
  staging="$(dirname "$2")/.$(basename "$2").$$"
  rm -rf "$staging"
  cp -R "$1" "$staging"
  rm -rf "$2"
  mv "$staging" "$2"
}

# gb_module_dir MODULE@VERSION LOG: downloads a module (checked against the checksum
# database) and prints its directory in the module cache.
gb_module_dir() {
  go mod download -json "$1" 2>"$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' || true
}

# gb_build_one PACKAGE OUTPUT LOG: `go build` with a progress line every 30 s (how many
# packages it has compiled so far), since a cold build of a large program takes minutes.
gb_build_one() {
  local pkg=$1 out=$2 log=$3 pid rc started=$SECONDS
  CGO_ENABLED=${GB_CGO:-0} go build -v -trimpath -buildvcs=false ${GB_TAGS:+-tags "$GB_TAGS"} \
    -ldflags "-s -w ${GB_LDFLAGS:-}" -o "$out" "$pkg" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null || break
    say "  … $(basename "$out"): $(grep -cv '^#' "$log" || true) packages compiled, $((SECONDS - started)) s"
  done
  rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

go_build() {
  local dest="$gb_cache/$GB_NAME" work dir spec pkg bin n=0 started=$SECONDS
  if gb_complete "$dest"; then
    echo "$dest"
    return 0
  fi
  # Tests set this: they must not start a build of many minutes behind the user's back.
  [[ -z "${GB_NO_BUILD:-}" ]] || die "$GB_NAME is not in the cache ($dest); run ./scripts/test.sh first"
  command -v go >/dev/null || die "go is not installed; install Go 1.24 or newer (the build uses 'go get -tool')"
  if [[ ${GB_CGO:-0} == 1 ]]; then
    command -v gcc >/dev/null || die "gcc is not installed; $GB_NAME needs cgo (apt-get install gcc)"
  fi
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  mkdir -p "$gb_cache" "$work/mod" "$work/out"
  say "building $GB_NAME (${#GB_PKGS[@]} program(s) from $GB_MODULE@$GB_VERSION) through the Go module proxy; cached after this run"
  (
    if [[ -n ${GB_NOSUMDB:-} ]]; then
      say "  the checksum database does not know $GB_NOSUMDB: trusting the proxy's copy (GONOSUMDB)"
      export GONOSUMDB=$GB_NOSUMDB
    fi
    cd "$work/mod"
    go mod init "tekton-spire.local/build-${GB_NAME%%-v*}" >/dev/null 2>&1
    dir=$(gb_module_dir "$GB_MODULE@$GB_VERSION" "$work/get.log")
    [[ -n "$dir" && -f "$dir/go.mod" ]] || { cat "$work/get.log" >&2; die "could not download $GB_MODULE@$GB_VERSION from the Go module proxy ($(go env GOPROXY)); the proxy lists few versions, so name an exact tag that resolves"; }
    # Seed go.sum with the module's own: its dependencies are then checked against the
    # hashes upstream recorded, and the checksum database is asked only about the rest.
    if [[ -f "$dir/go.sum" ]]; then cp "$dir/go.sum" go.sum; chmod u+w go.sum; fi
    if [[ -n ${GB_PREPARE:-} ]]; then "$GB_PREPARE" "$dir"; fi
    local tools=()
    for spec in "${GB_PKGS[@]}"; do
      pkg=${spec%%=*}
      if [[ $pkg == . ]]; then pkg=$GB_MODULE; else pkg=$GB_MODULE/$pkg; fi
      tools+=("$pkg@$GB_VERSION")
    done
    if ! go get -tool "${tools[@]}" >"$work/get.log" 2>&1; then
      cat "$work/get.log" >&2
      die "could not resolve $GB_MODULE@$GB_VERSION's dependencies from the Go module proxy ($(go env GOPROXY))"
    fi
    for spec in "${GB_PKGS[@]}"; do
      n=$((n + 1))
      pkg=${spec%%=*} bin=${spec#*=}
      if [[ $pkg == . ]]; then pkg=$GB_MODULE; else pkg=$GB_MODULE/$pkg; fi
      say "  [$n/${#GB_PKGS[@]}] $bin ($pkg)"
      if ! gb_build_one "$pkg" "$work/out/$bin" "$work/build.log"; then
        tail -n 40 "$work/build.log" >&2
        die "building $bin from $GB_MODULE@$GB_VERSION failed (see above)"
      fi
    done
    if [[ -n ${GB_COLLECT:-} ]]; then "$GB_COLLECT" "$dir" "$work/out"; fi
    chmod -R u+w "$work/out"
    printf 'source: %s@%s\nprograms: %s\n' "$GB_MODULE" "$GB_VERSION" "${GB_PKGS[*]}" >"$work/out/SOURCE"
    if [[ -n ${GB_NOSUMDB:-} ]]; then
      printf 'not in the checksum database (hashes as the proxy served them):\n' >>"$work/out/SOURCE"
      grep -F "${GB_NOSUMDB%%,*}" go.sum >>"$work/out/SOURCE" || true
    fi
    gb_publish "$work/out" "$dest"
  ) || return 1
  say "$GB_NAME cached in $dest ($((SECONDS - started)) s)"
  echo "$dest"
}

# go_build_local DIR NAME: builds the Go module of this repository in DIR (its go.mod and
# go.sum pin everything; -mod=readonly fails instead of editing them) into
# $gb_cache/NAME-<hash of its sources>/NAME, and prints that path. GB_NO_BUILD as above.
go_build_local() {
  local src=$1 name=$2 hash dest staging
  hash=$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
  dest="$gb_cache/$name-$hash"
  if [[ -x $dest/$name ]]; then
    echo "$dest/$name"
    return 0
  fi
  [[ -z "${GB_NO_BUILD:-}" ]] || die "$name is not built ($dest); run ./scripts/test.sh first"
  command -v go >/dev/null || die "go is not installed; install Go 1.26 or newer"
  say "building $name from ${src#"$PWD/"} (first run: a few minutes)"
  mkdir -p "$gb_cache"
  staging=$(mktemp -d "$gb_cache/.$name-$hash.XXXXXX")
  if ! (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -buildvcs=false -trimpath -o "$staging/$name" .) >"$staging/build.log" 2>&1; then
    cat "$staging/build.log" >&2
    rm -rf "$staging"
    die "building $name failed (see above); check GOPROXY ($(go env GOPROXY)) and the Go version ($(go env GOVERSION))"
  fi
  rm -f "$staging/build.log"
  rm -rf "$dest"
  mv "$staging" "$dest"
  say "$name cached in $dest"
  echo "$dest/$name"
}
