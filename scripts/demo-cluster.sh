#!/usr/bin/env bash
# ./scripts/demo.sh --cluster: the whole flow on a real one-node Kubernetes on this machine.
# Brings the node up (scripts/cluster-local.sh), installs SPIRE, the controller and Tekton
# Pipelines as README says (scripts/cluster-install.sh), runs deploy/example's TaskRun, and
# shows what a user would look at: the entry the controller registers for the pod's signing
# container, the sealed results in the status, the controller's verdict, the offline
# verification, and a forged status rejected. Then tears everything down and checks that
# nothing is left. Needs root (it runs a kubelet and containerd).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
step=0
say() { step=$((step + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$step" "$*"; }
info() { printf '    %s\n' "$*"; }
fail() { printf '\ndemo failed: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "the node runs a kubelet and containerd: run as root"
work=$(mktemp -d "${TMPDIR:-/tmp}/tekton-spire-demo-cluster.XXXXXX")
node=$work/node
cleanup() {
  if [[ -f $node/env ]]; then ./scripts/cluster-local.sh stop "$node" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say "Building what the node runs (Go programs are cached in ~/.cache/tekton-spire: the first build on a machine takes about an hour, then seconds)"
command -v cargo >/dev/null || fail "cargo is not installed; install Rust with rustup"
command -v go >/dev/null || fail "go is not installed (SPIRE, Kubernetes and Tekton are built from the Go module proxy)"
cargo build --quiet --bin tekton-spire || fail "cargo build failed (see above)"
# shellcheck source=lib/node-programs.sh
source "$root/scripts/lib/node-programs.sh"
node_programs info || fail "a build failed (see above)"
cli=$root/target/debug/tekton-spire

say "Starting the node: etcd, kube-apiserver, scheduler, controller-manager, kubelet, kube-proxy, containerd"
./scripts/cluster-local.sh start "$node" --watch $$ || fail "the node did not start (logs in $node)"
# shellcheck disable=SC1091
source "$node/env"
export KUBECONFIG
k() { "$KUBE_BIN/kubectl" "$@"; }
server() {
  k -n spire exec spire-server-0 -c spire-server -- /opt/spire/bin/spire-server "$@" -socketPath /run/spire/sockets/api.sock
}

say "Installing as README's \"Install in a cluster\" says: SPIRE, the controller's admin identity, the controller, Tekton"
./scripts/cluster-install.sh "$node" --tekton || fail "the install failed (see above)"
k get pods -A -o wide | sed 's/^/    /'

say "A Task that seals its results in its last step (deploy/example), and a TaskRun of it"
k create namespace builds >/dev/null
# deploy/example as shipped; the overlay only maps the build step's busybox to the image built here.
k apply -n builds -k tests/cluster/example >/dev/null
name=$(k create -n builds -f deploy/example/taskrun.yaml -o name) || fail "kubectl create failed"
name=${name#taskrun.tekton.dev/}
id=spiffe://example.org/ns/builds/taskrun/$name
info "taskrun/$name created"

say "The controller registers an entry for the TaskRun's pod, narrowed to the signing container"
for _ in $(seq 1 240); do
  entry=$(server entry show -spiffeID "$id" -output json 2>/dev/null || true)
  grep -q '"selectors"' <<<"$entry" && break
  sleep 0.5
done
grep -q '"selectors"' <<<"$entry" || fail "no entry for $id within 2 minutes (kubectl -n tekton-spire logs deploy/tekton-spire-controller)"
python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]:
    sid = e["spiffe_id"]; parent = e["parent_id"]
    print("    id        %s" % e["id"])
    print("    spiffe id spiffe://%s%s" % (sid["trust_domain"], sid["path"]))
    print("    parent    spiffe://%s%s" % (parent["trust_domain"], parent["path"]))
    for s in e["selectors"]:
        print("    selector  %s:%s" % (s["type"], s["value"]))
    print("    svid ttl  %s s" % e.get("x509_svid_ttl"))
' <<<"$entry"

say "Tekton runs the steps: build writes the results, sign fetches the SVID and seals them"
k -n builds wait --for=condition=Succeeded "taskrun/$name" --timeout=300s >/dev/null \
  || fail "the TaskRun did not succeed (kubectl -n builds describe taskrun $name)"
pod=$(k -n builds get taskrun "$name" -o jsonpath='{.status.podName}')
k -n builds logs "$pod" -c step-sign | sed 's/^/    step-sign: /'
k -n builds get taskrun "$name" -o json | python3 -c '
import json, sys
for r in json.load(sys.stdin)["status"]["results"]:
    v = r["value"] if isinstance(r["value"], str) else json.dumps(r["value"])
    print("    %-17s %s" % (r["name"], v if len(v) < 72 else v[:72] + "..."))
'

say "The controller's verdict on what Tekton wrote"
verdict() {
  k -n builds get taskrun "$name" -o jsonpath='{range .status.conditions[?(@.type=="SignedResultsVerified")]}{.status} {.reason}: {.message}{end}'
}
for _ in $(seq 1 120); do v=$(verdict); [[ -n $v ]] && break; sleep 0.5; done
info "SignedResultsVerified=$v"
[[ $v == True* ]] || fail "the verdict is not True (kubectl -n tekton-spire logs deploy/tekton-spire-verdict)"

say "The entry is removed once the TaskRun is done"
for _ in $(seq 1 120); do
  server entry show -spiffeID "$id" -output json | grep -q '"selectors"' || break
  sleep 0.5
done
server entry show -spiffeID "$id" -output json | grep -q '"selectors"' && fail "the entry of $id is still there"
info "no entry for $id"

say "An auditor verifies offline: kubectl get taskrun -o json | tekton-spire verify, against the server's bundle"
server bundle show -format pem >"$work/bundle.pem"
k -n builds get taskrun "$name" -o json >"$work/taskrun.json"
"$cli" verify --taskrun "$work/taskrun.json" --bundle "$work/bundle.pem" --trust-domain example.org \
  || fail "the TaskRun did not verify"

say "Someone who may patch taskruns/status changes IMAGE_DIGEST after the fact"
forged=$(python3 -c '
import json, sys
tr = json.load(open(sys.argv[1]))
rs = tr["status"]["results"]
for r in rs:
    if r["name"] == "IMAGE_DIGEST":
        r["value"] = "sha256:" + "e" * 64
print(json.dumps({"status": {"results": rs}}))
' "$work/taskrun.json")
k -n builds patch taskrun "$name" --subresource=status --type=merge -p "$forged" >/dev/null
for _ in $(seq 1 120); do v=$(verdict); [[ $v == False* ]] && break; sleep 0.5; done
info "SignedResultsVerified=$v"
[[ $v == False* ]] || fail "the controller did not turn the verdict False"
set +e
k -n builds get taskrun "$name" -o json | "$cli" verify --taskrun - --bundle "$work/bundle.pem" --trust-domain example.org
code=$?
set -e
[[ $code == 1 ]] || fail "the forged TaskRun was not rejected (exit $code)"
info "exit status $code: rejected, as it must be"

say "Tearing the node down: no process, mount, network device or rule may be left"
./scripts/cluster-local.sh stop "$node" || fail "the node left things behind (see above)"
rm -f "$node/env"
printf '\n\033[1mdemo passed\033[0m: Tekton ran the TaskRun, only its signing container got %s,\nthe controller judged the sealed results True, they verified offline, and a forged status was rejected.\n' "$id"
