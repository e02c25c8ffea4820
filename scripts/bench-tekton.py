#!/usr/bin/env python3
"""Side by side: Tekton Pipelines' own TEP-0089 code against tekton-spire, in one run, on
the same inputs and the same real local SPIRE server and agent (scripts/spire-local.sh).

  * signing a TaskRun of 10 results of 64 bytes, with the SVID already at the agent:
    Tekton's entrypointer (pkg/entrypoint + pkg/spire, through tests/tekton-interop)
    against our helper (tekton_spire::helper::run, and the tekton-spire-sign process);
  * verifying that TaskRun: Tekton's VerifyTaskRunResults against our library's verify()
    (and the tekton-spire verify process), in Tekton's format, and our seal format;
  * how many results of 64 bytes fit in the 4,096-byte termination message beside the
    signature material, each format written by the real entrypointer
    (pkg/termination: a JSON array of {"key","value","type"} objects).

Medians of RUNS runs; the first run of each signer is not measured (it may wait for its
entry to reach the agent). The agent does not hash callers' binaries (see Spire below).
Not run in CI.

Run: python3 scripts/bench-tekton.py   (builds what it needs; reuses cached SPIRE and the harness)
"""
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = 25
RESULTS = 10
VALUE_BYTES = 64
NAMESPACE = "default"

# A throwaway crate that times our library in-process (the repository's own benches use
# fixed data; this one takes the TaskRun Tekton just signed).
BENCH_CRATE_TOML = """\
[package]
name = "tekton-spire-bench-tekton"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
tekton-spire = {{ path = "{root}" }}
tekton-spire-verify = {{ path = "{root}/crates/verify" }}
tokio = {{ version = "1", features = ["rt", "macros", "time"] }}
serde_json = "1"

# The repository's release profile, so that its build artifacts are reused.
[profile.release]
lto = "thin"
codegen-units = 4
strip = true

[workspace]
"""

BENCH_CRATE_MAIN = r"""
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use tekton_spire::helper::{self, Config, Output};
use tekton_spire_verify::{Policy, TaskRun, TrustBundle, TrustDomain, verify};

fn nanos(start: Instant) -> u128 {
    start.elapsed().as_nanos()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args[2].parse().expect("runs");
    match args[1].as_str() {
        // verify RUNS TASKRUN BUNDLE TRUST_DOMAIN
        "verify" => {
            let bytes = std::fs::read(&args[3]).expect("taskrun");
            let bundle = TrustBundle::load(&std::fs::read(&args[4]).expect("bundle")).expect("bundle loads");
            let policy = Policy::new(TrustDomain::new(&args[5]).expect("trust domain"), bundle);
            let taskrun = TaskRun::parse(&bytes).expect("taskrun parses");
            let verified = verify(&taskrun, &policy).expect("the TaskRun verifies");
            let (mut only, mut parsed) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let start = Instant::now();
                black_box(verify(black_box(&taskrun), &policy).expect("verifies"));
                only.push(nanos(start));
            }
            for _ in 0..runs {
                let start = Instant::now();
                let taskrun = TaskRun::parse(black_box(&bytes)).expect("parses");
                black_box(verify(&taskrun, &policy).expect("verifies"));
                parsed.push(nanos(start));
            }
            println!("{}", serde_json::json!({
                "results": verified.results().len(), "verify": only, "parseVerify": parsed,
            }));
        }
        // sign RUNS SOCKET TEMPLATE_DIR WORK_DIR tekton|seal NAME
        "sign" => {
            let (socket, template, work, format, name) = (&args[3], &args[4], &args[5], &args[6], &args[7]);
            let mut times = Vec::new();
            for i in 0..=runs {
                let dir = PathBuf::from(work).join(format!("{format}-{i}"));
                std::fs::create_dir_all(&dir).expect("mkdir");
                for entry in std::fs::read_dir(template).expect("template") {
                    let entry = entry.expect("entry");
                    std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
                }
                let output = if format == "seal" {
                    Output::Seal { namespace: "default".into(), name: name.clone(), uid: "uid-bench".into() }
                } else {
                    Output::Tekton
                };
                let mut config = Config::new(output);
                config.results_dir = dir;
                config.socket = socket.clone();
                let start = Instant::now();
                helper::run(&config).await.expect("our helper signs");
                if i > 0 {
                    times.push(nanos(start));
                }
            }
            println!("{}", serde_json::json!({ "nanos": times }));
        }
        other => panic!("unknown subcommand {other}"),
    }
}
"""


def log(msg):
    print(f"bench-tekton: {msg}", file=sys.stderr, flush=True)


def run(args, env=None, check=True):
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def last_json(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_ms(nanos):
    return statistics.median(nanos) / 1e6


def wall(args, env):
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {proc.stderr}")
    return elapsed * 1e9


def value(i):
    """A 64-byte result: a SHA-256 digest in hex, as an IMAGE_DIGEST-like result holds."""
    return hashlib.sha256(f"result-{i}".encode()).hexdigest()


def result_names(n):
    return [f"RESULT_{i:02d}" for i in range(n)]


def write_results(directory, n):
    os.makedirs(directory, exist_ok=True)
    for i, name in enumerate(result_names(n)):
        with open(os.path.join(directory, name), "w") as f:
            f.write(value(i))
    assert len(value(0)) == VALUE_BYTES


def build(work):
    log("building the release binaries (cargo build --release)")
    run(["cargo", "build", "--quiet", "--release", "--bin", "tekton-spire-sign", "--bin", "tekton-spire"], env=dict(os.environ))
    harness = run([os.path.join(ROOT, "scripts/tekton-harness.sh")]).stdout.strip()
    log("building the in-process timing program for our library (throwaway crate)")
    crate = os.path.join(work, "bench-crate")
    os.makedirs(os.path.join(crate, "src"))
    with open(os.path.join(crate, "Cargo.toml"), "w") as f:
        f.write(BENCH_CRATE_TOML.format(root=ROOT))
    with open(os.path.join(crate, "src/main.rs"), "w") as f:
        f.write(BENCH_CRATE_MAIN)
    shutil.copy(os.path.join(ROOT, "Cargo.lock"), crate)
    target = os.path.join(ROOT, "target")
    run(["cargo", "build", "--quiet", "--release", "--manifest-path", os.path.join(crate, "Cargo.toml")],
        env=dict(os.environ, CARGO_TARGET_DIR=target))
    ours = os.path.join(target, "release/tekton-spire-bench-tekton")
    return harness, ours


class Spire:
    """A SPIRE server and agent rendered from spire-config/local (what the tests run, with the
    tuned 1 s intervals), except that the agent's unix attestor does not hash the caller's
    binary: by default (workload_size_limit = 0) it computes the SHA-256 of the whole
    executable at every Workload API call, which costs ~60 ms for the 77 MB Go harness
    against ~5 ms for our helper and would measure binary sizes, not implementations. The
    k8s attestor of a real cluster hashes nothing."""

    def __init__(self, directory):
        self.dir = directory
        self.procs = []
        bin_dir = run([os.path.join(ROOT, "scripts/spire.sh")]).stdout.strip()
        for sub in ("server-data", "agent-data", "workload"):
            os.makedirs(os.path.join(directory, sub))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        self.td = "example.org"
        subst = {"@DIR@": directory, "@PORT@": str(port), "@TRUST_DOMAIN@": self.td,
                 "@SERVER_EXTRA@": 'experimental { cache_reload_interval = "1s" }',
                 "@AGENT_EXTRA@": 'experimental { sync_interval = "1s" }'}
        for name in ("server.conf", "agent.conf"):
            text = open(os.path.join(ROOT, "spire-config/local", name)).read()
            for k, v in subst.items():
                text = text.replace(k, v)
            if name == "agent.conf":
                patched = text.replace("discover_workload_path = true",
                                       "discover_workload_path = true\n            workload_size_limit = -1")
                if patched == text:
                    raise SystemExit("spire-config/local/agent.conf changed: cannot turn off binary hashing")
                text = patched
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        self.bin = bin_dir
        self.server_socket = os.path.join(directory, "server.sock")
        self.socket = "unix://" + os.path.join(directory, "workload/agent.sock")
        self._spawn("spire-server", "run", "-config", os.path.join(directory, "server.conf"))
        self._healthy("spire-server", self.server_socket)
        token = self.server("token", "generate", "-ttl", "600").split("Token:")[1].split()[0]
        self.agent_id = f"spiffe://{self.td}/spire/agent/join_token/{token}"
        self._spawn("spire-agent", "run", "-config", os.path.join(directory, "agent.conf"), "-joinToken", token)
        self._healthy("spire-agent", self.socket.removeprefix("unix://"))

    def _spawn(self, program, *args):
        log_file = open(os.path.join(self.dir, program + ".log"), "w")
        self.procs.append(subprocess.Popen([os.path.join(self.bin, program), *args], stdout=log_file, stderr=log_file))

    def _healthy(self, program, sock):
        for _ in range(150):
            if subprocess.run([os.path.join(self.bin, program), "healthcheck", "-socketPath", sock],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise SystemExit(f"{program} did not become healthy; see {self.dir}/{program}.log")

    def stop(self):
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def server(self, *args):
        return run([os.path.join(self.bin, "spire-server"), *args[:2], "-socketPath", self.server_socket,
                    *args[2:]]).stdout

    def register(self, spiffe_id, binary):
        self.server("entry", "create", "-parentID", self.agent_id, "-spiffeID", spiffe_id,
                    "-selector", f"unix:path:{binary}")

    def taskrun_id(self, name):
        return f"spiffe://{self.td}/ns/{NAMESPACE}/taskrun/{name}"


def private_copy(binary, directory, name):
    """A copy of binary at its own path, so that an entry's unix:path selector names it alone."""
    path = os.path.join(directory, name)
    shutil.copy(binary, path)
    return path


def seal_taskrun(results_dir, name, path):
    """The TaskRun a controller reports for a Task that declares every file as a string."""
    results = []
    for entry in sorted(os.listdir(results_dir)):
        with open(os.path.join(results_dir, entry)) as f:
            results.append({"name": entry, "type": "string", "value": f.read()})
    now = time.time()
    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    doc = {
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": "uid-bench"},
        "status": {"conditions": [{"type": "Succeeded", "status": "True"}],
                   "startTime": fmt(now - 120), "completionTime": fmt(now + 1), "results": results},
    }
    with open(path, "w") as f:
        json.dump(doc, f)


def largest_fitting(fits, low=0, high=128):
    """The largest n in [low, high] with fits(n), fits being monotonic and fits(low) true."""
    if not fits(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def main():
    with tempfile.TemporaryDirectory(prefix="tsp-bench-tekton-") as work:
        harness, ours_lib = build(work)
        release = os.path.join(ROOT, "target/release")
        spire = Spire(os.path.join(work, "spire"))
        try:
            rows = measure(work, spire, harness, ours_lib, release)
        finally:
            spire.stop()
    print_table(rows, harness)


def measure(work, spire, harness, ours_lib, release):
    env = dict(os.environ, SPIFFE_ENDPOINT_SOCKET=spire.socket)
    bins = os.path.join(work, "bin")
    os.makedirs(bins)
    # One identity per signer, one for Tekton's verifier (its controller client needs an SVID).
    tekton_signer = private_copy(harness, bins, "tekton-signer")
    spire.register(spire.taskrun_id("bench-tekton"), tekton_signer)
    tekton_verifier = private_copy(harness, bins, "tekton-verifier")
    spire.register(f"spiffe://{spire.td}/bench/tekton-verifier", tekton_verifier)
    our_lib = private_copy(ours_lib, bins, "ours-lib")
    spire.register(spire.taskrun_id("bench-ours"), our_lib)
    our_helper = private_copy(os.path.join(release, "tekton-spire-sign"), bins, "ours-helper")
    spire.register(spire.taskrun_id("bench-ours"), our_helper)
    cli = os.path.join(release, "tekton-spire")

    template = os.path.join(work, "template")
    write_results(template, RESULTS)
    names = result_names(RESULTS)
    declared = ",".join(names)
    rows = {}

    # --- Signing -------------------------------------------------------------------------
    log("signing: Tekton in-process")
    tk = last_json(run([tekton_signer, "bench-sign", "-results-dir", template, "-results", declared,
                        "-runs", str(RUNS)], env=env))
    log("signing: ours in-process")
    ours_tekton = last_json(run([our_lib, "sign", str(RUNS), spire.socket, template, os.path.join(work, "lib-sign"),
                                 "tekton", "bench-ours"], env=env))
    ours_seal = last_json(run([our_lib, "sign", str(RUNS), spire.socket, template, os.path.join(work, "lib-sign"),
                               "seal", "bench-ours"], env=env))
    rows["sign_inproc"] = (median_ms(tk["entrypointer"]), median_ms(ours_tekton["nanos"]), median_ms(ours_seal["nanos"]))
    rows["sign_only"] = median_ms(tk["sign"])

    log("signing: whole processes")
    tekton_proc, ours_proc = {"tekton": []}, {"tekton": [], "seal": []}
    for i in range(RUNS + 1):
        t = wall([tekton_signer, "message", "-sign", "-results-dir", template, "-results", declared], env)
        if i > 0:
            tekton_proc["tekton"].append(t)
        for fmt in ("tekton", "seal"):
            d = os.path.join(work, f"proc-{fmt}-{i}")
            shutil.copytree(template, d)
            t = wall([our_helper, "--results-dir", d, "--format", fmt, "--timeout", "60", "--taskrun-namespace",
                      NAMESPACE, "--taskrun-name", "bench-ours", "--taskrun-uid", "uid-bench", "--taskrun-retry-count", "0"], env)
            if i > 0:
                ours_proc[fmt].append(t)
    rows["sign_proc"] = (median_ms(tekton_proc["tekton"]), median_ms(ours_proc["tekton"]), median_ms(ours_proc["seal"]))

    # --- Verifying -----------------------------------------------------------------------
    log("verifying: the TaskRun Tekton signed")
    signed_dir = os.path.join(work, "tekton-signed")
    shutil.copytree(template, signed_dir)
    taskrun = os.path.join(work, "tekton-taskrun.json")
    run([tekton_signer, "sign", "-results-dir", signed_dir, "-results", declared, "-name", "bench-tekton",
         "-uid", "uid-bench", "-out", taskrun], env=env)
    bundle = os.path.join(work, "bundle.json")
    with open(bundle, "w") as f:
        f.write(spire.server("bundle", "show", "-format", "spiffe"))
    tv = last_json(run([tekton_verifier, "verify", "-taskrun", taskrun, "-trust-domain", spire.td,
                        "-repeat", str(RUNS)], env=env))
    if not tv["verified"]:
        raise SystemExit(f"Tekton rejected its own TaskRun: {tv}")
    ov = last_json(run([our_lib, "verify", str(RUNS), taskrun, bundle, spire.td]))
    if ov["results"] != RESULTS:
        raise SystemExit(f"our verifier saw {ov['results']} results")
    cli_args = [cli, "verify", "--taskrun", taskrun, "--bundle", bundle, "--trust-domain", spire.td, "--accept-tekton-format"]
    cli_tekton = [wall(cli_args, env) for _ in range(RUNS)]

    log("verifying: the same results sealed by our helper")
    sealed_dir = os.path.join(work, "sealed")
    shutil.copytree(template, sealed_dir)
    run([our_helper, "--results-dir", sealed_dir, "--format", "seal", "--taskrun-namespace", NAMESPACE,
         "--taskrun-name", "bench-ours", "--taskrun-uid", "uid-bench", "--taskrun-retry-count", "0"], env=env)
    sealed = os.path.join(work, "sealed-taskrun.json")
    seal_taskrun(sealed_dir, "bench-ours", sealed)
    os_ = last_json(run([our_lib, "verify", str(RUNS), sealed, bundle, spire.td]))
    cli_seal = [wall([cli, "verify", "--taskrun", sealed, "--bundle", bundle, "--trust-domain", spire.td], env)
                for _ in range(RUNS)]
    rows["verify_inproc"] = (median_ms(tv["nanos"]), median_ms(ov["verify"]), median_ms(os_["verify"]))
    rows["verify_parse"] = (None, median_ms(ov["parseVerify"]), median_ms(os_["parseVerify"]))
    rows["bundle_fetch"] = median_ms(tv["bundleFetchNanos"])
    rows["verify_proc"] = (None, median_ms(cli_tekton), median_ms(cli_seal))

    # --- Termination message -------------------------------------------------------------
    log("termination message: searching the largest number of results that fit")

    def fits(mode, compress=False):
        def check(n):
            d = tempfile.mkdtemp(prefix=f"fit-{mode}-{n}-", dir=work)
            write_results(d, n)
            results = result_names(n)
            args = [tekton_signer, "message", "-results-dir", d]
            if compress:
                args.append("-compress")
            if mode == "tekton-entrypointer":
                args.append("-sign")
            elif mode in ("ours-tekton", "ours-seal"):
                fmt = mode.split("-")[1]
                run([our_helper, "--results-dir", d, "--format", fmt, "--taskrun-namespace", NAMESPACE,
                     "--taskrun-name", "bench-ours", "--taskrun-uid", "uid-bench", "--taskrun-retry-count", "0"], env=env)
                # The Task must declare the material for it to reach the status.
                results += (["TEKTON_SPIRE_SEAL"] if fmt == "seal" else
                            ["SVID", "RESULT_MANIFEST", "RESULT_MANIFEST.sig"] + [f"{r}.sig" for r in results])
            args += ["-results", ",".join(results)] if results else []
            proc = run(args, env=env, check=False)
            if proc.returncode == 0:
                out = last_json(proc)
                sizes[(mode, compress, n)] = out["bytes"]
                return True
            if proc.returncode == 1 or "above max allowed size" in proc.stderr:
                return False
            raise SystemExit(f"message failed: {proc.stderr}{proc.stdout}")
        return check

    sizes = {}
    fit = {}
    for mode in ("unsigned", "tekton-entrypointer", "ours-tekton", "ours-seal"):
        for compress in (False, True):
            fit[(mode, compress)] = largest_fitting(fits(mode, compress))
            fits(mode, compress)(RESULTS)  # the message size at 10 results
    rows["fit"] = fit
    rows["sizes"] = sizes
    return rows


def ratio(a, b):
    return f"{a / b:.1f}x" if a and b else ""


def ms(v):
    return f"{v:.2f} ms" if v is not None else "-"


def print_table(rows, harness):
    version = os.path.basename(os.path.dirname(harness)).split("-")[2]
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\nTekton Pipelines {version} (pkg/spire, pkg/entrypoint) vs tekton-spire {rev or '?'}; SPIRE v1.13.3;"
          f" {RESULTS} results of {VALUE_BYTES} bytes; medians of {RUNS} runs; {os.cpu_count()} CPUs."
          "\nRatios are Tekton's time over ours: above 1, ours is faster.\n")
    head = f"| {'measure':<62} | {'Tekton':>10} | {'ours, Tekton fmt':>16} | {'ours, seal':>10} | {'Tekton/ours (Tekton fmt)':>24} | {'Tekton/ours (seal)':>18} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")

    def line(label, t, o_t, o_s):
        print(f"| {label:<62} | {ms(t):>10} | {ms(o_t):>16} | {ms(o_s):>10} | {ratio(t, o_t):>24} | {ratio(t, o_s):>18} |")

    line("sign, in-process: read, fetch SVID, sign, write", *rows["sign_inproc"])
    line("  of which Tekton's Sign() alone (new client, fetch, sign)", rows["sign_only"], None, None)
    line("sign, whole process (start to results written)", *rows["sign_proc"])
    line("verify, in-process (VerifyTaskRunResults / verify())", *rows["verify_inproc"])
    line("  of which Tekton's bundle fetch over the Workload API", rows["bundle_fetch"], None, None)
    line("verify, in-process, parsing the TaskRun JSON too", *rows["verify_parse"])
    line("verify, whole process (tekton-spire verify CLI)", *rows["verify_proc"])

    print("\nOur helper writes each result file durably (the file, then its directory, fsynced): 13 files"
          " in Tekton's format, one for the seal. Tekton's entrypointer fsyncs one termination message."
          "\nTekton's verifier fetches the trust bundle over the Workload API at every call; ours reads"
          " a bundle file once.")

    fit, sizes = rows["fit"], rows["sizes"]
    print(f"\nTermination message (4,096 bytes, written by Tekton's entrypointer): results of {VALUE_BYTES} bytes that fit,"
          f" and the message's size with {RESULTS} results\n")
    head = f"| {'signature material':<52} | {'fit, plain JSON':>15} | {'fit, compressed':>15} | {'bytes for 10, plain':>19} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    labels = {
        "unsigned": "none (results only, no signing)",
        "tekton-entrypointer": "Tekton format, Tekton's entrypointer signs",
        "ours-tekton": "Tekton format, our helper signs (material declared)",
        "ours-seal": "seal (TEKTON_SPIRE_SEAL declared)",
    }
    for mode, label in labels.items():
        size = sizes.get((mode, False, RESULTS))
        print(f"| {label:<52} | {fit[(mode, False)]!s:>15} | {fit[(mode, True)]!s:>15} | {size if size else 'does not fit':>19} |")
    base = fit[("unsigned", False)]
    print(f"\nSeal vs Tekton's entrypointer: {fit[('ours-seal', False)]} vs {fit[('tekton-entrypointer', False)]} results"
          f" (of {base} without any signature).")


if __name__ == "__main__":
    main()
