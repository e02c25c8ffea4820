//! The whole flow on a real node with real Tekton Pipelines v1.15.1 (installed from its own
//! release configuration by scripts/tekton-install.sh): Tekton creates the pods, SPIRE's
//! agent attests the signing container through the kubelet, the controller judges what
//! Tekton wrote. README's "Sign in a Task" is what these tests run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tekton_spire_testbed::node::{Node, Tekton};

const TRUST_DOMAIN: &str = "example.org";
const WAIT: Duration = Duration::from_secs(180);

fn node() -> (&'static Node, std::sync::MutexGuard<'static, ()>) {
    let (node, turn) = Node::serial();
    if let Err(e) = node.tekton(Tekton::Running) {
        panic!("cannot run Tekton on the node: {e:#}");
    }
    (node, turn)
}

fn json_of(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))
}

fn namespace(node: &Node, name: &str) -> anyhow::Result<String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let ns = format!("{name}-{:05x}", nanos & 0xfffff);
    node.kubectl(&["create", "namespace", &ns])?;
    Ok(ns)
}

/// Creates a TaskRun from a file of deploy/ (generateName) and waits until Tekton is done
/// with it and the controller has judged it; the TaskRun.
fn run_to_verdict(node: &Node, ns: &str, taskrun_file: &str) -> anyhow::Result<Value> {
    let created = node.kubectl(&[
        "create",
        "-n",
        ns,
        "-f",
        &node.asset(taskrun_file).to_string_lossy(),
        "-o",
        "name",
    ])?;
    let name = created
        .trim()
        .trim_start_matches("taskrun.tekton.dev/")
        .to_owned();
    node.wait_for(&format!("TaskRun {name} done and judged"), WAIT, || {
        let tr = json_of(&node.kubectl(&["-n", ns, "get", "taskrun", &name, "-o", "json"])?)?;
        let judged = tr["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "SignedResultsVerified"));
        Ok(judged.then_some(tr))
    })
}

fn condition<'a>(taskrun: &'a Value, kind: &str) -> &'a Value {
    taskrun["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// `kubectl get taskrun NAME -o json | tekton-spire verify --taskrun - …` with the bundle
/// fetched as README says; the exit code and what it printed.
fn verify(node: &Node, ns: &str, name: &str) -> anyhow::Result<(i32, String)> {
    let dir = tempfile::tempdir()?;
    let bundle = node.trust_bundle_pem()?;
    std::fs::write(dir.path().join("bundle.pem"), bundle)?;
    let taskrun = node.kubectl(&["-n", ns, "get", "taskrun", name, "-o", "json"])?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
        .args(["verify", "--taskrun", "-", "--bundle"])
        .arg(dir.path().join("bundle.pem"))
        .args(["--trust-domain", TRUST_DOMAIN])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(
        &mut child.stdin.take().context("stdin")?,
        taskrun.as_bytes(),
    )?;
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn the_example_task_runs_as_shipped_is_sealed_judged_and_verified_and_a_forgery_is_rejected()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = namespace(node, "example")?;
    node.kubectl(&[
        "apply",
        "-n",
        &ns,
        "-k",
        &node.asset("tests/cluster/example").to_string_lossy(),
    ])?;
    let tr = run_to_verdict(node, &ns, "deploy/example/taskrun.yaml")?;
    let name = tr["metadata"]["name"].as_str().context("name")?.to_owned();
    assert_eq!(
        condition(&tr, "Succeeded")["status"],
        "True",
        "{}",
        tr["status"]
    );
    let verdict = condition(&tr, "SignedResultsVerified");
    assert_eq!(verdict["status"], "True", "{verdict}");
    assert_eq!(verdict["reason"], "TaskRunResultsVerified");
    let results: Vec<&str> = tr["status"]["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(results, ["IMAGE_DIGEST", "tags", "TEKTON_SPIRE_SEAL"]);
    let (code, out) = verify(node, &ns, &name)?;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/taskrun/{name}")),
        "{out}"
    );

    // A status forged after completion (the `taskruns/status` writer the threat model distrusts).
    let mut forged = tr["status"]["results"].clone();
    forged[0]["value"] = json!(format!("sha256:{}", "f".repeat(64)));
    node.kubectl(&[
        "-n",
        &ns,
        "patch",
        "taskrun",
        &name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({"status": {"results": forged}}).to_string(),
    ])?;
    let judged = node.wait_for("the verdict on the forged status", WAIT, || {
        let tr = json_of(&node.kubectl(&["-n", &ns, "get", "taskrun", &name, "-o", "json"])?)?;
        let verdict = condition(&tr, "SignedResultsVerified").clone();
        Ok((verdict["status"] == "False").then_some(verdict))
    })?;
    assert_eq!(judged["reason"], "TaskRunResultsVerificationFailed");
    let (code, out) = verify(node, &ns, &name)?;
    assert_eq!(code, 1, "{out}");
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn an_earlier_step_running_the_same_helper_gets_no_identity_while_the_signing_step_does()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = namespace(node, "steps")?;
    // The example Task with one more step before `sign`: the same helper, the same volume,
    // the same arguments. `onError: continue` lets the TaskRun go on to the signing step.
    let task = json_of(
        &node
            .kubectl(&[
                "kustomize",
                &node.asset("tests/cluster/example").to_string_lossy(),
            ])
            .and_then(|yaml| {
                node.kubectl_stdin(
                    &["create", "--dry-run=client", "-o", "json", "-f", "-"],
                    &yaml,
                )
            })?,
    )?;
    let mut task = task;
    task["metadata"]["namespace"] = json!(ns);
    let steps = task["spec"]["steps"].as_array_mut().context("steps")?;
    let mut probe = steps.last().context("the sign step")?.clone();
    probe["name"] = json!("probe");
    probe["onError"] = json!("continue");
    let args = probe["args"].as_array_mut().context("args")?;
    args.push(json!("--timeout=20"));
    steps.insert(1, probe);
    node.kubectl_stdin(&["apply", "-n", &ns, "-f", "-"], &task.to_string())?;
    let tr = run_to_verdict(node, &ns, "deploy/example/taskrun.yaml")?;
    let name = tr["metadata"]["name"].as_str().context("name")?.to_owned();
    assert_eq!(
        condition(&tr, "SignedResultsVerified")["status"],
        "True",
        "{}",
        tr["status"]
    );
    let probe_state = tr["status"]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "probe"))
        .context("the probe step's state")?;
    assert_ne!(
        probe_state["terminated"]["exitCode"], 0,
        "the probe step got an identity: {probe_state}"
    );
    let pod = tr["status"]["podName"].as_str().context("podName")?;
    let log = node.kubectl(&["-n", &ns, "logs", pod, "-c", "step-probe"])?;
    assert!(
        !log.contains("received X.509-SVID"),
        "the probe step received an SVID: {log}"
    );
    assert!(
        log.contains("no X.509-SVID was issued")
            || log.contains(&format!(
                "got [\"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/default\"]"
            )),
        "the probe step may hold at most the pod's default identity: {log}"
    );
    let (code, out) = verify(node, &ns, &name)?;
    assert_eq!(code, 0, "{out}");
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}
