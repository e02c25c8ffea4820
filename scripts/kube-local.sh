#!/usr/bin/env bash
# A local etcd and kube-apiserver on loopback, with Tekton's TaskRun CRD, for the tests and
# the demo. No kubelet, scheduler or controller-manager: pods are objects that nothing runs.
#
#   scripts/kube-local.sh start DIR [--watch PID [--remove-dir]]
#       Builds (or reuses) etcd and kube-apiserver (scripts/kube.sh), generates test PKI in
#       DIR/pki with openssl, starts etcd (data in DIR/etcd, --unsafe-no-fsync) and
#       kube-apiserver (RBAC, client certificates, no ServiceAccount admission), waits for
#       /readyz, installs the TaskRun CRD exactly as Tekton ships it, waits until it is
#       Established and served, and writes:
#         DIR/kubeconfig   the admin's (client certificate with O=system:masters), data inline
#         DIR/env          shell syntax: KUBE_BIN, KUBECONFIG, KUBE_API_URL, KUBE_CA,
#                          KUBE_ADMIN_CERT, KUBE_ADMIN_KEY, ETCD_URL, KUBE_VERSION,
#                          TEKTON_VERSION, KUBE_READY_MS (start to ready)
#       --watch   stops everything when process PID exits (tests pass their own PID, so
#                 nothing outlives them even when they are killed).
#       --remove-dir  with --watch: the watchdog then also deletes DIR (etcd preallocates a
#                 64 MB WAL; a test's shared instance has nobody else to clean up after it).
#   scripts/kube-local.sh stop DIR
#       Stops kube-apiserver, then etcd (TERM, then KILL after 10 s). Safe to call twice.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'kube-local: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# shellcheck source=lib/local-service.sh
source "$here/lib/local-service.sh"
# shellcheck source=lib/pki.sh
source "$here/lib/pki.sh"

stop() {
  # The API server first: it must not lose etcd under its feet and log a storm of errors.
  stop_process kube-apiserver
  stop_process etcd
  stop_watchdog
}

# Test PKI: a CA for the serving certificate, a separate CA for client certificates, the
# admin's client certificate and the service-account signing key. All P-256, PKCS#8.
make_pki() {
  local pki=$1
  mkdir -p "$pki"
  (
    cd "$pki"
    pki_ca server-ca "/CN=tekton-spire test kube-apiserver CA"
    pki_ca client-ca "/CN=tekton-spire test client CA"
    pki_leaf serving server-ca "/CN=kube-apiserver" subjectAltName=IP:127.0.0.1,DNS:localhost \
      keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth
    pki_leaf admin client-ca "/O=system:masters/CN=tekton-spire-admin" \
      keyUsage=critical,digitalSignature extendedKeyUsage=clientAuth
    pki_key service-account.key
    openssl pkey -in service-account.key -pubout -out service-account.pub
    chmod 600 ./*.key
  ) || die "openssl could not generate the test PKI in $pki"
}

# api METHOD PATH [curl args...]: the admin's request; prints the body, fails on HTTP >= 400.
api() {
  local method=$1 path=$2; shift 2
  curl -sS --fail-with-body -X "$method" --cacert "$dir/pki/server-ca.crt" \
    --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "$api_url$path" "$@"
}

crd_established() {
  api GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/taskruns.tekton.dev \
    | python3 -c 'import json, sys
conds = json.load(sys.stdin).get("status", {}).get("conditions", [])
sys.exit(0 if any(c["type"] == "Established" and c["status"] == "True" for c in conds) else 1)'
}

start() {
  local watch="" remove_dir=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --watch) [[ $# -ge 2 ]] || die "--watch needs a PID"; watch=$2; shift ;;
      --remove-dir) remove_dir=1 ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  [[ $remove_dir == 0 || -n $watch ]] || die "--remove-dir needs --watch PID"
  for tool in curl openssl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install $tool)"
  done
  local bin
  bin=$("$here/kube.sh") || die "etcd and kube-apiserver are not available; see the messages above"
  # shellcheck source=/dev/null
  source "$bin/versions"
  local started
  started=$(date +%s%N)
  make_pki "$dir/pki"
  mkdir -p "$dir/etcd"
  chmod 700 "$dir/etcd"

  local etcd_port peer_port api_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  etcd_url="http://127.0.0.1:$etcd_port"
  api_url="https://127.0.0.1:$api_port"

  if [[ -n $watch ]]; then
    start_watchdog "$watch" "$here/kube-local.sh" "$remove_dir"
  fi

  "$bin/etcd" --name tekton-spire --data-dir "$dir/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "tekton-spire=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync --log-level warn </dev/null >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_for etcd 30 curl -sf "$etcd_url/health" || { stop; die "etcd did not start (log: $dir/etcd.log)"; }

  "$bin/kube-apiserver" \
    --etcd-servers "$etcd_url" \
    --bind-address 127.0.0.1 --secure-port "$api_port" \
    --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
    --cert-dir "$dir/pki" \
    --tls-cert-file "$dir/pki/serving.crt" --tls-private-key-file "$dir/pki/serving.key" \
    --client-ca-file "$dir/pki/client-ca.crt" \
    --authorization-mode RBAC \
    --disable-admission-plugins ServiceAccount \
    --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer "$api_url" \
    --service-account-key-file "$dir/pki/service-account.pub" \
    --service-account-signing-key-file "$dir/pki/service-account.key" \
    --allow-privileged=true \
    --profiling=false \
    </dev/null >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  wait_for kube-apiserver 90 api GET /readyz || { stop; die "kube-apiserver did not become ready (log: $dir/kube-apiserver.log)"; }

  # Tekton's own file, then its conversion set to None: it names Tekton's conversion
  # webhook, which does not run here, and with it unreachable the API server's watch cache
  # of v1beta1 TaskRuns fails to convert what it reads and lists every TaskRun from etcd
  # again, over and over (at 10,000 TaskRuns, one to two cores, all the time). With None,
  # v1 (the storage version, all that is used here) is unchanged.
  local out
  if ! out=$(api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions \
      -H 'Content-Type: application/yaml' --data-binary "@$bin/taskrun-crd.yaml" 2>&1); then
    # A restart on an existing DIR finds the CRD in etcd already.
    [[ $out == *'"reason": "AlreadyExists"'* || $out == *'"reason":"AlreadyExists"'* ]] || { stop; die "installing the TaskRun CRD failed: $out"; }
  fi
  out=$(api PATCH /apis/apiextensions.k8s.io/v1/customresourcedefinitions/taskruns.tekton.dev \
      -H 'Content-Type: application/merge-patch+json' \
      --data '{"spec":{"conversion":{"strategy":"None","webhook":null}}}' 2>&1) \
    || { stop; die "setting the TaskRun CRD's conversion to None failed: $out"; }
  wait_for kube-apiserver 30 crd_established || { stop; die "the TaskRun CRD did not become Established"; }
  wait_for kube-apiserver 30 api GET /apis/tekton.dev/v1/taskruns || { stop; die "tekton.dev/v1 taskruns are not served"; }

  local b64="base64 -w0" ready_ms
  ready_ms=$((($(date +%s%N) - started) / 1000000))
  cat >"$dir/kubeconfig.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: tekton-spire
  cluster:
    server: $api_url
    certificate-authority-data: $($b64 "$dir/pki/server-ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 "$dir/pki/admin.crt")
    client-key-data: $($b64 "$dir/pki/admin.key")
contexts:
- name: tekton-spire
  context:
    cluster: tekton-spire
    user: admin
    namespace: default
current-context: tekton-spire
KUBECONFIG
  chmod 600 "$dir/kubeconfig.tmp"
  mv "$dir/kubeconfig.tmp" "$dir/kubeconfig"

  cat >"$dir/env.tmp" <<ENV
KUBE_BIN=$bin
KUBECONFIG=$dir/kubeconfig
KUBE_API_URL=$api_url
KUBE_CA=$dir/pki/server-ca.crt
KUBE_ADMIN_CERT=$dir/pki/admin.crt
KUBE_ADMIN_KEY=$dir/pki/admin.key
ETCD_URL=$etcd_url
KUBE_VERSION=$KUBE_VERSION
TEKTON_VERSION=$TEKTON_VERSION
KUBE_READY_MS=$ready_ms
ENV
  mv "$dir/env.tmp" "$dir/env"
  say "etcd and kube-apiserver $KUBE_VERSION ready at $api_url with Tekton $TEKTON_VERSION's TaskRun CRD (${ready_ms} ms)"
}

[[ $# -ge 2 ]] || die "usage: kube-local.sh start DIR [--watch PID [--remove-dir]] | stop DIR"
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
etcd_url="" api_url=""
case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  *) die "unknown command $cmd (start or stop)" ;;
esac
