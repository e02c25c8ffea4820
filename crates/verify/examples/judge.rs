//! Judges one TaskRun file against one bundle file and prints the verdict's code and the
//! time the judging took, for scripts/bench-hostile.py (which measures the process's peak
//! memory from outside).
//!
//! Usage: `judge TASKRUN BUNDLE [RUNS]`; prints `<code> <nanoseconds of the fastest run>
//! <peak resident KiB>`, the peak as Linux counts it since the process started (`VmHWM`,
//! which, unlike `ru_maxrss`, does not carry over the parent's memory across exec).

use std::time::Instant;

use tekton_spire_verify::{Policy, TaskRun, TrustBundle, TrustDomain, verify};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, taskrun, bundle, rest @ ..] = &args[..] else {
        anyhow::bail!("usage: judge TASKRUN BUNDLE [RUNS]");
    };
    let runs: u32 = rest.first().map_or(Ok(1), |r| r.parse())?;
    let bytes = std::fs::read(taskrun)?;
    let bundle = TrustBundle::read(std::path::Path::new(bundle))?;
    let policy = Policy::new(TrustDomain::new("example.org")?, bundle);
    let mut fastest = u128::MAX;
    let mut code = String::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        code = match TaskRun::parse(&bytes) {
            Err(e) => e.code().to_owned(),
            Ok(tr) => match verify(&tr, &policy) {
                Ok(_) => "verified".to_owned(),
                Err(r) => r.code().to_owned(),
            },
        };
        fastest = fastest.min(started.elapsed().as_nanos());
    }
    let peak_kib = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{code} {fastest} {peak_kib}");
    Ok(())
}
