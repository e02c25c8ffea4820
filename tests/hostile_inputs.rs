#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Inputs built to stall or exhaust the verifier, run through the `tekton-spire verify`
//! binary under a wall-clock watchdog and an address-space limit, both far above the
//! goal (100 ms and 64 MiB, measured by scripts/bench-hostile.py): a verifier that reads
//! any of them in time or memory beyond linear is killed and the test fails, instead of
//! hanging the suite. The verdict itself must be the specified one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above the goal: the old reader needed hours for some of these.
const WATCHDOG: Duration = Duration::from_secs(20);
/// Address space allowed to the verifier, in KiB (`ulimit -v`): 1 GiB.
const ADDRESS_SPACE_KIB: u64 = 1024 * 1024;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/seal")
}

/// Runs `tekton-spire verify --output json` on `document` with the seal vectors' root;
/// returns the exit code and the JSON verdict.
fn verify_bounded(document: &[u8]) -> (Option<i32>, serde_json::Value) {
    verify_within(document, ADDRESS_SPACE_KIB)
}

/// As [`verify_bounded`], with `address_space_kib` of address space.
fn verify_within(document: &[u8], address_space_kib: u64) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taskrun");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(document)
        .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {address_space_kib} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_tekton-spire"))
        .args([
            "verify",
            "--output",
            "json",
            "--trust-domain",
            "example.org",
        ])
        .arg("--bundle")
        .arg(vectors().join("pki/root.pem"))
        .arg("--taskrun")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let verdict = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
                panic!(
                    "no JSON verdict (exit {status}); stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            return (status.code(), verdict);
        }
        if started.elapsed() > WATCHDOG {
            child.kill().unwrap();
            panic!("the verifier was still reading after {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_invalid(document: &[u8], code: &str) {
    let (exit, verdict) = verify_bounded(document);
    assert_eq!(exit, Some(2), "{verdict}");
    assert_eq!(verdict["reason"]["code"], code, "{verdict}");
}

fn pristine() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(vectors().join("pristine-v1-json.json")).unwrap())
        .unwrap()
}

#[test]
fn json_nested_far_beyond_the_limit_is_refused_before_any_other_work() {
    // 400 KB, an eighth of the size limit: the old reader let JSON this deep fall
    // through to its YAML reader, whose cost grows with the square of the depth.
    let depth = 200_000;
    let doc = format!(r#"{{"a": {}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    assert_invalid(doc.as_bytes(), "input.syntax");
}

#[test]
fn yaml_nested_far_beyond_the_limit_is_refused_before_any_other_work() {
    let depth = 200_000;
    let doc = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    assert_invalid(doc.as_bytes(), "input.syntax");
}

#[test]
fn yaml_aliases_that_would_expand_a_hundred_million_nodes_are_refused() {
    // 300 KB that the old reader, bounding dereferences only, expanded to 10^8 nodes.
    let mut doc = String::from("apiVersion: tekton.dev/v1\nkind: TaskRun\na: &a [");
    doc.push_str(&vec!["x"; 1000].join(","));
    doc.push_str("]\nb: [");
    doc.push_str(&vec!["*a"; 100_000].join(","));
    doc.push_str("]\n");
    assert_invalid(doc.as_bytes(), "input.syntax");
}

#[test]
fn the_same_hostile_input_in_a_real_taskrun_does_not_hide_behind_a_valid_seal() {
    // A sealed TaskRun with a deep member the verifier does not otherwise read.
    let mut doc = pristine();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let text = serde_json::to_string(&doc).unwrap();
    let hostile = text.replacen("{", &format!("{{\"x\": {deep},"), 1);
    assert_invalid(hostile.as_bytes(), "input.syntax");
    // The document without it verifies: the refusal is the nesting's.
    doc["x"] = serde_json::json!([[[]]]);
    let (exit, verdict) = verify_bounded(serde_json::to_string(&doc).unwrap().as_bytes());
    assert_eq!(exit, Some(0), "{verdict}");
}

#[test]
fn a_taskrun_too_large_for_one_document_is_refused_without_keeping_its_values() {
    // The command reads a file as a possible List, up to 64 MiB. A TaskRun of 32 MiB
    // whose result value holds 8 million one-letter strings kept them all (about 670 MiB
    // of address space) before it was refused; it is now read as a List would be, keeping
    // none of its own metadata and status, and refused in the address space of the text.
    let mut doc = pristine();
    doc["status"]["results"][0]["value"] = serde_json::json!(["a"]);
    let text = serde_json::to_string(&doc).unwrap();
    let size = 32 * 1024 * 1024;
    let count = (size - text.len()) / 4;
    let hostile = text.replacen(
        r#""value":["a"]"#,
        &format!(r#""value":["a"{}]"#, r#","a""#.repeat(count)),
        1,
    );
    assert!(hostile.len() > size - 4, "{}", hostile.len());
    let (exit, verdict) = verify_within(hostile.as_bytes(), 512 * 1024);
    assert_eq!(exit, Some(2), "{verdict}");
    assert_eq!(verdict["reason"]["code"], "input.too-large", "{verdict}");
}

/// The pristine sealed TaskRun as YAML, with a top-level member `x` (which the verifier
/// does not read) holding `value`, padded with a comment to exactly `size` bytes.
fn yaml_of_size(value: &str, size: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(vectors().join("pristine-v1-yaml.yaml")).unwrap();
    let mut doc = format!("{text}x: {value}\n");
    let pad = size - doc.len() - 2;
    doc.push_str(&format!("#{}\n", "a".repeat(pad)));
    assert_eq!(doc.len(), size);
    doc.into_bytes()
}

#[test]
fn yaml_up_to_its_size_limit_is_judged_and_one_byte_more_is_too_large() {
    // 512 KiB (docs/seal-format.md, 9.1): libyaml's scanner is several times slower per
    // byte than the JSON reader, which reads the same object up to 3 MiB.
    let limit = 512 * 1024;
    let (exit, verdict) = verify_bounded(&yaml_of_size("a", limit));
    assert_eq!(exit, Some(0), "{verdict}");
    assert_invalid(&yaml_of_size("a", limit + 1), "input.too-large");
    // The same object as JSON, one byte over the YAML limit, is judged.
    let mut doc = pristine();
    let skeleton = serde_json::to_string(&doc).unwrap().len() + r#","x":"""#.len();
    doc["x"] = serde_json::json!("a".repeat(limit + 1 - skeleton));
    let json = serde_json::to_string(&doc).unwrap();
    assert_eq!(json.len(), limit + 1);
    let (exit, verdict) = verify_bounded(json.as_bytes());
    assert_eq!(exit, Some(0), "{verdict}");
}

#[test]
fn yaml_flow_collections_nested_sixteen_deep_are_judged_and_seventeen_refused() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let (exit, verdict) = verify_bounded(&yaml_of_size(&nested(16), 8192));
    assert_eq!(exit, Some(0), "{verdict}");
    assert_invalid(&yaml_of_size(&nested(17), 8192), "input.syntax");
    // Only flow collections count: 100 block sequences around them do not.
    let in_block = format!("\n{}{}", "- ".repeat(100), nested(16));
    let (exit, verdict) = verify_bounded(&yaml_of_size(&in_block, 8192));
    assert_eq!(exit, Some(0), "{verdict}");
}
