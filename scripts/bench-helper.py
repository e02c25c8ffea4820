#!/usr/bin/env python3
"""Measures the signing helper against a real local SPIRE (scripts/spire-local.sh):

  * wall time from start to results signed, with the SVID already at the agent
    (median and p90 of 20 runs, 10 results, both formats), and peak RSS;
  * the release binary's size;
  * the time from entry creation to the SVID being available on the Workload API, with
    SPIRE's default intervals and with the tuned configuration (spire-config/README.md);
  * the signature overhead in the termination message (4,096 bytes for all results of a
    step) for 1, 5, 10 and 30 results, in both formats.

Run: python3 scripts/bench-helper.py   (builds the release helper and reuses cached SPIRE)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = 20
TRIALS = 5


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def start_spire(directory, tuned):
    args = [os.path.join(ROOT, "scripts/spire-local.sh"), "start", directory, "--watch", str(os.getpid())]
    if tuned:
        args.append("--tuned")
    sh(*args)
    env = dict(line.split("=", 1) for line in open(os.path.join(directory, "env")).read().splitlines())
    return env


def stop_spire(directory):
    subprocess.run([os.path.join(ROOT, "scripts/spire-local.sh"), "stop", directory], capture_output=True)


def register(env, spiffe_id, binary):
    sh(os.path.join(env["SPIRE_BIN"], "spire-server"), "entry", "create", "-socketPath", env["SPIRE_SERVER_SOCKET"],
       "-parentID", env["SPIRE_AGENT_ID"], "-spiffeID", spiffe_id, "-selector", f"unix:path:{binary}")


def run_measured(args, env):
    """Runs a process; returns (seconds, peak RSS in KiB, exit status)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def propagation(env, work, label):
    """Seconds from `entry create` returning to the SVID being served, per trial."""
    agent = os.path.join(env["SPIRE_BIN"], "spire-agent")
    times = []
    for trial in range(TRIALS):
        # A fresh copy of the fetching program per trial: its unix:path selector is new,
        # so no earlier entry can answer for it.
        fetcher = os.path.join(work, f"fetch-{label}-{trial}")
        shutil.copy(agent, fetcher)
        register(env, f"spiffe://{env['TRUST_DOMAIN']}/bench/{label}/{trial}", fetcher)
        created = time.perf_counter()
        while True:
            ok = subprocess.run([fetcher, "api", "fetch", "x509", "-socketPath",
                                 env["SPIFFE_ENDPOINT_SOCKET"].removeprefix("unix://"), "-timeout", "1s"],
                                capture_output=True).returncode == 0
            if ok:
                break
            if time.perf_counter() - created > 60:
                raise SystemExit(f"{label}: no SVID after 60 s")
            time.sleep(0.05)
        times.append(time.perf_counter() - created)
        os.remove(fetcher)
    return times


def termination_bytes(results_dir, names):
    """Bytes the named results add to Tekton's termination message, a JSON array of
    {"key", "value", "type"} objects (type 1 is a task result), as Go encodes it."""
    entries = []
    for name in names:
        with open(os.path.join(results_dir, name)) as f:
            entries.append({"key": name, "value": f.read(), "type": 1})
    # One entry costs its encoding plus a separating comma.
    return sum(len(json.dumps(e, separators=(",", ":"))) + 1 for e in entries)


def measure_overhead(helper, env, work):
    rows = []
    for n in (1, 5, 10, 30):
        sizes = {}
        for fmt in ("tekton", "seal"):
            results = os.path.join(work, f"overhead-{fmt}-{n}")
            os.mkdir(results)
            names = [f"R{i:02d}" for i in range(n)]
            for name in names:
                with open(os.path.join(results, name), "w") as f:
                    f.write("x" * 64)
            subprocess.run([helper, "--results-dir", results, "--format", fmt, "--timeout", "60",
                            "--taskrun-namespace", "default", "--taskrun-name", "bench", "--taskrun-uid", "u", "--taskrun-retry-count", "0"],
                           env=env, check=True, capture_output=True)
            added = sorted(set(os.listdir(results)) - set(names))
            sizes[fmt] = termination_bytes(results, added)
        rows.append((n, sizes["tekton"], sizes["seal"]))
    return rows


def main():
    print("building the release helper (cargo build --release --bin tekton-spire-sign)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--bin", "tekton-spire-sign"], cwd=ROOT, check=True)
    release = os.path.join(ROOT, "target/release/tekton-spire-sign")
    size = os.path.getsize(release)

    rows = []
    with tempfile.TemporaryDirectory(prefix="tsp-bench-") as work:
        for tuned in (False, True):
            label = "tuned" if tuned else "default"
            directory = os.path.join(work, f"spire-{label}")
            env = start_spire(directory, tuned)
            try:
                prop = propagation(env, work, label)
                rows.append((f"entry created -> SVID served ({label} intervals)", prop))
                if tuned:
                    helper = os.path.join(work, "tekton-spire-sign")
                    shutil.copy(release, helper)
                    register(env, f"spiffe://{env['TRUST_DOMAIN']}/ns/default/taskrun/bench", helper)
                    penv = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=env["SPIFFE_ENDPOINT_SOCKET"])
                    for fmt in ("seal", "tekton"):
                        walls, rss = [], []
                        for i in range(RUNS + 1):
                            results = os.path.join(work, f"results-{fmt}-{i}")
                            os.mkdir(results)
                            for r in range(10):
                                with open(os.path.join(results, f"RESULT_{r}"), "w") as f:
                                    f.write("sha256:" + "ab" * 32)
                            wall, peak, code = run_measured(
                                [helper, "--results-dir", results, "--format", fmt, "--timeout", "60",
                                 "--taskrun-namespace", "default", "--taskrun-name", "bench", "--taskrun-uid", "u", "--taskrun-retry-count", "0"], penv)
                            if code != 0:
                                raise SystemExit(f"helper failed (exit {code})")
                            if i > 0:  # the first run waits for the entry; measure the rest
                                walls.append(wall)
                                rss.append(peak)
                        rows.append((f"helper wall time, 10 results, {fmt} format", walls))
                        rows.append((f"helper peak RSS (MiB), {fmt} format", [k / 1024 for k in rss]))
                    overhead = measure_overhead(helper, penv, work)
            finally:
                stop_spire(directory)

    print("\nsignature overhead in the termination message (budget 4096 bytes for all results)")
    print(f"{'results':>8} {'tekton format':>14} {'seal':>8} {'ratio':>7}")
    for n, tekton, seal in overhead:
        print(f"{n:>8} {tekton:>13}B {seal:>7}B {tekton / seal:>6.1f}x")
    print(f"\nrelease binary tekton-spire-sign: {size / 1024 / 1024:.2f} MiB ({size} bytes)")
    print(f"\n{'measure':<52} {'n':>3} {'median':>9} {'p90':>9} {'min':>9} {'max':>9}")
    for name, values in rows:
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
        unit = "" if "MiB" in name else "s"
        fmt = (lambda v: f"{v:.1f}") if "MiB" in name else (lambda v: f"{v * 1000:.0f}ms" if v < 10 else f"{v:.2f}s")
        print(f"{name:<52} {len(values):>3} {fmt(statistics.median(values)):>9} {fmt(p90):>9} "
              f"{fmt(values[0]):>9} {fmt(values[-1]):>9}{unit and ''}")


if __name__ == "__main__":
    main()
