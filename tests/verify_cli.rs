#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `tekton-spire verify` on what users hold: Lists as kubectl prints them (JSON and YAML),
//! several files, one verdict per TaskRun with the worst exit code; and the CLI's manners:
//! `-o`, usage errors as JSON under `-o json`, `--version`, completions and man pages.
//! The TaskRuns are the seal test vectors (sealed by the independent Python signer).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/seal")
}

fn vector(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(vectors().join(name)).unwrap()).unwrap()
}

fn kubectl_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

fn tekton_spire(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn verify(dir: &Path, files: &[&str], extra: &[&str]) -> Output {
    let root = vectors().join("pki/root.pem");
    let mut args = vec!["verify", "--taskrun"];
    args.extend(files);
    args.extend([
        "--bundle",
        root.to_str().unwrap(),
        "--trust-domain",
        "example.org",
    ]);
    args.extend(extra);
    tekton_spire(dir, &args)
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_kubectl_list_gets_one_verdict_per_taskrun_and_the_worst_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let list = kubectl_list(vec![
        vector("pristine-v1-json.json"),
        vector("tampered-string.json"),
        vector("duplicate-result-name.json"),
    ]);
    std::fs::write(tmp.path().join("list.json"), list.to_string()).unwrap();
    let out = verify(tmp.path(), &["list.json"], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    let verdicts: Vec<&str> = lines
        .iter()
        .map(|v| v["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["verified", "rejected", "rejected"]);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["schemaVersion"], 1);
        assert_eq!(v["source"], json!({"file": "list.json", "item": i}));
        assert_eq!(v["taskRun"]["namespace"], "default");
        assert_eq!(v["taskRun"]["name"], "build-abc");
        assert_eq!(v["taskRun"]["uid"], "6c1f3a0e-2b7d-4e59-9a41-8d2f0c5b7e13");
    }
    assert_eq!(lines[1]["reason"]["code"], "signature.invalid");
    assert_eq!(lines[2]["reason"]["code"], "status.malformed");
}

#[test]
fn a_yaml_list_reads_like_the_json_list_and_text_output_names_each_taskrun() {
    let tmp = tempfile::tempdir().unwrap();
    let list = kubectl_list(vec![
        vector("pristine-v1-json.json"),
        vector("other-namespace.json"),
    ]);
    std::fs::write(
        tmp.path().join("list.yaml"),
        serde_yaml_ng::to_string(&list).unwrap(),
    )
    .unwrap();
    let out = verify(tmp.path(), &["list.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("verified default/build-abc: 4 result(s)"),
        "{stdout}"
    );
    assert!(
        stderr.starts_with("rejected prod/build-abc [identity.mismatch]: "),
        "{stderr}"
    );
}

#[test]
fn an_item_that_is_not_a_taskrun_is_invalid_and_the_others_are_still_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let list = kubectl_list(vec![vector("pristine-v1-json.json"), pod]);
    std::fs::write(tmp.path().join("list.json"), list.to_string()).unwrap();
    let out = verify(tmp.path(), &["list.json"], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["verdict"], "verified");
    assert_eq!(lines[1]["verdict"], "invalid");
    assert_eq!(lines[1]["reason"]["code"], "input.not-taskrun");
    assert_eq!(lines[1]["source"], json!({"file": "list.json", "item": 1}));
    assert_eq!(lines[1]["taskRun"], Value::Null);
}

#[test]
fn an_empty_list_is_not_a_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("list.json"),
        kubectl_list(vec![]).to_string(),
    )
    .unwrap();
    let out = verify(tmp.path(), &["list.json"], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_lines(&out)[0]["reason"]["code"], "input.not-taskrun");
}

#[test]
fn several_files_are_judged_in_order_single_taskruns_without_an_item_index() {
    let dir = vectors();
    let out = verify(
        &dir,
        &["pristine-v1-json.json", "pristine-v1-yaml.yaml"],
        &["--taskrun", "no-such-file.json", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0]["source"],
        json!({"file": "pristine-v1-json.json", "item": null})
    );
    assert_eq!(lines[1]["verdict"], "verified");
    assert_eq!(lines[2]["verdict"], "invalid");
    assert_eq!(lines[2]["reason"]["code"], "input.read");
}

#[test]
fn usage_errors_are_json_under_dash_o_json_and_plain_otherwise() {
    let dir = vectors();
    for extra in [
        &["-o", "json", "--no-such-flag"][..],
        &["--output=json", "--clock-skew", "-1"],
    ] {
        let out = verify(&dir, &["pristine-v1-json.json"], extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["verdict"], "invalid");
        assert_eq!(lines[0]["reason"]["code"], "usage");
        assert_eq!(lines[0]["schemaVersion"], 1);
    }
    let out = verify(&dir, &["pristine-v1-json.json"], &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    // --unverifiable-results belongs to --pipelinerun.
    let out = verify(
        &dir,
        &["pristine-v1-json.json"],
        &["--unverifiable-results", "allow", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_lines(&out)[0]["reason"]["code"], "usage");
}

#[test]
fn each_binary_names_itself_in_its_version() {
    let version = env!("CARGO_PKG_VERSION");
    let out = tekton_spire(&vectors(), &["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tekton-spire {version}")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tekton-spire-sign"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tekton-spire-sign {version}")
    );
}

#[test]
fn completions_and_man_pages_come_from_the_flag_definitions() {
    let dir = vectors();
    for shell in ["bash", "zsh", "fish"] {
        let out = tekton_spire(&dir, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("pipelinerun") && script.contains("unverifiable-results"),
            "{shell}"
        );
    }
    let out = tekton_spire(&dir, &["completions", "bash", "--bin", "tekton-spire-sign"]);
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("--taskrun-uid") && script.contains("--taskrun-retry-count"));

    let tmp = tempfile::tempdir().unwrap();
    let out = tekton_spire(&dir, &["man", "--dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    for page in [
        "tekton-spire.1",
        "tekton-spire-verify.1",
        "tekton-spire-controller.1",
        "tekton-spire-sign.1",
    ] {
        let text = std::fs::read_to_string(tmp.path().join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    let verify_page = std::fs::read_to_string(tmp.path().join("tekton-spire-verify.1")).unwrap();
    assert!(verify_page.contains("unverifiable\\-results"));
    assert!(
        verify_page.contains(".TH tekton\\-spire\\-verify")
            || verify_page.contains(".TH tekton-spire-verify")
    );
}

/// Tekton's retry, then the copy: a TaskRun retried once (attempt 0's sealed status in
/// `status.retriesStatus`, attempt 1 sealed in the status) verifies; moving attempt 0's
/// sealed results, seal and run times into the status, which whoever writes
/// `taskruns/status` can do, is rejected for the attempt it names, and so is a sealv1,
/// which binds none, on a retried TaskRun.
#[test]
fn a_sealed_result_copied_from_retries_status_into_the_final_status_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let retried = vector("retried-pristine.json");
    let earlier = retried["status"]["retriesStatus"][0].clone();
    let seal_of = |results: &Value| {
        results
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "TEKTON_SPIRE_SEAL")
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(seal_of(&retried["status"]["results"]).starts_with("sealv2.1."));
    assert!(seal_of(&earlier["results"]).starts_with("sealv2.0."));
    let mut copied = retried.clone();
    for field in ["results", "startTime", "completionTime"] {
        copied["status"][field] = earlier[field].clone();
    }
    let mut earlier_alone = copied.clone();
    earlier_alone["status"]
        .as_object_mut()
        .unwrap()
        .remove("retriesStatus");
    for (file, doc) in [
        ("retried.json", &retried),
        ("copied.json", &copied),
        ("earlier-alone.json", &earlier_alone),
    ] {
        std::fs::write(tmp.path().join(file), doc.to_string()).unwrap();
    }
    let judge = |file: &str| {
        let out = verify(tmp.path(), &[file], &["-o", "json"]);
        let line = json_lines(&out).remove(0);
        (out.status.code(), line)
    };

    let (code, line) = judge("retried.json");
    assert_eq!(
        (code, line["verdict"].as_str()),
        (Some(0), Some("verified"))
    );
    let (code, line) = judge("copied.json");
    assert_eq!(code, Some(1), "{line}");
    assert_eq!(line["reason"]["code"], "seal.attempt-mismatch");
    let message = line["reason"]["message"].as_str().unwrap();
    assert!(
        message.contains("attempt 0") && message.contains("attempt 1"),
        "{message}"
    );
    // Attempt 0's seal itself is sound: with the history dropped as well, it verifies
    // (the limit docs/seal-format.md names in its security considerations).
    let (code, _) = judge("earlier-alone.json");
    assert_eq!(code, Some(0));

    let out = verify(
        &vectors(),
        &["sealv1-on-retried-taskrun.json"],
        &["-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_lines(&out)[0]["reason"]["code"],
        "seal.attempt-unbound"
    );
}
