#!/usr/bin/env bash
# Builds the programs that run beside tekton-spire on a cluster, from the Go module proxy,
# caching each outside the clone, keyed by version, with the module's release configuration
# (config/) beside the programs where it has one, so that a cluster is installed from the
# project's own manifests.
#
#   ./scripts/programs.sh tekton       Tekton Pipelines $TEKTON_VERSION: controller, webhook
#                                      and the programs of the images its pods use
#                                      (entrypoint, nop, workingdirinit, sidecarlogresults)
#   ./scripts/programs.sh chains       Tekton Chains $CHAINS_VERSION's controller
#   ./scripts/programs.sh spiffe-csi   the SPIFFE CSI driver $SPIFFE_CSI_VERSION
#   ./scripts/programs.sh scm          spire-controller-manager $SCM_VERSION (and its CRDs)
#   ./scripts/programs.sh coredns      CoreDNS $COREDNS_VERSION, the cluster's DNS
#   ./scripts/programs.sh csi-registrar  the test cluster's CSI driver registrar
#                                      (tests/cluster/csi-registrar, this repository's)
#
# Prints the cache directory. Progress goes to stderr. With PROGRAMS_NO_BUILD=1 it only
# looks in the cache and fails if the build is missing. (SPIRE: scripts/spire.sh;
# etcd and Kubernetes: scripts/kube.sh.)
set -euo pipefail

# Exact tags: the proxy lists few versions of these modules. Refused by the proxy when
# tried: spiffe-csi v0.2.7 and v0.2.8, spire-controller-manager v0.6.5 and v0.6.6.
TEKTON_VERSION=${TEKTON_VERSION:-v1.15.1}
CHAINS_VERSION=${CHAINS_VERSION:-v0.29.2}
SPIFFE_CSI_VERSION=${SPIFFE_CSI_VERSION:-v0.2.6}
SCM_VERSION=${SCM_VERSION:-v0.6.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}

say() { printf 'programs.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/lib/go-build.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-build.sh"
GB_NO_BUILD=${PROGRAMS_NO_BUILD:-}

# The release configuration, unchanged: installers render it (images) at install time.
copy_config() { cp -R "$1/config" "$2/config"; }
copy_crds() { mkdir -p "$2/crd"; cp "$1"/config/crd/bases/*.yaml "$2/crd/"; }

case ${1:-} in
  tekton)
    GB_NAME=tekton-pipeline-$TEKTON_VERSION GB_MODULE=github.com/tektoncd/pipeline GB_VERSION=$TEKTON_VERSION
    GB_PKGS=(cmd/controller=controller cmd/webhook=webhook cmd/entrypoint=entrypoint cmd/nop=nop
      cmd/workingdirinit=workingdirinit cmd/sidecarlogresults=sidecarlogresults)
    GB_COLLECT=copy_config ;;
  chains)
    GB_NAME=tekton-chains-$CHAINS_VERSION GB_MODULE=github.com/tektoncd/chains GB_VERSION=$CHAINS_VERSION
    GB_PKGS=(cmd/controller=controller)
    GB_COLLECT=copy_config ;;
  spiffe-csi)
    GB_NAME=spiffe-csi-$SPIFFE_CSI_VERSION GB_MODULE=github.com/spiffe/spiffe-csi GB_VERSION=$SPIFFE_CSI_VERSION
    GB_PKGS=(cmd/spiffe-csi-driver=spiffe-csi-driver)
    # sum.golang.org answers 404 for spiffe-csi v0.2.6.
    GB_NOSUMDB=github.com/spiffe/spiffe-csi ;;
  scm)
    # The package path ends in /cmd: the binary is named explicitly.
    GB_NAME=scm-$SCM_VERSION GB_MODULE=github.com/spiffe/spire-controller-manager GB_VERSION=$SCM_VERSION
    GB_PKGS=(cmd=spire-controller-manager)
    GB_COLLECT=copy_crds ;;
  coredns)
    GB_NAME=coredns-$COREDNS_VERSION GB_MODULE=github.com/coredns/coredns GB_VERSION=$COREDNS_VERSION
    GB_PKGS=(.=coredns) ;;
  csi-registrar)
    dirname "$(go_build_local "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/cluster/csi-registrar" csi-registrar)"
    exit 0 ;;
  *) die "usage: programs.sh tekton|chains|spiffe-csi|scm|coredns|csi-registrar" ;;
esac
go_build
