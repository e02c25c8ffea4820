#![no_main]
//! Differential: the same bytes judged by our verifier and by the independent Python
//! implementation written from docs/seal-format.md alone (tests/python), against the
//! seal vectors' root for example.org. Any disagreement on the verdict or its code is a
//! crash. Tekton's own format is out of the Python verifier's scope and skipped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

#[path = "yaml_panics.rs"]
mod yaml_panics;

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::{Policy, TaskRun, TrustBundle, TrustDomain, verify};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

struct Python {
    _child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

fn python() -> &'static Mutex<Python> {
    static PYTHON: OnceLock<Mutex<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let mut child = Command::new("python3")
            .arg(format!("{REPO}/tests/python/differential_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 tests/python/differential_server.py");
        let input = child.stdin.take().expect("piped stdin");
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        Mutex::new(Python {
            _child: child,
            input,
            output,
        })
    })
}

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let path = format!("{REPO}/tests/vectors/seal/pki/root.pem");
        let bundle = TrustBundle::read(std::path::Path::new(&path)).expect("the vectors' root");
        Policy::new(
            TrustDomain::new("example.org").expect("a trust domain"),
            bundle,
        )
    })
}

fn ours(data: &[u8]) -> String {
    match TaskRun::parse(data) {
        Err(e) => e.code().to_owned(),
        Ok(taskrun) => match verify(&taskrun, policy()) {
            Ok(_) => "verified".to_owned(),
            Err(rejection) => rejection.code().to_owned(),
        },
    }
}

fn theirs(data: &[u8]) -> String {
    let mut python = python().lock().expect("the Python verifier's lock");
    let len = u32::try_from(data.len()).expect("a fuzz input fits u32");
    python
        .input
        .write_all(&len.to_le_bytes())
        .expect("write to Python");
    python.input.write_all(data).expect("write to Python");
    python.input.flush().expect("write to Python");
    let mut line = String::new();
    python
        .output
        .read_line(&mut line)
        .expect("read from Python");
    assert!(!line.is_empty(), "the Python verifier exited");
    line.trim_end().to_owned()
}

fuzz_target!(init: {
    // Start the Python verifier before the first input, so its start-up (importing
    // cryptography) is not timed as that input's.
    let _ = theirs(b"");
}, |data: &[u8]| {
    yaml_panics::let_the_verifier_catch_yaml_panics();
    let ours = ours(data);
    let theirs = theirs(data);
    if theirs == "verifier.tekton-format-unsupported" {
        return;
    }
    assert_eq!(
        ours,
        theirs,
        "verdicts differ on {:?}",
        String::from_utf8_lossy(data)
    );
});
