#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! TaskRuns signed by an independent implementation (tests/python, with Python's
//! `cryptography`), each pristine or differing from a pristine one in one property, run
//! through the `tekton-spire verify` binary: the exit code and the reason's code must be
//! the ones the manifests expect — tests/fixtures/legacy (Tekton's format) and
//! tests/vectors/seal (the seal's test vectors, docs/seal-format.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    taskrun: String,
    bundles: Vec<String>,
    trust_domain: String,
    expect: String,
    reason: Option<String>,
    #[serde(default)]
    args: Vec<String>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy")
}

fn seal_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/seal")
}

fn verify(
    dir: &Path,
    taskrun: &str,
    bundles: &[String],
    trust_domain: &str,
    extra: &[&str],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tekton-spire"));
    cmd.current_dir(dir).args([
        "verify",
        "--output",
        "json",
        "--accept-tekton-format",
        "--taskrun",
        taskrun,
        "--trust-domain",
        trust_domain,
    ]);
    for b in bundles {
        cmd.args(["--bundle", b]);
    }
    cmd.args(extra).output().expect("run tekton-spire")
}

fn verdict(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs every case of a manifest; fails listing every case whose verdict differs.
fn check_manifest(dir: &Path, minimum: usize) {
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest.cases.len() >= minimum,
        "the attack suite is missing cases"
    );
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = verify(dir, &case.taskrun, &case.bundles, &case.trust_domain, &args);
        let v = verdict(&out);
        let (want_exit, want_verdict) = match case.expect.as_str() {
            "accept" => (0, "verified"),
            "reject" => (1, "rejected"),
            "invalid" => (2, "invalid"),
            other => panic!("case {}: unknown expectation {other}", case.name),
        };
        let got_code = v["reason"]["code"].as_str().map(str::to_owned);
        if out.status.code() != Some(want_exit)
            || v["verdict"] != want_verdict
            || got_code != case.reason
        {
            failures.push(format!(
                "{}: expected {} {:?}, got exit {:?} {}",
                case.name,
                case.expect,
                case.reason,
                out.status.code(),
                v
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_tekton_format_fixture_gets_the_verdict_and_reason_the_manifest_expects() {
    check_manifest(&fixtures(), 40);
}

#[test]
fn every_seal_test_vector_gets_the_verdict_and_reason_the_manifest_expects() {
    check_manifest(&seal_vectors(), 60);
}

#[test]
fn a_verified_tekton_taskrun_reports_format_identity_and_time() {
    let out = verify(
        &fixtures(),
        "pristine-v1-json.json",
        &["pki/root.pem".into()],
        "example.org",
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let v = verdict(&out);
    assert_eq!(v["format"], "tekton");
    assert_eq!(
        v["spiffeId"],
        "spiffe://example.org/ns/default/taskrun/build-abc"
    );
    assert_eq!(v["signedAt"], "2025-06-01T12:05:00Z");
}

#[test]
fn requiring_the_seal_rejects_the_tekton_format() {
    let out = verify(
        &fixtures(),
        "pristine-v1-json.json",
        &["pki/root.pem".into()],
        "example.org",
        &["--require-format", "seal"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["reason"]["code"], "format.not-allowed");
}

#[test]
fn an_oversized_taskrun_is_refused_with_exit_2_before_it_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    let file = std::fs::File::create(&path).unwrap();
    // A sparse 1 GiB file: reading it whole would take seconds and a gigabyte.
    file.set_len(1 << 30).unwrap();
    let out = verify(
        &fixtures(),
        path.to_str().unwrap(),
        &["pki/root.pem".into()],
        "example.org",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(verdict(&out)["reason"]["code"], "input.too-large");
}

#[test]
fn text_output_puts_the_reason_on_stderr_and_missing_files_exit_2() {
    let dir = fixtures();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tekton-spire"));
    let out = cmd
        .current_dir(&dir)
        .args([
            "verify",
            "--accept-tekton-format",
            "--taskrun",
            "tampered-string.json",
            "--bundle",
            "pki/root.pem",
            "--trust-domain",
            "example.org",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("rejected default/build-abc [signature.invalid]: "),
        "{stderr}"
    );

    let out = verify(
        &dir,
        "no-such-file.json",
        &["pki/root.pem".into()],
        "example.org",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(verdict(&out)["reason"]["code"], "input.read");

    let out = verify(
        &dir,
        "pristine-v1-json.json",
        &["pki/no-such.pem".into()],
        "example.org",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(verdict(&out)["reason"]["code"], "bundle.invalid");

    let out = verify(
        &dir,
        "pristine-v1-json.json",
        &["pki/root.pem".into()],
        "Bad_TD!",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_taskrun_can_come_from_standard_input() {
    let dir = fixtures();
    let input = std::fs::File::open(dir.join("pristine-v1-yaml.yaml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
        .current_dir(&dir)
        .args([
            "verify",
            "--accept-tekton-format",
            "--taskrun",
            "-",
            "--bundle",
            "pki/root.pem",
            "--trust-domain",
            "example.org",
        ])
        .stdin(input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_completion_time_at_the_end_of_representable_time_is_judged_not_a_crash() {
    let dir = seal_vectors();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("pristine-v1-json.json")).unwrap()).unwrap();
    doc["status"]["completionTime"] = "9999-12-31T23:59:59Z".into();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("far-future.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = verify(
        &dir,
        path.to_str().unwrap(),
        &["pki/root.pem".into()],
        "example.org",
        &[],
    );
    // The seal was made within the run, so the far bound does not matter: verified.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tekton_format_is_rejected_unless_accepted_and_its_weaknesses_are_named_when_it_is() {
    let dir = fixtures();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
            .current_dir(&dir)
            .args([
                "verify",
                "--taskrun",
                "pristine-v1-json.json",
                "--bundle",
                "pki/root.pem",
                "--trust-domain",
                "example.org",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let default = run(&[]);
    assert_eq!(default.status.code(), Some(1), "the seal alone by default");
    let stderr = String::from_utf8_lossy(&default.stderr);
    assert!(
        stderr.starts_with("rejected default/build-abc [format.not-allowed]"),
        "{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    let accepted = run(&["--accept-tekton-format"]);
    assert_eq!(accepted.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&accepted.stderr);
    for weakness in ["result names", "UID", "comma", "leaf"] {
        assert!(stderr.contains(weakness), "{weakness}: {stderr}");
    }
    // Two TaskRuns accepted in Tekton's format: two verdicts, the weaknesses named once.
    let twice = run(&[
        "--accept-tekton-format",
        "--taskrun",
        "pristine-v1-json.json",
    ]);
    assert_eq!(twice.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&twice.stdout).lines().count(), 2);
    assert_eq!(
        String::from_utf8_lossy(&twice.stderr)
            .matches("warning:")
            .count(),
        1
    );
    assert_eq!(run(&["--require-format", "tekton"]).status.code(), Some(0));
    assert_eq!(
        run(&["--accept-tekton-format", "--require-format", "seal"])
            .status
            .code(),
        Some(1)
    );
}
