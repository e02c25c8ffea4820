#!/usr/bin/env bash
# Installs Tekton Pipelines on a cluster from its own release configuration (config/ of
# the module, cached by scripts/programs.sh tekton), with the images built here
# (scripts/images.sh beside) in place of ko's build references. Prints nothing on success
# but progress on stderr; waits until the controller and the webhook are Ready.
#
#   KUBECONFIG=… ./scripts/tekton-install.sh [KUBECTL]
#
# What it changes in Tekton's configuration, and why (docs/tekton-on-the-node.md):
#   - every ko://github.com/tektoncd/pipeline/cmd/X image: tekton-spire.local/tekton-X:VERSION
#     (nothing can be pulled here);
#   - the shell image (cgr.dev/chainguard/busybox by digest): tekton-spire.local/busybox:1,
#     Debian's busybox-static;
#   - left out: the events controller and the remote resolvers (not built: nothing here
#     uses CloudEvents or remote Tasks), the webhook's HorizontalPodAutoscaler (no metrics
#     server). The Windows shell image stays as released: the controller requires the
#     flag, and no Windows node ever pulls it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kubectl=${1:-kubectl}
say() { printf 'tekton-install: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

tekton=$(PROGRAMS_NO_BUILD=${PROGRAMS_NO_BUILD:-} "$root/scripts/programs.sh" tekton)
version=$(basename "$tekton"); version=${version##*-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in "$tekton"/config/100-namespace/*.yaml "$tekton"/config/*.yaml "$tekton"/config/300-crds/*.yaml; do
  case $(basename "$f") in
    events.yaml|config-leader-election-events.yaml|webhook-hpa.yaml) continue ;;
  esac
  sed -e "s|ko://github.com/tektoncd/pipeline/cmd/\([a-z]*\)|tekton-spire.local/tekton-\1:$version|g" \
      -e 's|"cgr.dev/chainguard/busybox@sha256:[0-9a-f]*"|"tekton-spire.local/busybox:1"|' \
      "$f" >"$work/$(basename "$(dirname "$f")")-$(basename "$f")"
done
if grep -l 'ko://' "$work"/*.yaml; then die "ko:// references left after rendering (see the files above)"; fi
say "applying Tekton Pipelines $version's release configuration ($(ls "$work" | wc -l) files)"
"$kubectl" apply --server-side --force-conflicts -f "$work" >/dev/null || die "kubectl apply failed"
for d in tekton-pipelines-controller tekton-pipelines-webhook; do
  "$kubectl" -n tekton-pipelines rollout status "deployment/$d" --timeout=300s >&2 || die "$d did not become Ready"
done
say "Tekton Pipelines $version is Ready"
