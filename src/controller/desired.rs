//! The entries the cluster needs right now: one per running, scheduled TaskRun pod that
//! its TaskRun's status names, while the TaskRun has not completed. Pure: computed from
//! snapshots of the watch caches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;

use super::objects::{CachedPod, CachedTaskRun};
use crate::config::Config;
use crate::spire::{EntryId, EntrySpec, Selector};

/// The label Tekton puts on a TaskRun's pod, naming the TaskRun.
pub const TASKRUN_LABEL: &str = "tekton.dev/taskRun";

/// Tekton's default TaskRun timeout (`default-timeout-minutes`), for a TaskRun without one.
const TEKTON_DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Why a pod gets no entry, for debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    NotScheduled,
    Finished,
    Terminating,
    NoTaskRun,
    TaskRunCompleted,
    NotOwnedByTaskRun,
    /// The TaskRun's status names no pod yet: Tekton writes `podName` in the reconcile
    /// that creates its pod, so until then no pod is provably its own.
    PodNotYetRecorded,
    NotTheTaskRunsPod,
    Unnamable,
}

/// Looks up a TaskRun by namespace and name.
pub(crate) trait TaskRuns {
    fn get(&self, namespace: &str, name: &str) -> Option<&CachedTaskRun>;
}

/// TaskRuns by namespace and name, borrowed from a cache snapshot or the early pass's
/// reads: a pass over 10,000 pods copies no names to build or query it.
#[derive(Default)]
pub(crate) struct TaskRunIndex<'a>(HashMap<(&'a str, &'a str), &'a CachedTaskRun>);

impl<'a> TaskRunIndex<'a> {
    pub(crate) fn new(taskruns: impl IntoIterator<Item = &'a CachedTaskRun>) -> Self {
        Self(
            taskruns
                .into_iter()
                .filter_map(|tr| {
                    let meta = &tr.metadata;
                    Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), tr))
                })
                .collect(),
        )
    }
}

impl TaskRuns for TaskRunIndex<'_> {
    fn get(&self, namespace: &str, name: &str) -> Option<&CachedTaskRun> {
        self.0.get(&(namespace, name)).copied()
    }
}

/// The entry `pod` needs, or why it needs none. `now` is in seconds since the Unix epoch;
/// it matters only for a TaskRun past its deadline (see [`expires_at`]).
pub(crate) fn entry_for(
    pod: &CachedPod,
    taskruns: &impl TaskRuns,
    config: &Config,
    now: i64,
) -> Result<EntrySpec, Skip> {
    let namespace = pod.namespace().unwrap_or_default();
    let pod_name = pod.name_any();
    let owner = pod.taskrun_owner().ok_or(Skip::NoTaskRun)?;
    let taskrun_name = owner.name.as_str();
    let node = pod
        .spec
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(Skip::NotScheduled)?;
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(Skip::Terminating);
    }
    if matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Err(Skip::Finished);
    }
    let taskrun = taskruns
        .get(&namespace, taskrun_name)
        .ok_or(Skip::NoTaskRun)?;
    if taskrun.completed() {
        return Err(Skip::TaskRunCompleted);
    }
    // Only the TaskRun's own pod. Its label and owner reference prove nothing: anyone
    // who may create pods in the namespace can write both (the TaskRun's UID is readable
    // by whoever reads TaskRuns). What Tekton alone writes is the TaskRun's status, and it
    // names the pod it created there, in the same reconcile.
    if taskrun.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
        return Err(Skip::NotOwnedByTaskRun);
    }
    match taskrun.status.pod_name.as_deref() {
        None | Some("") => return Err(Skip::PodNotYetRecorded),
        Some(recorded) if recorded != pod_name => return Err(Skip::NotTheTaskRunsPod),
        Some(_) => {}
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
    let id = pod_entry_id(config, &uid).ok_or(Skip::Unnamable)?;
    // The pod's UID alone names it, and with it its namespace and name: the API server
    // chooses it, once. No `k8s:ns` or `k8s:pod-name` then: they would narrow nothing, and
    // every selector that many entries share makes each create slower on the server,
    // whose check for a similar entry reads every entry holding each of its selectors
    // (docs/controller.md).
    let mut selectors = vec![Selector::new("k8s", format!("pod-uid:{uid}"))];
    if let Some(container) = &config.signing_container {
        selectors.push(Selector::new("k8s", format!("container-name:{container}")));
    }
    let selectors = selectors
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Skip::Unnamable)?;
    let timeout = timeout(taskrun);
    let mut spec = EntrySpec::new(id, spiffe_id, parent_id, selectors);
    spec.x509_svid_ttl = Some(timeout.map_or(config.max_svid_ttl, |t| {
        t.clamp(Duration::from_secs(60), config.max_svid_ttl)
    }));
    let start = taskrun
        .status
        .start_time
        .as_ref()
        .or(taskrun.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0.as_second());
    spec.expires_at = Some(expires_at(start, timeout, config.entry_expiry_margin, now));
    spec.hint = config.entry_hint.clone();
    Ok(spec)
}

/// The ID of the entry of the pod with UID `uid`: fixed by the pod, so that a pod's entry
/// is found again after any restart.
pub(crate) fn pod_entry_id(config: &Config, uid: &str) -> Option<EntryId> {
    // The UID is the only selector that names the pod: a pod without one gets nothing
    // (the API server sets every UID).
    if uid.is_empty() {
        return None;
    }
    EntryId::new(format!("{}{uid}", config.entry_id_prefix)).ok()
}

/// The TaskRun's `spec.timeout` (a Go duration such as `1h0m0s`): `None` for no timeout
/// (`0s`), Tekton's default when unset or unreadable.
fn timeout(taskrun: &CachedTaskRun) -> Option<Duration> {
    let parsed = taskrun
        .spec
        .timeout
        .as_deref()
        .and_then(|t| humantime::parse_duration(t).ok())
        .unwrap_or(TEKTON_DEFAULT_TIMEOUT);
    (!parsed.is_zero()).then_some(parsed)
}

/// When the entry of an attempt that started at `start` (Unix seconds) may be pruned:
/// its deadline (`start + timeout`) plus `margin`, a value that does not change while the
/// TaskRun runs, so that it causes no updates. Tekton fails the TaskRun at its deadline
/// and the controller then deletes the entry; the margin covers the time that takes.
/// Without a timeout, or once the TaskRun has outlived its deadline (Tekton stopped?),
/// the expiry moves on in whole margins, keeping at least half a margin ahead of `now`:
/// one update per margin, and a controller that is gone stops renewing it.
pub(crate) fn expires_at(start: i64, timeout: Option<Duration>, margin: Duration, now: i64) -> i64 {
    let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX).max(1);
    let timeout = timeout.map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX / 4));
    let mut at = start.saturating_add(timeout).saturating_add(margin);
    let floor = now.saturating_add(margin / 2);
    if at < floor {
        let steps = (floor - at + margin - 1) / margin;
        at = at.saturating_add(steps.saturating_mul(margin));
    }
    at
}

/// An entry the cluster needs, and for a pod's entry, the pod (shared with the cache
/// snapshot, not copied), for events and the registration latency.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) spec: EntrySpec,
    pub(crate) pod: Option<Arc<CachedPod>>,
}

impl Desired {
    /// The pod and TaskRun a pod's entry is for.
    pub(crate) fn owner(&self) -> Option<PodOwner<'_>> {
        let pod = self.pod.as_deref()?;
        // entry_for found the TaskRun through this reference, UID and all.
        let taskrun = pod.taskrun_owner()?;
        Some(PodOwner {
            namespace: pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod: pod.metadata.name.as_deref().unwrap_or_default(),
            pod_uid: pod.metadata.uid.as_deref().unwrap_or_default(),
            taskrun: &taskrun.name,
            taskrun_uid: &taskrun.uid,
            pod_created: pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
        })
    }
}

/// The pod and TaskRun an entry is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodOwner<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) pod: &'a str,
    pub(crate) pod_uid: &'a str,
    pub(crate) taskrun: &'a str,
    pub(crate) taskrun_uid: &'a str,
    /// The pod's `creationTimestamp`, Unix seconds.
    pub(crate) pod_created: Option<i64>,
}

/// Every entry the pods need, keyed by entry ID.
pub(crate) fn desired_entries<'p>(
    pods: impl IntoIterator<Item = &'p Arc<CachedPod>>,
    taskruns: &impl TaskRuns,
    config: &Config,
    now: i64,
) -> BTreeMap<EntryId, Desired> {
    let mut out = BTreeMap::new();
    let mut nodes = std::collections::BTreeSet::new();
    for pod in pods {
        match entry_for(pod, taskruns, config, now) {
            Ok(spec) => {
                if let Some(node) = pod.spec.node_name.clone() {
                    nodes.insert(node);
                }
                out.insert(
                    spec.id.clone(),
                    Desired {
                        spec,
                        pod: Some(Arc::clone(pod)),
                    },
                );
            }
            Err(Skip::NotOwnedByTaskRun | Skip::NotTheTaskRunsPod) => {
                // Debug, not warn: every pass would repeat it.
                tracing::debug!(
                    pod = %pod.name_any(),
                    namespace = %pod.namespace().unwrap_or_default(),
                    "pod claims a TaskRun but is not the pod its status names; no entry"
                );
            }
            Err(reason) => {
                tracing::trace!(pod = %pod.name_any(), ?reason, "no entry");
            }
        }
    }
    if let Some(cluster) = &config.node_alias_cluster {
        for node in nodes {
            match node_alias(&node, cluster, config, now) {
                Some(spec) => {
                    out.insert(spec.id.clone(), Desired { spec, pod: None });
                }
                None => tracing::debug!(%node, "node name cannot form a node alias entry"),
            }
        }
    }
    out
}

/// The node alias entry that parents a node's TaskRun entries: the node's SPIRE agent
/// (attested with `k8s_psat` in `cluster`) is `spiffe://<td><prefix><node>`.
/// It has no TaskRun deadline: its expiry moves on in whole margins while nodes use it.
fn node_alias(node: &str, cluster: &str, config: &Config, now: i64) -> Option<EntrySpec> {
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
    spec.expires_at = Some(expires_at(0, None, config.entry_expiry_margin, now));
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    /// 2026-01-01T00:00:00Z, the start of the test TaskRuns.
    const START: i64 = 1_767_225_600;

    struct Map(HashMap<(String, String), CachedTaskRun>);

    impl TaskRuns for Map {
        fn get(&self, namespace: &str, name: &str) -> Option<&CachedTaskRun> {
            self.0.get(&(namespace.to_owned(), name.to_owned()))
        }
    }

    fn config() -> Config {
        Config::parse(
            "spire-trust-domain: example.org\nspire-server-socket: /s\nmax-svid-ttl: 2h\ncluster-name: prod\n",
        )
        .unwrap()
    }

    fn taskrun(status: serde_json::Value, timeout: Option<&str>) -> Map {
        let mut status = status;
        status["startTime"] = json!("2026-01-01T00:00:00Z");
        let tr: CachedTaskRun = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "build", "namespace": "team", "uid": "tr-uid"},
            "spec": {"timeout": timeout},
            "status": status,
        }))
        .unwrap();
        Map(HashMap::from([(("team".into(), "build".into()), tr)]))
    }

    fn pod(node: Option<&str>, phase: &str, owner_uid: &str) -> CachedPod {
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

    fn recorded() -> serde_json::Value {
        json!({"podName": "build-pod"})
    }

    #[test]
    fn a_scheduled_pod_of_a_running_taskrun_gets_the_documented_entry() {
        let spec = entry_for(
            &pod(Some("node-1"), "Running", "tr-uid"),
            &taskrun(recorded(), Some("30m")),
            &config(),
            START + 60,
        )
        .unwrap();
        assert_eq!(spec.id.as_str(), "tekton-spire.prod.pod-uid");
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
            ["k8s:container-name:step-sign", "k8s:pod-uid:pod-uid"]
        );
        assert_eq!(spec.x509_svid_ttl, Some(Duration::from_secs(1800)));
        assert_eq!(spec.hint, "tekton-spire");
        // The deadline (start + 30 min) plus the default margin of 30 min.
        assert_eq!(spec.expires_at, Some(START + 3600));
    }

    #[test]
    fn the_svid_ttl_follows_the_taskrun_timeout_within_bounds() {
        let ttl = |t| {
            entry_for(
                &pod(Some("n"), "Running", "tr-uid"),
                &taskrun(recorded(), t),
                &config(),
                START,
            )
            .unwrap()
            .x509_svid_ttl
        };
        assert_eq!(
            ttl(None),
            Some(Duration::from_secs(3600)),
            "Tekton's default"
        );
        assert_eq!(ttl(Some("0s")), Some(Duration::from_secs(7200)));
        assert_eq!(ttl(Some("10h0m0s")), Some(Duration::from_secs(7200)));
        assert_eq!(ttl(Some("1h30m0s")), Some(Duration::from_secs(5400)));
        assert_eq!(ttl(Some("5s")), Some(Duration::from_secs(60)));
    }

    #[test]
    fn the_expiry_is_stable_while_the_taskrun_runs_and_moves_on_only_past_its_deadline() {
        let margin = Duration::from_secs(600);
        let hour = Some(Duration::from_secs(3600));
        // Every pass before the deadline computes the same value: no updates.
        for now in [START, START + 1, START + 1800, START + 3600 + 299] {
            assert_eq!(expires_at(START, hour, margin, now), START + 4200, "{now}");
        }
        // Past it, in whole margins, at least half a margin ahead.
        assert_eq!(expires_at(START, hour, margin, START + 3900), START + 4200);
        let late = expires_at(START, hour, margin, START + 3901);
        assert_eq!(late, START + 4800);
        assert_eq!(expires_at(START, hour, margin, START + 4500), late);
        assert_eq!(expires_at(START, hour, margin, START + 4501), START + 5400);
        // No timeout: rolling, one change per margin.
        let a = expires_at(START, None, margin, START + 10_000);
        assert!((START + 10_300..=START + 10_900).contains(&a), "{a}");
        assert_eq!(expires_at(START, None, margin, START + 10_001), a);
    }

    #[test]
    fn pods_that_need_no_entry_say_why() {
        let running = taskrun(recorded(), None);
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
            assert_eq!(entry_for(&p, trs, &config(), START).unwrap_err(), why);
        }
        let done = taskrun(
            json!({"podName": "build-pod", "completionTime": "2026-01-01T00:05:00Z"}),
            None,
        );
        assert_eq!(
            entry_for(
                &pod(Some("n"), "Running", "tr-uid"),
                &done,
                &config(),
                START
            )
            .unwrap_err(),
            Skip::TaskRunCompleted
        );
        let other_pod = taskrun(json!({"podName": "the-real-pod"}), None);
        assert_eq!(
            entry_for(
                &pod(Some("n"), "Running", "tr-uid"),
                &other_pod,
                &config(),
                START
            )
            .unwrap_err(),
            Skip::NotTheTaskRunsPod
        );
        let none = Map(HashMap::new());
        assert_eq!(
            entry_for(
                &pod(Some("n"), "Running", "tr-uid"),
                &none,
                &config(),
                START
            )
            .unwrap_err(),
            Skip::NoTaskRun
        );
        let mut terminating = pod(Some("n"), "Running", "tr-uid");
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(
            entry_for(&terminating, &running, &config(), START).unwrap_err(),
            Skip::Terminating
        );
    }

    #[test]
    fn a_pod_claiming_a_taskrun_whose_status_names_no_pod_yet_gets_nothing() {
        // The attack: label and controller owner reference copied from the TaskRun (its
        // UID is readable), created before Tekton records its own pod.
        let impostor = pod(Some("n"), "Running", "tr-uid");
        for status in [json!({}), json!({"podName": ""})] {
            assert_eq!(
                entry_for(&impostor, &taskrun(status, None), &config(), START).unwrap_err(),
                Skip::PodNotYetRecorded
            );
        }
    }

    #[test]
    fn with_a_cluster_name_each_used_node_gets_one_alias_entry() {
        let mut c = config();
        c.node_alias_cluster = Some("prod".into());
        let trs = taskrun(recorded(), None);
        let pods = [
            Arc::new(pod(Some("node-a"), "Running", "tr-uid")),
            Arc::new(pod(Some("node-a"), "Running", "tr-uid")),
        ];
        let desired = desired_entries(pods.iter(), &trs, &c, START);
        let alias = desired
            .get(&EntryId::new("tekton-spire.prod.node.node-a").unwrap())
            .expect("alias entry");
        assert_eq!(
            alias.spec.spiffe_id.to_string(),
            "spiffe://example.org/tekton-node/node-a"
        );
        assert_eq!(
            alias.spec.parent_id.to_string(),
            "spiffe://example.org/spire/server"
        );
        let selectors: Vec<String> = alias
            .spec
            .selectors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            selectors,
            ["k8s_psat:agent_node_name:node-a", "k8s_psat:cluster:prod"]
        );
        assert!(alias.spec.expires_at.is_some_and(|at| at > START));
        // Two pods with one UID are one entry, plus the alias.
        assert_eq!(desired.len(), 2);
        assert!(
            !desired_entries(pods.iter(), &trs, &config(), START)
                .keys()
                .any(|k| k.as_str().contains(".node."))
        );
    }

    #[test]
    fn a_pod_without_a_uid_gets_no_entry() {
        let mut p = pod(Some("n"), "Running", "tr-uid");
        p.metadata.uid = Some(String::new());
        let got = entry_for(&p, &taskrun(recorded(), None), &config(), START);
        assert!(matches!(got, Err(Skip::Unnamable)), "{got:?}");
    }

    #[test]
    fn narrowing_to_the_signing_container_is_optional() {
        let mut c = config();
        c.signing_container = None;
        let spec = entry_for(
            &pod(Some("n"), "Running", "tr-uid"),
            &taskrun(recorded(), None),
            &c,
            START,
        )
        .unwrap();
        let selectors: Vec<String> = spec.selectors.iter().map(ToString::to_string).collect();
        assert_eq!(selectors, ["k8s:pod-uid:pod-uid"]);
    }
}
