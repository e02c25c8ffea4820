#!/usr/bin/env python3
"""The whole flow's latency on the one-node cluster, with real Tekton, per SPIRE setting:

  TaskRun created -> entry created -> SVID served to the signing step -> sealed results in
  the status -> the controller's verdict

for RUNS TaskRuns of deploy/example (one at a time, so that each measures latency, not a
queue), with SPIRE's propagation intervals (server `experimental.cache_reload_interval`,
agent `experimental.sync_interval`) at SPIRE's defaults (5 s), as spire-config/kubernetes
ships them (2 s), and at the 1 s that spire-config/README.md documents as tuned. Prints the
median and p90 of each step beside each other, one column pair per setting.

Where each time comes from (all clocks are this machine's):
  created, sealed, verdict  a `kubectl get taskruns --watch` stream: when the TaskRun first
                            appears, when its status first holds TEKTON_SPIRE_SEAL, when it
                            first holds the SignedResultsVerified condition;
  entry created             the controller's "created entry" log line (kubectl logs --timestamps);
  signing step asks         the signing step's "fetching the X.509-SVID" log line, likewise
                            (before it: the pod starts and the build step runs; SPIRE
                            propagates the entry meanwhile);
  SVID served               the signing step's "received X.509-SVID" log line, likewise.

  python3 scripts/bench-node.py [--runs N] [--node DIR]

--node DIR uses a running node (scripts/cluster-local.sh start DIR) on which
scripts/cluster-install.sh DIR --tekton has run; without it the script starts a node,
installs everything, and stops the node at the end. Needs root. Not run in CI.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = [("SPIRE defaults (5 s)", "5s"), ("shipped (2 s)", "2s"), ("tuned (1 s)", "1s")]
STEPS = [
    ("created", "entry", "TaskRun created -> entry created"),
    ("entry", "signing", "entry created -> signing step asks"),
    ("signing", "svid", "signing step asks -> SVID served"),
    ("svid", "sealed", "SVID served -> seal in status"),
    ("sealed", "verdict", "seal in status -> verdict"),
    ("created", "verdict", "TaskRun created -> verdict"),
]


def say(msg):
    print(f"bench-node: {msg}", file=sys.stderr, flush=True)


class Node:
    def __init__(self, env):
        self.env = env
        self.kubectl_bin = os.path.join(env["KUBE_BIN"], "kubectl")

    def kubectl(self, *args, stdin=None):
        out = subprocess.run(
            [self.kubectl_bin, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": self.env["KUBECONFIG"]},
        )
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                env[key] = value
    return env


def log_time(line):
    """The RFC 3339 time kubectl logs --timestamps puts before a line, as a Unix time."""
    stamp = line.split(" ", 1)[0]
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", stamp)
    if not m:
        return None
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float("0." + (m.group(2) or "0"))


class Watch:
    """Arrival times of what the TaskRuns of a namespace show, from one watch stream."""

    def __init__(self, node, ns):
        self.seen = {}
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [node.kubectl_bin, "-n", ns, "get", "taskruns", "--watch", "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "KUBECONFIG": node.env["KUBECONFIG"]},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        decoder = json.JSONDecoder()
        buf = ""
        for chunk in iter(lambda: self.proc.stdout.readline(), ""):
            buf += chunk
            while True:
                stripped = buf.lstrip()
                if not stripped:
                    buf = ""
                    break
                try:
                    obj, end = decoder.raw_decode(stripped)
                except json.JSONDecodeError:
                    break
                buf = stripped[end:]
                self._note(obj, time.time())

    def _note(self, tr, now):
        name = tr.get("metadata", {}).get("name")
        status = tr.get("status") or {}
        with self.lock:
            times = self.seen.setdefault(name, {})
            times.setdefault("created", now)
            if any(r.get("name") == "TEKTON_SPIRE_SEAL" for r in status.get("results") or []):
                times.setdefault("sealed", now)
            for c in status.get("conditions") or []:
                if c.get("type") == "SignedResultsVerified":
                    times.setdefault("verdict", now)
                    times.setdefault("verdict_status", c.get("status"))

    def get(self, name):
        with self.lock:
            return dict(self.seen.get(name, {}))

    def stop(self):
        self.proc.kill()


def set_intervals(node, interval):
    rendered = node.kubectl("kustomize", os.path.join(ROOT, "tests/cluster/spire"))
    rendered = re.sub(r'sync_interval = "[0-9a-z]+"', f'sync_interval = "{interval}"', rendered)
    rendered = re.sub(
        r'cache_reload_interval = "[0-9a-z]+"', f'cache_reload_interval = "{interval}"', rendered
    )
    node.kubectl("apply", "-f", "-", stdin=rendered)
    for what in ("statefulset/spire-server", "daemonset/spire-agent"):
        node.kubectl("-n", "spire", "rollout", "restart", what)
        node.kubectl("-n", "spire", "rollout", "status", what, "--timeout=300s")
    # The controllers reconnect to the restarted server and agent by themselves; wait until
    # they are ready.
    for what in ("deployment/tekton-spire-controller", "deployment/tekton-spire-verdict"):
        node.kubectl("-n", "tekton-spire", "rollout", "status", what, "--timeout=300s")


def one_run(node, ns, watch, deadline=300):
    out = node.kubectl("create", "-n", ns, "-f", os.path.join(ROOT, "deploy/example/taskrun.yaml"), "-o", "name")
    name = out.strip().rsplit("/", 1)[-1]
    started = time.time()
    while time.time() - started < deadline:
        times = watch.get(name)
        if "verdict" in times and "sealed" in times:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"TaskRun {ns}/{name}: no seal and verdict within {deadline} s")
    if times.get("verdict_status") != "True":
        raise RuntimeError(f"TaskRun {ns}/{name}: verdict {times.get('verdict_status')}")
    # The controller logs JSON: the SPIFFE ID ends in a quote.
    spiffe_id = re.compile(re.escape(f"/ns/{ns}/taskrun/{name}") + '"')
    logs = node.kubectl(
        "-n", "tekton-spire", "logs", "-l", "app.kubernetes.io/name=tekton-spire-controller",
        "--timestamps", "--tail=-1", "--max-log-requests=10",
    )
    for line in logs.splitlines():
        if "created entry" in line and spiffe_id.search(line):
            times["entry"] = log_time(line)
            break
    pod = json.loads(node.kubectl("-n", ns, "get", "taskrun", name, "-o", "json"))["status"]["podName"]
    for line in node.kubectl("-n", ns, "logs", pod, "-c", "step-sign", "--timestamps").splitlines():
        if "fetching the X.509-SVID" in line:
            times.setdefault("signing", log_time(line))
        if "received X.509-SVID" in line:
            times["svid"] = log_time(line)
            break
    missing = [k for k in ("entry", "signing", "svid") if times.get(k) is None]
    if missing:
        raise RuntimeError(f"TaskRun {ns}/{name}: no log line for {', '.join(missing)}")
    return times


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="TaskRuns per setting (default 20)")
    parser.add_argument("--node", help="a running node's directory, installed with --tekton")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    own = None
    if args.node:
        node_dir = args.node
    else:
        if os.geteuid() != 0:
            sys.exit("bench-node: the node runs a kubelet and containerd: run as root")
        own = tempfile.mkdtemp(prefix="tekton-spire-bench-node.")
        node_dir = os.path.join(own, "node")
        say("starting the node and installing SPIRE, the controller and Tekton")
        subprocess.run([os.path.join(ROOT, "scripts/cluster-local.sh"), "start", node_dir,
                        "--watch", str(os.getpid())], check=True)
        subprocess.run([os.path.join(ROOT, "scripts/cluster-install.sh"), node_dir, "--tekton"], check=True)
    node = Node(read_env(os.path.join(node_dir, "env")))
    results = {}
    try:
        for label, interval in SETTINGS:
            say(f"{label}: setting the intervals, restarting SPIRE")
            set_intervals(node, interval)
            ns = f"bench-{interval}-{int(time.time()) % 100000}"
            node.kubectl("create", "namespace", ns)
            node.kubectl("apply", "-n", ns, "-k", os.path.join(ROOT, "tests/cluster/example"))
            watch = Watch(node, ns)
            try:
                say(f"{label}: one TaskRun to warm up (not measured)")
                one_run(node, ns, watch)
                runs = []
                for i in range(args.runs):
                    runs.append(one_run(node, ns, watch))
                    say(f"{label}: {i + 1}/{args.runs}, created -> verdict "
                        f"{runs[-1]['verdict'] - runs[-1]['created']:.2f} s")
            finally:
                watch.stop()
            results[label] = runs
            node.kubectl("delete", "namespace", ns, "--wait=false")
        say("restoring the shipped intervals (2 s)")
        set_intervals(node, "2s")
    finally:
        if own:
            subprocess.run([os.path.join(ROOT, "scripts/cluster-local.sh"), "stop", node_dir])

    print(f"\nLatency on the one-node cluster, {args.runs} TaskRuns of deploy/example per setting, one at a time")
    print("(seconds; median / p90)\n")
    header = f"| {'step':36} |" + "".join(f" {label:>22} |" for label, _ in SETTINGS)
    print(header)
    print("|" + "-" * 38 + "|" + "".join("-" * 24 + "|" for _ in SETTINGS))
    for start, end, title in STEPS:
        row = f"| {title:36} |"
        for label, _ in SETTINGS:
            d = [r[end] - r[start] for r in results[label]]
            row += f" {statistics.median(d):9.2f} / {pct(d, 90):8.2f} |"
        print(row)


if __name__ == "__main__":
    main()
