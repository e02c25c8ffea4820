//! Installed as users install it (README, "Install in a cluster"), on a real node: the
//! kubelet runs the pods, SPIRE's k8s workload attestor attests them through the kubelet,
//! the SPIFFE CSI driver mounts the Workload API, and the controller runs from deploy/ as
//! written. Tekton's controller is stopped here: the tests create pods and write TaskRun
//! statuses as it would, to make cases it never makes (an impostor pod, a kill between
//! two writes); tests/node_tekton.rs runs real Tekton.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//!
//! The tests take turns on the node (they kill and relabel shared things);
//! `./scripts/test.sh` starts the node and runs them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tekton_spire_testbed::node::{ENTRY_PREFIX, Node, Tekton, condition, spiffe_id_of};

const TRUST_DOMAIN: &str = "example.org";
const CONTROLLER_NS: &str = "tekton-spire";
/// spire-controller-manager's `entryIDPrefix` (tests/cluster/spire).
const SCM_PREFIX: &str = "demo-cluster.";
/// The label that opts a TaskRun in to verdicts.
const VERIFY_LABEL: &str = "tekton-spire.dev/verify";
const WAIT: Duration = Duration::from_secs(120);

/// The `tekton-spire` binary under test.
fn cli() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tekton-spire"))
}

/// The node, this test's turn on it, and Tekton's controller stopped: these tests write
/// TaskRun statuses themselves, as Tekton's controller would.
fn node() -> (&'static Node, std::sync::MutexGuard<'static, ()>) {
    let (node, turn) = Node::serial();
    if let Err(e) = node.tekton(Tekton::Stopped) {
        panic!("cannot stop Tekton's controller: {e:#}");
    }
    (node, turn)
}

fn json_of(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))
}

/// A TaskRun as Tekton creates it (its pod is created separately, as Tekton does), with
/// `status.startTime` and `status.podName` written through the status subresource. It
/// opts in to verdicts by its label.
fn create_taskrun(node: &Node, ns: &str, name: &str, pod_name: &str) -> anyhow::Result<String> {
    let taskrun = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": name, "namespace": ns, "labels": {VERIFY_LABEL: "true"}},
        "spec": {"taskSpec": {"steps": [{"name": "sign", "image": "tekton-spire-sign", "command": ["true"]}]},
                 "timeout": "10m"},
    });
    let created =
        json_of(&node.kubectl_stdin(&["create", "-o", "json", "-f", "-"], &taskrun.to_string())?)?;
    let uid = created["metadata"]["uid"]
        .as_str()
        .context("TaskRun without uid")?
        .to_owned();
    let start = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let status = json!({"status": {
        "podName": pod_name,
        "startTime": rfc3339(start),
        "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}],
    }});
    node.patch_status(ns, name, &status)?;
    Ok(uid)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A pod claiming a TaskRun as Tekton's do: the label and a controller owner reference.
/// `sign` is the signing step's container spec; `step-build` sleeps. `extra` adds to (or
/// replaces parts of) the pod's spec.
fn create_pod(
    node: &Node,
    ns: &str,
    pod: &str,
    taskrun: &str,
    uid: &str,
    sign: Value,
    extra: Value,
) -> anyhow::Result<String> {
    let mut spec = json!({
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {"name": "step-build", "image": "tekton-spire.local/busybox:1", "command": ["sleep", "3600"],
             "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}},
            sign,
        ],
        "volumes": [
            {"name": "spiffe-workload-api", "csi": {"driver": "csi.spiffe.io", "readOnly": true}},
            {"name": "results", "emptyDir": {}},
        ],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let pod_doc = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod, "namespace": ns,
            "labels": {"tekton.dev/taskRun": taskrun},
            "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": taskrun, "uid": uid,
                                 "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": spec,
    });
    let created =
        json_of(&node.kubectl_stdin(&["create", "-o", "json", "-f", "-"], &pod_doc.to_string())?)?;
    Ok(created["metadata"]["uid"]
        .as_str()
        .context("pod without uid")?
        .to_owned())
}

fn sleeping_sign() -> Value {
    json!({"name": "step-sign", "image": "tekton-spire.local/busybox:1", "command": ["sleep", "3600"],
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

/// Our entries for a pod (by its `k8s:pod-uid` selector).
fn entries_for_pod(node: &Node, pod_uid: &str) -> anyhow::Result<Vec<Value>> {
    let wanted = format!("pod-uid:{pod_uid}");
    Ok(node
        .entries_with_prefix(ENTRY_PREFIX)?
        .into_iter()
        .filter(|e| {
            e["selectors"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|s| s["type"] == "k8s" && s["value"] == wanted.as_str())
            })
        })
        .collect())
}

fn selector_values(entry: &Value) -> Vec<String> {
    entry["selectors"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    format!(
                        "{}:{}",
                        s["type"].as_str().unwrap_or(""),
                        s["value"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pod_json(node: &Node, ns: &str, pod: &str) -> anyhow::Result<Value> {
    json_of(&node.kubectl(&["-n", ns, "get", "pod", pod, "-o", "json"])?)
}

#[test]
fn both_controllers_are_ready_under_the_restricted_pod_security_standard() -> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = json_of(&node.kubectl(&["get", "namespace", CONTROLLER_NS, "-o", "json"])?)?;
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // The entry controller (deploy/controller.yaml) and the verdict controller
    // (deploy/verdict.yaml): two replicas each, under their own labels.
    for name in ["tekton-spire-controller", "tekton-spire-verdict"] {
        let pods = controller_pods(node, name)?;
        assert_eq!(pods.len(), 2, "deploy/ runs two replicas of {name}");
        for pod in &pods {
            let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            assert!(
                ready,
                "{name} pod {} is not Ready: {}",
                pod["metadata"]["name"], pod["status"]
            );
            assert_eq!(pod["spec"]["serviceAccountName"], name);
            assert_eq!(
                pod["spec"]["nodeSelector"]["node-restriction.kubernetes.io/tekton-spire-controller"],
                "true",
                "{name} runs only on the nodes register-controller.sh labelled"
            );
            let volumes = pod["spec"]["volumes"].as_array().context("no volumes")?;
            assert!(
                volumes.iter().all(|v| v.get("hostPath").is_none()),
                "no hostPath in the {name} pod"
            );
            assert!(
                volumes
                    .iter()
                    .any(|v| v["csi"]["driver"] == "csi.spiffe.io"),
                "the Workload API of {name} comes from the CSI driver"
            );
        }
    }
    // The API server admitted it under `restricted`: a pod breaking the standard is refused
    // there, which shows the label is enforced and not decoration.
    let bad = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "privileged-probe", "namespace": CONTROLLER_NS},
        "spec": {"containers": [{"name": "c", "image": "tekton-spire.local/busybox:1", "securityContext": {"privileged": true}}]}});
    let refused = node.kubectl_stdin(&["create", "-f", "-"], &bad.to_string());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("violates PodSecurity")),
        "a privileged pod in {CONTROLLER_NS} must be refused: {refused:?}"
    );
    Ok(())
}

#[test]
fn only_the_pod_its_taskrun_names_gets_the_entry_narrowed_to_the_signing_container()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("entries")?;
    let uid = create_taskrun(node, &ns, "build", "build-pod")?;
    let pod_uid = create_pod(
        node,
        &ns,
        "build-pod",
        "build",
        &uid,
        sleeping_sign(),
        json!({}),
    )?;
    // Same label, same owner reference: looks like Tekton's, but the TaskRun names another pod.
    let impostor_uid = create_pod(
        node,
        &ns,
        "impostor",
        "build",
        &uid,
        sleeping_sign(),
        json!({}),
    )?;

    let entry = node.wait_for("the TaskRun pod's entry", WAIT, || {
        Ok(entries_for_pod(node, &pod_uid)?.into_iter().next())
    })?;
    assert_eq!(
        spiffe_id_of(&entry),
        format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/taskrun/build")
    );
    let mut selectors = selector_values(&entry);
    selectors.sort();
    assert_eq!(
        selectors,
        [
            "k8s:container-name:step-sign".to_owned(),
            format!("k8s:pod-uid:{pod_uid}"),
        ]
    );
    assert!(
        entries_for_pod(node, &impostor_uid)?.is_empty(),
        "the impostor pod must get no entry"
    );

    // Done (completionTime): the entry goes.
    let done = json!({"status": {"completionTime": rfc3339(time::OffsetDateTime::now_utc()),
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}});
    node.patch_status(&ns, "build", &done)?;
    node.wait_for("the entry deleted after completion", WAIT, || {
        Ok(entries_for_pod(node, &pod_uid)?.is_empty().then_some(()))
    })?;
    assert!(entries_for_pod(node, &impostor_uid)?.is_empty());
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

/// The signing container as Tekton runs it: the helper image, the CSI volume, its results
/// directory.
fn signing_container(ns: &str, taskrun: &str, uid: &str, timeout_secs: u32) -> Value {
    json!({
        "name": "step-sign",
        "image": "tekton-spire-sign:0.1.0",
        "command": ["/usr/local/bin/tekton-spire-sign"],
        "args": [format!("--taskrun-namespace={ns}"), format!("--taskrun-name={taskrun}"),
                 format!("--taskrun-uid={uid}"), "--taskrun-retry-count=0", "--results-dir=/results", "--result=IMAGE_DIGEST:string",
                 format!("--timeout={timeout_secs}")],
        "env": [{"name": "SPIFFE_ENDPOINT_SOCKET", "value": "unix:///spiffe-workload-api/spire-agent.sock"}],
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "spiffe-workload-api", "mountPath": "/spiffe-workload-api", "readOnly": true},
            {"name": "results", "mountPath": "/results"},
        ],
    })
}

/// The build step's result, written before the signing container starts, and a step
/// that prints the seal once the signing step wrote it (Tekton's entrypoint would carry it
/// into the status; here the test reads it from this container's log).
fn result_writer_and_reporter(digest: &str, sign: Value) -> Value {
    let restricted = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    json!({
        "initContainers": [{
            "name": "write-result", "image": "tekton-spire.local/busybox:1",
            "command": ["sh", "-c", format!("printf '%s' '{digest}' > /results/IMAGE_DIGEST")],
            "securityContext": restricted,
            "volumeMounts": [{"name": "results", "mountPath": "/results"}],
        }],
        "containers": [
            {"name": "step-report", "image": "tekton-spire.local/busybox:1",
             "command": ["sh", "-c", "while [ ! -s /results/TEKTON_SPIRE_SEAL ]; do sleep 0.2; done; cat /results/TEKTON_SPIRE_SEAL"],
             "securityContext": restricted,
             "volumeMounts": [{"name": "results", "mountPath": "/results"}]},
            sign,
        ],
    })
}

/// Waits until a container of the pod terminated; its state.
fn terminated(node: &Node, ns: &str, pod: &str, container: &str) -> anyhow::Result<Value> {
    node.wait_for(
        &format!("container {container} of {pod} to end"),
        WAIT,
        || {
            let pod = pod_json(node, ns, pod)?;
            Ok(pod["status"]["containerStatuses"]
                .as_array()
                .and_then(|all| {
                    all.iter()
                        .find(|c| c["name"] == container)
                        .and_then(|c| c["state"].get("terminated").cloned())
                }))
        },
    )
}

fn verdict(node: &Node, ns: &str, taskrun: &str) -> anyhow::Result<Option<Value>> {
    let verdict = condition(&node.taskrun(ns, taskrun)?, "SignedResultsVerified").clone();
    Ok((!verdict.is_null()).then_some(verdict))
}

#[test]
fn the_helper_signs_with_the_taskruns_svid_beside_a_default_identity_and_the_verdict_is_true()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("sign")?;
    let uid = create_taskrun(node, &ns, "build", "build-pod")?;
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let pod_uid = create_pod(
        node,
        &ns,
        "build-pod",
        "build",
        &uid,
        json!({}),
        result_writer_and_reporter(digest, signing_container(&ns, "build", &uid, 90)),
    )?;
    // spire-controller-manager (installed beside us as helm-charts-hardened does) gives the
    // pod ns/<ns>/sa/default too, under an entry ID that sorts first: the agent's default.
    let default_id = format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/default");
    let scm_entry = node.wait_for(
        "spire-controller-manager's default entry for the pod",
        WAIT,
        || {
            Ok(node.entries_with_prefix(SCM_PREFIX)?.into_iter().find(|e| {
                spiffe_id_of(e) == default_id
                    && selector_values(e).contains(&format!("k8s:pod-uid:{pod_uid}"))
            }))
        },
    )?;
    let state = terminated(node, &ns, "build-pod", "step-sign")?;
    let logs = node.kubectl(&["-n", &ns, "logs", "build-pod", "-c", "step-sign"])?;
    assert_eq!(state["exitCode"], 0, "the helper failed: {logs}");
    assert!(
        logs.contains(&format!("spiffe://{TRUST_DOMAIN}/ns/{ns}/taskrun/build")),
        "signed with another SVID: {logs}"
    );
    assert!(
        node.entries_with_prefix(SCM_PREFIX)?
            .iter()
            .any(|e| e["id"] == scm_entry["id"]),
        "the default identity was present while the helper signed"
    );
    terminated(node, &ns, "build-pod", "step-report")?;
    let seal = node.kubectl(&["-n", &ns, "logs", "build-pod", "-c", "step-report"])?;
    let seal = seal.trim().to_owned();
    assert!(!seal.is_empty(), "the signing step wrote no seal");

    // Tekton writes the results and completes the TaskRun.
    let done = json!({"status": {
        "completionTime": rfc3339(time::OffsetDateTime::now_utc() + time::Duration::seconds(1)),
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
        "results": [
            {"name": "IMAGE_DIGEST", "type": "string", "value": digest},
            {"name": "TEKTON_SPIRE_SEAL", "type": "string", "value": seal},
        ],
    }});
    node.patch_status(&ns, "build", &done)?;
    let condition = node.wait_for("the controller's verdict", WAIT, || {
        verdict(node, &ns, "build")
    })?;
    assert_eq!(condition["status"], "True", "verdict: {condition}");
    assert_eq!(condition["reason"], "TaskRunResultsVerified");
    let (code, output) = node.verify_taskrun(cli(), TRUST_DOMAIN, &ns, "build")?;
    assert_eq!(code, 0, "tekton-spire verify: {output}");

    // A status forged after completion: the verdict turns False and verify rejects.
    let forged = json!({"status": {"results": [
        {"name": "IMAGE_DIGEST", "type": "string", "value": digest.replace("0123", "9999")},
        {"name": "TEKTON_SPIRE_SEAL", "type": "string", "value": seal},
    ]}});
    node.patch_status(&ns, "build", &forged)?;
    let condition = node.wait_for("the verdict on the forged status", WAIT, || {
        Ok(verdict(node, &ns, "build")?.filter(|c| c["status"] == "False"))
    })?;
    assert_eq!(condition["reason"], "TaskRunResultsVerificationFailed");
    let (code, output) = node.verify_taskrun(cli(), TRUST_DOMAIN, &ns, "build")?;
    assert_eq!(code, 1, "tekton-spire verify on a forged status: {output}");

    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

/// The pods of one of deploy/'s Deployments (`app.kubernetes.io/name`).
fn controller_pods(node: &Node, name: &str) -> anyhow::Result<Vec<Value>> {
    let pods = json_of(&node.kubectl(&[
        "-n",
        CONTROLLER_NS,
        "get",
        "pods",
        "-l",
        &format!("app.kubernetes.io/name={name}"),
        "-o",
        "json",
    ])?)?;
    pods["items"].as_array().cloned().context("no pod list")
}

/// The container IDs (without the runtime prefix) of the entry controller's pods.
fn controller_containers(node: &Node) -> anyhow::Result<Vec<(String, String, i64)>> {
    let mut out = Vec::new();
    for pod in controller_pods(node, "tekton-spire-controller")? {
        for status in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = status["containerID"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches("containerd://")
                .to_owned();
            let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
            out.push((name, id, status["restartCount"].as_i64().unwrap_or(0)));
        }
    }
    Ok(out)
}

#[test]
fn killing_the_controller_loses_and_leaks_no_entry() -> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("kill")?;
    let mut pods = Vec::new();
    for i in 0..4 {
        let uid = create_taskrun(node, &ns, &format!("tr{i}"), &format!("tr{i}-pod"))?;
        pods.push((
            format!("tr{i}"),
            create_pod(
                node,
                &ns,
                &format!("tr{i}-pod"),
                &format!("tr{i}"),
                &uid,
                sleeping_sign(),
                json!({}),
            )?,
        ));
    }
    for (_, pod_uid) in &pods {
        node.wait_for("entries of the running TaskRuns", WAIT, || {
            Ok((!entries_for_pod(node, pod_uid)?.is_empty()).then_some(()))
        })?;
    }
    // SIGKILL every replica's process (the kubelet restarts the containers in place).
    let before = controller_containers(node)?;
    let address = node.var("CONTAINERD_ADDRESS");
    for (_, id, _) in &before {
        let out = Command::new("ctr")
            .args([
                "--address",
                address,
                "-n",
                "k8s.io",
                "tasks",
                "kill",
                "-s",
                "SIGKILL",
                id,
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "ctr tasks kill {id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // While no controller runs: two TaskRuns finish, two start.
    let done = json!({"status": {"completionTime": rfc3339(time::OffsetDateTime::now_utc()),
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}});
    for (name, _) in &pods[..2] {
        node.patch_status(&ns, name, &done)?;
    }
    let mut started = Vec::new();
    for i in 4..6 {
        let uid = create_taskrun(node, &ns, &format!("tr{i}"), &format!("tr{i}-pod"))?;
        started.push(create_pod(
            node,
            &ns,
            &format!("tr{i}-pod"),
            &format!("tr{i}"),
            &uid,
            sleeping_sign(),
            json!({}),
        )?);
    }
    node.wait_for(
        "both controller containers restarted and Ready",
        WAIT,
        || {
            let now = controller_containers(node)?;
            let restarted = now
                .iter()
                .all(|(pod, _, count)| before.iter().any(|(p, _, c)| p == pod && count > c));
            let ready = node
                .kubectl(&[
                    "-n",
                    CONTROLLER_NS,
                    "rollout",
                    "status",
                    "deployment/tekton-spire-controller",
                    "--timeout=1s",
                ])
                .is_ok();
            Ok((restarted && ready).then_some(()))
        },
    )?;
    let wanted: Vec<&String> = pods[2..]
        .iter()
        .map(|(_, uid)| uid)
        .chain(started.iter())
        .collect();
    node.wait_for("exactly the running TaskRuns' entries", WAIT, || {
        let present = wanted
            .iter()
            .all(|uid| entries_for_pod(node, uid).is_ok_and(|e| e.len() == 1));
        let gone = pods[..2]
            .iter()
            .all(|(_, uid)| entries_for_pod(node, uid).is_ok_and(|e| e.is_empty()));
        Ok((present && gone).then_some(()))
    })?;
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

/// Replaces the agents' pods so that they attest again (and SPIRE records the node's
/// labels anew).
fn reattest_agents(node: &Node) -> anyhow::Result<()> {
    node.kubectl(&[
        "-n",
        "spire",
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/name=spire-agent",
        "--wait=true",
    ])?;
    node.kubectl(&[
        "-n",
        "spire",
        "rollout",
        "status",
        "daemonset/spire-agent",
        "--timeout=120s",
    ])?;
    // The new attestation's node selectors are in the server's datastore now, but the
    // agent's first sync may have been served from the server's entry cache as it was
    // before (reloaded every 2 s, spire-config/kubernetes/server.conf), and the agent
    // drops what it got then only at its next sync (every 2 s, agent.conf). Twice both.
    std::thread::sleep(Duration::from_secs(8));
    Ok(())
}

/// A pod that asks the Workload API for any identity with the helper; the helper's
/// error (it gets no identity, or only others) from the container's log.
fn ask_for_identity(
    node: &Node,
    ns: &str,
    pod: &str,
    service_account: &str,
) -> anyhow::Result<(i64, String)> {
    let spec = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": ns},
        "spec": {
            "serviceAccountName": service_account,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            // A result to sign, so that the helper goes on to ask for its SVID.
            "initContainers": result_writer_and_reporter("sha256:00", json!({}))["initContainers"],
            "containers": [signing_container(ns, "not-a-taskrun", "00000000-0000-0000-0000-000000000000", 20)],
            "volumes": [
                {"name": "spiffe-workload-api", "csi": {"driver": "csi.spiffe.io", "readOnly": true}},
                {"name": "results", "emptyDir": {}},
            ],
        }
    });
    node.kubectl_stdin(&["create", "-f", "-"], &spec.to_string())?;
    let state = terminated(node, ns, pod, "step-sign")?;
    let logs = node.kubectl(&["-n", ns, "logs", pod, "-c", "step-sign"])?;
    node.kubectl(&["-n", ns, "delete", "pod", pod, "--wait=false"])?;
    Ok((state["exitCode"].as_i64().unwrap_or(-1), logs))
}

#[test]
fn the_controllers_admin_identity_is_not_obtainable_from_another_namespace_or_node()
-> anyhow::Result<()> {
    let (node, _turn) = node();
    let admin_id = format!("spiffe://{TRUST_DOMAIN}/ns/tekton-spire/sa/tekton-spire-controller");
    let admin_id = admin_id.as_str();
    // Another namespace, a service account of the same name. (spire-controller-manager
    // gives the pod its own ns/<ns>/sa/<sa> identity: the helper names what it got.)
    let ns = node.namespace("admin-probe")?;
    node.kubectl(&[
        "-n",
        &ns,
        "create",
        "serviceaccount",
        "tekton-spire-controller",
    ])?;
    let (code, logs) = ask_for_identity(node, &ns, "probe", "tekton-spire-controller")?;
    assert_ne!(code, 0);
    assert!(
        logs.contains(&format!(
            "got [\"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/tekton-spire-controller\"]"
        )),
        "expected only the pod's own default identity: {logs}"
    );
    assert!(!logs.contains(admin_id), "{logs}");

    // The controller's own namespace and service account, on a node whose agent is no
    // longer in the labelled set: the agent attests again without the label.
    let label = "node-restriction.kubernetes.io/tekton-spire-controller";
    node.kubectl(&["label", "node", node.name(), &format!("{label}-")])?;
    reattest_agents(node)?;
    let outcome = ask_for_identity(
        node,
        CONTROLLER_NS,
        "probe-unlabelled",
        "tekton-spire-controller",
    );
    // Restore before judging, so that later tests find the controller as installed.
    node.kubectl(&["label", "node", node.name(), &format!("{label}=true")])?;
    reattest_agents(node)?;
    let (code, logs) = outcome?;
    assert_ne!(code, 0);
    assert!(
        logs.contains("no X.509-SVID was issued"),
        "expected no identity on an unlabelled node: {logs}"
    );
    assert!(!logs.contains(admin_id), "{logs}");

    // And on the labelled node it is obtainable (the rule is the label, not a broken setup).
    let (code, logs) = ask_for_identity(
        node,
        CONTROLLER_NS,
        "probe-labelled",
        "tekton-spire-controller",
    )?;
    assert_ne!(code, 0, "the probe is not a TaskRun: it cannot sign");
    assert!(
        logs.contains(admin_id),
        "on the labelled node the admin SVID is issued: {logs}"
    );
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}

#[test]
fn spire_controller_manager_and_the_controller_keep_to_their_own_entries() -> anyhow::Result<()> {
    let (node, _turn) = node();
    let ns = node.namespace("coexist")?;
    let uid = create_taskrun(node, &ns, "build", "build-pod")?;
    let pod_uid = create_pod(
        node,
        &ns,
        "build-pod",
        "build",
        &uid,
        sleeping_sign(),
        json!({}),
    )?;
    let ours = node.wait_for("our entry", WAIT, || {
        Ok(entries_for_pod(node, &pod_uid)?.into_iter().next())
    })?;
    let theirs = node.wait_for("spire-controller-manager's entry", WAIT, || {
        Ok(node
            .entries_with_prefix(SCM_PREFIX)?
            .into_iter()
            .find(|e| selector_values(e).contains(&format!("k8s:pod-uid:{pod_uid}"))))
    })?;
    // The entries neither controller declared (register-controller.sh's): the entry
    // controller's admin identity and the verdict controller's plain one.
    let admin = format!("spiffe://{TRUST_DOMAIN}/ns/tekton-spire/sa/tekton-spire-controller");
    let verdicts = format!("spiffe://{TRUST_DOMAIN}/ns/tekton-spire/sa/tekton-spire-verdict");
    let unowned = |node: &Node| -> anyhow::Result<(usize, usize)> {
        let all = node.entries_with_prefix("")?;
        let count = |id: &str, is_admin: bool| {
            all.iter()
                .filter(|e| spiffe_id_of(e) == id && (e["admin"] == true) == is_admin)
                .count()
        };
        Ok((count(&admin, true), count(&verdicts, false)))
    };
    assert_eq!(
        unowned(node)?,
        (1, 1),
        "one admin entry, one plain verdict entry"
    );
    // Three full passes of each (both resync every 10 s): nothing deleted, nothing recreated.
    std::thread::sleep(Duration::from_secs(30));
    let still = |id: &Value| -> anyhow::Result<bool> {
        Ok(node.entries_with_prefix("")?.iter().any(|e| e["id"] == *id))
    };
    assert!(
        still(&ours["id"])?,
        "spire-controller-manager deleted our entry {}",
        ours["id"]
    );
    assert!(
        still(&theirs["id"])?,
        "the controller deleted spire-controller-manager's entry {}",
        theirs["id"]
    );
    assert_eq!(
        unowned(node)?,
        (1, 1),
        "register-controller.sh's entries survive both"
    );
    node.kubectl(&["delete", "namespace", &ns, "--wait=false"])?;
    Ok(())
}
