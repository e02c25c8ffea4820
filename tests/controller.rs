//! The controller as a real process (`tekton-spire controller`) against the real
//! kube-apiserver with etcd (scripts/kube-local.sh, Tekton's TaskRun CRD) and a real
//! SPIRE server (scripts/spire-local.sh). After every fault the owned entry set must
//! equal exactly what the live pods need: 0 leaked, 0 missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use tekton_spire::spire::{Client as SpireClient, ClientConfig, Endpoint, ListFilter};
use tekton_spire_testbed::kube::{Kube, create_namespace, eventually, taskruns};
use tekton_spire_testbed::spire::{Propagation, Spire};

const TEST_TIMEOUT: Duration = Duration::from_secs(240);
const CONVERGE: Duration = Duration::from_secs(60);
const PREFIX: &str = "tekton-spire.test.";

/// One test's world: a private SPIRE server, a namespace of the shared API server, and
/// the controller process.
struct World {
    spire: Spire,
    kube: &'static Kube,
    client: kube::Client,
    namespace: String,
    dir: tempfile::TempDir,
    controller: Option<Child>,
    /// `--run` of the controllers this world starts.
    run: &'static str,
}

impl World {
    async fn new(name: &str) -> Self {
        let kube = tokio::task::spawn_blocking(Kube::shared).await.unwrap();
        let spire = tokio::task::spawn_blocking(|| Spire::start(Propagation::Tuned))
            .await
            .unwrap()
            .unwrap();
        let client = kube.client().await.unwrap();
        let namespace = create_namespace(client.clone(), &format!("{name}-"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "spire-trust-domain: {}\nspire-server-socket: {}\ncluster-name: test\nresync-interval: 2s\ncall-timeout: 5s\nmetrics-address: 127.0.0.1:0\n",
            spire.trust_domain(),
            spire.server_socket().display()
        );
        std::fs::write(dir.path().join("config.yaml"), config).unwrap();
        Self {
            spire,
            kube,
            client,
            namespace,
            dir,
            controller: None,
            run: "entries",
        }
    }

    /// Puts a relay in front of the SPIRE server's admin socket and points the
    /// controller's configuration at it.
    async fn relay_spire(&self) -> Relay {
        let path = self.dir.path().join("relay.sock");
        let relay = Relay::unix(self.spire.server_socket().to_owned(), path.clone()).await;
        self.configure(&format!("spire-server-socket: {}\n", path.display()));
        relay
    }

    /// Sets keys of the controller's configuration (`key: value` lines).
    fn configure(&self, lines: &str) {
        let path = self.dir.path().join("config.yaml");
        let keys: Vec<&str> = lines.lines().filter_map(|l| l.split(':').next()).collect();
        let mut config: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !keys.contains(&l.split(':').next().unwrap_or_default()))
            .map(|l| format!("{l}\n"))
            .collect();
        config.push_str(lines);
        std::fs::write(path, config).unwrap();
    }

    fn start_controller(&mut self) {
        let kubeconfig = self.kube.kubeconfig_path().to_owned();
        self.start_controller_with(&kubeconfig);
    }

    fn start_controller_with(&mut self, kubeconfig: &std::path::Path) {
        self.controller = Some(self.spawn_controller(kubeconfig, "controller"));
    }

    /// A controller process logging to `<name>.log`.
    fn spawn_controller(&self, kubeconfig: &std::path::Path, name: &str) -> Child {
        self.spawn_controller_as(kubeconfig, name, name)
    }

    /// The same, with `pod_name` as its pod's name (its lease holder and the reporting
    /// instance of its events).
    fn spawn_controller_as(
        &self,
        kubeconfig: &std::path::Path,
        name: &str,
        pod_name: &str,
    ) -> Child {
        let log_path = self.dir.path().join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
            .args(["controller", "--run", self.run, "--config"])
            .arg(self.dir.path().join("config.yaml"))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env("POD_NAME", pod_name)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("controller.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The address the controller serves metrics on, from its log.
    async fn metrics_address(&self) -> String {
        eventually(CONVERGE, "the metrics address in the log", || async {
            Ok(self.log().lines().find_map(|l| {
                l.contains("serving /metrics")
                    .then(|| l.split("address=").nth(1))
                    .flatten()
                    .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
            }))
        })
        .await
        .unwrap()
    }

    /// GET `path` from the controller's metrics server: status and body.
    async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let address = self.metrics_address().await;
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// The value of one sample line of /metrics (`name{labels}`), 0 when absent.
    async fn metric(&self, sample: &str) -> f64 {
        let (_, body) = self.http_get("/metrics").await;
        body.lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .map(|v| v.trim().parse().unwrap_or(0.0))
            })
            .unwrap_or(0.0)
    }

    /// Waits until the controller has finished a full entry pass that wrote or listed: its
    /// startup work (entries for every pod of the shared API server) is behind it.
    async fn first_full_pass(&self) {
        eventually(CONVERGE, "a full entry pass", || async {
            Ok((self
                .metric("tekton_spire_entry_pass_duration_seconds_count")
                .await
                >= 1.0)
                .then_some(()))
        })
        .await
        .unwrap();
    }

    fn kill_controller(&mut self) {
        if let Some(mut child) = self.controller.take() {
            child.kill().unwrap(); // SIGKILL: no cleanup of any kind
            child.wait().unwrap();
        }
    }

    fn stop_controller(&mut self) {
        if let Some(mut child) = self.controller.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the controller ignored SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    async fn spire_client(&self) -> SpireClient {
        SpireClient::connect(
            Endpoint::AdminSocket(self.spire.server_socket().to_owned()),
            ClientConfig::default(),
        )
        .await
        .unwrap()
    }

    /// Creates a TaskRun and its scheduled pod; returns the pod's UID.
    async fn taskrun_with_pod(&self, name: &str, node: &str) -> String {
        let trs = taskruns(self.client.clone(), &self.namespace);
        let tr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": name},
            "spec": {"taskRef": {"name": "build"}, "timeout": "30m0s"},
        }))
        .unwrap();
        let tr = trs.create(&PostParams::default(), &tr).await.unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": format!("{name}-pod"),
                "labels": {"tekton.dev/taskRun": name},
                "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": name,
                    "uid": tr.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": {"nodeName": node, "containers": [{"name": "step-sign", "image": "registry.invalid/sign:1"}]},
        }))
        .unwrap();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let uid = pods
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
            .uid()
            .unwrap();
        // Tekton records the pod it created on the TaskRun.
        self.record_pod(name, &format!("{name}-pod")).await;
        uid
    }

    /// Writes `podName` (and a start time of now) on the TaskRun's status, as Tekton does
    /// in the reconcile that creates the pod.
    async fn record_pod(&self, taskrun: &str, pod: &str) {
        let status = json!({"status": {"podName": pod, "startTime": now_rfc3339()}});
        taskruns(self.client.clone(), &self.namespace)
            .patch_status(taskrun, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    /// Creates a TaskRun without a pod; returns its UID.
    async fn taskrun(&self, name: &str) -> String {
        let tr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": name},
            "spec": {"taskRef": {"name": "build"}, "timeout": "30m0s"},
        }))
        .unwrap();
        taskruns(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &tr)
            .await
            .unwrap()
            .uid()
            .unwrap()
    }

    /// Creates a pod that claims TaskRun `taskrun` (label and controller owner reference
    /// with `taskrun_uid`), on `node` if given; returns its UID.
    async fn claiming_pod(
        &self,
        pod: &str,
        taskrun: &str,
        taskrun_uid: &str,
        node: Option<&str>,
    ) -> String {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": pod,
                "labels": {"tekton.dev/taskRun": taskrun},
                "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": taskrun,
                    "uid": taskrun_uid, "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": {"nodeName": node, "containers": [{"name": "step-sign", "image": "registry.invalid/sign:1"}]},
        }))
        .unwrap();
        Api::<Pod>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
            .uid()
            .unwrap()
    }

    /// The attacks the early pass must refuse like any pass: a pod claiming a new TaskRun
    /// whose status names no pod yet, and a second pod claiming TaskRun `named`, whose
    /// status names its own pod. Returns their UIDs.
    async fn claiming_pods_to_refuse(&self, named: &str) -> [String; 2] {
        let victim_uid = self.taskrun("victim").await;
        let impostor = self
            .claiming_pod("impostor", "victim", &victim_uid, Some("node-1"))
            .await;
        let named_uid = taskruns(self.client.clone(), &self.namespace)
            .get(named)
            .await
            .unwrap()
            .uid()
            .unwrap();
        let second = self
            .claiming_pod(
                &format!("{named}-second"),
                named,
                &named_uid,
                Some("node-1"),
            )
            .await;
        [impostor, second]
    }

    /// Waits until the controller has logged `n` early entry passes.
    async fn wait_early_passes(&self, n: usize) {
        eventually(CONVERGE, "the early pass", || async {
            Ok((early_passes(&self.log()).len() == n).then_some(()))
        })
        .await
        .unwrap();
    }

    async fn complete_taskrun(&self, name: &str) {
        let status = json!({"status": {"completionTime": "2026-01-01T00:05:00Z",
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]}});
        taskruns(self.client.clone(), &self.namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    async fn delete_taskrun_and_pod(&self, name: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        // No garbage collector runs here: delete the pod as it would.
        pods.delete(
            &format!("{name}-pod"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
        taskruns(self.client.clone(), &self.namespace)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// The entry IDs the live pods of this namespace need, from the API server.
    async fn needed(&self) -> BTreeSet<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let trs = taskruns(self.client.clone(), &self.namespace);
        let mut out = BTreeSet::new();
        for pod in pods.list(&ListParams::default()).await.unwrap() {
            let Some(tr_name) = pod.labels().get("tekton.dev/taskRun") else {
                continue;
            };
            let Ok(tr) = trs.get(tr_name).await else {
                continue;
            };
            let done = tr.data.pointer("/status/completionTime").is_some();
            let named = tr.data.pointer("/status/podName").and_then(|n| n.as_str())
                == Some(pod.name_any().as_str());
            if !done && named && pod.metadata.deletion_timestamp.is_none() {
                out.insert(format!("{PREFIX}{}", pod.uid().unwrap()));
            }
        }
        out
    }

    /// Our entries for this namespace on the SPIRE server.
    async fn owned(&self) -> BTreeSet<String> {
        let marker = format!("/ns/{}/", self.namespace);
        self.spire_client()
            .await
            .list_entries(&ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.spec.id.as_str().starts_with(PREFIX)
                    && e.spec.spiffe_id.to_string().contains(&marker)
            })
            .map(|e| e.spec.id.as_str().to_owned())
            .collect()
    }

    /// Waits until no entry is leaked or missing; returns how long it took.
    async fn converge(&self, what: &str) -> Duration {
        let started = Instant::now();
        let result = eventually(CONVERGE, what, || async {
            let (needed, owned) = (self.needed().await, self.owned().await);
            let leaked = owned.difference(&needed).count();
            let missing = needed.difference(&owned).count();
            Ok((leaked == 0 && missing == 0).then_some(()))
        })
        .await;
        if let Err(e) = result {
            let (needed, owned) = (self.needed().await, self.owned().await);
            panic!(
                "{e:#}: leaked {:?}, missing {:?}\ncontroller log:\n{}",
                owned.difference(&needed).collect::<Vec<_>>(),
                needed.difference(&owned).collect::<Vec<_>>(),
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
        }
        let took = started.elapsed();
        eprintln!("{what}: converged with 0 leaked and 0 missing in {took:?}");
        took
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap()
        .to_string()
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_controller();
    }
}

#[tokio::test]
async fn an_entry_follows_its_pod_from_scheduling_to_completion() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("lifecycle").await;
        w.start_controller();
        let pod_uid = w.taskrun_with_pod("build-1", "node-7").await;
        w.converge("entry created").await;
        // kube-apiserver v1.37 streams initial lists: the caches are filled one object at
        // a time, never from pages of full objects.
        let log = w.log();
        for watch in ["pods", "taskruns"] {
            assert!(
                log.lines().any(
                    |l| l.contains("the API server streams initial lists") && l.contains(watch)
                ),
                "the {watch} cache was not filled from a streamed list:\n{log}"
            );
        }
        // Pods come as protobuf (src/controller/protobuf_pods.rs), and what the cache made
        // of them was right: the entry above names the pod's node and TaskRun.
        assert!(
            log.contains("the API server sends pods as protobuf"),
            "pods were not watched as protobuf:\n{log}"
        );

        let entry = w
            .spire_client()
            .await
            .entry(&tekton_spire::spire::EntryId::new(format!("{PREFIX}{pod_uid}")).unwrap())
            .await
            .unwrap()
            .expect("the entry exists under its deterministic ID");
        let td = w.spire.trust_domain();
        assert_eq!(
            entry.spec.spiffe_id.to_string(),
            format!("spiffe://{td}/ns/{}/taskrun/build-1", w.namespace)
        );
        assert_eq!(
            entry.spec.parent_id.to_string(),
            format!("spiffe://{td}/tekton-node/node-7")
        );
        let selectors: Vec<String> = entry
            .spec
            .selectors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            selectors,
            [
                "k8s:container-name:step-sign".to_owned(),
                format!("k8s:pod-uid:{pod_uid}"),
            ]
        );
        assert_eq!(entry.spec.x509_svid_ttl, Some(Duration::from_secs(1800)));
        assert_eq!(entry.spec.hint, "tekton-spire");

        w.complete_taskrun("build-1").await;
        w.converge("entry deleted on completion").await;
        assert!(w.owned().await.is_empty());

        w.taskrun_with_pod("build-2", "node-7").await;
        w.converge("second entry").await;
        w.delete_taskrun_and_pod("build-2").await;
        w.converge("entry deleted with its pod").await;
        assert!(w.owned().await.is_empty());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_controller_killed_mid_burst_converges_after_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("sigkill").await;
        w.start_controller();
        for i in 0..40 {
            w.taskrun_with_pod(&format!("burst-{i}"), &format!("node-{}", i % 3))
                .await;
            if i == 20 {
                w.kill_controller();
            }
        }
        // While it is down: some TaskRuns complete, one disappears.
        w.complete_taskrun("burst-3").await;
        w.delete_taskrun_and_pod("burst-4").await;
        w.start_controller();
        w.converge("restart after SIGKILL").await;
        assert_eq!(w.owned().await.len(), 38);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_spire_server_outage_is_retried_and_then_converges() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("spire-outage").await;
        w.start_controller();
        w.taskrun_with_pod("before", "node-1").await;
        w.converge("before the outage").await;

        w.spire.stop_server().unwrap();
        w.taskrun_with_pod("during-1", "node-1").await;
        w.taskrun_with_pod("during-2", "node-2").await;
        w.complete_taskrun("before").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        w.spire.start_server().unwrap();
        w.converge("after the SPIRE server came back").await;
        assert_eq!(w.owned().await.len(), 2);

        // The outage was reported (once at warn; the retries log at debug).
        let log = std::fs::read_to_string(w.log_path()).unwrap();
        assert!(
            log.contains("entry pass failed; retrying with backoff"),
            "{log}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_taskrun_deleted_while_the_controller_was_down_loses_its_entry() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("deleted-while-down").await;
        w.start_controller();
        w.taskrun_with_pod("keep", "node-1").await;
        w.taskrun_with_pod("gone", "node-1").await;
        w.converge("two entries").await;
        w.stop_controller();
        w.delete_taskrun_and_pod("gone").await;
        w.start_controller();
        w.converge("stale entry removed after restart").await;
        assert_eq!(w.owned().await.len(), 1);
    })
    .await
    .expect("test timed out");
}

/// The `created` count of each of the controller's "early entry pass" log lines.
fn early_passes(log: &str) -> Vec<u64> {
    log.lines()
        // Not the warnings of a pass cut off or failed, which count nothing.
        .filter(|l| l.contains("early entry pass") && l.contains("created="))
        .map(|l| {
            let count = &l[l.find("created=").unwrap() + "created=".len()..];
            count[..count.find(' ').unwrap_or(count.len())]
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_restart_recreates_a_missing_entry_before_the_taskrun_cache_is_needed() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("early-pass").await;
        w.start_controller();
        w.taskrun_with_pod("kept", "node-1").await;
        let lost = w.taskrun_with_pod("lost", "node-1").await;
        let [impostor, second] = w.claiming_pods_to_refuse("kept").await;
        w.converge("two entries").await;
        // The first start's early pass created what the pods it saw needed, if any (the
        // shared API server's other pods included: it may still be at them).
        w.wait_early_passes(1).await;
        w.stop_controller();

        // Lost while the controller was down.
        let lost_id = tekton_spire::spire::EntryId::new(format!("{PREFIX}{lost}")).unwrap();
        w.spire_client()
            .await
            .batch_delete(std::slice::from_ref(&lost_id))
            .await
            .unwrap();
        w.start_controller();
        w.wait_early_passes(2).await;
        // The early pass, not a full one, put it back (other tests' pods created while
        // this controller was down may have had theirs created with it), and gave the
        // impostors nothing.
        let log = w.log();
        let second_start = &log[log.rfind("starting controller").unwrap()..];
        let recreated = second_start
            .find(&format!("created entry entry_id={lost_id}"))
            .unwrap_or_else(|| panic!("{lost_id} was not recreated: {second_start}"));
        let full_passes = second_start
            .find("watch caches filled")
            .unwrap_or(second_start.len());
        assert!(
            recreated < full_passes,
            "a full pass, not the early one, recreated it: {second_start}"
        );
        assert!(early_passes(&log)[1] >= 1, "{second_start}");
        let owned = w.owned().await;
        assert!(owned.contains(lost_id.as_str()), "{owned:?}");
        for pod in [&impostor, &second] {
            assert!(!owned.contains(&format!("{PREFIX}{pod}")), "{owned:?}");
        }
        w.converge("after the restart").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_cold_start_registers_pods_while_their_taskruns_are_still_arriving() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("early-many").await;
        // More pods without an entry than the early pass reads TaskRuns for one at a time
        // (a new SPIRE server, a first install), and the attacks of the early-pass test.
        let names: Vec<String> = (0..120).map(|i| format!("many-{i}")).collect();
        let pods: Vec<String> = futures::stream::iter(&names)
            .map(|name| w.taskrun_with_pod(name, "node-1"))
            .buffer_unordered(16)
            .collect()
            .await;
        let [impostor, second] = w.claiming_pods_to_refuse("many-0").await;
        // Creation times have whole seconds, and a pod created in the second the
        // controller starts counts as created since: start in a later one. Every test's
        // controller sees every namespace, so this one's events are told apart by its
        // reporting instance.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let instance = format!("controller-{}", w.namespace);
        let kubeconfig = w.kube.kubeconfig_path().to_owned();
        w.controller = Some(w.spawn_controller_as(&kubeconfig, "controller", &instance));
        w.wait_early_passes(1).await;
        let log = w.log();
        assert!(
            log.contains("creating them as their TaskRuns arrive"),
            "the early pass did not take the TaskRuns of the initial list: {log}"
        );
        // Without streaming, over 100 missing pods left the early pass with nothing.
        assert!(early_passes(&log)[0] >= 1, "{log}");
        w.converge("every pod's entry").await;
        let owned = w.owned().await;
        assert_eq!(owned.len(), pods.len(), "{owned:?}");
        for pod in [&impostor, &second] {
            let id = format!("{PREFIX}{pod}");
            assert!(!owned.contains(&id), "{owned:?}");
            assert!(!w.log().contains(&format!("created entry entry_id={id}")));
        }
        // Registering pods found at startup publishes at most 100 events (the
        // controller's STARTUP_EVENTS, shared with the pods other tests left in other
        // namespaces); a pod created since still gets its own, and it is queued after
        // theirs, so once it is there theirs have all been published.
        w.taskrun_with_pod("late", "node-1").await;
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(w.client.clone(), &w.namespace);
        // The TaskRuns this controller reported an EntryRegistered event on.
        let registered = || async {
            let list = events.list(&ListParams::default()).await?;
            Ok::<_, kube::Error>(
                list.items
                    .into_iter()
                    .filter(|e| e.reason.as_deref() == Some("EntryRegistered"))
                    .filter(|e| e.reporting_instance.as_deref() == Some(instance.as_str()))
                    .filter_map(|e| e.regarding.and_then(|r| r.name))
                    .collect::<Vec<_>>(),
            )
        };
        let all = eventually(CONVERGE, "the late pod's EntryRegistered event", || async {
            let names = registered().await?;
            Ok((names.iter().filter(|n| *n == "late").count() == 1).then_some(names))
        })
        .await
        .unwrap();
        // Without the limit, all 120 and the late one.
        assert!(
            all.len() <= 100 + 1,
            "EntryRegistered events: {}",
            all.len()
        );
        assert!(
            w.log()
                .contains("the entries of the others are only logged"),
            "{}",
            w.log()
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn entries_that_belong_to_others_are_left_untouched() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("others").await;
        let td = w.spire.trust_domain().to_owned();
        // Someone else's entries: one in our namespace's ID space, one with our hint but
        // not our ID prefix.
        w.spire
            .register(
                &format!("spiffe://{td}/ns/{}/taskrun/manual", w.namespace),
                "unix:uid:4242",
            )
            .unwrap();
        w.spire
            .server_cli(
                &["entry", "create"],
                &[
                    "-parentID",
                    w.spire.agent_id(),
                    "-spiffeID",
                    &format!("spiffe://{td}/other"),
                    "-selector",
                    "unix:uid:4343",
                    "-hint",
                    "tekton-spire",
                ],
            )
            .unwrap();
        // Everything not under our ID prefix, as stored, revision numbers included.
        let others = |entries: Vec<tekton_spire::spire::Entry>| {
            let mut v: Vec<_> = entries
                .into_iter()
                .filter(|e| !e.spec.id.as_str().starts_with(PREFIX))
                .collect();
            v.sort_by(|a, b| a.spec.id.as_str().cmp(b.spec.id.as_str()));
            v
        };
        let before = others(
            w.spire_client()
                .await
                .list_entries(&ListFilter::default())
                .await
                .unwrap(),
        );
        assert_eq!(before.len(), 2);
        w.start_controller();
        w.taskrun_with_pod("mine", "node-1").await;
        w.converge("ours created").await;
        w.complete_taskrun("mine").await;
        w.converge("ours deleted").await;
        tokio::time::sleep(Duration::from_secs(3)).await; // a resync pass or more
        let after = others(
            w.spire_client()
                .await
                .list_entries(&ListFilter::default())
                .await
                .unwrap(),
        );
        assert_eq!(after, before, "entries of others were touched");
    })
    .await
    .expect("test timed out");
}

/// A relay in front of a real server (the API server over TCP, SPIRE's admin socket) that
/// can cut every open connection and refuse new ones for a while, or blackhole
/// connections: keep them open and forward nothing, as a peer that vanished without
/// closing them. Real network faults in front of the real servers (which cannot be asked
/// to misbehave towards one client only).
struct Relay {
    /// `127.0.0.1:<port>` or the socket path.
    address: String,
    refusing: Arc<AtomicBool>,
    /// New connections are blackholed from the start.
    holding: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<Connection>>>,
}

/// A relayed connection: its task and whether it is blackholed.
type Connection = (tokio::task::AbortHandle, tokio::sync::watch::Sender<bool>);

/// Copies `from` to `to`, forwarding nothing while `hold` says so.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut hold: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *hold.borrow_and_update() {
            if hold.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Relay {
    async fn tcp(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let relay = Self::new(address);
        let accept = relay.acceptor();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                accept(Box::pin(async move {
                    let outbound = tokio::net::TcpStream::connect(&upstream).await.ok()?;
                    Some((inbound, outbound))
                }));
            }
        });
        relay
    }

    async fn unix(upstream: PathBuf, listen: PathBuf) -> Self {
        let listener = tokio::net::UnixListener::bind(&listen).unwrap();
        let relay = Self::new(listen.display().to_string());
        let accept = relay.acceptor();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                accept(Box::pin(async move {
                    let outbound = tokio::net::UnixStream::connect(&upstream).await.ok()?;
                    Some((inbound, outbound))
                }));
            }
        });
        relay
    }

    fn new(address: String) -> Self {
        Self {
            address,
            refusing: Arc::new(AtomicBool::new(false)),
            holding: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// What the accept loop calls for each inbound connection.
    #[allow(clippy::type_complexity)]
    fn acceptor<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static>(
        &self,
    ) -> impl Fn(std::pin::Pin<Box<dyn std::future::Future<Output = Option<(S, S)>> + Send>>)
    + Send
    + 'static {
        let (refusing, holding, connections) = (
            self.refusing.clone(),
            self.holding.clone(),
            self.connections.clone(),
        );
        move |connect| {
            if refusing.load(Ordering::SeqCst) {
                return; // the inbound side is dropped with the future
            }
            let (hold, held) = tokio::sync::watch::channel(holding.load(Ordering::SeqCst));
            let task = tokio::spawn(async move {
                let Some((inbound, outbound)) = connect.await else {
                    return;
                };
                let (in_read, in_write) = tokio::io::split(inbound);
                let (out_read, out_write) = tokio::io::split(outbound);
                tokio::join!(
                    pump(in_read, out_write, held.clone()),
                    pump(out_read, in_write, held)
                );
            });
            connections
                .lock()
                .unwrap()
                .push((task.abort_handle(), hold));
        }
    }

    /// Cuts every open connection and refuses new ones until `heal`.
    fn cut(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        for (handle, _) in self.connections.lock().unwrap().drain(..) {
            handle.abort();
        }
    }

    /// Blackholes every open connection and every new one until `heal`.
    fn blackhole(&self) {
        self.holding.store(true, Ordering::SeqCst);
        self.blackhole_open();
    }

    /// Blackholes the open connections only; new ones work.
    fn blackhole_open(&self) {
        for (_, hold) in self.connections.lock().unwrap().iter() {
            let _ = hold.send(true);
        }
    }

    fn heal(&self) {
        self.refusing.store(false, Ordering::SeqCst);
        self.holding.store(false, Ordering::SeqCst);
        for (_, hold) in self.connections.lock().unwrap().iter() {
            let _ = hold.send(false);
        }
    }

    /// A copy of the admin kubeconfig that reaches the API server through this relay.
    fn kubeconfig(&self, w: &World) -> PathBuf {
        let upstream = w.kube.api_url().trim_start_matches("https://").to_owned();
        let kubeconfig = std::fs::read_to_string(w.kube.kubeconfig_path())
            .unwrap()
            .replace(
                &format!("https://{upstream}"),
                &format!("https://{}", self.address),
            );
        let path = w
            .dir
            .path()
            .join(format!("kubeconfig-{}", fastrand_suffix()));
        std::fs::write(&path, kubeconfig).unwrap();
        path
    }
}

fn fastrand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test]
async fn cut_api_watches_are_reestablished_and_the_entries_converge() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("watch-cut").await;
        let upstream = w.kube.api_url().trim_start_matches("https://").to_owned();
        let relay = Relay::tcp(upstream).await;
        let path = relay.kubeconfig(&w);
        w.start_controller_with(&path);

        w.taskrun_with_pod("before-cut", "node-1").await;
        w.converge("before the cut").await;

        relay.cut();
        w.taskrun_with_pod("during-cut", "node-2").await;
        w.complete_taskrun("before-cut").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        relay.heal();
        w.converge("after the watches were cut for 3 s").await;
        assert_eq!(w.owned().await.len(), 1);
        let log = std::fs::read_to_string(w.log_path()).unwrap();
        assert!(
            log.contains("watch failed"),
            "the cut was not noticed: {log}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_completed_taskrun_gets_a_verdict_that_follows_later_edits_of_its_status() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("verdict").await;
        // A TaskRun signed by the independent implementation (Tekton's format, which binds
        // no UID, so it can be recreated here): default/build-abc.
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy");
        let fixture: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixtures.join("pristine-v1-json.json")).unwrap())
                .unwrap();
        // Tekton's format is opt-in; this TaskRun opts in to verdicts by its label.
        w.configure(&format!(
            "trust-bundle-path: {}\naccept-tekton-format: true\n",
            fixtures.join("pki/root.pem").display()
        ));
        w.run = "verdicts";
        w.start_controller();

        let trs = taskruns(w.client.clone(), "default");
        let tr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "build-abc", "labels": {"tekton-spire.dev/verify": "true"}},
            "spec": {"taskRef": {"name": "build"}},
        }))
        .unwrap();
        trs.create(&PostParams::default(), &tr).await.unwrap();
        let status = json!({"status": fixture["status"]});
        trs.patch_status("build-abc", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();

        let condition = |want: &'static str| {
            let trs = trs.clone();
            async move {
                let tr = trs.get("build-abc").await?;
                let found = tr
                    .data
                    .pointer("/status/conditions")
                    .and_then(|c| c.as_array())
                    .and_then(|cs| {
                        cs.iter()
                            .find(|c| c["type"] == "SignedResultsVerified" && c["status"] == want)
                            .cloned()
                    });
                Ok(found)
            }
        };
        // A completed TaskRun that did not opt in is not judged.
        let unjudged: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "build-not-opted-in"}, "spec": {"taskRef": {"name": "build"}},
        }))
        .unwrap();
        trs.create(&PostParams::default(), &unjudged).await.unwrap();
        trs.patch_status(
            "build-not-opted-in",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
        let verified = eventually(CONVERGE, "a True verdict", || condition("True"))
            .await
            .unwrap();
        let other = trs.get("build-not-opted-in").await.unwrap();
        assert!(
            !other.data["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "SignedResultsVerified"),
            "a TaskRun that did not opt in was judged: {}",
            other.data["status"]
        );
        assert_eq!(verified["reason"], "TaskRunResultsVerified");
        assert!(
            verified["message"]
                .as_str()
                .unwrap()
                .contains("spiffe://example.org/ns/default/taskrun/build-abc")
        );
        // Tekton's own condition is kept.
        let tr = trs.get("build-abc").await.unwrap();
        assert!(
            tr.data["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Succeeded")
        );

        // Someone with write access to the status forges IMAGE_DIGEST after the verdict.
        let mut results = fixture["status"]["results"].clone();
        for r in results.as_array_mut().unwrap() {
            if r["name"] == "IMAGE_DIGEST" {
                r["value"] = json!(format!("sha256:{}", "e".repeat(64)));
            }
        }
        let forged = json!({"status": {"results": results}});
        trs.patch_status("build-abc", &PatchParams::default(), &Patch::Merge(&forged))
            .await
            .unwrap();
        let rejected = eventually(CONVERGE, "a False verdict", || condition("False"))
            .await
            .unwrap();
        assert_eq!(rejected["reason"], "TaskRunResultsVerificationFailed");
        assert!(
            rejected["message"]
                .as_str()
                .unwrap()
                .contains("signature.invalid"),
            "{rejected}"
        );
        // Both verdicts were also published as events on the TaskRun.
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(w.client.clone(), "default");
        let reasons = eventually(CONVERGE, "two verdict events", || async {
            let list = events.list(&ListParams::default()).await?;
            let reasons: BTreeSet<String> = list
                .items
                .iter()
                .filter(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("build-abc")
                })
                .filter_map(|e| e.reason.clone())
                .collect();
            Ok((reasons.len() == 2).then_some(reasons))
        })
        .await
        .unwrap();
        assert!(
            reasons.contains("TaskRunResultsVerified")
                && reasons.contains("TaskRunResultsVerificationFailed"),
            "{reasons:?}"
        );
        let conditions = trs.get("build-abc").await.unwrap().data["status"]["conditions"].clone();
        let verdicts = conditions
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "SignedResultsVerified")
            .count();
        assert_eq!(
            verdicts, 1,
            "one verdict condition, rewritten: {conditions}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_second_replica_waits_for_the_lease_and_takes_over_when_the_leader_dies() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("leader").await;
        w.configure(&format!("leader-election-namespace: {}\n", w.namespace));
        let kubeconfig = w.kube.kubeconfig_path().to_owned();
        w.controller = Some(w.spawn_controller(&kubeconfig, "controller"));
        w.taskrun_with_pod("first", "node-1").await;
        w.converge("the leader registers").await;
        let mut follower = w.spawn_controller(&kubeconfig, "follower");

        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(w.client.clone(), &w.namespace);
        let holder = |leases: Api<k8s_openapi::api::coordination::v1::Lease>| async move {
            let lease = leases.get("tekton-spire-controller").await?;
            Ok::<_, anyhow::Error>(lease.spec.and_then(|s| s.holder_identity))
        };
        assert_eq!(
            holder(leases.clone()).await.unwrap().as_deref(),
            Some("controller")
        );
        let follower_log = w.dir.path().join("follower.log");
        eventually(CONVERGE, "the follower to wait", || async {
            Ok(std::fs::read_to_string(&follower_log)?
                .contains("waiting for the leader's lease")
                .then_some(()))
        })
        .await
        .unwrap();

        w.kill_controller();
        let killed = Instant::now();
        w.taskrun_with_pod("second", "node-2").await;
        eventually(CONVERGE, "the follower to take the lease", || async {
            Ok(holder(leases.clone()).await?.filter(|h| h == "follower"))
        })
        .await
        .unwrap();
        eprintln!(
            "failover after SIGKILL of the leader: {:?}",
            killed.elapsed()
        );
        w.converge("the new leader registers").await;
        follower.kill().unwrap();
        follower.wait().unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_pod_that_claims_a_taskrun_gets_no_entry_unless_the_taskrun_names_it() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("impostor").await;
        w.start_controller();
        // The attack: while the TaskRun's status names no pod yet, a pod with its label and
        // a controller owner reference to its (readable) UID.
        let tr_uid = w.taskrun("victim").await;
        let impostor = w
            .claiming_pod("impostor", "victim", &tr_uid, Some("node-1"))
            .await;
        w.converge("nothing for the impostor").await;
        tokio::time::sleep(Duration::from_secs(3)).await; // a resync pass or more
        assert!(w.owned().await.is_empty(), "the impostor got an entry");
        // Tekton's own pod, named by the TaskRun's status, gets one; the impostor still not.
        let real = w
            .claiming_pod("victim-pod", "victim", &tr_uid, Some("node-1"))
            .await;
        w.record_pod("victim", "victim-pod").await;
        w.converge("the named pod's entry").await;
        let owned = w.owned().await;
        assert!(owned.contains(&format!("{PREFIX}{real}")), "{owned:?}");
        assert!(!owned.contains(&format!("{PREFIX}{impostor}")), "{owned:?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn entries_expire_after_the_taskrun_deadline_and_the_expiry_causes_no_updates() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("expiry").await;
        w.configure("entry-expiry-margin: 10m\n");
        w.start_controller();
        let uid = w.taskrun_with_pod("build", "node-1").await;
        w.converge("entry created").await;
        let id = tekton_spire::spire::EntryId::new(format!("{PREFIX}{uid}")).unwrap();
        let entry = w.spire_client().await.entry(&id).await.unwrap().unwrap();
        let tr = taskruns(w.client.clone(), &w.namespace)
            .get("build")
            .await
            .unwrap();
        let start: k8s_openapi::jiff::Timestamp = tr.data["status"]["startTime"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        // startTime + timeout (30m) + margin (10m).
        assert_eq!(entry.spec.expires_at, Some(start.as_second() + 2400));
        tokio::time::sleep(Duration::from_secs(5)).await; // two resync passes
        let later = w.spire_client().await.entry(&id).await.unwrap().unwrap();
        assert_eq!(
            later.revision_number, entry.revision_number,
            "the entry was rewritten"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn owned_entries_are_found_by_id_prefix_and_other_clusters_entries_are_never_touched() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("prefix").await;
        // Migrating from the old default prefix, on a server that cluster "other" shares.
        w.configure("entry-id-prefix-cleanup: tekton-spire.\n");
        let spire = w.spire_client().await;
        let td = w.spire.trust_domain().to_owned();
        let entry = |id: &str, hint: &str, n: u32| {
            let mut spec = tekton_spire::spire::EntrySpec::new(
                tekton_spire::spire::EntryId::new(id).unwrap(),
                format!("spiffe://{td}/ns/{}/taskrun/t{n}", w.namespace)
                    .parse()
                    .unwrap(),
                format!("spiffe://{td}/tekton-node/n").parse().unwrap(),
                [format!("k8s:pod-uid:{n}").parse().unwrap()],
            );
            spec.hint = hint.into();
            spec
        };
        let uid = "0b5b8d1e-3c39-4b7e-9a43-5b0d2c1e9f0";
        let ours_without_hint = entry(&format!("{PREFIX}{uid}1"), "", 1);
        let leftover = entry(&format!("tekton-spire.{uid}2"), "tekton-spire", 2);
        let other_cluster = entry(&format!("tekton-spire.other.{uid}3"), "tekton-spire", 3);
        let created = spire
            .batch_create(&[ours_without_hint, leftover, other_cluster.clone()])
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        w.start_controller();
        w.taskrun_with_pod("build", "node-1").await;
        w.converge("ours only").await;
        let ids: BTreeSet<String> = spire
            .list_entries(&ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.spec.id.as_str().to_owned())
            .collect();
        assert!(
            !ids.contains(&format!("{PREFIX}{uid}1")),
            "an owned entry without our hint leaked: {ids:?}"
        );
        assert!(
            !ids.contains(&format!("tekton-spire.{uid}2")),
            "the leftover under the cleanup prefix stayed: {ids:?}"
        );
        assert!(
            ids.contains(other_cluster.id.as_str()),
            "another cluster's entry was deleted: {ids:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_refused_entry_is_reported_on_its_taskrun_and_holds_no_other_back() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("refused").await;
        w.start_controller();
        // Someone else registers exactly the workload of our pod first (same SPIFFE ID,
        // parent and selectors): SPIRE refuses ours with ALREADY_EXISTS.
        let tr_uid = w.taskrun("taken").await;
        let pod_uid = w.claiming_pod("taken-pod", "taken", &tr_uid, None).await;
        let td = w.spire.trust_domain().to_owned();
        let theirs = tekton_spire::spire::EntrySpec::new(
            tekton_spire::spire::EntryId::new(format!("someone-else-{pod_uid}")).unwrap(),
            format!("spiffe://{td}/ns/{}/taskrun/taken", w.namespace)
                .parse()
                .unwrap(),
            format!("spiffe://{td}/tekton-node/node-1").parse().unwrap(),
            [
                "k8s:container-name:step-sign".parse().unwrap(),
                format!("k8s:pod-uid:{pod_uid}").parse().unwrap(),
            ],
        );
        assert!(
            w.spire_client()
                .await
                .batch_create(&[theirs])
                .await
                .unwrap()[0]
                .is_ok()
        );
        // Schedule the pod (as the scheduler does, through the binding subresource).
        let pods: Api<Pod> = Api::namespaced(w.client.clone(), &w.namespace);
        let binding = json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": "taken-pod"}, "target": {"kind": "Node", "name": "node-1"}});
        pods.create_subresource::<_, serde_json::Value>(
            "binding",
            "taken-pod",
            &PostParams::default(),
            &binding,
        )
        .await
        .unwrap();
        w.record_pod("taken", "taken-pod").await;
        // Another TaskRun at the same time goes ahead.
        let other = w.taskrun_with_pod("fine", "node-1").await;
        eventually(CONVERGE, "the other pod's entry", || async {
            Ok(w.owned()
                .await
                .contains(&format!("{PREFIX}{other}"))
                .then_some(()))
        })
        .await
        .unwrap();
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(w.client.clone(), &w.namespace);
        let refused = eventually(CONVERGE, "an EntryRefused event on the TaskRun", || async {
            Ok(events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("EntryRefused")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("taken")
                }))
        })
        .await
        .unwrap();
        assert_eq!(refused.type_.as_deref(), Some("Warning"));
        let note = refused.note.unwrap_or_default();
        assert!(note.contains(&format!("someone-else-{pod_uid}")), "{note}");
        let log = w.log();
        assert!(
            log.contains("refused an entry") && log.contains("taken-pod"),
            "{log}"
        );
        assert!(
            !log.contains("entry pass failed"),
            "a refusal failed the pass: {log}"
        );
        assert_eq!(
            w.metric("tekton_spire_entries{state=\"refused\"}").await,
            1.0
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_entry_gone_behind_the_controllers_back_is_recreated_when_it_must_change() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("gone").await;
        // No resync during the test: only the update path can notice.
        w.configure("resync-interval: 1h\n");
        w.start_controller();
        let uid = w.taskrun_with_pod("build", "node-1").await;
        w.converge("entry created").await;
        let id = tekton_spire::spire::EntryId::new(format!("{PREFIX}{uid}")).unwrap();
        w.spire_client()
            .await
            .batch_delete(std::slice::from_ref(&id))
            .await
            .unwrap();
        // A new timeout changes the entry's TTL and expiry: the controller updates it,
        // finds it gone (NOT_FOUND) and creates it.
        taskruns(w.client.clone(), &w.namespace)
            .patch(
                "build",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"timeout": "20m0s"}})),
            )
            .await
            .unwrap();
        let entry = eventually(CONVERGE, "the entry back with the new TTL", || async {
            Ok(w.spire_client()
                .await
                .entry(&id)
                .await?
                .filter(|e| e.spec.x509_svid_ttl == Some(Duration::from_secs(1200))))
        })
        .await
        .unwrap();
        assert_eq!(entry.spec.id, id);
        let log = w.log();
        assert!(!log.contains("entry pass failed"), "{log}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn step_transitions_cause_no_entry_lists_and_metrics_and_events_report_registrations() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("steady").await;
        w.start_controller();
        let (status, _) = w.http_get("/healthz").await;
        assert_eq!(status, 200);
        let uid = w.taskrun_with_pod("build", "node-1").await;
        w.converge("entry created").await;
        eventually(CONVERGE, "ready", || async {
            Ok((w.http_get("/readyz").await.0 == 200).then_some(()))
        })
        .await
        .unwrap();
        // The API server is shared with other tests, whose pods this controller also sees.
        // The gauges are set when the pass that created the entry ends, a moment after
        // the entry appears on the server.
        for sample in [
            "tekton_spire_entries{state=\"registered\"}",
            "tekton_spire_entry_registration_seconds_count",
        ] {
            eventually(CONVERGE, sample, || async {
                Ok((w.metric(sample).await >= 1.0).then_some(()))
            })
            .await
            .unwrap();
        }
        // Forty step transitions in about four seconds: each wakes a pass, none of which
        // has anything to do, so only resync passes (every 2 s) list.
        let lists = "tekton_spire_spire_calls_total{method=\"ListEntries\"}";
        let before = w.metric(lists).await;
        let started = Instant::now();
        let pods: Api<Pod> = Api::namespaced(w.client.clone(), &w.namespace);
        for i in 0..40 {
            let status = json!({"status": {"phase": "Running", "containerStatuses": [{
                "name": "step-sign", "ready": i % 2 == 0, "restartCount": 0, "image": "i", "imageID": "",
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
            pods.patch_status("build-pod", &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let after = w.metric(lists).await;
        let resyncs = (started.elapsed().as_secs_f64() / 2.0).ceil() + 1.0;
        eprintln!(
            "ListEntries calls during 40 step transitions in {:?}: {}",
            started.elapsed(),
            after - before
        );
        assert!(
            after - before <= resyncs,
            "{} lists for {resyncs} resync passes",
            after - before
        );
        // The registration is an event on the TaskRun.
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(w.client.clone(), &w.namespace);
        let registered = eventually(CONVERGE, "an EntryRegistered event", || async {
            Ok(events
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("EntryRegistered")))
        })
        .await
        .unwrap();
        assert_eq!(
            registered.regarding.and_then(|r| r.name).as_deref(),
            Some("build")
        );
        assert!(registered.note.unwrap_or_default().contains(&uid));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_acting_before_the_follower_takes_over() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("blackhole-lease").await;
        w.configure(&format!("leader-election-namespace: {}\n", w.namespace));
        let upstream = w.kube.api_url().trim_start_matches("https://").to_owned();
        let relay = Relay::tcp(upstream).await;
        let relayed = relay.kubeconfig(&w);
        let direct = w.kube.kubeconfig_path().to_owned();
        w.controller = Some(w.spawn_controller(&relayed, "controller"));
        w.taskrun_with_pod("first", "node-1").await;
        w.converge("the leader registers").await;
        let mut follower = w.spawn_controller(&direct, "follower");
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(w.client.clone(), &w.namespace);
        let holder = || async {
            let lease = leases.get("tekton-spire-controller").await?;
            Ok::<_, anyhow::Error>(lease.spec.and_then(|s| s.holder_identity))
        };
        assert_eq!(holder().await.unwrap().as_deref(), Some("controller"));

        // The leader's API connections go silent: renewals hang, watches stall, but its
        // SPIRE connection still works.
        relay.blackhole();
        let blackholed = Instant::now();
        eventually(
            Duration::from_secs(60),
            "the follower to take the lease",
            || async { Ok(holder().await?.filter(|h| h == "follower")) },
        )
        .await
        .unwrap();
        eprintln!(
            "follower leads {:?} after the blackhole",
            blackholed.elapsed()
        );
        // The new leader registers a new pod; the old one, whose caches know nothing of
        // it, must not delete the entry.
        let fresh = w.taskrun_with_pod("second", "node-2").await;
        let fresh_id = format!("{PREFIX}{fresh}");
        eventually(CONVERGE, "the new leader's entry", || async {
            Ok(w.owned().await.contains(&fresh_id).then_some(()))
        })
        .await
        .unwrap();
        let watch_until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < watch_until {
            assert!(
                w.owned().await.contains(&fresh_id),
                "the old leader deleted the new leader's entry:\n{}",
                w.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log = w.log();
        let stopped = log
            .lines()
            .find(|l| l.contains("stopped acting"))
            .unwrap_or_else(|| panic!("the old leader never stopped acting:\n{log}"));
        let follower_log =
            std::fs::read_to_string(w.dir.path().join("follower.log")).unwrap_or_default();
        let became = follower_log
            .lines()
            .find(|l| l.contains("became leader"))
            .unwrap();
        // Text log lines start with an RFC 3339 timestamp.
        let at = |line: &str| -> k8s_openapi::jiff::Timestamp {
            line.split_whitespace().next().unwrap().parse().unwrap()
        };
        assert!(
            at(stopped) < at(became),
            "two leaders at once: the old stopped at {stopped:?}, the new began at {became:?}"
        );
        // Nor did it write to SPIRE after that.
        let last_write = log
            .lines()
            .rfind(|l| l.contains("created entry") || l.contains("deleted entry"));
        if let Some(line) = last_write {
            assert!(at(line) < at(became), "{line}");
        }
        relay.heal();
        follower.kill().unwrap();
        follower.wait().unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_silently_dead_spire_connection_is_replaced_through_keepalives() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("spire-blackhole").await;
        let relay = w.relay_spire().await;
        // Keepalives alone (no rebuild after failures) must notice the dead connection.
        w.configure("spire-keepalive: 2s\nspire-reconnect-after: 0\ncall-timeout: 3s\n");
        w.start_controller();
        w.taskrun_with_pod("before", "node-1").await;
        w.converge("before").await;
        // The open connection goes silent, as to a server lost without closing it; a new
        // connection would work.
        relay.blackhole_open();
        w.taskrun_with_pod("after", "node-1").await;
        let took = w.converge("after the connection went silent").await;
        eprintln!("recovered from a silent SPIRE connection in {took:?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_silently_dead_spire_connection_is_rebuilt_after_repeated_failures() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("spire-rebuild").await;
        let relay = w.relay_spire().await;
        // No keepalives: only the rebuild after two failed calls can help.
        w.configure("spire-keepalive: off\nspire-reconnect-after: 2\ncall-timeout: 2s\n");
        w.start_controller();
        w.taskrun_with_pod("before", "node-1").await;
        w.converge("before").await;
        // Not in the middle of the startup creates: the deadline of a batch grows by a
        // second per entry, and the shared API server holds other tests' pods, so a
        // batch cut off then would be waited for up to a minute before it counts.
        w.first_full_pass().await;
        relay.blackhole_open();
        w.taskrun_with_pod("after", "node-1").await;
        w.converge("after the connection was rebuilt").await;
        assert!(w.log().contains("rebuilt the SPIRE server connection"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_frozen_spire_server_is_waited_out_and_then_converges() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("spire-sigstop").await;
        w.configure("spire-keepalive: 2s\ncall-timeout: 3s\n");
        w.start_controller();
        w.taskrun_with_pod("before", "node-1").await;
        w.converge("before the freeze").await;
        let pid = w.spire.server_pid().unwrap().to_string();
        let signal = |sig: &str| {
            assert!(
                Command::new("kill")
                    .args([sig, &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        };
        signal("-STOP");
        w.taskrun_with_pod("during", "node-1").await;
        w.complete_taskrun("before").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        signal("-CONT");
        let took = w.converge("after the server thawed").await;
        eprintln!("converged {took:?} after SIGCONT");
        let log = w.log();
        assert!(
            log.contains("entry pass failed; retrying with backoff"),
            "the freeze went unnoticed: {log}"
        );
        let (_, metrics) = w.http_get("/metrics").await;
        let errors: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("tekton_spire_spire_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(errors >= 1.0, "no SPIRE error counted:\n{metrics}");
    })
    .await
    .expect("test timed out");
}
