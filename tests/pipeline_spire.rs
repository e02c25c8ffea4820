//! A PipelineRun whose TaskRuns were sealed by the real signing helper with X.509-SVIDs
//! from a real SPIRE server and agent (scripts/spire-local.sh), verified end to end by
//! `tekton-spire verify --pipelinerun`; then the attacks: a result changed, and a child
//! swapped for a TaskRun, sealed just as well, of another PipelineRun.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use tekton_spire_testbed::spire::Spire;
use tekton_spire_testbed::taskrun::{Meta, from_results_dir};

const PR_NAME: &str = "rel";
const PR_UID: &str = "9b1e6c02-pr-uid";

/// Signs `results` as TaskRun `name` of pipeline task `task`, owned by PipelineRun
/// (`owner`, `owner_uid`), with the helper and real SPIRE; returns the TaskRun document.
fn signed_taskrun(
    spire: &Spire,
    dir: &Path,
    (name, task): (&str, &str),
    (owner, owner_uid): (&str, &str),
    results: &[(&str, &str)],
) -> Value {
    let ws = dir.join(name);
    let results_dir = ws.join("results");
    std::fs::create_dir_all(&results_dir).unwrap();
    for (k, v) in results {
        std::fs::write(results_dir.join(k), v).unwrap();
    }
    // A copy of the helper per TaskRun: the entry's unix:path selector names it alone.
    let helper = ws.join("sign");
    std::fs::copy(env!("CARGO_BIN_EXE_tekton-spire-sign"), &helper).unwrap();
    let spiffe_id = format!(
        "spiffe://{}/ns/default/taskrun/{name}",
        spire.trust_domain()
    );
    spire
        .register(&spiffe_id, &format!("unix:path:{}", helper.display()))
        .unwrap();
    let uid = format!("{name}-uid");
    let out = Command::new(&helper)
        .arg("--results-dir")
        .arg(&results_dir)
        .args(["--taskrun-namespace", "default", "--taskrun-name", name])
        .args(["--taskrun-uid", &uid, "--timeout", "30"])
        .args(["--taskrun-retry-count", "0"])
        .env("SPIFFE_ENDPOINT_SOCKET", spire.workload_socket())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helper failed for {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = Meta::just_completed("default", name, &uid);
    let mut doc = from_results_dir(&results_dir, &meta).unwrap();
    doc["metadata"]["labels"] = json!({
        "tekton.dev/pipelineRun": owner,
        "tekton.dev/pipelineTask": task,
    });
    doc["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": owner,
        "uid": owner_uid, "controller": true, "blockOwnerDeletion": true,
    }]);
    doc
}

fn pipelinerun(children: &[(&str, &str)], results: Value) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": PR_NAME, "namespace": "default", "uid": PR_UID},
        "spec": {"pipelineRef": {"name": "release"}},
        "status": {
            "completionTime": "2025-06-01T12:00:00Z",
            "childReferences": children.iter().map(|(name, task)| json!({
                "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                "name": name, "pipelineTaskName": task,
            })).collect::<Vec<_>>(),
            "pipelineSpec": {
                "tasks": [
                    {"name": "fetch"},
                    {"name": "build"},
                    {"name": "test", "matrix": {"params": [{"name": "arch", "value": ["amd64", "arm64"]}]}},
                ],
                "results": [
                    {"name": "IMAGE", "value": "$(tasks.build.results.IMAGE_URL)@$(tasks.build.results.IMAGE_DIGEST)"},
                    {"name": "COMMIT", "value": "$(tasks.fetch.results.commit)"},
                    {"name": "REPORTS", "value": "$(tasks.test.results.report[*])"},
                ],
            },
            "results": results,
        },
    })
}

fn verify(dir: &Path, spire: &Spire, pr: &Value, taskruns: &[Value]) -> Output {
    let write = |name: &str, v: &Value| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_vec(v).unwrap()).unwrap();
        path
    };
    let pr_path = write("pr.json", pr);
    let list = json!({"apiVersion": "v1", "kind": "List", "items": taskruns});
    let list_path = write("trs.json", &list);
    let bundle = dir.join("bundle.json");
    std::fs::write(&bundle, spire.bundle("spiffe").unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
        .args([
            "verify",
            "-o",
            "json",
            "--trust-domain",
            spire.trust_domain(),
        ])
        .arg("--pipelinerun")
        .arg(pr_path)
        .arg("--taskrun")
        .arg(list_path)
        .arg("--bundle")
        .arg(bundle)
        .output()
        .unwrap()
}

fn verdict(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_pipelinerun_of_taskruns_sealed_with_real_svids_verifies_and_its_forgeries_do_not() {
    let spire = Spire::shared();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ours = (PR_NAME, PR_UID);
    let digest = "sha256:5f2c0d1e";
    let taskruns = vec![
        signed_taskrun(
            spire,
            dir,
            ("rel-fetch", "fetch"),
            ours,
            &[("commit", "c0ffee")],
        ),
        signed_taskrun(
            spire,
            dir,
            ("rel-build", "build"),
            ours,
            &[
                ("IMAGE_URL", "registry.example.org/app"),
                ("IMAGE_DIGEST", digest),
            ],
        ),
        signed_taskrun(
            spire,
            dir,
            ("rel-test-0", "test"),
            ours,
            &[("report", "amd64 ok")],
        ),
        signed_taskrun(
            spire,
            dir,
            ("rel-test-1", "test"),
            ours,
            &[("report", "arm64 ok")],
        ),
    ];
    let children = [
        ("rel-fetch", "fetch"),
        ("rel-build", "build"),
        ("rel-test-0", "test"),
        ("rel-test-1", "test"),
    ];
    let results = json!([
        {"name": "IMAGE", "value": format!("registry.example.org/app@{digest}")},
        {"name": "COMMIT", "value": "c0ffee"},
        {"name": "REPORTS", "value": ["amd64 ok", "arm64 ok"]},
    ]);

    let out = verify(
        dir,
        spire,
        &pipelinerun(&children, results.clone()),
        &taskruns,
    );
    assert_eq!(out.status.code(), Some(0), "{}", verdict(&out));
    let v = verdict(&out);
    assert_eq!(v["verdict"], "verified");
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "verified")
    );

    // A result changed in the PipelineRun's status.
    let mut forged = results.clone();
    forged[0]["value"] = json!("registry.example.org/app@sha256:bad");
    let out = verify(dir, spire, &pipelinerun(&children, forged), &taskruns);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(verdict(&out)["reason"]["code"], "pipeline.result-mismatch");

    // A child swapped for a TaskRun, sealed with its own real SVID, of another
    // PipelineRun: it verifies on its own, and is refused as this PipelineRun's child.
    let theirs = signed_taskrun(
        spire,
        dir,
        ("other-build", "build"),
        ("other", "other-uid"),
        &[
            ("IMAGE_URL", "registry.example.org/app"),
            ("IMAGE_DIGEST", "sha256:0ther"),
        ],
    );
    let mut swapped = taskruns.clone();
    swapped[1] = theirs;
    let mut swapped_children = children;
    swapped_children[1] = ("other-build", "build");
    let mut swapped_results = results;
    swapped_results[0]["value"] = json!("registry.example.org/app@sha256:0ther");
    let out = verify(
        dir,
        spire,
        &pipelinerun(&swapped_children, swapped_results),
        &swapped,
    );
    assert_eq!(out.status.code(), Some(1));
    let v = verdict(&out);
    assert_eq!(v["reason"]["code"], "pipeline.child-foreign");
    assert_eq!(v["taskRuns"][1]["verdict"], "verified");
}
