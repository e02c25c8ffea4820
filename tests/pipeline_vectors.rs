#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! PipelineRuns and their TaskRuns sealed by an independent implementation (the Python
//! signer, tests/python/gen_pipeline_vectors.py), each pristine or differing from the
//! pristine one in one property, run through `tekton-spire verify --pipelinerun`: the exit
//! code and the reason's code must be the ones tests/vectors/pipeline/manifest.json
//! expects (docs/pipelinerun.md). The Python verifier runs the same manifest.

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
    pipelinerun: String,
    taskruns: Vec<String>,
    bundles: Vec<String>,
    trust_domain: String,
    args: Vec<String>,
    expect: String,
    reason: Option<String>,
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/pipeline")
}

fn manifest() -> Manifest {
    serde_json::from_slice(&std::fs::read(vectors().join("manifest.json")).unwrap()).unwrap()
}

fn run(case: &Case, output: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tekton-spire"));
    cmd.current_dir(vectors())
        .args([
            "verify",
            "-o",
            output,
            "--pipelinerun",
            &case.pipelinerun,
            "--taskrun",
        ])
        .args(&case.taskruns)
        .args(["--trust-domain", &case.trust_domain]);
    for b in &case.bundles {
        cmd.args(["--bundle", b]);
    }
    cmd.args(&case.args).output().unwrap()
}

fn case(name: &str) -> Case {
    manifest()
        .cases
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn every_pipeline_vector_gets_the_verdict_and_reason_the_manifest_expects() {
    let manifest = manifest();
    assert!(
        manifest.cases.len() >= 30,
        "the attack suite is missing cases"
    );
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let out = run(case, "json");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not one JSON object ({e}): {}",
                case.name,
                String::from_utf8_lossy(&out.stdout)
            )
        });
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
                v["reason"]
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
fn a_verified_pipelinerun_names_each_results_sources_and_each_childs_verdict() {
    let out = run(&case("pristine"), "json");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schemaVersion"], 1);
    assert_eq!(v["pipelineRun"]["name"], "release");
    assert_eq!(
        v["pipelineRun"]["uid"],
        "3f0b9d4e-7a21-4c6e-9b58-1e2d3c4b5a69"
    );
    let children = v["taskRuns"].as_array().unwrap();
    assert_eq!(children.len(), 5);
    assert!(
        children
            .iter()
            .all(|c| c["verdict"] == "verified" && c["schemaVersion"] == 1)
    );
    assert_eq!(children[2]["pipelineTask"], "test");
    assert_eq!(children[2]["source"]["item"], 2);
    let reports = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "REPORTS")
        .unwrap();
    assert_eq!(reports["outcome"], "verified");
    assert_eq!(
        reports["sources"][0]["taskRuns"],
        serde_json::json!(["release-test-0", "release-test-1"])
    );
}

#[test]
fn a_rejected_child_is_named_with_its_own_reason_in_text_output() {
    let out = run(&case("child-forged"), "text");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("taskrun default/release-build (task build): rejected [signature.invalid]"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("rejected pipelinerun default/release [pipeline.child-rejected]"),
        "{stderr}"
    );
}

#[test]
fn an_allowed_unverifiable_result_is_reported_as_such() {
    let out = run(&case("custom-task-result-allowed"), "json");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let approver = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "APPROVER")
        .unwrap();
    assert_eq!(approver["outcome"], "unverifiable");
}
