//! The objects the watch caches keep: TaskRuns and their pods cut down, while they are
//! deserialized, to the fields the controller reads. Steps, results, task specs,
//! container statuses with their termination messages, managed fields and annotations
//! are skipped by the parser and never held; the full TaskRun is fetched only to judge it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer};

/// The metadata fields the controller reads; everything else is skipped while parsing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerReference>>,
}

fn metadata<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        labels: m.labels,
        owner_references: m.owner_references,
        ..ObjectMeta::default()
    })
}

/// Keeps only the labels in `keep`: the rest are never read.
pub(crate) fn keep_labels(meta: &mut ObjectMeta, keep: &[&str]) {
    if let Some(labels) = meta.labels.as_mut() {
        labels.retain(|k, _| keep.contains(&k.as_str()));
        if labels.is_empty() {
            meta.labels = None;
        }
    }
}

/// Cuts a pod down further for the cache: of its metadata only what names it and its
/// controlling TaskRun remains (the label that selected it for the watch says nothing the
/// owner reference does not, and a map of one label costs more than the rest of the pod).
pub(crate) fn compact_pod(pod: &mut CachedPod) {
    pod.metadata.labels = None;
    if let Some(owners) = pod.metadata.owner_references.as_mut() {
        owners.retain(|o| o.controller == Some(true) && o.kind == "TaskRun");
        owners.shrink_to_fit();
    }
}

/// A `tekton.dev/v1` TaskRun as cached.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CachedTaskRun {
    #[serde(deserialize_with = "metadata")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default, deserialize_with = "or_default")]
    pub(crate) spec: TaskRunSpec,
    #[serde(default, deserialize_with = "or_default")]
    pub(crate) status: TaskRunStatus,
}

/// The part of a TaskRun's spec the controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct TaskRunSpec {
    /// A Go duration such as `1h0m0s`; `0s` means none.
    #[serde(default)]
    pub(crate) timeout: Option<String>,
}

/// The part of a TaskRun's status the controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskRunStatus {
    /// The pod Tekton created for the current attempt.
    #[serde(default)]
    pub(crate) pod_name: Option<String>,
    /// The start of the current attempt (Tekton resets it on a retry).
    #[serde(default)]
    pub(crate) start_time: Option<Time>,
    #[serde(default)]
    pub(crate) completion_time: Option<Time>,
}

fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl CachedTaskRun {
    /// Whether Tekton has marked it done.
    pub(crate) fn completed(&self) -> bool {
        self.status.completion_time.is_some()
    }
}

impl kube::Resource for CachedTaskRun {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "TaskRun".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "tekton.dev".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "taskruns".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A TaskRun's pod as cached.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CachedPod {
    #[serde(deserialize_with = "metadata")]
    pub(crate) metadata: ObjectMeta,
    #[serde(default, deserialize_with = "or_default")]
    pub(crate) spec: PodSpec,
    #[serde(default, deserialize_with = "or_default")]
    pub(crate) status: PodStatus,
}

/// The part of a pod's spec the controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodSpec {
    /// Set once the pod is scheduled.
    #[serde(default)]
    pub(crate) node_name: Option<String>,
}

/// The part of a pod's status the controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct PodStatus {
    #[serde(default)]
    pub(crate) phase: Option<String>,
}

impl CachedPod {
    /// Its controlling owner reference to a TaskRun (whose name Tekton's
    /// `tekton.dev/taskRun` label also says). A claim only: the TaskRun's status must
    /// name the pod too (desired.rs).
    pub(crate) fn taskrun_owner(&self) -> Option<&OwnerReference> {
        self.metadata
            .owner_references
            .as_deref()?
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "TaskRun")
    }
}

impl kube::Resource for CachedPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tekton_taskrun_is_cut_down_to_what_is_read() {
        let tr: CachedTaskRun = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "b", "namespace": "n", "uid": "u", "resourceVersion": "7",
                "labels": {"tekton.dev/task": "build"},
                "annotations": {"big": "x".repeat(1000)},
                "managedFields": [{"manager": "tekton", "fieldsV1": {"f:status": {}}}]},
            "spec": {"timeout": "1h0m0s", "taskSpec": {"steps": [{"name": "s", "image": "i"}]}},
            "status": {"podName": "b-pod", "startTime": "2026-01-01T00:00:00Z",
                "conditions": [
                    {"type": "Succeeded", "status": "Unknown", "reason": "Running"},
                    {"type": "SignedResultsVerified", "status": "True", "reason": "R", "message": "m"}],
                "results": [{"name": "IMAGE_DIGEST", "value": "sha256:00"}],
                "steps": [{"name": "s", "terminated": {"message": "y".repeat(4096)}}]},
        }))
        .unwrap();
        assert_eq!(tr.metadata.name.as_deref(), Some("b"));
        assert_eq!(tr.metadata.resource_version.as_deref(), Some("7"));
        assert!(tr.metadata.annotations.is_none() && tr.metadata.managed_fields.is_none());
        assert_eq!(tr.spec.timeout.as_deref(), Some("1h0m0s"));
        assert_eq!(tr.status.pod_name.as_deref(), Some("b-pod"));
        assert!(!tr.completed());
    }

    #[test]
    fn null_or_missing_parts_are_empty() {
        let tr: CachedTaskRun = serde_json::from_value(
            json!({"metadata": {"name": "b"}, "spec": null, "status": null}),
        )
        .unwrap();
        assert!(tr.spec.timeout.is_none() && tr.status.pod_name.is_none());
        let pod: CachedPod = serde_json::from_value(json!({"metadata": {}})).unwrap();
        assert!(pod.spec.node_name.is_none() && pod.status.phase.is_none());
    }

    #[test]
    fn a_cached_pod_keeps_only_its_controlling_taskrun() {
        let mut pod: CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "n", "uid": "pu",
                "labels": {"tekton.dev/taskRun": "label-says", "app.kubernetes.io/managed-by": "tekton-pipelines"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c1", "controller": false},
                    {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "other", "uid": "o1"},
                    {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "b", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "node-1"},
        }))
        .unwrap();
        compact_pod(&mut pod);
        assert!(pod.metadata.labels.is_none());
        let owners = pod.metadata.owner_references.as_deref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (owners[0].name.as_str(), owners[0].uid.as_str()),
            ("b", "u")
        );
        // The TaskRun is the one the controlling owner reference names, not the label.
        assert_eq!(pod.taskrun_owner().map(|o| o.name.as_str()), Some("b"));
        let orphan: CachedPod = serde_json::from_value(json!({"metadata": {
            "labels": {"tekton.dev/taskRun": "b"},
            "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "b", "uid": "u"}]}}))
        .unwrap();
        assert!(orphan.taskrun_owner().is_none());
    }

    #[test]
    fn a_pod_keeps_its_node_phase_owner_and_chosen_labels() {
        let mut pod: CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "n", "uid": "pu",
                "labels": {"tekton.dev/taskRun": "b", "app.kubernetes.io/managed-by": "tekton-pipelines"},
                "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "b", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "node-1", "containers": [{"name": "step-a", "image": "i", "env": [{"name": "X", "value": "y"}]}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "step-a", "state": {"terminated": {"message": "z".repeat(4096)}}}]},
        }))
        .unwrap();
        keep_labels(&mut pod.metadata, &["tekton.dev/taskRun"]);
        assert_eq!(pod.metadata.labels.as_ref().map(BTreeMap::len), Some(1));
        assert_eq!(pod.spec.node_name.as_deref(), Some("node-1"));
        assert_eq!(pod.status.phase.as_deref(), Some("Running"));
        assert_eq!(pod.metadata.owner_references.unwrap()[0].uid, "u");
    }
}
