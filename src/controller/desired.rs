//! The entries the cluster needs right now: one per running, scheduled TaskRun pod whose
//! TaskRun has not completed. Pure: computed from snapshots of the watch caches.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::DynamicObject;

use crate::config::Config;
use crate::spire::{EntryId, EntrySpec, Selector};

/// The label Tekton puts on a TaskRun's pod, naming the TaskRun.
pub const TASKRUN_LABEL: &str = "tekton.dev/taskRun";

/// Why a pod gets no entry, for debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    NotScheduled,
    Finished,
    Terminating,
    NoTaskRun,
    TaskRunCompleted,
    NotOwnedByTaskRun,
    NotTheTaskRunsPod,
    Unnamable,
}

/// Looks up a TaskRun by namespace and name.
pub(crate) trait TaskRuns {
    fn get(&self, namespace: &str, name: &str) -> Option<std::sync::Arc<DynamicObject>>;
}

/// The entry `pod` needs, or why it needs none.
pub(crate) fn entry_for(
    pod: &Pod,
    taskruns: &impl TaskRuns,
    config: &Config,
) -> Result<EntrySpec, Skip> {
    let namespace = pod.namespace().unwrap_or_default();
    let pod_name = pod.name_any();
    let taskrun_name = pod.labels().get(TASKRUN_LABEL).ok_or(Skip::NoTaskRun)?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
        .ok_or(Skip::NotScheduled)?;
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(Skip::Terminating);
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return Err(Skip::Finished);
    }
    let taskrun = taskruns
        .get(&namespace, taskrun_name)
        .ok_or(Skip::NoTaskRun)?;
    let status = taskrun.data.get("status");
    if status
        .and_then(|s| s.get("completionTime"))
        .is_some_and(|t| !t.is_null())
    {
        return Err(Skip::TaskRunCompleted);
    }
    // Only the TaskRun's own pod: another pod that merely carries the label (anyone who
    // may create pods in the namespace can add it) must not obtain the TaskRun's SVID.
    let taskrun_uid = taskrun.uid().unwrap_or_default();
    let owned = pod
        .owner_references()
        .iter()
        .any(|o| o.kind == "TaskRun" && o.uid == taskrun_uid && o.controller == Some(true));
    if !owned {
        return Err(Skip::NotOwnedByTaskRun);
    }
    if let Some(recorded) = status
        .and_then(|s| s.get("podName"))
        .and_then(|n| n.as_str())
        && !recorded.is_empty()
        && recorded != pod_name
    {
        return Err(Skip::NotTheTaskRunsPod);
    }

    let td = &config.trust_domain;
    let spiffe_id = tekton_spire_verify::SpiffeId::for_taskrun(td, &namespace, taskrun_name)
        .ok()
        .and_then(|id| id.to_string().parse().ok())
        .ok_or(Skip::Unnamable)?;
    let parent_id = format!("spiffe://{td}{}{node}", config.node_alias_prefix)
        .parse()
        .map_err(|_| Skip::Unnamable)?;
    let uid = pod.uid().unwrap_or_default();
    let id =
        EntryId::new(format!("{}{uid}", config.entry_id_prefix)).map_err(|_| Skip::Unnamable)?;
    let mut selectors = vec![
        Selector::new("k8s", format!("pod-uid:{uid}")),
        Selector::new("k8s", format!("ns:{namespace}")),
        Selector::new("k8s", format!("pod-name:{pod_name}")),
    ];
    if let Some(container) = &config.signing_container {
        selectors.push(Selector::new("k8s", format!("container-name:{container}")));
    }
    let selectors = selectors
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Skip::Unnamable)?;
    let mut spec = EntrySpec::new(id, spiffe_id, parent_id, selectors);
    spec.x509_svid_ttl = Some(svid_ttl(&taskrun, config.max_svid_ttl));
    spec.hint = config.entry_hint.clone();
    Ok(spec)
}

/// The TaskRun's `spec.timeout` (a Go duration such as `1h0m0s`), capped at `max`; `max`
/// when unset, zero (no timeout) or unreadable.
fn svid_ttl(taskrun: &DynamicObject, max: Duration) -> Duration {
    taskrun
        .data
        .get("spec")
        .and_then(|s| s.get("timeout"))
        .and_then(|t| t.as_str())
        .and_then(|t| humantime::parse_duration(t).ok())
        .filter(|t| !t.is_zero())
        .map_or(max, |t| t.clamp(Duration::from_secs(60), max))
}

/// Every entry the pods need, keyed by entry ID.
pub(crate) fn desired_entries<'p>(
    pods: impl IntoIterator<Item = &'p Pod>,
    taskruns: &impl TaskRuns,
    config: &Config,
) -> BTreeMap<EntryId, EntrySpec> {
    let mut out = BTreeMap::new();
    let mut nodes = std::collections::BTreeSet::new();
    for pod in pods {
        match entry_for(pod, taskruns, config) {
            Ok(spec) => {
                if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    nodes.insert(node);
                }
                out.insert(spec.id.clone(), spec);
            }
            Err(Skip::NotOwnedByTaskRun | Skip::NotTheTaskRunsPod) => {
                // Debug, not warn: every pass would repeat it.
                tracing::debug!(
                    pod = %pod.name_any(),
                    namespace = %pod.namespace().unwrap_or_default(),
                    "pod carries the tekton.dev/taskRun label but is not its TaskRun's pod; no entry"
                );
            }
            Err(reason) => {
                tracing::trace!(pod = %pod.name_any(), ?reason, "no entry");
            }
        }
    }
    if let Some(cluster) = &config.node_alias_cluster {
        for node in nodes {
            match node_alias(&node, cluster, config) {
                Some(spec) => {
                    out.insert(spec.id.clone(), spec);
                }
                None => tracing::debug!(%node, "node name cannot form a node alias entry"),
            }
        }
    }
    out
}

/// The node alias entry that parents a node's TaskRun entries: the node's SPIRE agent
/// (attested with `k8s_psat` in `cluster`) is `spiffe://<td><prefix><node>`.
fn node_alias(node: &str, cluster: &str, config: &Config) -> Option<EntrySpec> {
    let td = &config.trust_domain;
    let id = EntryId::new(format!("{}node.{node}", config.entry_id_prefix)).ok()?;
    let spiffe_id = format!("spiffe://{td}{}{node}", config.node_alias_prefix)
        .parse()
        .ok()?;
    let parent_id = format!("spiffe://{td}/spire/server").parse().ok()?;
    let selectors = [
        Selector::new("k8s_psat", format!("cluster:{cluster}")).ok()?,
        Selector::new("k8s_psat", format!("agent_node_name:{node}")).ok()?,
    ];
    let mut spec = EntrySpec::new(id, spiffe_id, parent_id, selectors);
    spec.hint = config.entry_hint.clone();
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Arc;

    struct Map(HashMap<(String, String), Arc<DynamicObject>>);

    impl TaskRuns for Map {
        fn get(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
            self.0
                .get(&(namespace.to_owned(), name.to_owned()))
                .cloned()
        }
    }

    fn config() -> Config {
        Config::parse(
            "spire-trust-domain: example.org\nspire-server-socket: /s\nmax-svid-ttl: 2h\n",
        )
        .unwrap()
    }

    fn taskrun(status: serde_json::Value, timeout: Option<&str>) -> Map {
        let tr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "build", "namespace": "team", "uid": "tr-uid"},
            "spec": {"timeout": timeout},
            "status": status,
        }))
        .unwrap();
        Map(HashMap::from([(
            ("team".into(), "build".into()),
            Arc::new(tr),
        )]))
    }

    fn pod(node: Option<&str>, phase: &str, owner_uid: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "build-pod", "namespace": "team", "uid": "pod-uid",
                "labels": {"tekton.dev/taskRun": "build"},
                "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "build",
                    "uid": owner_uid, "controller": true}]},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn a_scheduled_pod_of_a_running_taskrun_gets_the_documented_entry() {
        let spec = entry_for(
            &pod(Some("node-1"), "Running", "tr-uid"),
            &taskrun(json!({"podName": "build-pod"}), Some("30m")),
            &config(),
        )
        .unwrap();
        assert_eq!(spec.id.as_str(), "tekton-spire.pod-uid");
        assert_eq!(
            spec.spiffe_id.to_string(),
            "spiffe://example.org/ns/team/taskrun/build"
        );
        assert_eq!(
            spec.parent_id.to_string(),
            "spiffe://example.org/tekton-node/node-1"
        );
        let selectors: Vec<String> = spec.selectors.iter().map(ToString::to_string).collect();
        assert_eq!(
            selectors,
            [
                "k8s:container-name:step-sign",
                "k8s:ns:team",
                "k8s:pod-name:build-pod",
                "k8s:pod-uid:pod-uid"
            ]
        );
        assert_eq!(spec.x509_svid_ttl, Some(Duration::from_secs(1800)));
        assert_eq!(spec.hint, "tekton-spire");
    }

    #[test]
    fn the_svid_ttl_follows_the_taskrun_timeout_within_bounds() {
        let ttl = |t| {
            entry_for(
                &pod(Some("n"), "Running", "tr-uid"),
                &taskrun(json!({}), t),
                &config(),
            )
            .unwrap()
            .x509_svid_ttl
        };
        assert_eq!(ttl(None), Some(Duration::from_secs(7200)));
        assert_eq!(ttl(Some("0s")), Some(Duration::from_secs(7200)));
        assert_eq!(ttl(Some("10h0m0s")), Some(Duration::from_secs(7200)));
        assert_eq!(ttl(Some("1h30m0s")), Some(Duration::from_secs(5400)));
        assert_eq!(ttl(Some("5s")), Some(Duration::from_secs(60)));
    }

    #[test]
    fn pods_that_need_no_entry_say_why() {
        let running = taskrun(json!({"podName": "build-pod"}), None);
        let cases = [
            (pod(None, "Pending", "tr-uid"), &running, Skip::NotScheduled),
            (
                pod(Some("n"), "Succeeded", "tr-uid"),
                &running,
                Skip::Finished,
            ),
            (pod(Some("n"), "Failed", "tr-uid"), &running, Skip::Finished),
            (
                pod(Some("n"), "Running", "someone-else"),
                &running,
                Skip::NotOwnedByTaskRun,
            ),
        ];
        for (p, trs, why) in cases {
            assert_eq!(entry_for(&p, trs, &config()).unwrap_err(), why);
        }
        let done = taskrun(json!({"completionTime": "2025-06-01T12:00:00Z"}), None);
        assert_eq!(
            entry_for(&pod(Some("n"), "Running", "tr-uid"), &done, &config()).unwrap_err(),
            Skip::TaskRunCompleted
        );
        let other_pod = taskrun(json!({"podName": "the-real-pod"}), None);
        assert_eq!(
            entry_for(&pod(Some("n"), "Running", "tr-uid"), &other_pod, &config()).unwrap_err(),
            Skip::NotTheTaskRunsPod
        );
        let none = Map(HashMap::new());
        assert_eq!(
            entry_for(&pod(Some("n"), "Running", "tr-uid"), &none, &config()).unwrap_err(),
            Skip::NoTaskRun
        );
        let mut terminating = pod(Some("n"), "Running", "tr-uid");
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(
            entry_for(&terminating, &running, &config()).unwrap_err(),
            Skip::Terminating
        );
    }

    #[test]
    fn with_a_cluster_name_each_used_node_gets_one_alias_entry() {
        let mut c = config();
        c.node_alias_cluster = Some("prod".into());
        let trs = taskrun(json!({}), None);
        let pods = [
            pod(Some("node-a"), "Running", "tr-uid"),
            pod(Some("node-a"), "Running", "tr-uid"),
        ];
        let desired = desired_entries(pods.iter(), &trs, &c);
        let alias = desired
            .get(&EntryId::new("tekton-spire.node.node-a").unwrap())
            .expect("alias entry");
        assert_eq!(
            alias.spiffe_id.to_string(),
            "spiffe://example.org/tekton-node/node-a"
        );
        assert_eq!(
            alias.parent_id.to_string(),
            "spiffe://example.org/spire/server"
        );
        let selectors: Vec<String> = alias.selectors.iter().map(ToString::to_string).collect();
        assert_eq!(
            selectors,
            ["k8s_psat:agent_node_name:node-a", "k8s_psat:cluster:prod"]
        );
        // Two pods with one UID are one entry, plus the alias.
        assert_eq!(desired.len(), 2);
        assert!(
            !desired_entries(pods.iter(), &trs, &config())
                .keys()
                .any(|k| k.as_str().contains(".node."))
        );
    }

    #[test]
    fn narrowing_to_the_signing_container_is_optional() {
        let mut c = config();
        c.signing_container = None;
        let spec = entry_for(
            &pod(Some("n"), "Running", "tr-uid"),
            &taskrun(json!({}), None),
            &c,
        )
        .unwrap();
        assert_eq!(spec.selectors.len(), 3);
    }
}
