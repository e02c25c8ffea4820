#!/usr/bin/env bash
# The main job, end to end, on this machine: a real SPIRE server and agent, a TaskRun's
# results signed inside the "pod" by the signing helper with its X.509-SVID, the TaskRun
# assembled as Tekton reports it, and verified offline against the server's trust bundle,
# in both formats; then a tampered copy rejected. Leaves no process running.
#
#   ./scripts/demo.sh             the above, in a minute
#   ./scripts/demo.sh --cluster   the whole flow on a real one-node Kubernetes: Tekton runs
#                                 the TaskRun, the controller registers the entry and judges
#                                 the results (scripts/demo-cluster.sh; needs root)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
case ${1:-} in
  --cluster) exec "$root/scripts/demo-cluster.sh" ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) printf 'demo.sh: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
esac
work=$(mktemp -d "${TMPDIR:-/tmp}/tekton-spire-demo.XXXXXX")
step=0
say() { step=$((step + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$step" "$*"; }
fail() { printf '\ndemo failed: %s\n' "$*" >&2; exit 1; }
cleanup() {
  ./scripts/spire-local.sh stop "$work/spire" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "Building tekton-spire (cargo build) and SPIRE (scripts/spire.sh; the first build on a machine takes several minutes)"
command -v cargo >/dev/null || fail "cargo is not installed; install Rust with rustup"
cargo build --quiet --workspace --bins || fail "cargo build failed (see above)"
./scripts/spire.sh >/dev/null || fail "SPIRE could not be built (see above)"
bin="$root/target/debug"

say "Starting spire-server and spire-agent on loopback (trust domain example.org)"
./scripts/spire-local.sh start "$work/spire" --tuned --watch $$ || fail "SPIRE did not start; logs are in $work/spire"
# shellcheck disable=SC1091
source "$work/spire/env"

name="build-$(date +%s)"
uid=$(python3 -c 'import uuid; print(uuid.uuid4())')
spiffe_id="spiffe://$TRUST_DOMAIN/ns/default/taskrun/$name"
run_seal="$work/pod-seal" run_tekton="$work/pod-tekton"
mkdir -p "$run_seal/results" "$run_tekton/results"
# The helper image of the pod: the entry's unix:path selector admits only this file.
cp "$bin/tekton-spire-sign" "$work/tekton-spire-sign"

say "Registering the TaskRun's workload entry, as the controller does for its pod"
echo "    $spiffe_id  <-  unix:path:$work/tekton-spire-sign"
"$SPIRE_BIN/spire-server" entry create -socketPath "$SPIRE_SERVER_SOCKET" -parentID "$SPIRE_AGENT_ID" \
  -spiffeID "$spiffe_id" -selector "unix:path:$work/tekton-spire-sign" -x509SVIDTTL 600 >/dev/null \
  || fail "spire-server refused the entry"

say "The Task's steps write their results (a string, an array, an object)"
for dir in "$run_seal/results" "$run_tekton/results"; do
  printf 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' >"$dir/IMAGE_DIGEST"
  printf '["v1.4.2","latest"]' >"$dir/tags"
  printf '{"url":"https://git.example.org/app","commit":"4e1243b"}' >"$dir/source"
done
for f in IMAGE_DIGEST tags source; do printf '    %-13s %s\n' "$f" "$(cat "$run_seal/results/$f")"; done

say "The last step runs tekton-spire-sign: it fetches the SVID over the Workload API and seals the results"
SPIFFE_ENDPOINT_SOCKET=$SPIFFE_ENDPOINT_SOCKET "$work/tekton-spire-sign" --results-dir "$run_seal/results" \
  --taskrun-namespace default --taskrun-name "$name" --taskrun-uid "$uid" --taskrun-retry-count 0 --timeout 60 \
  || fail "the helper could not sign (is the entry registered? see its message above)"
printf '    TEKTON_SPIRE_SEAL = %.80s... (%d bytes)\n' "$(cat "$run_seal/results/TEKTON_SPIRE_SEAL")" \
  "$(wc -c <"$run_seal/results/TEKTON_SPIRE_SEAL")"

say "The same in Tekton's TEP-0089 format, for clusters that use Tekton's own verifier"
SPIFFE_ENDPOINT_SOCKET=$SPIFFE_ENDPOINT_SOCKET "$work/tekton-spire-sign" --results-dir "$run_tekton/results" \
  --format tekton --timeout 60 || fail "the helper could not sign in Tekton's format"
ls "$run_tekton/results" | sed 's/^/    /'

say "Tekton reports the TaskRun; the auditor fetches the trust bundle from the server"
"$bin/tekton-spire-testbed" taskrun "$run_seal/results" default "$name" "$uid" >"$work/taskrun-seal.json"
"$bin/tekton-spire-testbed" taskrun "$run_tekton/results" default "$name" "$uid" >"$work/taskrun-tekton.json"
"$SPIRE_BIN/spire-server" bundle show -socketPath "$SPIRE_SERVER_SOCKET" -format spiffe >"$work/bundle.json"
echo "    $work/taskrun-seal.json, $work/taskrun-tekton.json, bundle.json"

say "tekton-spire verify (seal, then Tekton's format, which is opt-in)"
"$bin/tekton-spire" verify --taskrun "$work/taskrun-seal.json" --bundle "$work/bundle.json" \
  --trust-domain "$TRUST_DOMAIN" || fail "verification of the seal failed"
"$bin/tekton-spire" verify --taskrun "$work/taskrun-tekton.json" --bundle "$work/bundle.json" \
  --trust-domain "$TRUST_DOMAIN" --accept-tekton-format || fail "verification of Tekton's format failed"

say "Someone with write access to taskruns/status changes IMAGE_DIGEST; verify must reject it"
python3 - "$work/taskrun-seal.json" "$work/taskrun-forged.json" <<'PY'
import json, sys
tr = json.load(open(sys.argv[1]))
for r in tr["status"]["results"]:
    if r["name"] == "IMAGE_DIGEST":
        r["value"] = "sha256:" + "e" * 64
json.dump(tr, open(sys.argv[2], "w"))
PY
set +e
"$bin/tekton-spire" verify --taskrun "$work/taskrun-forged.json" --bundle "$work/bundle.json" \
  --trust-domain "$TRUST_DOMAIN"
code=$?
set -e
[[ $code == 1 ]] || fail "the forged TaskRun was not rejected (exit $code)"
echo "    exit status $code: rejected, as it must be"

printf '\n\033[1mdemo passed\033[0m: results signed in the pod with the SPIFFE identity %s,\nverified offline, and a forged status rejected. No process is left running.\n' "$spiffe_id"
