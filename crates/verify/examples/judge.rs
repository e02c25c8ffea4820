//! Judges one TaskRun file against one bundle file and prints the verdict's code and the
//! time the judging took, for scripts/bench-hostile.py (which measures the process's peak
//! memory from outside).
//!
//! Usage: `judge [--list] TASKRUN BUNDLE [RUNS]`; prints `<code> <nanoseconds of the
//! fastest run> <peak resident KiB>`, the peak as Linux counts it since the process
//! started (`VmHWM`, which, unlike `ru_maxrss`, does not carry over the parent's memory
//! across exec). With `--list`, the file is read as the `verify` command reads it: from
//! the file, up to 64 MiB, as one TaskRun or a List; the code is then the first item's
//! that did not verify, or `verified`.

use std::time::Instant;

use tekton_spire_verify::list::read_taskruns;
use tekton_spire_verify::{Policy, TaskRun, TrustBundle, TrustDomain, verify};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let as_list = args.first().is_some_and(|a| a == "--list");
    if as_list {
        args.remove(0);
    }
    let [taskrun, bundle, rest @ ..] = &args[..] else {
        anyhow::bail!("usage: judge [--list] TASKRUN BUNDLE [RUNS]");
    };
    let runs: u32 = rest.first().map_or(Ok(1), |r| r.parse())?;
    let bundle = TrustBundle::read(std::path::Path::new(bundle))?;
    let policy = Policy::new(TrustDomain::new("example.org")?, bundle);
    // A document is read before the clock starts; a List file is read inside it, as the
    // command reads it (the read is part of what --list measures).
    let bytes = if as_list {
        Vec::new()
    } else {
        std::fs::read(taskrun)?
    };
    let mut fastest = u128::MAX;
    let mut code = String::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        code = if as_list {
            judge_list(std::fs::File::open(taskrun)?, &policy)
        } else {
            judge_one(&bytes, &policy)
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

fn judge_one(bytes: &[u8], policy: &Policy) -> String {
    match TaskRun::parse(bytes) {
        Err(e) => e.code().to_owned(),
        Ok(tr) => match verify(&tr, policy) {
            Ok(_) => "verified".to_owned(),
            Err(r) => r.code().to_owned(),
        },
    }
}

fn judge_list(file: std::fs::File, policy: &Policy) -> String {
    let read = match read_taskruns(file) {
        Ok(read) => read,
        Err(e) => return e.code().to_owned(),
    };
    for item in read.items {
        let code = match item.taskrun {
            Err(e) => e.code().to_owned(),
            Ok(tr) => match verify(&tr, policy) {
                Ok(_) => continue,
                Err(r) => r.code().to_owned(),
            },
        };
        return code;
    }
    "verified".to_owned()
}
