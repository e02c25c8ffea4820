#!/usr/bin/env bash
# A real one-node Kubernetes on this machine, from upstream programs: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy and the kubelet (built from the Go
# module proxy by scripts/kube.sh), Debian's containerd and runc, and a pod network on a
# bridge that keeps all traffic on this machine. Needs root (it is a node).
#
#   scripts/cluster-local.sh start DIR [--images DIR] [--watch PID [--remove-dir]]
#       Brings the node up, imports every OCI archive of the images directory (default
#       target/images, written by scripts/images.sh) into containerd, waits until the node
#       is Ready and writes DIR/env (shell syntax; see below) and DIR/kubeconfig (admin).
#       --watch   stops everything when process PID exits (tests pass their own PID, so
#                 nothing outlives them even when they are killed).
#       --remove-dir  with --watch: the watchdog also deletes DIR.
#   scripts/cluster-local.sh stop DIR
#       Stops every process, kills every container, unmounts every mount and deletes every
#       network device, namespace and iptables rule the node made. Safe to call twice.
#       Exits non-zero, naming them, if anything is left.
#   scripts/cluster-local.sh status DIR
#       Exits 0 if the node's processes are all running.
#
# DIR/env: KUBECONFIG, KUBE_BIN (kubectl and the other programs), KUBE_API_URL, NODE_NAME,
# NODE_IP, CLUSTER_NAME, POD_CIDR, SERVICE_CIDR, CONTAINERD_ADDRESS, IMAGES_DIR,
# CLUSTER_READY_MS (start to node Ready), CLUSTER_DIR.
#
# The layout (docs/cluster-local.md says why each choice):
#   pods      bridge tsp0, 10.244.0.0/24, gateway 10.244.0.1 = the node's address; pods get
#             no default route and the host forwards nothing from the bridge elsewhere
#   services  10.96.0.0/24, implemented by kube-proxy (iptables mode, masquerade all);
#             the API server is 10.96.0.1:443 in the cluster and 10.244.0.1:6443 outside
#   listeners only on 127.0.0.1 and 10.244.0.1: nothing listens on the machine's own
#             network interfaces
#   kubelet   /var/lib/kubelet (the path the SPIFFE CSI driver and SPIRE's manifests
#             expect), cgroupfs driver on cgroup v1, Node authorizer + NodeRestriction
# One node per machine: the kubelet's directory, the bridge and the ports are fixed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

say() { printf 'cluster-local: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# shellcheck source=lib/local-service.sh
source "$here/lib/local-service.sh"
# shellcheck source=lib/pki.sh
source "$here/lib/pki.sh"

NODE_NAME=tekton-spire-node
CLUSTER_NAME=tekton-spire-local
BRIDGE=tsp0
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/24
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
API_PORT=6443
KUBELET_DIR=/var/lib/kubelet
LOCK=/run/tekton-spire-cluster.dir

# Processes in the order they start; stop goes the other way.
PROCESSES=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet)

# ---------------------------------------------------------------- stop

# Every container the node ran: kill the tasks through containerd, then anything left in
# the kubelet's cgroups (a container whose shim died).
kill_containers() {
  local ctr_args=(--address "$dir/containerd/containerd.sock" -n k8s.io) id
  if [[ -S $dir/containerd/containerd.sock ]] && kill -0 "$(cat "$dir/containerd.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
    for id in $(ctr "${ctr_args[@]}" tasks ls -q 2>/dev/null); do
      ctr "${ctr_args[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $(ctr "${ctr_args[@]}" tasks ls -q 2>/dev/null); do
      ctr "${ctr_args[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  local cg pid
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d $cg ]] || continue
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  # The shims of this containerd (they outlive it otherwise).
  pkill -KILL -f "containerd-shim.*-address $dir/containerd/containerd.sock" 2>/dev/null || true
}

remove_cgroups() {
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d $cg ]] || continue
    # Deepest first; a cgroup with processes left refuses, which the next stop retries.
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

unmount_under() {
  local mnt
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v p="$1" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

remove_network() {
  local ns
  # Network namespaces CNI made for pods (containerd names them cni-…) under our state dir.
  for ns in /var/run/netns/cni-*; do
    [[ -e $ns ]] || continue
    ip netns delete "$(basename "$ns")" 2>/dev/null || true
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  if [[ -x ${KUBE_BIN:-}/kube-proxy ]]; then
    "$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  # The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), and
  # any kube-proxy left: rules that jump to them first, then the chains.
  local tool table rule chain
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    for table in filter nat mangle; do
      while read -r rule; do
        # shellcheck disable=SC2086 # the rule's words, as iptables-save printed them
        eval "$tool -t $table -D ${rule#-A }" 2>/dev/null || true
      done < <("$tool-save" -t "$table" 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' || true)
      for chain in $("$tool-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p'); do
        "$tool" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$tool-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\).*/\1/p'); do
        "$tool" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
  # Our own rules, by their comment.
  while iptables -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment tekton-spire-node -j DROP 2>/dev/null; do :; done
  while iptables -D FORWARD -o "$BRIDGE" ! -i "$BRIDGE" -m comment --comment tekton-spire-node -j DROP 2>/dev/null; do :; done
  if [[ -f $dir/ip_forward.before ]]; then
    sysctl -qw "net.ipv4.ip_forward=$(cat "$dir/ip_forward.before")" || true
    rm -f "$dir/ip_forward.before"
  fi
  rm -rf /var/lib/cni/networks/tekton-spire
}

stop() {
  if [[ -f $dir/env ]]; then
    # shellcheck source=/dev/null
    KUBE_BIN=$(sed -n 's/^KUBE_BIN=//p' "$dir/env")
  fi
  stop_process kubelet
  kill_containers
  local i
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do
    [[ ${PROCESSES[i]} == kubelet ]] || stop_process "${PROCESSES[i]}"
  done
  pkill -KILL -f "containerd-shim.*-address $dir/containerd/containerd.sock" 2>/dev/null || true
  remove_cgroups
  unmount_under "$KUBELET_DIR"
  unmount_under "$dir"
  rm -rf "$KUBELET_DIR" /run/spire/agent-sockets
  remove_network
  if [[ -f $LOCK && $(cat "$LOCK") == "$dir" ]]; then rm -f "$LOCK"; fi
  stop_watchdog
  local left
  left=$(leftovers)
  [[ -z $left ]] || { say "stop left behind:"; printf '  %s\n' "$left" >&2; return 1; }
}

# leftovers: prints what a node of DIR left on the machine (nothing after a clean stop).
leftovers() {
  local p
  for p in "${PROCESSES[@]}"; do
    [[ -f $dir/$p.pid ]] && kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null && echo "process $p ($(cat "$dir/$p.pid"))"
  done
  pgrep -af "containerd-shim.*-address $dir/containerd/containerd.sock" | sed 's/^/process /' || true
  find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sed 's/^/container process /' || true
  awk -v a="$KUBELET_DIR" -v b="$dir" '$5 == a || index($5, a "/") == 1 || $5 == b || index($5, b "/") == 1 {print "mount " $5}' /proc/self/mountinfo
  ip -o link show "$BRIDGE" 2>/dev/null | sed 's/^/network device /' || true
  ip -o link show type veth 2>/dev/null | grep -o 'veth[^:@]*' | sed 's/^/network device /' || true
  ls /var/run/netns 2>/dev/null | grep '^cni-' | sed 's/^/network namespace /' || true
  { iptables-save; ip6tables-save; } 2>/dev/null | grep -E '^:KUBE-|tekton-spire-node' | sed 's/^/iptables /' || true
  [[ ! -e $KUBELET_DIR ]] || echo "directory $KUBELET_DIR"
}

# ---------------------------------------------------------------- start

preflight() {
  [[ $(id -u) == 0 ]] || die "a node needs root (containers, mounts, network devices)"
  local missing=() tool
  for tool in containerd ctr runc iptables ip openssl curl python3 sysctl setsid; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || missing+=("CNI plugins")
  [[ ${#missing[@]} == 0 ]] || die "missing: ${missing[*]}; install Debian's packages: apt-get install containerd runc containernetworking-plugins iptables iproute2 openssl curl (./scripts/test.sh does this)"
  if [[ -f $LOCK ]]; then
    local other
    other=$(cat "$LOCK")
    if [[ $other != "$dir" ]] && [[ -f $other/kubelet.pid ]] && kill -0 "$(cat "$other/kubelet.pid")" 2>/dev/null; then
      die "a node from $other is running (one per machine): scripts/cluster-local.sh stop $other"
    fi
    # A node that died without stop: clean up after it before taking its place.
    [[ $other == "$dir" ]] || (dir=$other; stop) || true
  fi
  [[ ! -e $KUBELET_DIR ]] || { unmount_under "$KUBELET_DIR"; rm -rf "$KUBELET_DIR"; }
  echo "$dir" >"$LOCK"
}

make_pki() {
  local pki=$1
  mkdir -p "$pki"
  (
    cd "$pki"
    leaf() { local name=$1 ca=$2 subject=$3; shift 3; pki_leaf "$name" "$ca" "$subject" keyUsage=critical,digitalSignature "$@"; }
    client() { leaf "$1" client-ca "$2" extendedKeyUsage=clientAuth; }
    pki_ca server-ca "/CN=tekton-spire local cluster CA"
    pki_ca client-ca "/CN=tekton-spire local client CA"
    leaf serving server-ca "/CN=kube-apiserver" extendedKeyUsage=serverAuth \
      "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    # The kubelet's serving certificate from the cluster CA: whoever holds the cluster's
    # CA bundle (every pod's kube-root-ca.crt) can verify the kubelet, SPIRE's agent too.
    leaf kubelet-serving server-ca "/CN=$NODE_NAME" extendedKeyUsage=serverAuth \
      "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME"
    client admin "/O=system:masters/CN=tekton-spire-admin"
    client kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
    client apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
    client controller-manager "/CN=system:kube-controller-manager"
    client scheduler "/CN=system:kube-scheduler"
    client kube-proxy "/CN=system:kube-proxy"
    pki_key service-account.key
    openssl pkey -in service-account.key -pubout -out service-account.pub
    chmod 600 ./*.key
  ) || die "openssl could not generate the cluster's PKI in $pki"
}

# kubeconfig NAME CERT: a kubeconfig for a client certificate, at DIR/NAME.kubeconfig.
kubeconfig() {
  local b64="base64 -w0"
  cat >"$dir/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $($b64 "$dir/pki/server-ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $($b64 "$dir/pki/$2.crt")
    client-key-data: $($b64 "$dir/pki/$2.key")
contexts:
- name: $CLUSTER_NAME
  context:
    cluster: $CLUSTER_NAME
    user: $2
    namespace: default
current-context: $CLUSTER_NAME
KUBECONFIG
  chmod 600 "$dir/$1.kubeconfig"
}

# run NAME COMMAND...: starts a process with its log and pid file in DIR.
run() {
  local name=$1
  shift
  "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

setup_network() {
  sysctl -n net.ipv4.ip_forward >"$dir/ip_forward.before"
  ip link add "$BRIDGE" type bridge 2>/dev/null || true
  ip addr replace "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The host routes between pods and services (kube-proxy's DNAT); nothing from the bridge
  # is forwarded to any other interface, and nothing from elsewhere into it.
  sysctl -qw net.ipv4.ip_forward=1
  iptables -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment tekton-spire-node -j DROP
  iptables -I FORWARD -o "$BRIDGE" ! -i "$BRIDGE" -m comment --comment tekton-spire-node -j DROP
  mkdir -p "$dir/cni/net.d"
  # No default route in pods: they reach pods and services, nothing else.
  cat >"$dir/cni/net.d/10-tekton-spire.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "tekton-spire",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    },
    {"type": "loopback"}
  ]
}
CNI
}

start_containerd() {
  mkdir -p "$dir/containerd"
  cat >"$dir/containerd/config.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$dir/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "tekton-spire.local/pause:1"
  # This machine lacks CAP_SYS_RESOURCE: no process may lower its oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
TOML
  run containerd containerd --config "$dir/containerd/config.toml"
  wait_for containerd 30 ctr --address "$dir/containerd/containerd.sock" version || die "containerd did not start (log: $dir/containerd.log)"
}

import_images() {
  local images=$1 tar n=0
  [[ -d $images ]] && compgen -G "$images/*.tar" >/dev/null || die "no images in $images; build them first: ./scripts/images.sh"
  for tar in "$images"/*.tar; do
    ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import --no-unpack=false "$tar" >>"$dir/import.log" 2>&1 \
      || die "importing $tar into containerd failed (log: $dir/import.log)"
    n=$((n + 1))
  done
  say "imported $n images from $images"
}

start_control_plane() {
  local etcd_port peer_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  mkdir -p "$dir/etcd"
  chmod 700 "$dir/etcd"
  run etcd "$KUBE_BIN/etcd" --name node --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "node=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health" || die "etcd did not start (log: $dir/etcd.log)"

  run kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
    --tls-cert-file "$dir/pki/serving.crt" --tls-private-key-file "$dir/pki/serving.key" \
    --client-ca-file "$dir/pki/client-ca.crt" \
    --kubelet-client-certificate "$dir/pki/apiserver-kubelet.crt" --kubelet-client-key "$dir/pki/apiserver-kubelet.key" \
    --kubelet-certificate-authority "$dir/pki/server-ca.crt" --kubelet-preferred-address-types InternalIP \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/service-account.pub" \
    --service-account-signing-key-file "$dir/pki/service-account.key" \
    --allow-privileged=true --profiling=false
  wait_for kube-apiserver 90 kubectl get --raw /readyz || die "kube-apiserver did not become ready (log: $dir/kube-apiserver.log)"

  run kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --root-ca-file "$dir/pki/server-ca.crt" --service-account-private-key-file "$dir/pki/service-account.key" \
    --use-service-account-credentials --cluster-name "$CLUSTER_NAME" \
    --allocate-node-cidrs=false --profiling=false
  run kube-scheduler "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$dir/scheduler.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false \
    --authentication-kubeconfig "$dir/scheduler.kubeconfig" --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
    --profiling=false
}

start_node() {
  mkdir -p "$KUBELET_DIR"
  # The SPIFFE CSI driver mounts into pods' volumes with Bidirectional propagation, which
  # needs the kubelet's directory to be a shared mount (this machine's / is private).
  mount --bind "$KUBELET_DIR" "$KUBELET_DIR"
  mount --make-rshared "$KUBELET_DIR"
  : >"$dir/resolv.conf"
  cat >"$dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1, no systemd as PID 1 (docs/cluster-local.md).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: true
failSwapOn: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $dir/pki/kubelet-serving.crt
tlsPrivateKeyFile: $dir/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/client-ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: $dir/resolv.conf
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
  run kubelet "$KUBE_BIN/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$KUBELET_DIR" --v 1
  cat >"$dir/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $dir/kube-proxy.kubeconfig}
clusterCIDR: $POD_CIDR
# Replies from a service's pod then come back through the host, which undoes the DNAT;
# no br_netfilter needed.
iptables: {masqueradeAll: true}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0}
YAML
  run kube-proxy "$KUBE_BIN/kube-proxy" --config "$dir/kube-proxy.yaml"
}

# The cluster's add-ons, as a distribution installs them: CoreDNS (service names, and the
# node's name, which is what a kubelet client such as SPIRE's agent dials; no upstream:
# other names do not resolve) and persistent volumes on this machine's disk for claims
# with no storage class (spire-server's data).
install_addons() {
  local coredns_image
  coredns_image=$(awk -F'\t' '$1 ~ /\/coredns:/ {print $1}' "$1/images.tsv" 2>/dev/null | head -n 1)
  [[ -n $coredns_image ]] || die "no CoreDNS image in $1/images.tsv; run ./scripts/images.sh node"
  local i pvs=""
  for i in 1 2 3 4; do
    mkdir -p "$dir/volumes/pv$i"
    chmod 0777 "$dir/volumes/pv$i"
    pvs+="---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv$i
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: \"\"
  hostPath: {path: $dir/volumes/pv$i, type: Directory}
"
  done
  kubectl apply -f - >/dev/null <<YAML
$pvs
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: system:coredns}
rules:
  - apiGroups: [""]
    resources: [services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: system:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:coredns}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:1053 {
        errors
        ready 127.0.0.1:8181
        hosts {
            $NODE_IP $NODE_NAME
            fallthrough
        }
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 5
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: coredns
          image: $coredns_image
          imagePullPolicy: Never
          args: [-conf, /etc/coredns/Corefile]
          ports:
            - {name: dns, containerPort: 1053, protocol: UDP}
            - {name: dns-tcp, containerPort: 1053, protocol: TCP}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_SERVICE_IP
  selector: {k8s-app: kube-dns}
  ports:
    - {name: dns, port: 53, targetPort: 1053, protocol: UDP}
    - {name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP}
YAML
  wait_for kubelet 120 kubectl -n kube-system rollout status deployment/coredns --timeout=5s \
    || die "CoreDNS did not become ready (kubectl -n kube-system describe pods -l k8s-app=kube-dns)"
}

node_ready() {
  kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

start() {
  local watch="" remove_dir=0 images=$root/target/images
  while [[ $# -gt 0 ]]; do
    case $1 in
      --watch) [[ $# -ge 2 ]] || die "--watch needs a PID"; watch=$2; shift ;;
      --remove-dir) remove_dir=1 ;;
      --images) [[ $# -ge 2 ]] || die "--images needs a directory"; images=$2; shift ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  [[ $remove_dir == 0 || -n $watch ]] || die "--remove-dir needs --watch PID"
  preflight
  KUBE_BIN=$(KUBE_NO_BUILD=${KUBE_NO_BUILD:-} "$here/kube.sh") || die "the Kubernetes programs are not available; see the messages above"
  export KUBECONFIG=$dir/admin.kubeconfig
  kubectl() { "$KUBE_BIN/kubectl" "$@"; }
  local started
  started=$(date +%s%N)
  if [[ -n $watch ]]; then
    start_watchdog "$watch" "$here/cluster-local.sh" "$remove_dir"
  fi
  trap 'say "start failed; stopping what started"; stop' ERR
  say "PKI, pod network ($BRIDGE, $POD_CIDR) and containerd"
  make_pki "$dir/pki"
  kubeconfig admin admin
  kubeconfig kubelet kubelet
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  kubeconfig kube-proxy kube-proxy
  setup_network
  start_containerd
  import_images "$images"
  say "control plane (etcd, kube-apiserver, controller-manager, scheduler)"
  start_control_plane
  say "node $NODE_NAME (kubelet, kube-proxy)"
  start_node
  wait_for kubelet 120 node_ready || die "the node did not become Ready (log: $dir/kubelet.log)"
  # Service accounts exist only once the controller-manager has made the default one.
  wait_for kube-controller-manager 60 kubectl -n default get serviceaccount default || die "the controller-manager made no service accounts (log: $dir/kube-controller-manager.log)"
  say "add-ons (CoreDNS, local persistent volumes)"
  install_addons "$images"
  trap - ERR
  local ready_ms
  ready_ms=$((($(date +%s%N) - started) / 1000000))
  cat >"$dir/env.tmp" <<ENV
CLUSTER_DIR=$dir
KUBECONFIG=$dir/admin.kubeconfig
KUBE_BIN=$KUBE_BIN
KUBE_API_URL=https://$NODE_IP:$API_PORT
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
CLUSTER_NAME=$CLUSTER_NAME
POD_CIDR=$POD_CIDR
SERVICE_CIDR=$SERVICE_CIDR
CONTAINERD_ADDRESS=$dir/containerd/containerd.sock
IMAGES_DIR=$images
CLUSTER_READY_MS=$ready_ms
ENV
  mv "$dir/env.tmp" "$dir/env"
  say "node $NODE_NAME Ready (${ready_ms} ms); export \$(cat $dir/env) or: source $dir/env"
}

status() {
  local p
  for p in "${PROCESSES[@]}"; do
    [[ -f $dir/$p.pid ]] && kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null || { say "$p is not running"; return 1; }
  done
}

[[ $# -ge 2 ]] || die "usage: cluster-local.sh start DIR [--images DIR] [--watch PID [--remove-dir]] | stop DIR | status DIR"
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  status) status ;;
  leftovers) leftovers ;;
  *) die "unknown command $cmd (start, stop or status)" ;;
esac
