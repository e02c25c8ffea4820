//! kube-rs against the real kube-apiserver and etcd of scripts/kube-local.sh, with
//! Tekton's TaskRun CRD installed as Tekton ships it: namespaces, TaskRuns, pods and the
//! TaskRun status subresource behave as on a cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use tekton_spire_testbed::kube::{Kube, create_namespace, taskruns};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn kube_rs_creates_reads_and_patches_taskruns_and_pods_on_the_real_api_server() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Starting the shared instance blocks: keep it off the runtime's only thread.
        let kube = tokio::task::spawn_blocking(Kube::shared).await.unwrap();
        let client = kube.client().await.unwrap();
        assert!(kube.api_url().starts_with("https://127.0.0.1:"));

        // The API server is the version kube.sh built, and serves both TaskRun versions.
        let info = client.apiserver_version().await.unwrap();
        assert_eq!(info.git_version, kube.version());
        let groups = client.list_api_groups().await.unwrap();
        let tekton = groups
            .groups
            .iter()
            .find(|g| g.name == "tekton.dev")
            .expect("tekton.dev is served");
        let versions: Vec<&str> = tekton.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        assert_eq!(tekton.preferred_version.as_ref().unwrap().version, "v1");
        let resources = client.list_api_group_resources("tekton.dev/v1").await.unwrap();
        let names: Vec<&str> = resources.resources.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"taskruns"), "{names:?}");
        assert!(names.contains(&"taskruns/status"), "{names:?}");

        let namespace = create_namespace(client.clone(), "kube-harness-").await.unwrap();
        assert!(namespace.starts_with("kube-harness-"));

        // A TaskRun, as a DynamicObject. The status sent with a create is dropped: the CRD
        // has the status subresource.
        let trs = taskruns(client.clone(), &namespace);
        let taskrun: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "TaskRun",
            "metadata": {"name": "build-1", "labels": {"app": "kube-harness"}},
            "spec": {"taskRef": {"name": "build"}, "serviceAccountName": "default"},
            "status": {"podName": "ignored", "conditions": [{"type": "Succeeded", "status": "True"}]},
        }))
        .unwrap();
        let created = trs.create(&PostParams::default(), &taskrun).await.unwrap();
        let uid = created.uid().expect("the API server assigns a UID");
        assert_eq!(created.namespace().as_deref(), Some(namespace.as_str()));
        assert_eq!(created.metadata.generation, Some(1));
        assert!(created.data.get("status").is_none(), "{:?}", created.data);

        // Its pod, scheduled by hand: nothing else would.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "build-1-pod",
                "labels": {"tekton.dev/taskRun": "build-1"},
                "ownerReferences": [{
                    "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "build-1",
                    "uid": uid, "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "step-build", "image": "registry.invalid/build:1"}],
            },
        }))
        .unwrap();
        let created_pod = pods.create(&PostParams::default(), &pod).await.unwrap();
        let pod_uid = created_pod.uid().expect("the API server assigns a UID");

        // Read both back, the pod by the label Tekton puts on it.
        let read = trs.get("build-1").await.unwrap();
        assert_eq!(read.uid().as_deref(), Some(uid.as_str()));
        assert_eq!(read.data["spec"]["taskRef"]["name"], "build");
        let listed = pods
            .list(&ListParams::default().labels("tekton.dev/taskRun=build-1"))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        let found = &listed.items[0];
        assert_eq!(found.uid().as_deref(), Some(pod_uid.as_str()));
        assert_eq!(found.spec.as_ref().unwrap().node_name.as_deref(), Some("node-1"));
        assert_eq!(found.owner_references()[0].uid, uid);

        // The status subresource: a merge patch of status.conditions.
        let status = json!({"status": {
            "podName": "build-1-pod",
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{
                "type": "Succeeded", "status": "Unknown", "reason": "Running",
                "message": "step-build is running",
                "lastTransitionTime": "2026-01-01T00:00:01Z",
            }],
        }});
        let patched = trs
            .patch_status("build-1", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        assert_eq!(patched.data["status"]["podName"], "build-1-pod");
        let condition = &patched.data["status"]["conditions"][0];
        assert_eq!(condition["type"], "Succeeded");
        assert_eq!(condition["status"], "Unknown");
        assert_eq!(condition["reason"], "Running");
        // Status writes leave the generation alone.
        assert_eq!(patched.metadata.generation, Some(1));

        // A second condition (the verdict), added with a JSON merge patch of the whole list.
        let verdict = json!({"status": {"conditions": [
            condition,
            {"type": "SignedResultsVerified", "status": "True",
             "reason": "TaskRunResultsVerified", "message": "verified",
             "lastTransitionTime": "2026-01-01T00:00:02Z"},
        ]}});
        trs.patch_status("build-1", &PatchParams::default(), &Patch::Merge(&verdict))
            .await
            .unwrap();
        let read = trs.get_status("build-1").await.unwrap();
        let conditions = read.data["status"]["conditions"].as_array().unwrap();
        let types: Vec<&str> = conditions.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["Succeeded", "SignedResultsVerified"]);
        assert_eq!(conditions[1]["reason"], "TaskRunResultsVerified");

        // A status change through the main resource is ignored, as on a cluster.
        let forged = json!({"status": {"conditions": [{"type": "Succeeded", "status": "True"}]}});
        let after = trs
            .patch("build-1", &PatchParams::default(), &Patch::Merge(&forged))
            .await
            .unwrap();
        assert_eq!(after.data["status"]["conditions"][0]["status"], "Unknown");
        assert_eq!(after.data["status"]["conditions"].as_array().unwrap().len(), 2);

        // The CRD's structural schema prunes fields Tekton does not define.
        let unknown = json!({"status": {"notATektonField": "x"}});
        let pruned = trs
            .patch_status("build-1", &PatchParams::default(), &Patch::Merge(&unknown))
            .await
            .unwrap();
        assert!(pruned.data["status"].get("notATektonField").is_none());
    })
    .await
    .expect("the test finishes within its timeout");
}
