//! The controller as a real process (`tekton-spire controller`) against the real
//! kube-apiserver with etcd (scripts/kube-local.sh, Tekton's TaskRun CRD) and a real
//! SPIRE server (scripts/spire-local.sh). After every fault the owned entry set must
//! equal exactly what the live pods need: 0 leaked, 0 missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use tekton_spire::spire::{Client as SpireClient, ClientConfig, Endpoint, ListFilter};
use tekton_spire_testbed::kube::{Kube, create_namespace, eventually, taskruns};
use tekton_spire_testbed::spire::{Propagation, Spire};

const TEST_TIMEOUT: Duration = Duration::from_secs(240);
const CONVERGE: Duration = Duration::from_secs(60);
const PREFIX: &str = "tekton-spire.";

/// One test's world: a private SPIRE server, a namespace of the shared API server, and
/// the controller process.
struct World {
    spire: Spire,
    kube: &'static Kube,
    client: kube::Client,
    namespace: String,
    dir: tempfile::TempDir,
    controller: Option<Child>,
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
            "spire-trust-domain: {}\nspire-server-socket: {}\nresync-interval: 2s\ncall-timeout: 5s\n",
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
        }
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
        let log_path = self.dir.path().join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_tekton-spire"))
            .args(["controller", "--config"])
            .arg(self.dir.path().join("config.yaml"))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("controller.log")
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
        let status = json!({"status": {"podName": format!("{name}-pod"), "startTime": "2026-01-01T00:00:00Z"}});
        trs.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        uid
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
            if !done && pod.metadata.deletion_timestamp.is_none() {
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
                format!("k8s:ns:{}", w.namespace),
                "k8s:pod-name:build-1-pod".to_owned(),
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

/// A TCP relay between the controller and the API server that can cut every open
/// connection and refuse new ones for a while: a real network fault in front of the real
/// API server (the server itself cannot be asked to drop only this client's watches).
struct Relay {
    port: u16,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let refusing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (r, c) = (refusing.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if r.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            port,
            refusing,
            connections,
        }
    }

    /// Cuts every open connection and refuses new ones until `heal`.
    fn cut(&self) {
        self.refusing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for handle in self.connections.lock().unwrap().drain(..) {
            handle.abort();
        }
    }

    fn heal(&self) {
        self.refusing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn cut_api_watches_are_reestablished_and_the_entries_converge() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut w = World::new("watch-cut").await;
        let upstream = w.kube.api_url().trim_start_matches("https://").to_owned();
        let relay = Relay::start(upstream.clone()).await;
        let kubeconfig = std::fs::read_to_string(w.kube.kubeconfig_path())
            .unwrap()
            .replace(
                &format!("https://{upstream}"),
                &format!("https://127.0.0.1:{}", relay.port),
            );
        let path = w.dir.path().join("relayed-kubeconfig");
        std::fs::write(&path, kubeconfig).unwrap();
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
        let config = std::fs::read_to_string(w.dir.path().join("config.yaml")).unwrap()
            + &format!(
                "trust-bundle-path: {}\n",
                fixtures.join("pki/root.pem").display()
            );
        std::fs::write(w.dir.path().join("config.yaml"), config).unwrap();
        w.start_controller();

        let trs = taskruns(w.client.clone(), "default");
        let tr: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "build-abc"}, "spec": {"taskRef": {"name": "build"}},
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
        let verified = eventually(CONVERGE, "a True verdict", || condition("True"))
            .await
            .unwrap();
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
        let config = std::fs::read_to_string(w.dir.path().join("config.yaml")).unwrap()
            + &format!("leader-election-namespace: {}\n", w.namespace);
        std::fs::write(w.dir.path().join("config.yaml"), config).unwrap();
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
