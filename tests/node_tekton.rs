//! The whole flow on a real node with real Tekton Pipelines v1.15.1 (installed from its own
//! release configuration by scripts/tekton-install.sh): Tekton creates the pods, SPIRE's
//! agent attests the signing container through the kubelet, the controller judges what
//! Tekton wrote. README's "Sign in a Task" is what these tests run: deploy/example as
//! shipped, the signing step as a StepAction, a step other than `sign` refused an
//! identity, a forged status, retries, cancellation, timeout and deletion mid-run, results
//! carried by sidecar logs, Tekton's own `enforce-nonfalsifiability` beside us, and twenty
//! TaskRuns at once. What each test asserts is what a user checks: the TaskRun's
//! conditions, `tekton-spire verify`'s exit code, and the entries left on the SPIRE server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tekton_spire_testbed::node::{ENTRY_PREFIX, Node, Tekton, condition};

const TRUST_DOMAIN: &str = "example.org";
const WAIT: Duration = Duration::from_secs(240);

fn node() -> (&'static Node, std::sync::MutexGuard<'static, ()>) {
    let (node, turn) = Node::serial();
    if let Err(e) = node.tekton(Tekton::Running) {
        panic!("cannot run Tekton on the node: {e:#}");
    }
    (node, turn)
}

fn cli() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tekton-spire"))
}

/// The example Task of deploy/example as the test overlay renders it (busybox built here),
/// as JSON, in namespace `ns`.
fn example_task(node: &Node, ns: &str) -> anyhow::Result<Value> {
    let yaml = node.kubectl(&[
        "kustomize",
        &node.asset("tests/cluster/example").to_string_lossy(),
    ])?;
    let mut task: Value = serde_json::from_str(&node.kubectl_stdin(
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        &yaml,
    )?)?;
    task["metadata"]["namespace"] = json!(ns);
    Ok(task)
}

/// deploy/example as a user applies it to namespace `ns`, busybox mapped to the image
/// built here (tests/cluster/example).
fn apply_example(node: &Node, ns: &str) -> anyhow::Result<()> {
    node.kubectl(&[
        "apply",
        "-n",
        ns,
        "-k",
        &node.asset("tests/cluster/example").to_string_lossy(),
    ])
    .map(drop)
}

/// deploy/example/taskrun.yaml as JSON, in namespace `ns`, changed by `edit`.
fn example_taskrun(node: &Node, ns: &str, edit: impl FnOnce(&mut Value)) -> anyhow::Result<Value> {
    let mut taskrun = node.json(&[
        "create",
        "--dry-run=client",
        "-f",
        &node.asset("deploy/example/taskrun.yaml").to_string_lossy(),
    ])?;
    taskrun["metadata"]["namespace"] = json!(ns);
    edit(&mut taskrun);
    Ok(taskrun)
}

/// Creates the objects at once (one `kubectl create` of a List); their names.
fn create(node: &Node, objects: Vec<Value>) -> anyhow::Result<Vec<String>> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let out = node.kubectl_stdin(&["create", "-f", "-", "-o", "name"], &list.to_string())?;
    Ok(out
        .lines()
        .map(|l| l.rsplit('/').next().unwrap_or(l).to_owned())
        .collect())
}

/// Waits until Tekton is done with the TaskRun and the controller has judged it.
fn judged(node: &Node, ns: &str, name: &str) -> anyhow::Result<Value> {
    node.wait_for(
        &format!("TaskRun {ns}/{name} done and judged"),
        WAIT,
        || {
            let tr = node.taskrun(ns, name)?;
            let done = condition(&tr, "Succeeded")["status"] != "Unknown"
                && !condition(&tr, "Succeeded").is_null();
            let judged = !condition(&tr, "SignedResultsVerified").is_null();
            Ok((done && judged).then_some(tr))
        },
    )
}

/// Asserts what a user checks on a sealed TaskRun: it succeeded, the verdict is True, and
/// `tekton-spire verify` exits 0 naming the TaskRun's SPIFFE ID.
fn assert_sealed_and_verified(node: &Node, ns: &str, tr: &Value) -> anyhow::Result<()> {
    let name = tr["metadata"]["name"].as_str().context("name")?;
    assert_eq!(
        condition(tr, "Succeeded")["status"],
        "True",
        "{}",
        tr["status"]
    );
    let verdict = condition(tr, "SignedResultsVerified");
    assert_eq!(verdict["status"], "True", "{ns}/{name}: {verdict}");
    assert_eq!(verdict["reason"], "TaskRunResultsVerified");
    let (code, out) = node.verify_taskrun(cli(), TRUST_DOMAIN, ns, name)?;
    assert_eq!(code, 0, "{ns}/{name}: {out}");
    assert!(
        out.contains(&format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/taskrun/{name}")),
        "{out}"
    );
    Ok(())
}

fn entries_gone(node: &Node, ns: &str, names: &[String]) -> anyhow::Result<()> {
    node.wait_for("every entry of the TaskRuns removed", WAIT, || {
        let mut left = 0;
        for name in names {
            left += node.taskrun_entries(TRUST_DOMAIN, ns, name)?.len();
        }
        Ok((left == 0).then_some(()))
    })
}

#[test]
fn the_example_task_runs_as_shipped_is_sealed_judged_and_verified_and_a_forgery_is_rejected()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("example")?;
    apply_example(node, &ns)?;
    let names = create(node, vec![example_taskrun(node, &ns, |_| {})?])?;
    let name = &names[0];
    let tr = judged(node, &ns, name)?;
    assert_sealed_and_verified(node, &ns, &tr)?;
    let results: Vec<&str> = tr["status"]["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(results, ["IMAGE_DIGEST", "tags", "TEKTON_SPIRE_SEAL"]);

    // A status forged after completion (the `taskruns/status` writer the threat model distrusts).
    let mut forged = tr["status"]["results"].clone();
    forged[0]["value"] = json!(format!("sha256:{}", "f".repeat(64)));
    node.patch_status(&ns, name, &json!({"status": {"results": forged}}))?;
    let verdict = node.wait_for("the verdict on the forged status", WAIT, || {
        let tr = node.taskrun(&ns, name)?;
        let verdict = condition(&tr, "SignedResultsVerified").clone();
        Ok((verdict["status"] == "False").then_some(verdict))
    })?;
    assert_eq!(verdict["reason"], "TaskRunResultsVerificationFailed");
    assert!(
        verdict["message"]
            .as_str()
            .is_some_and(|m| m.contains("signature.invalid")),
        "{verdict}"
    );
    let (code, out) = node.verify_taskrun(cli(), TRUST_DOMAIN, &ns, name)?;
    assert_eq!(code, 1, "{out}");
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn an_earlier_step_running_the_same_helper_gets_no_identity_while_the_signing_step_does()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("steps")?;
    // The example Task with one more step before `sign`: the same helper, the same volume,
    // the same arguments. `onError: continue` lets the TaskRun go on to the signing step.
    let mut task = example_task(node, &ns)?;
    let steps = task["spec"]["steps"].as_array_mut().context("steps")?;
    let mut probe = steps.last().context("the sign step")?.clone();
    probe["name"] = json!("probe");
    probe["onError"] = json!("continue");
    probe["args"]
        .as_array_mut()
        .context("args")?
        .push(json!("--timeout=20"));
    steps.insert(1, probe);
    node.kubectl_stdin(&["apply", "-f", "-"], &task.to_string())?;
    let names = create(node, vec![example_taskrun(node, &ns, |_| {})?])?;
    let tr = judged(node, &ns, &names[0])?;
    assert_sealed_and_verified(node, &ns, &tr)?;
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
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn the_signing_step_action_seals_a_task_that_was_not_forked() -> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("stepaction")?;
    // The StepAction as users install it, beside a Task written without tekton-spire in
    // mind, to which only what deploy/stepaction/sign.yaml asks for is added: the seal
    // result, the Workload API volume and the `sign` step that refers to the StepAction.
    node.kubectl(&[
        "apply",
        "-n",
        &ns,
        "-k",
        &node.asset("deploy/stepaction").to_string_lossy(),
    ])?;
    let task = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": {"name": "catalog-build", "namespace": ns},
        "spec": {
            "results": [
                {"name": "IMAGE_DIGEST", "type": "string"},
                {"name": "IMAGE_URL", "type": "string"},
                {"name": "TEKTON_SPIRE_SEAL", "type": "string"}
            ],
            "volumes": [{"name": "spiffe-workload-api",
                         "csi": {"driver": "csi.spiffe.io", "readOnly": true}}],
            "steps": [
                {"name": "build", "image": "tekton-spire.local/busybox:1",
                 "script": "printf 'sha256:%064d' 7 > $(results.IMAGE_DIGEST.path)\nprintf 'registry.example/app' > $(results.IMAGE_URL.path)\n"},
                {"name": "sign", "ref": {"name": "tekton-spire-sign"},
                 "params": [{"name": "results",
                             "value": ["IMAGE_DIGEST:string", "IMAGE_URL:string"]}]}
            ]
        }
    });
    node.kubectl_stdin(&["apply", "-f", "-"], &task.to_string())?;
    let names = create(
        node,
        vec![example_taskrun(node, &ns, |tr| {
            tr["spec"]["taskRef"]["name"] = json!("catalog-build");
        })?],
    )?;
    let tr = judged(node, &ns, &names[0])?;
    assert_sealed_and_verified(node, &ns, &tr)?;
    let results: Vec<&str> = tr["status"]["results"]
        .as_array()
        .context("results")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(results, ["IMAGE_DIGEST", "IMAGE_URL", "TEKTON_SPIRE_SEAL"]);
    entries_gone(node, &ns, &names)?;
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn cancelling_timing_out_or_deleting_a_running_taskrun_leaves_no_entry() -> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("lifecycle")?;
    // The example Task with a build step that outlives the test: the pod runs, its entry
    // exists, and the signing step never starts.
    let mut task = example_task(node, &ns)?;
    task["metadata"]["name"] = json!("slow-build-and-seal");
    task["spec"]["steps"][0]["script"] = json!("sleep 3600\n");
    node.kubectl_stdin(&["apply", "-f", "-"], &task.to_string())?;
    let slow = |timeout: &str| {
        example_taskrun(node, &ns, |tr| {
            tr["spec"]["taskRef"]["name"] = json!("slow-build-and-seal");
            tr["spec"]["timeout"] = json!(timeout);
        })
    };
    let names = create(node, vec![slow("1h")?, slow("45s")?, slow("1h")?])?;
    let [cancelled, timed_out, deleted] = [&names[0], &names[1], &names[2]];
    for name in &names {
        node.wait_for(&format!("the entry of {name}"), WAIT, || {
            Ok((!node.taskrun_entries(TRUST_DOMAIN, &ns, name)?.is_empty()).then_some(()))
        })?;
    }
    let deleted_pod = node.taskrun(&ns, deleted)?["status"]["podName"]
        .as_str()
        .context("the pod of the TaskRun to delete")?
        .to_owned();

    node.kubectl(&[
        "-n",
        &ns,
        "patch",
        "taskrun",
        cancelled,
        "--type=merge",
        "-p",
        r#"{"spec":{"status":"TaskRunCancelled"}}"#,
    ])?;
    node.kubectl(&["-n", &ns, "delete", "taskrun", deleted, "--wait=false"])?;

    // Each ends the way Tekton says, and no entry outlives it.
    for (name, reason) in [
        (cancelled, "TaskRunCancelled"),
        (timed_out, "TaskRunTimeout"),
    ] {
        let tr = node.wait_for(&format!("{name} to end"), WAIT, || {
            let tr = node.taskrun(&ns, name)?;
            Ok((condition(&tr, "Succeeded")["status"] == "False").then_some(tr))
        })?;
        assert_eq!(
            condition(&tr, "Succeeded")["reason"],
            reason,
            "{}",
            tr["status"]
        );
    }
    entries_gone(node, &ns, &names)?;
    node.wait_for("the deleted TaskRun's pod gone", WAIT, || {
        let pods = node.kubectl(&["-n", &ns, "get", "pods", "-o", "name"])?;
        Ok((!pods.contains(&deleted_pod)).then_some(()))
    })?;
    // Nothing about the deleted TaskRun is left on the server either: no entry of any
    // TaskRun of this namespace.
    let left: Vec<Value> = node
        .entries_with_prefix(ENTRY_PREFIX)?
        .into_iter()
        .filter(|e| {
            tekton_spire_testbed::node::spiffe_id_of(e)
                .starts_with(&format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/"))
        })
        .collect();
    assert!(left.is_empty(), "entries left: {left:?}");
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

/// A Tekton feature flag (ConfigMap tekton-pipelines/feature-flags) set for one test and
/// put back to Tekton's default when dropped, whatever the test did.
struct FeatureFlag<'a> {
    node: &'a Node,
    key: &'static str,
    default: &'static str,
}

impl<'a> FeatureFlag<'a> {
    fn set(
        node: &'a Node,
        key: &'static str,
        value: &str,
        default: &'static str,
    ) -> anyhow::Result<Self> {
        write_flag(node, key, value)?;
        Ok(Self { node, key, default })
    }
}

fn write_flag(node: &Node, key: &str, value: &str) -> anyhow::Result<()> {
    node.kubectl(&[
        "-n",
        "tekton-pipelines",
        "patch",
        "configmap",
        "feature-flags",
        "--type=merge",
        "-p",
        &json!({"data": {key: value}}).to_string(),
    ])
    .map(drop)
}

impl Drop for FeatureFlag<'_> {
    fn drop(&mut self) {
        if let Err(e) = write_flag(self.node, self.key, self.default) {
            eprintln!("could not restore Tekton's {}: {e:#}", self.key);
        }
    }
}

#[test]
fn results_carried_by_sidecar_logs_are_sealed_and_verified() -> anyhow::Result<()> {
    let (node, _turn) = node();
    // Tekton's controller reads the results from the sidecar's log: it needs `pods/log`.
    node.kubectl(&[
        "apply",
        "-f",
        &node
            .asset("tests/cluster/tekton-sidecar-logs/rbac.yaml")
            .to_string_lossy(),
    ])?;
    let _flag = FeatureFlag::set(node, "results-from", "sidecar-logs", "termination-message")?;
    let ns = node.namespace("sidecar-logs")?;
    apply_example(node, &ns)?;
    // Tekton reads the flag when it creates the pod: the pod must carry its results
    // sidecar, or this test would prove nothing about sidecar logs.
    let names = create(node, vec![example_taskrun(node, &ns, |_| {})?])?;
    let tr = judged(node, &ns, &names[0])?;
    let pod = tr["status"]["podName"].as_str().context("podName")?;
    let sidecars: Vec<String> = node.json(&["-n", &ns, "get", "pod", pod])?["spec"]["containers"]
        .as_array()
        .context("containers")?
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .filter(|c| !c.starts_with("step-"))
        .collect();
    assert_eq!(sidecars, ["sidecar-tekton-log-results"], "{pod}");
    assert_sealed_and_verified(node, &ns, &tr)?;
    entries_gone(node, &ns, &names)?;
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn twenty_taskruns_at_once_are_each_sealed_and_verified_and_leave_no_entry() -> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("twenty")?;
    apply_example(node, &ns)?;
    let runs = (0..20)
        .map(|_| example_taskrun(node, &ns, |_| {}))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names = create(node, runs)?;
    assert_eq!(names.len(), 20);
    let mut digests = std::collections::BTreeSet::new();
    for name in &names {
        let tr = judged(node, &ns, name)?;
        assert_sealed_and_verified(node, &ns, &tr)?;
        digests.insert(tr["status"]["results"][0]["value"].to_string());
    }
    // Twenty builds, twenty different digests: no TaskRun was judged on another's results.
    assert_eq!(digests.len(), 20);
    entries_gone(node, &ns, &names)?;
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn beside_tektons_own_enforce_nonfalsifiability_only_the_recommended_setting_runs()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("nonfalsifiability")?;
    apply_example(node, &ns)?;

    // Recommended (docs/tekton-compatibility.md): Tekton's flag at its default, `none`.
    // Tekton adds nothing to the pod: one Workload API volume (the Task's), mounted in the
    // signing step only, and no step's entrypoint asks for an SVID.
    let flags = node.json(&[
        "-n",
        "tekton-pipelines",
        "get",
        "configmap",
        "feature-flags",
    ])?;
    assert_eq!(flags["data"]["enforce-nonfalsifiability"], "none");
    let names = create(node, vec![example_taskrun(node, &ns, |_| {})?])?;
    let tr = judged(node, &ns, &names[0])?;
    assert_sealed_and_verified(node, &ns, &tr)?;
    let pod = node.json(&[
        "-n",
        &ns,
        "get",
        "pod",
        tr["status"]["podName"].as_str().context("podName")?,
    ])?;
    let csi: Vec<&Value> = pod["spec"]["volumes"]
        .as_array()
        .context("volumes")?
        .iter()
        .filter(|v| v["csi"]["driver"] == "csi.spiffe.io")
        .collect();
    assert_eq!(csi.len(), 1, "{csi:?}");
    for container in pod["spec"]["containers"].as_array().context("containers")? {
        let args = container["args"].to_string();
        assert!(
            !args.contains("-enable_spire"),
            "{}: {args}",
            container["name"]
        );
        let mounts = container["volumeMounts"].to_string();
        assert_eq!(
            mounts.contains("/spiffe-workload-api"),
            container["name"] == "step-sign",
            "{}: {mounts}",
            container["name"]
        );
    }

    // `spire`: Tekton adds its own `spiffe-workload-api` volume to every step after
    // checking the Task's volumes, so a Task that brings the volume itself (as ours must,
    // since nothing else gives the signing step the socket) yields a pod the API server
    // refuses. The TaskRun fails before any pod exists, and nothing is signed.
    let _flag = FeatureFlag::set(node, "enforce-nonfalsifiability", "spire", "none")?;
    let names = create(node, vec![example_taskrun(node, &ns, |_| {})?])?;
    let tr = node.wait_for("the TaskRun to fail", WAIT, || {
        let tr = node.taskrun(&ns, &names[0])?;
        Ok((condition(&tr, "Succeeded")["status"] == "False").then_some(tr))
    })?;
    let failed = condition(&tr, "Succeeded");
    assert_eq!(failed["reason"], "PodCreationFailed", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("spiffe-workload-api")),
        "{failed}"
    );
    let pods = node.kubectl(&[
        "-n",
        &ns,
        "get",
        "pods",
        "-l",
        &format!("tekton.dev/taskRun={}", names[0]),
        "-o",
        "name",
    ])?;
    assert_eq!(pods.trim(), "", "a pod exists after all");
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

/// The seal of the TaskRun's results in `status` (or one of its retriesStatus entries).
fn seal_of(status: &Value) -> &str {
    status["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "TEKTON_SPIRE_SEAL"))
        .and_then(|r| r["value"].as_str())
        .unwrap_or("")
}

#[test]
fn a_retried_taskrun_is_sealed_by_its_last_attempt_and_an_earlier_seal_copied_over_is_rejected()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("retries")?;
    // The example Task with one more step after the seal that fails the first attempt: both
    // attempts seal their results, only the second succeeds.
    let mut task = example_task(node, &ns)?;
    task["metadata"]["name"] = json!("flaky-build-and-seal");
    task["spec"]["steps"].as_array_mut().context("steps")?.push(
        // The first attempt's pod is `…-pod`, a retry's `…-pod-retry<N>`
        // ($(context.task.retry-count) stays 0 on retries in Tekton v1.15).
        json!({"name": "gate", "image": "tekton-spire.local/busybox:1",
               "env": [{"name": "POD_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
               "script": "case \"$POD_NAME\" in *-pod) exit 1 ;; esac\n"}),
    );
    node.kubectl_stdin(&["apply", "-f", "-"], &task.to_string())?;
    let names = create(
        node,
        vec![example_taskrun(node, &ns, |tr| {
            tr["spec"]["taskRef"]["name"] = json!("flaky-build-and-seal");
            tr["spec"]["retries"] = json!(1);
        })?],
    )?;
    let name = &names[0];
    let tr = judged(node, &ns, name)?;
    assert_sealed_and_verified(node, &ns, &tr)?;
    let retries = tr["status"]["retriesStatus"]
        .as_array()
        .context("no retriesStatus: the first attempt did not fail")?;
    assert_eq!(retries.len(), 1, "{retries:?}");
    let (first, last) = (&retries[0], &tr["status"]);
    // A retriesStatus entry is a status: its conditions are its own.
    let first_attempt = json!({ "status": first });
    assert_eq!(
        condition(&first_attempt, "Succeeded")["status"],
        "False",
        "{first}"
    );
    assert_ne!(first["podName"], last["podName"]);
    // Each attempt sealed its own results, with its own attempt number.
    assert!(seal_of(first).starts_with("sealv2.0."), "{first}");
    assert!(seal_of(last).starts_with("sealv2.1."), "{last}");
    // Neither attempt's pod keeps an entry once the TaskRun is done.
    entries_gone(node, &ns, &names)?;

    // Whoever writes the status copies the first attempt's sealed results (a genuine seal
    // of this TaskRun, made by its signing step) into the final status.
    node.patch_status(&ns, name, &json!({"status": {"results": first["results"]}}))?;
    let verdict = node.wait_for("the verdict on the copied results", WAIT, || {
        let tr = node.taskrun(&ns, name)?;
        let verdict = condition(&tr, "SignedResultsVerified").clone();
        Ok((verdict["status"] == "False").then_some(verdict))
    })?;
    assert!(
        verdict["message"]
            .as_str()
            .is_some_and(|m| m.contains("seal.attempt-mismatch")),
        "{verdict}"
    );
    let (code, out) = node.verify_taskrun(cli(), TRUST_DOMAIN, &ns, name)?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seal.attempt-mismatch"), "{out}");
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}
