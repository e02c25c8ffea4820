#!/usr/bin/env bash
# Registers the tekton-spire controller's own identity as an admin workload, so that it
# may call the server's Entry API over mTLS (spire-server-addr). Run once, where
# spire-server's admin socket is reachable, e.g.:
#   kubectl -n spire exec spire-server-0 -- sh -s < spire-config/kubernetes/controller-admin-entry.sh
# The controller then authenticates as spiffe://example.org/ns/tekton-spire/sa/tekton-spire-controller.
set -eu
TRUST_DOMAIN=${TRUST_DOMAIN:-example.org}
CLUSTER=${CLUSTER:-demo-cluster}
# A node alias for every agent of the cluster (skip if it exists already).
/opt/spire/bin/spire-server entry create \
  -node -selector "k8s_psat:cluster:$CLUSTER" \
  -spiffeID "spiffe://$TRUST_DOMAIN/k8s-cluster/$CLUSTER" 2>/dev/null || true
/opt/spire/bin/spire-server entry create \
  -parentID "spiffe://$TRUST_DOMAIN/k8s-cluster/$CLUSTER" \
  -spiffeID "spiffe://$TRUST_DOMAIN/ns/tekton-spire/sa/tekton-spire-controller" \
  -selector k8s:ns:tekton-spire \
  -selector k8s:sa:tekton-spire-controller \
  -admin
