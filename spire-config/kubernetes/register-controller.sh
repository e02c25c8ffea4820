#!/usr/bin/env bash
# Registers the tekton-spire controller's identity as a SPIRE admin workload, so that it
# may call the server's Entry API over mTLS (spire-server-addr), and the verdict
# controller's as a plain workload, so that its Workload API serves it the trust bundle
# its verdicts are judged against. Runs where kubectl works,
# as a cluster administrator; it runs the spire-server binary in its pod through
# `kubectl exec` (the image has no shell) and is safe to run again.
#
#   spire-config/kubernetes/register-controller.sh NODE...
#
# 1. Labels each NODE node-restriction.kubernetes.io/tekton-spire-controller=true: the
#    controller's Deployment runs only there, and a kubelet cannot set a label under
#    node-restriction.kubernetes.io/ on itself (the NodeRestriction admission plugin), so
#    a compromised node cannot join the set.
# 2. A node alias, spiffe://$TRUST_DOMAIN/tekton-spire/controller-nodes, for the agents
#    whose node carries that label (server.conf lists the label in
#    allowed_node_label_keys, which makes k8s_psat emit it as a selector).
# 3. The admin entry spiffe://$TRUST_DOMAIN/ns/tekton-spire/sa/tekton-spire-controller,
#    parented to that alias, for pods of that namespace and service account only.
# 4. The entry spiffe://$TRUST_DOMAIN/ns/tekton-spire/sa/tekton-spire-verdict, not admin,
#    under the same alias, for the verdict Deployment (deploy/verdict.yaml), which runs
#    on the same nodes.
# 5. Restarts the agents on those nodes, so that they attest again with the label.
# What this trusts: the agents on the labelled nodes, and whoever may run pods as
# tekton-spire/tekton-spire-controller or exec into them (keep the namespace to the
# controller; docs/install.md). An agent on any other node is never handed the identity.
#
# Environment: TRUST_DOMAIN (example.org), CLUSTER (demo-cluster, the k8s_psat cluster
# name), SPIRE_NAMESPACE (spire), SPIRE_SERVER_POD (spire-server-0), KUBECTL (kubectl).
set -euo pipefail

TRUST_DOMAIN=${TRUST_DOMAIN:-example.org}
CLUSTER=${CLUSTER:-demo-cluster}
SPIRE_NAMESPACE=${SPIRE_NAMESPACE:-spire}
SPIRE_SERVER_POD=${SPIRE_SERVER_POD:-spire-server-0}
KUBECTL=${KUBECTL:-kubectl}
LABEL=node-restriction.kubernetes.io/tekton-spire-controller
SOCKET=/run/spire/sockets/api.sock
ALIAS=spiffe://$TRUST_DOMAIN/tekton-spire/controller-nodes
ADMIN=spiffe://$TRUST_DOMAIN/ns/tekton-spire/sa/tekton-spire-controller
VERDICT=spiffe://$TRUST_DOMAIN/ns/tekton-spire/sa/tekton-spire-verdict

say() { printf 'register-controller: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
[[ $# -ge 1 ]] || die "usage: register-controller.sh NODE... (the nodes the controller may run on)"

server() {
  "$KUBECTL" -n "$SPIRE_NAMESPACE" exec "$SPIRE_SERVER_POD" -c spire-server -- \
    /opt/spire/bin/spire-server "$@" -socketPath "$SOCKET"
}

# ensure_entry SPIFFE_ID ARGS...: creates the entry unless one with this ID exists.
ensure_entry() {
  local id=$1 shown
  shift
  shown=$(server entry show -spiffeID "$id" -output json) || die "could not list entries on $SPIRE_SERVER_POD"
  if grep -q '"entries": *\[ *{' <<<"$shown" || grep -q '"id"' <<<"$shown"; then
    say "$id is registered already"
    return 0
  fi
  server entry create -spiffeID "$id" "$@" >/dev/null || die "could not register $id"
  say "registered $id"
}

for node in "$@"; do
  "$KUBECTL" label node "$node" "$LABEL=true" --overwrite >/dev/null || die "could not label node $node"
  say "labelled node $node"
done
ensure_entry "$ALIAS" -node \
  -selector "k8s_psat:cluster:$CLUSTER" -selector "k8s_psat:agent_node_label:$LABEL:true"
ensure_entry "$ADMIN" -parentID "$ALIAS" \
  -selector k8s:ns:tekton-spire -selector k8s:sa:tekton-spire-controller -admin
# No -admin: the verdict controller reads its bundle and calls nothing on the server.
ensure_entry "$VERDICT" -parentID "$ALIAS" \
  -selector k8s:ns:tekton-spire -selector k8s:sa:tekton-spire-verdict
# An agent's node selectors are those of its last attestation: the agents of the nodes
# labelled above attest again (their DaemonSet pods are replaced) to join the alias.
for node in "$@"; do
  "$KUBECTL" -n "$SPIRE_NAMESPACE" delete pod -l app.kubernetes.io/name=spire-agent \
    --field-selector "spec.nodeName=$node" --wait=true >/dev/null || die "could not restart the agent on $node"
done
"$KUBECTL" -n "$SPIRE_NAMESPACE" rollout status daemonset/spire-agent --timeout=120s >/dev/null \
  || die "the agents did not come back (kubectl -n $SPIRE_NAMESPACE get pods)"
say "agents on $* attested again; the controller's SVID follows within the agents' sync interval"
