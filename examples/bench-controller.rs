//! The controller benchmark's driver: run by scripts/bench-controller.sh, which builds
//! everything, starts etcd and kube-apiserver and installs the CRDs. This program starts
//! private SPIRE servers, the controller and spire-controller-manager, creates TaskRuns
//! and pods, watches the servers' entries and prints one table.
//! docs/controller-benchmark.md says what each number means.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark driver, not library code"
)]

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;
use tekton_spire::spire::{Client as SpireClient, ClientConfig, Endpoint, ListFilter};
use tekton_spire_testbed::kube::{create_namespace, taskruns};
use tekton_spire_testbed::spire::{Propagation, Spire};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
struct Args {
    /// The admin kubeconfig of the API server (scripts/kube-local.sh).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The `tekton-spire` binary.
    #[arg(long)]
    controller: PathBuf,
    /// Where configs and logs go.
    #[arg(long)]
    work: PathBuf,
    /// Burst size.
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Node objects the pods are spread over.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Pods of the full-reconcile phase.
    #[arg(long, default_value_t = 10_000)]
    reconcile_pods: usize,
    /// API requests in flight while creating TaskRuns and pods.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Pause between two lists of the server's entries during a burst.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    poll_pause: Duration,
    /// The spire-controller-manager binary; without it that column stays empty.
    #[arg(long)]
    scm: Option<PathBuf>,
    /// An earlier `tekton-spire` binary: its ListEntries calls under step transitions are
    /// printed as "before".
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Length of the step-transition phase (1,000 running TaskRuns, one status change per
    /// pod and minute on average).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    steady: Duration,
    /// Small synthetic objects instead of objects shaped like Tekton's (steps, results,
    /// taskSpec, a 4 KB termination message).
    #[arg(long)]
    small_objects: bool,
    #[arg(long, default_value = "")]
    scm_version: String,
    /// Rounds of each phase, alternating which controller goes first. Each row then gives
    /// the median over the rounds (peak RSS: the largest), and every round's headline
    /// figures follow the table: one run on this machine varies by 10 % or more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=9))]
    rounds: u16,
}

const SCM_ENTRY_PREFIX: &str = "scm";
const BURST_DEADLINE: Duration = Duration::from_secs(600);
const STEADY_SAMPLES: usize = 5;
/// How long after the creating pass the steady passes start being timed, for both
/// controllers alike: the server is slower for a while after thousands of writes, and
/// each controller's first periodic pass falls at a different distance from its creating
/// pass (ours as it ends, SCM's 10 s later).
const STEADY_AFTER: Duration = Duration::from_secs(60);
/// Before each full reconcile the machine is given this long at most to become quiet
/// (the creation of the objects, or the previous controller's run, leaves the API
/// server and etcd busy for a while).
const SETTLE_MAX: Duration = Duration::from_secs(180);
/// Quiet: less than this share of all cores busy over [`SETTLE_WINDOW`].
const SETTLE_BUSY: f64 = 0.15;
const SETTLE_WINDOW: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Processes whose stderr lines are timestamped on arrival.

struct Logged {
    name: &'static str,
    child: Child,
    spawned: Instant,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Logged {
    fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let spawned = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        // scripts/bench-controller.sh stops these if the driver dies first.
        if let Some(dir) = log.parent() {
            let mut pids = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("pids"))?;
            writeln!(pids, "{}", child.id())?;
        }
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let now = Instant::now();
                let _ = writeln!(file, "{line}");
                sink.lock().unwrap().push((now, line));
            }
        });
        Ok(Self {
            name,
            child,
            spawned,
            lines,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn len(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    fn lines_from(&self, from: usize) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap()[from..].to_vec()
    }

    /// Peak resident set size so far, from /proc/PID/status.
    fn vm_hwm_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Waits for the first line at or after index `from` that `pred` accepts.
    async fn wait_line(
        &mut self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<(usize, Instant, String)> {
        let deadline = Instant::now() + timeout;
        let mut next = from;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                for (i, (at, line)) in lines.iter().enumerate().skip(next) {
                    if pred(line) {
                        return Ok((i, *at, line.clone()));
                    }
                }
                next = lines.len();
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) while waiting for a log line",
                    self.name
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not log the awaited line within {timeout:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 15 s.
    fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                eprintln!("bench: {} ignored SIGTERM; killing it", self.name);
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Lines at WARN or ERROR level (either log format).
    fn problems(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| {
                l.contains("\"level\":\"WARN\"")
                    || l.contains("\"level\":\"ERROR\"")
                    || l.contains("\tERROR\t")
                    || l.contains("\tWARN\t")
                    || l.contains("panic")
            })
            .map(|(_, l)| l.clone())
            .collect()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Statistics.

/// The literal environment that deploy/controller.yaml gives the controller container
/// (its allocator settings), so that the benchmark measures the controller as deployed.
fn deployed_env() -> anyhow::Result<Vec<(String, String)>> {
    use serde::Deserialize as _;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/controller.yaml");
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let doc =
            serde_yaml_ng::Value::deserialize(doc).with_context(|| format!("parsing {path}"))?;
        if doc["kind"].as_str() != Some("Deployment") {
            continue;
        }
        let containers = doc["spec"]["template"]["spec"]["containers"].as_sequence();
        let container = containers
            .into_iter()
            .flatten()
            .find(|c| c["name"].as_str() == Some("controller"))
            .with_context(|| format!("no controller container in {path}"))?;
        return Ok(container["env"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_owned(),
                    e["value"].as_str()?.to_owned(),
                ))
            })
            .collect());
    }
    bail!("no Deployment in {path}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn secs(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// The PIDs of the processes whose command name is `comm` (kube-apiserver, etcd: started
/// by scripts/kube-local.sh, not by this driver).
fn pids_named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// CPU time so far of: the controller under test, the SPIRE server, kube-apiserver and
/// etcd together.
fn cpu_split(controller: Option<u32>, spire_server: u32) -> [Duration; 3] {
    let api: Duration = ["kube-apiserver", "etcd"]
        .iter()
        .flat_map(|c| pids_named(c))
        .filter_map(cpu_time)
        .sum();
    [
        controller.and_then(cpu_time).unwrap_or_default(),
        cpu_time(spire_server).unwrap_or_default(),
        api,
    ]
}

/// Busy and total jiffies of all cores, from the first line of /proc/stat.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = values.get(3)? + values.get(4)?;
    let total: u64 = values.iter().take(8).sum();
    Some((total - idle, total))
}

/// Waits until the machine is quiet (under [`SETTLE_BUSY`] busy over a
/// [`SETTLE_WINDOW`]), at most [`SETTLE_MAX`]; returns how long that took.
async fn settle() -> Duration {
    let started = Instant::now();
    while started.elapsed() < SETTLE_MAX {
        let before = machine_jiffies();
        tokio::time::sleep(SETTLE_WINDOW).await;
        if let (Some((b0, t0)), Some((b1, t1))) = (before, machine_jiffies()) {
            let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
            if busy < SETTLE_BUSY {
                break;
            }
        }
    }
    started.elapsed()
}

// ---------------------------------------------------------------------------------------
// Kubernetes objects.

async fn retry<T, F, Fut>(what: &str, mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(status))
                if status.code != 429 && (400..500).contains(&status.code) =>
            {
                bail!("{what}: {status:?}")
            }
            Err(e) if attempt < 8 => {
                eprintln!("bench: {what} failed ({e}); retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(anyhow::Error::new(e).context(what.to_owned())),
        }
    }
}

/// A Tekton-shaped step: what Tekton's controller writes into a TaskRun's spec and the
/// pod's containers (image, script, env, volume mounts).
fn step(i: usize) -> serde_json::Value {
    json!({
        "name": format!("step-{i}"),
        "image": format!("registry.example/build/tool-{i}@sha256:{}", "a".repeat(64)),
        "script": format!("#!/bin/sh\nset -e\n# step {i}\n{}", "echo building; ".repeat(30)),
        "env": (0..6).map(|e| json!({"name": format!("VAR_{e}"), "value": format!("value-{e}-{}", "x".repeat(20))})).collect::<Vec<_>>(),
        "computeResources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    })
}

fn taskrun_object(name: &str, small: bool) -> serde_json::Value {
    if small {
        return json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": name},
            "spec": {"taskRef": {"name": "build"}, "timeout": "30m0s"},
        });
    }
    let steps: Vec<_> = (0..5).map(step).collect();
    json!({
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": name,
            "labels": {"app.kubernetes.io/managed-by": "tekton-pipelines", "tekton.dev/task": "build",
                "tekton.dev/pipeline": "release", "tekton.dev/pipelineRun": format!("{name}-pr"),
                "tekton.dev/pipelineTask": "build", "tekton.dev/memberOf": "tasks"},
            "annotations": {"pipeline.tekton.dev/release": "v1.15.1",
                "kubectl.kubernetes.io/last-applied-configuration": "x".repeat(2000)}},
        "spec": {
            "timeout": "30m0s", "serviceAccountName": "builder",
            "params": [{"name": "revision", "value": "0123456789abcdef0123456789abcdef01234567"}],
            "taskSpec": {
                "params": [{"name": "revision", "type": "string"}],
                "results": [{"name": "IMAGE_DIGEST", "type": "string"}, {"name": "IMAGE_URL", "type": "string"},
                    {"name": "TEKTON_SPIRE_SEAL", "type": "string"}],
                "steps": steps,
            },
        },
    })
}

/// The status Tekton writes once the pod runs: steps (one terminated with a 4 KB
/// termination message), results, the resolved taskSpec, provenance.
fn taskrun_status(name: &str, taskrun: &serde_json::Value, small: bool) -> serde_json::Value {
    let start = json!({"podName": format!("{name}-pod"), "startTime": now_rfc3339()});
    if small {
        return json!({"status": start});
    }
    let mut status = start;
    status["steps"] = json!((0..5).map(|i| if i == 0 {
        json!({"name": format!("step-{i}"), "container": format!("step-step-{i}"), "imageID": format!("docker-pullable://tool@sha256:{}", "b".repeat(64)),
            "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:01:00Z",
                "message": "m".repeat(4096)}})
    } else {
        json!({"name": format!("step-{i}"), "container": format!("step-step-{i}"), "running": {"startedAt": "2026-01-01T00:01:00Z"}})
    }).collect::<Vec<_>>());
    status["results"] =
        json!([{"name": "IMAGE_URL", "type": "string", "value": "registry.example/app:1"}]);
    status["taskSpec"] = taskrun["spec"]["taskSpec"].clone();
    status["provenance"] = json!({"featureFlags": {"enableAPIFields": "beta", "resultExtractionMethod": "termination-message", "maxResultSize": 4096}});
    status["conditions"] = json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "Not all Steps in the Task have finished executing"}]);
    json!({"status": status})
}

fn pod_object(name: &str, tr_uid: &str, node: &str, small: bool) -> serde_json::Value {
    let mut pod = json!({
        "metadata": {
            "name": format!("{name}-pod"),
            "labels": {"tekton.dev/taskRun": name},
            "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": name,
                "uid": tr_uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"nodeName": node, "containers": [{"name": "step-sign", "image": "registry.invalid/sign:1"}]},
    });
    if small {
        return pod;
    }
    let mounts = json!([{"name": "tekton-internal-tools", "mountPath": "/tekton/bin"},
        {"name": "tekton-internal-scripts", "mountPath": "/tekton/scripts"},
        {"name": "tekton-internal-results", "mountPath": "/tekton/results"},
        {"name": "tekton-internal-steps", "mountPath": "/tekton/steps"},
        {"name": "tekton-internal-home", "mountPath": "/tekton/home"},
        {"name": "tekton-internal-workspace", "mountPath": "/workspace"}]);
    let mut containers: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            let s = step(i);
            json!({"name": format!("step-step-{i}"), "image": s["image"], "command": ["/tekton/bin/entrypoint"],
                "args": ["-wait_file", format!("/tekton/downward/ready-{i}"), "-post_file", format!("/tekton/run/{i}/out"),
                    "-termination_path", "/tekton/termination", "-step_metadata_dir", format!("/tekton/run/{i}/status"),
                    "-entrypoint", format!("/tekton/scripts/script-{i}"), "--"],
                "env": s["env"], "volumeMounts": mounts, "terminationMessagePath": "/tekton/termination",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}})
        })
        .collect();
    containers.push(
        json!({"name": "step-sign", "image": "registry.invalid/sign:1", "volumeMounts": mounts}),
    );
    pod["metadata"]["labels"] = json!({"tekton.dev/taskRun": name, "app.kubernetes.io/managed-by": "tekton-pipelines",
        "tekton.dev/task": "build", "tekton.dev/taskRunUID": tr_uid, "tekton.dev/pipelineTask": "build",
        "tekton.dev/pipelineRun": format!("{name}-pr")});
    pod["metadata"]["annotations"] =
        json!({"pipeline.tekton.dev/release": "v1.15.1", "tekton.dev/ready": "READY"});
    let volumes: Vec<_> = [
        "tekton-internal-tools",
        "tekton-internal-scripts",
        "tekton-internal-results",
        "tekton-internal-steps",
        "tekton-internal-home",
        "tekton-internal-workspace",
    ]
    .iter()
    .map(|v| json!({"name": v, "emptyDir": {}}))
    .collect();
    pod["spec"] = json!({"nodeName": node, "serviceAccountName": "default", "restartPolicy": "Never",
        "initContainers": [{"name": "prepare", "image": "registry.example/tekton/entrypoint:v1.15.1",
            "command": ["/ko-app/entrypoint", "init", "/ko-app/entrypoint", "/tekton/bin/entrypoint"], "volumeMounts": mounts}],
        "containers": containers,
        "volumes": volumes});
    pod
}

/// The pod's status while it runs: one step terminated with a 4 KB termination message.
fn pod_status(small: bool) -> serde_json::Value {
    if small {
        return json!({"status": {"phase": "Running"}});
    }
    let statuses: Vec<_> = (0..5).map(|i| {
        let state = if i == 0 {
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": "m".repeat(4096),
                "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:01:00Z"}})
        } else {
            json!({"running": {"startedAt": "2026-01-01T00:01:00Z"}})
        };
        json!({"name": format!("step-step-{i}"), "ready": i != 0, "restartCount": 0, "image": "tool",
            "imageID": format!("docker-pullable://tool@sha256:{}", "c".repeat(64)), "state": state})
    }).collect();
    json!({"status": {"phase": "Running", "containerStatuses": statuses,
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}})
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Creates a TaskRun and its pod, bound to `node`, then records the pod on the TaskRun's
/// status as Tekton does (and, for Tekton-shaped objects, the pod's running status).
/// Returns the pod's UID and the instant its create returned.
async fn taskrun_with_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    node: &str,
    small: bool,
) -> anyhow::Result<(String, Instant)> {
    let trs = taskruns(client.clone(), namespace);
    let post = PostParams::default();
    let tr_json = taskrun_object(name, small);
    let tr: DynamicObject = serde_json::from_value(tr_json.clone())?;
    let tr = match retry("create TaskRun", || trs.create(&post, &tr)).await {
        Ok(tr) => tr,
        // A retried create whose first attempt went through.
        Err(e) => trs.get(name).await.map_err(|_| e)?,
    };
    let pod: Pod =
        serde_json::from_value(pod_object(name, &tr.uid().unwrap_or_default(), node, small))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = match retry("create pod", || pods.create(&post, &pod)).await {
        Ok(pod) => pod,
        Err(e) => pods.get(&format!("{name}-pod")).await.map_err(|_| e)?,
    };
    let created = Instant::now();
    let status = Patch::Merge(taskrun_status(name, &tr_json, small));
    let patch = PatchParams::default();
    retry("patch TaskRun status", || {
        trs.patch_status(name, &patch, &status)
    })
    .await?;
    if !small {
        let status = Patch::Merge(pod_status(small));
        let pod_name = format!("{name}-pod");
        retry("patch pod status", || {
            pods.patch_status(&pod_name, &patch, &status)
        })
        .await?;
    }
    Ok((pod.uid().unwrap_or_default(), created))
}

struct Created {
    /// Pod UID -> instant its create returned.
    pods: HashMap<String, Instant>,
    started: Instant,
    finished: Instant,
}

async fn create_many(
    client: &Client,
    namespace: &str,
    count: usize,
    nodes: usize,
    concurrency: usize,
    small: bool,
) -> anyhow::Result<Created> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<(String, Instant)>> = futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                taskrun_with_pod(
                    &client,
                    namespace,
                    &format!("build-{i:05}"),
                    &format!("node-{}", i % nodes),
                    small,
                )
                .await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut pods = HashMap::with_capacity(count);
    for r in results {
        let (uid, at) = r?;
        pods.insert(uid, at);
    }
    Ok(Created {
        pods,
        started,
        finished: Instant::now(),
    })
}

/// Deletes every pod (grace period 0: no kubelet will confirm) and TaskRun of `namespace`.
async fn empty_namespace(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.delete_collection(
        &DeleteParams::default().grace_period(0),
        &ListParams::default(),
    )
    .await?;
    taskruns(client.clone(), namespace)
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    Ok(())
}

fn cluster_spiffe_id_api(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("spire.spiffe.io", "v1alpha1", "ClusterSPIFFEID"),
        "clusterspiffeids",
    );
    Api::all_with(client.clone(), &ar)
}

/// The ClusterSPIFFEID equivalent to the controller's entries: same SPIFFE ID, the same
/// two selectors (SCM always adds k8s:pod-uid), the same TTL; parent from SCM's
/// parentIDTemplate (see `scm_config`).
async fn create_cluster_spiffe_id(
    client: &Client,
    name: &str,
    namespace: &str,
) -> anyhow::Result<()> {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "spire.spiffe.io/v1alpha1", "kind": "ClusterSPIFFEID",
        "metadata": {"name": name},
        "spec": {
            "spiffeIDTemplate": "spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/taskrun/{{ index .PodMeta.Labels \"tekton.dev/taskRun\" }}",
            "podSelector": {"matchExpressions": [{"key": "tekton.dev/taskRun", "operator": "Exists"}]},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            // SCM adds k8s:pod-uid itself: the same two selectors as ours.
            "workloadSelectorTemplates": ["k8s:container-name:step-sign"],
            "ttl": "30m",
            "hint": "scm-bench",
        },
    }))?;
    cluster_spiffe_id_api(client)
        .create(&PostParams::default(), &object)
        .await
        .context("creating the ClusterSPIFFEID (are spire-controller-manager's CRDs installed?)")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SPIRE.

async fn spire_start() -> anyhow::Result<(Spire, SpireClient)> {
    let spire =
        tokio::task::spawn_blocking(|| Spire::start_audited(Propagation::Default)).await??;
    let client = SpireClient::connect(
        Endpoint::AdminSocket(spire.server_socket().to_owned()),
        ClientConfig::default().call_timeout(Duration::from_secs(60)),
    )
    .await?;
    Ok((spire, client))
}

fn pod_uid_of(entry: &tekton_spire::spire::Entry) -> Option<String> {
    entry
        .spec
        .selectors
        .iter()
        .find(|s| s.kind() == "k8s" && s.value().starts_with("pod-uid:"))
        .map(|s| s.value().trim_start_matches("pod-uid:").to_owned())
}

#[derive(Default)]
struct Polls {
    /// Pod UID -> completion of the first list that contained its entry.
    first_seen: HashMap<String, Instant>,
    /// Time between the completions of consecutive lists.
    intervals: Vec<Duration>,
    /// Duration of each list.
    list_times: Vec<Duration>,
    errors: usize,
}

/// Lists every entry of the server in a loop until cancelled.
async fn poll_entries(
    spire: SpireClient,
    pause: Duration,
    polls: Arc<Mutex<Polls>>,
    cancel: CancellationToken,
) {
    let mut last: Option<Instant> = None;
    while !cancel.is_cancelled() {
        let sent = Instant::now();
        let listed = spire.list_entries(&ListFilter::default()).await;
        let done = Instant::now();
        {
            let mut p = polls.lock().unwrap();
            match listed {
                Ok(entries) => {
                    for e in &entries {
                        if let Some(uid) = pod_uid_of(e) {
                            p.first_seen.entry(uid).or_insert(done);
                        }
                    }
                    p.list_times.push(done - sent);
                    if let Some(last) = last {
                        p.intervals.push(done - last);
                    }
                    last = Some(done);
                }
                Err(_) => p.errors += 1,
            }
        }
        // Never keep the server busier with lists than half the time.
        let pause = pause.max(done - sent);
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

async fn count_by_hint(spire: &SpireClient, hint: &str) -> anyhow::Result<u64> {
    Ok(spire
        .count_entries(&ListFilter::default().by_hint(hint.to_owned()))
        .await?)
}

/// Waits until a pass logged by `proc` has left `want` entries with `hint` on the server;
/// returns when that pass's closing line arrived. The server is asked only once per pass:
/// CountEntries with a filter reads every matching entry (SPIRE v1.13's sqlstore), so
/// polling it would load the very server being measured.
async fn wait_converged(
    proc: &mut Logged,
    which: Which,
    spire: &SpireClient,
    hint: &str,
    want: u64,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut next = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, at, _) = proc.wait_line(next, left, pass_end(which)).await?;
        next = i + 1;
        let n = count_by_hint(spire, hint).await?;
        if n >= want {
            return Ok(at);
        }
        eprintln!("bench: a pass ended with {n} of {want} entries; waiting for the next");
    }
}

/// The line that closes a pass: ours logs "entry pass" when it changed something (and
/// "early entry pass" after the one it makes at startup before its TaskRun cache has
/// filled), SCM logs "Reconciliation finished" (at V(2)) after every pass.
fn pass_end(which: Which) -> fn(&str) -> bool {
    match which {
        Which::Ours | Which::Baseline => {
            |l: &str| l.contains("\"entry pass\"") || l.contains("\"early entry pass\"")
        }
        Which::Scm => |l: &str| l.contains("Reconciliation finished"),
    }
}

// ---------------------------------------------------------------------------------------
// The two controllers.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Ours,
    Scm,
    /// An earlier `tekton-spire` (`--baseline`).
    Baseline,
}

struct Ctx {
    args: Args,
    client: Client,
}

impl Ctx {
    fn spawn(&self, which: Which, spire: &Spire, tag: &str) -> anyhow::Result<Logged> {
        match which {
            Which::Ours | Which::Baseline => {
                let config = self.args.work.join(format!("controller-{tag}.yaml"));
                let mut text = format!(
                    "spire-trust-domain: {}\nspire-server-socket: {}\n",
                    spire.trust_domain(),
                    spire.server_socket().display()
                );
                let binary = if which == Which::Baseline {
                    self.args.baseline.clone().context("no --baseline")?
                } else {
                    text.push_str("cluster-name: bench\nmetrics-address: 127.0.0.1:0\n");
                    self.args.controller.clone()
                };
                std::fs::write(&config, text)?;
                let mut cmd = Command::new(&binary);
                cmd.args(["controller", "--log-format", "json", "--config"])
                    .arg(&config)
                    .envs(deployed_env()?)
                    .env("KUBECONFIG", &self.args.kubeconfig)
                    // Passes that change nothing are logged at debug level.
                    .env("RUST_LOG", "info,tekton_spire::controller::entries=debug");
                Logged::spawn(
                    "tekton-spire controller",
                    cmd,
                    &self.args.work.join(format!("controller-{tag}.log")),
                )
            }
            Which::Scm => {
                let config = self.args.work.join(format!("scm-{tag}.yaml"));
                std::fs::write(&config, scm_config(spire))?;
                let mut cmd = Command::new(self.args.scm.as_ref().context("no --scm")?);
                // -zap-log-level=2 enables its V(2) lines "Starting reconciliation" and
                // "Reconciliation finished", which time its passes.
                cmd.arg("-config")
                    .arg(&config)
                    .arg("-zap-log-level=2")
                    .env("KUBECONFIG", &self.args.kubeconfig)
                    .env("ENABLE_WEBHOOKS", "false");
                Logged::spawn(
                    "spire-controller-manager",
                    cmd,
                    &self.args.work.join(format!("scm-{tag}.log")),
                )
            }
        }
    }

    /// Waits until the controller is ready to react: its watch caches are filled (ours)
    /// or its first reconciliation finished (SCM).
    async fn wait_ready(&self, which: Which, proc: &mut Logged) -> anyhow::Result<Instant> {
        let (_, at, _) = match which {
            Which::Ours | Which::Baseline => {
                proc.wait_line(0, Duration::from_secs(120), |l| {
                    l.contains("watch caches filled")
                })
                .await?
            }
            Which::Scm => {
                proc.wait_line(0, Duration::from_secs(120), |l| {
                    l.contains("Reconciliation finished")
                })
                .await?
            }
        };
        Ok(at)
    }
}

fn scm_config(spire: &Spire) -> String {
    format!(
        r#"apiVersion: spire.spiffe.io/v1alpha1
kind: ControllerManagerConfig
metrics:
  bindAddress: "0"
health:
  healthProbeBindAddress: "0"
leaderElection:
  leaderElect: false
clusterName: bench
clusterDomain: cluster.local
trustDomain: {td}
spireServerSocketPath: {socket}
entryIDPrefix: {SCM_ENTRY_PREFIX}
# The controller's parent: spiffe://<td>/tekton-node/<node> (SCM's default would be the
# k8s_psat agent ID spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node UID>).
parentIDTemplate: "spiffe://{{{{ .TrustDomain }}}}/tekton-node/{{{{ .NodeMeta.Name }}}}"
ignoreNamespaces: [kube-system, kube-public]
reconcile:
  clusterSPIFFEIDs: true
"#,
        td = spire.trust_domain(),
        socket = spire.server_socket().display(),
    )
}

/// An SCM pass: from "Starting reconciliation" to the next "Reconciliation finished".
fn scm_passes(lines: &[(Instant, String)]) -> Vec<(Instant, Duration)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, line) in lines {
        if line.contains("Starting reconciliation") && line.contains("entry-reconciler") {
            start = Some(*at);
        } else if line.contains("Reconciliation finished")
            && line.contains("entry-reconciler")
            && let Some(s) = start.take()
        {
            out.push((s, *at - s));
        }
    }
    out
}

/// Our passes that changed something: (arrival, elapsed_ms, created, deleted).
/// The `elapsed_ms` of one of our "entry pass" lines.
fn pass_elapsed(line: &str) -> anyhow::Result<Duration> {
    let v: serde_json::Value = serde_json::from_str(line)?;
    let ms = v
        .get("elapsed_ms")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    Ok(Duration::from_millis(ms))
}

fn our_passes(lines: &[(Instant, String)]) -> Vec<(Instant, Duration, u64, u64)> {
    lines
        .iter()
        .filter_map(|(at, line)| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            if v.get("message")?.as_str()? != "entry pass" {
                return None;
            }
            let field = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            Some((
                *at,
                Duration::from_millis(field("elapsed_ms")),
                field("created"),
                field("deleted"),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Phases.

#[derive(Default)]
struct Burst {
    pods: usize,
    created_in: Duration,
    all_in: Option<Duration>,
    missing: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    poll_p50: Duration,
    poll_max: Duration,
    /// Share of the burst during which a list of the poller was in flight.
    poll_busy: f64,
    passes: usize,
    longest_pass: Duration,
    hwm_kib: Option<u64>,
    problems: Vec<String>,
    /// ListEntries calls per minute while the pods change status, from the server's
    /// audit log.
    lists_per_minute: f64,
}

/// ListEntries calls the server logged so far (audit log: "API accessed").
fn list_calls(spire: &Spire) -> usize {
    std::fs::read_to_string(spire.server_log())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("API accessed") && l.contains("\"ListEntries\""))
        .count()
}

/// Step transitions of running TaskRuns: every pod's status changes about once a minute
/// (a TaskRun of a few steps over a few minutes), spread evenly over `length`. Returns the
/// ListEntries calls per minute the controller made meanwhile.
async fn step_transitions(
    ctx: &Ctx,
    spire: &Spire,
    namespace: &str,
    pods: usize,
    length: Duration,
) -> anyhow::Result<f64> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let total = ((pods as f64) * length.as_secs_f64() / 60.0).ceil() as usize;
    let pause = length.div_f64(total.max(1) as f64);
    let before = list_calls(spire);
    let started = Instant::now();
    for i in 0..total {
        let ready = if (i / pods.max(1)).is_multiple_of(2) {
            "False"
        } else {
            "True"
        };
        let status = Patch::Merge(json!({"status": {"conditions": [
            {"type": "Ready", "status": ready}, {"type": "PodScheduled", "status": "True"}]}}));
        let name = format!("build-{:05}-pod", i % pods.max(1));
        let _ = api
            .patch_status(&name, &PatchParams::default(), &status)
            .await;
        let due = started + pause.mul_f64((i + 1) as f64);
        tokio::time::sleep_until(due.into()).await;
    }
    let elapsed = started.elapsed();
    let calls = list_calls(spire) - before;
    Ok(calls as f64 * 60.0 / elapsed.as_secs_f64())
}

/// The name of a log or config file of `round` (0-based): the first round's has none.
fn round_tag(base: String, round: usize) -> String {
    if round == 0 {
        base
    } else {
        format!("{base}-round{}", round + 1)
    }
}

async fn burst(ctx: &Ctx, which: Which, round: usize) -> anyhow::Result<Burst> {
    let tag = match which {
        Which::Ours => "ours",
        Which::Baseline => "baseline",
        Which::Scm => "scm",
    };
    eprintln!("bench: burst of {} pods, {tag}", ctx.args.pods);
    let (spire, spire_client) = spire_start().await?;
    let namespace = create_namespace(ctx.client.clone(), &format!("burst-{tag}-")).await?;
    if which == Which::Scm {
        create_cluster_spiffe_id(&ctx.client, "bench-burst", &namespace).await?;
    }
    let mut proc = ctx.spawn(
        which,
        &spire,
        &round_tag(format!("burst-{}", ctx.args.pods), round),
    )?;
    ctx.wait_ready(which, &mut proc).await?;
    // Let the first pass (or SCM's informers) settle before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log_mark = proc.len();

    let polls = Arc::new(Mutex::new(Polls::default()));
    let cancel = CancellationToken::new();
    let poller = tokio::spawn(poll_entries(
        spire_client.clone(),
        ctx.args.poll_pause,
        Arc::clone(&polls),
        cancel.clone(),
    ));
    let created = create_many(
        &ctx.client,
        &namespace,
        ctx.args.pods,
        ctx.args.nodes,
        ctx.args.concurrency,
        ctx.args.small_objects,
    )
    .await?;
    let deadline = Instant::now() + BURST_DEADLINE;
    loop {
        let seen = {
            let p = polls.lock().unwrap();
            created
                .pods
                .keys()
                .filter(|uid| p.first_seen.contains_key(*uid))
                .count()
        };
        if seen == created.pods.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    poller.await?;
    // Let a pass that is still running finish and log.
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("bench: {tag}: step transitions for {:?}", ctx.args.steady);
    let lists_per_minute =
        step_transitions(ctx, &spire, &namespace, created.pods.len(), ctx.args.steady).await?;

    // The poller has stopped: take its records.
    let p = std::mem::take(&mut *polls.lock().unwrap());
    let mut latencies: Vec<Duration> = created
        .pods
        .iter()
        .filter_map(|(uid, at)| {
            p.first_seen
                .get(uid)
                .map(|seen| seen.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    let missing = created.pods.len() - latencies.len();
    let last_seen = created
        .pods
        .keys()
        .filter_map(|uid| p.first_seen.get(uid))
        .max()
        .copied();
    let mut intervals = p.intervals.clone();
    intervals.sort();
    let lines = proc.lines_from(log_mark);
    let (passes, longest_pass) = match which {
        Which::Ours | Which::Baseline => {
            let passes = our_passes(&lines);
            (
                passes.len(),
                passes.iter().map(|p| p.1).max().unwrap_or_default(),
            )
        }
        Which::Scm => {
            let passes = scm_passes(&lines);
            (
                passes.len(),
                passes.iter().map(|p| p.1).max().unwrap_or_default(),
            )
        }
    };
    let result = Burst {
        pods: created.pods.len(),
        created_in: created.finished - created.started,
        all_in: (missing == 0)
            .then(|| last_seen.map(|l| l - created.started))
            .flatten(),
        missing,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or_default(),
        poll_p50: percentile(&intervals, 50.0),
        poll_max: intervals.last().copied().unwrap_or_default(),
        poll_busy: {
            let busy: Duration = p.list_times.iter().sum();
            let span: Duration = p.intervals.iter().sum::<Duration>()
                + p.list_times.first().copied().unwrap_or_default();
            if span.is_zero() {
                0.0
            } else {
                busy.as_secs_f64() / span.as_secs_f64()
            }
        },
        passes,
        longest_pass,
        hwm_kib: proc.vm_hwm_kib(),
        problems: proc.problems(),
        lists_per_minute,
    };
    proc.stop()?;
    if which == Which::Scm {
        cluster_spiffe_id_api(&ctx.client)
            .delete("bench-burst", &DeleteParams::default())
            .await?;
    }
    empty_namespace(&ctx.client, &namespace).await?;
    drop(spire);
    eprintln!(
        "bench: {tag} burst done: {} pods, all entries after {:?}, {} missing",
        result.pods, result.all_in, result.missing
    );
    Ok(result)
}

#[derive(Default)]
struct Reconcile {
    /// Controller start to every entry on the server (created from nothing).
    initial: Option<Duration>,
    /// The first pass's own duration (ours: elapsed_ms; SCM: its V(2) lines).
    initial_pass: Option<Duration>,
    /// Steady-state passes over all entries.
    steady: Vec<Duration>,
    /// How long the machine took to become quiet before the controller was started.
    settled: Duration,
    /// CPU time from the start to every entry created: the controller, the SPIRE
    /// server, kube-apiserver and etcd.
    initial_cpu: Option<[Duration; 3]>,
    /// Restart (with all entries present and one deleted) to converged.
    restart: Option<Duration>,
    hwm_kib: Option<u64>,
    problems: Vec<String>,
}

async fn reconcile(
    ctx: &Ctx,
    which: Which,
    namespace: &str,
    round: usize,
) -> anyhow::Result<Reconcile> {
    let n = ctx.args.reconcile_pods;
    let (tag, hint) = match which {
        Which::Ours | Which::Baseline => ("ours", "tekton-spire"),
        Which::Scm => ("scm", "scm-bench"),
    };
    eprintln!("bench: full reconcile of {n} entries, {tag}");
    let (spire, spire_client) = spire_start().await?;
    if which == Which::Scm {
        create_cluster_spiffe_id(&ctx.client, "bench-reconcile", namespace).await?;
    }
    let mut out = Reconcile {
        settled: settle().await,
        ..Reconcile::default()
    };
    eprintln!("bench: the machine was quiet after {:?}", out.settled);

    // 1. From nothing: start with n pods and no entries.
    let server_pid = spire.server_pid()?;
    let cpu_before = cpu_split(None, server_pid);
    let mut proc = ctx.spawn(which, &spire, &round_tag(format!("reconcile-{n}"), round))?;
    let all = wait_converged(
        &mut proc,
        which,
        &spire_client,
        hint,
        n as u64,
        Duration::from_secs(3600),
    )
    .await?;
    out.initial = Some(all - proc.spawned);
    let cpu_after = cpu_split(Some(proc.pid()), server_pid);
    out.initial_cpu = Some([
        cpu_after[0],
        cpu_after[1].saturating_sub(cpu_before[1]),
        cpu_after[2].saturating_sub(cpu_before[2]),
    ]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    out.initial_pass = match which {
        Which::Ours | Which::Baseline => our_passes(&proc.lines_from(0)).iter().map(|p| p.1).max(),
        Which::Scm => scm_passes(&proc.lines_from(0)).iter().map(|p| p.1).max(),
    };
    eprintln!("bench: {tag}: {n} entries after {:?}", out.initial);

    // 2. Steady state: passes over n entries with nothing to do (an earlier controller:
    // one entry), timed from STEADY_AFTER on.
    tokio::time::sleep(STEADY_AFTER).await;
    let entries = spire_client
        .list_entries(&ListFilter::default().by_hint(hint.to_owned()))
        .await?;
    let mut victims = entries.iter().map(|e| e.spec.id.clone());
    match which {
        Which::Ours => {
            // Ours logs a pass that changed nothing at debug level: take the next
            // periodic ones (every 10 s), which list all n and change nothing, like SCM's.
            let mut next = proc.len();
            while out.steady.len() < STEADY_SAMPLES {
                let (i, _, line) = proc
                    .wait_line(next, Duration::from_secs(60), |l| {
                        l.contains("\"entry pass\"") && l.contains("\"listed\":true")
                    })
                    .await?;
                next = i + 1;
                if line.contains("\"created\"") {
                    continue; // a pass that changed something
                }
                out.steady.push(pass_elapsed(&line)?);
            }
        }
        Which::Baseline => {
            // A pass that changes nothing logs nothing: delete one entry behind the
            // controller's back; the next periodic pass (every 10 s) lists all n, finds
            // it missing, recreates it and logs its elapsed time.
            for _ in 0..STEADY_SAMPLES {
                let mark = proc.len();
                let victim = victims.next().context("no entry to delete")?;
                spire_client.batch_delete(&[victim]).await?;
                let (_, _, line) = proc
                    .wait_line(mark, Duration::from_secs(60), |l| {
                        l.contains("\"entry pass\"")
                    })
                    .await?;
                out.steady.push(pass_elapsed(&line)?);
            }
        }
        Which::Scm => {
            // SCM times every pass at V(2); take the next periodic ones (every 10 s).
            let mark = proc.len();
            let mut next = mark;
            while out.steady.len() < STEADY_SAMPLES {
                let (i, _, _) = proc
                    .wait_line(next, Duration::from_secs(60), |l| {
                        l.contains("Reconciliation finished")
                    })
                    .await?;
                next = i + 1;
                out.steady = scm_passes(&proc.lines_from(mark))
                    .into_iter()
                    .map(|p| p.1)
                    .collect();
            }
        }
    }
    out.hwm_kib = proc.vm_hwm_kib();
    out.problems = proc.problems();
    proc.stop()?;

    // 3. Restart with all n present but one: start to converged.
    let victim = victims.next().context("no entry to delete")?;
    spire_client.batch_delete(&[victim]).await?;
    let mut proc = ctx.spawn(which, &spire, &round_tag(format!("restart-{n}"), round))?;
    // Converged: the end of the first pass after which the server holds all n again.
    let converged = wait_converged(
        &mut proc,
        which,
        &spire_client,
        hint,
        n as u64,
        Duration::from_secs(600),
    )
    .await?;
    out.restart = Some(converged - proc.spawned);
    out.hwm_kib = out.hwm_kib.max(proc.vm_hwm_kib());
    out.problems.extend(proc.problems());
    proc.stop()?;
    if which == Which::Scm {
        cluster_spiffe_id_api(&ctx.client)
            .delete("bench-reconcile", &DeleteParams::default())
            .await?;
    }
    drop(spire);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Rounds.

/// The median of `values`: the lower middle one of an even count.
fn median<T: PartialOrd + Copy + Default>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// The median of figures that a round may lack: none if any round lacks it.
fn median_of_all<T: PartialOrd + Copy + Default>(values: Vec<Option<T>>) -> Option<T> {
    values.into_iter().collect::<Option<Vec<T>>>().map(median)
}

impl Burst {
    /// Each figure's median over the rounds; peak RSS and pods missing, the largest.
    fn median(rounds: &[&Burst]) -> Burst {
        let of = |f: fn(&Burst) -> Duration| median(rounds.iter().map(|b| f(b)).collect());
        Burst {
            pods: rounds.first().map_or(0, |b| b.pods),
            created_in: of(|b| b.created_in),
            all_in: median_of_all(rounds.iter().map(|b| b.all_in).collect()),
            missing: rounds.iter().map(|b| b.missing).max().unwrap_or(0),
            p50: of(|b| b.p50),
            p99: of(|b| b.p99),
            max: of(|b| b.max),
            poll_p50: of(|b| b.poll_p50),
            poll_max: of(|b| b.poll_max),
            poll_busy: median(rounds.iter().map(|b| b.poll_busy).collect()),
            passes: median(rounds.iter().map(|b| b.passes).collect()),
            longest_pass: of(|b| b.longest_pass),
            hwm_kib: rounds.iter().filter_map(|b| b.hwm_kib).max(),
            problems: rounds.iter().flat_map(|b| b.problems.clone()).collect(),
            lists_per_minute: median(rounds.iter().map(|b| b.lists_per_minute).collect()),
        }
    }
}

impl Reconcile {
    /// Each figure's median over the rounds; the steady passes of all rounds together;
    /// peak RSS, the largest.
    fn median(rounds: &[&Reconcile]) -> Reconcile {
        let cpu =
            |i: usize| median_of_all(rounds.iter().map(|r| r.initial_cpu.map(|c| c[i])).collect());
        Reconcile {
            initial: median_of_all(rounds.iter().map(|r| r.initial).collect()),
            initial_pass: median_of_all(rounds.iter().map(|r| r.initial_pass).collect()),
            steady: rounds
                .iter()
                .flat_map(|r| r.steady.iter().copied())
                .collect(),
            settled: median(rounds.iter().map(|r| r.settled).collect()),
            initial_cpu: match (cpu(0), cpu(1), cpu(2)) {
                (Some(c), Some(s), Some(a)) => Some([c, s, a]),
                _ => None,
            },
            restart: median_of_all(rounds.iter().map(|r| r.restart).collect()),
            hwm_kib: rounds.iter().filter_map(|r| r.hwm_kib).max(),
            problems: rounds.iter().flat_map(|r| r.problems.clone()).collect(),
        }
    }
}

/// Who runs a phase in `round`, in order: ours, then the baseline and SCM if given; SCM
/// first in every second round. The machine changes as a run goes on (etcd grows, caches
/// warm), and a fixed order would hand one controller the same side of it every time.
fn run_order(round: usize, scm: bool, baseline: bool) -> Vec<Which> {
    let mut order = vec![Which::Ours];
    if baseline {
        order.push(Which::Baseline);
    }
    if scm {
        if round % 2 == 1 {
            order.insert(0, Which::Scm);
        } else {
            order.push(Which::Scm);
        }
    }
    order
}

/// A phase's failure as the text the table prints.
fn failure_text<T>(result: anyhow::Result<T>) -> Result<T, String> {
    result.map_err(|e| format!("{e:#}"))
}

/// The median over rounds, or the first round's failure.
fn combine<T>(rounds: &[Result<T, String>], median: fn(&[&T]) -> T) -> Result<T, String> {
    let mut ok = Vec::new();
    for (i, round) in rounds.iter().enumerate() {
        match round {
            Ok(r) => ok.push(r),
            Err(e) if rounds.len() == 1 => return Err(e.clone()),
            Err(e) => return Err(format!("round {}: {e}", i + 1)),
        }
    }
    Ok(median(&ok))
}

/// Each round's headline figures, ours beside SCM's (if run), after the table of medians.
fn round_rows(
    ours_bursts: &[Burst],
    scm_bursts: &[Result<Burst, String>],
    ours_reconciles: &[Result<Reconcile, String>],
    scm_reconciles: &[Result<Reconcile, String>],
) {
    println!("\nEach round, tekton-spire / spire-controller-manager (odd rounds start with ours):");
    let opt = |d: Option<Duration>| d.map_or_else(|| "n/a".to_owned(), secs);
    let steady_p50 = |r: &Reconcile| {
        let mut s = r.steady.clone();
        s.sort();
        secs(percentile(&s, 50.0))
    };
    for (i, ours_b) in ours_bursts.iter().enumerate() {
        let scm_b = scm_bursts.get(i).map(|r| r.as_ref().ok());
        let burst = |f: &dyn Fn(&Burst) -> String| match scm_b {
            None => f(ours_b),
            Some(None) => format!("{} / failed", f(ours_b)),
            Some(Some(scm)) => format!("{} / {}", f(ours_b), f(scm)),
        };
        let one = |r: Option<&Result<Reconcile, String>>, f: &dyn Fn(&Reconcile) -> String| match r
        {
            None => None,
            Some(Ok(r)) => Some(f(r)),
            Some(Err(_)) => Some("failed".to_owned()),
        };
        let reconcile = |f: &dyn Fn(&Reconcile) -> String| {
            let ours = one(ours_reconciles.get(i), f).unwrap_or_default();
            match one(scm_reconciles.get(i), f) {
                None => ours,
                Some(scm) => format!("{ours} / {scm}"),
            }
        };
        println!(
            "  round {}: burst all {}, p50 {}, p99 {}; from nothing {}; steady p50 {}; restart {}",
            i + 1,
            burst(&|b| b.all_in.map_or_else(|| "missing".to_owned(), secs)),
            burst(&|b| secs(b.p50)),
            burst(&|b| secs(b.p99)),
            reconcile(&|r| opt(r.initial)),
            reconcile(&steady_p50),
            reconcile(&|r| opt(r.restart)),
        );
    }
}

// ---------------------------------------------------------------------------------------

fn row(label: &str, ours: &str, scm: &str) {
    println!("  {label:<52} {ours:>24} {scm:>24}");
}

fn burst_rows(ours: &Burst, scm: Option<&Result<Burst, String>>) {
    let scm_val = |f: &dyn Fn(&Burst) -> String| match scm {
        None => "not run".to_owned(),
        Some(Err(_)) => "failed (below)".to_owned(),
        Some(Ok(b)) => f(b),
    };
    let all_in = |b: &Burst| {
        b.all_in
            .map_or_else(|| format!("{} missing", b.missing), secs)
    };
    row(
        "API: TaskRuns + pods created in",
        &secs(ours.created_in),
        &scm_val(&|b| secs(b.created_in)),
    );
    row(
        "burst start -> every entry on the server",
        &all_in(ours),
        &scm_val(&all_in),
    );
    row(
        "per pod, pod created -> entry seen: p50",
        &secs(ours.p50),
        &scm_val(&|b| secs(b.p50)),
    );
    row(
        "                                    p99",
        &secs(ours.p99),
        &scm_val(&|b| secs(b.p99)),
    );
    row(
        "                                    max",
        &secs(ours.max),
        &scm_val(&|b| secs(b.max)),
    );
    row(
        "passes during the burst / longest",
        &format!("{} / {}", ours.passes, secs(ours.longest_pass)),
        &scm_val(&|b| format!("{} / {}", b.passes, secs(b.longest_pass))),
    );
    row(
        "peak RSS (VmHWM) after the burst",
        &mib(ours.hwm_kib),
        &scm_val(&|b| mib(b.hwm_kib)),
    );
    row(
        "ListEntries calls per minute during step transitions",
        &format!("{:.1}", ours.lists_per_minute),
        &scm_val(&|b| format!("{:.1}", b.lists_per_minute)),
    );
    row(
        "polling interval p50 / max",
        &format!("{} / {}", secs(ours.poll_p50), secs(ours.poll_max)),
        &scm_val(&|b| format!("{} / {}", secs(b.poll_p50), secs(b.poll_max))),
    );
    row(
        "share of the time a poll list was in flight",
        &format!("{:.0} %", ours.poll_busy * 100.0),
        &scm_val(&|b| format!("{:.0} %", b.poll_busy * 100.0)),
    );
}

fn reconcile_rows(ours: &Result<Reconcile, String>, scm: Option<&Result<Reconcile, String>>) {
    let val = |r: Option<&Result<Reconcile, String>>, f: &dyn Fn(&Reconcile) -> String| match r {
        None => "not run".to_owned(),
        Some(Err(_)) => "failed (below)".to_owned(),
        Some(Ok(r)) => f(r),
    };
    let opt = |d: Option<Duration>| d.map_or_else(|| "n/a".to_owned(), secs);
    let steady = |r: &Reconcile| {
        let mut s = r.steady.clone();
        s.sort();
        format!(
            "{} / {} (n={})",
            secs(percentile(&s, 50.0)),
            secs(s.last().copied().unwrap_or_default()),
            s.len()
        )
    };
    row(
        "start, no entries -> all created",
        &val(Some(ours), &|r| opt(r.initial)),
        &val(scm, &|r| opt(r.initial)),
    );
    row(
        "  of which the creating pass itself",
        &val(Some(ours), &|r| opt(r.initial_pass)),
        &val(scm, &|r| opt(r.initial_pass)),
    );
    let cpu = |r: &Reconcile| {
        r.initial_cpu.map_or_else(
            || "n/a".to_owned(),
            |[c, s, a]| {
                format!(
                    "{:.0} / {:.0} / {:.0} s",
                    c.as_secs_f64(),
                    s.as_secs_f64(),
                    a.as_secs_f64()
                )
            },
        )
    };
    row(
        "  CPU meanwhile: controller / SPIRE / API+etcd",
        &val(Some(ours), &cpu),
        &val(scm, &cpu),
    );
    row(
        "  machine quiet before the start after",
        &val(Some(ours), &|r| secs(r.settled)),
        &val(scm, &|r| secs(r.settled)),
    );
    row(
        "steady pass over all entries, 60 s on: p50 / max",
        &val(Some(ours), &steady),
        &val(scm, &steady),
    );
    row(
        "restart, all present but one -> converged",
        &val(Some(ours), &|r| opt(r.restart)),
        &val(scm, &|r| opt(r.restart)),
    );
    row(
        "peak RSS (VmHWM), largest of the two processes",
        &val(Some(ours), &|r| mib(r.hwm_kib)),
        &val(scm, &|r| mib(r.hwm_kib)),
    );
}

fn print_problems(name: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    println!(
        "\n{name}: {} WARN/ERROR log line(s); the first 5:",
        problems.len()
    );
    for p in problems.iter().take(5) {
        let short: String = p.chars().take(400).collect();
        println!("  {short}");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work)?;
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.read_timeout = Some(Duration::from_secs(120));
    let client = Client::try_from(config)?;
    let ctx = Ctx { args, client };
    let load_start = load_average();
    let started = Instant::now();

    let nodes: Api<Node> = Api::all(ctx.client.clone());
    for i in 0..ctx.args.nodes {
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": format!("node-{i}")}}))?;
        nodes.create(&PostParams::default(), &node).await?;
    }

    let rounds = usize::from(ctx.args.rounds);
    let has_scm = ctx.args.scm.is_some();
    let mut ours_bursts = Vec::new();
    let mut scm_bursts = Vec::new();
    let mut baseline_bursts = Vec::new();
    for round in 0..rounds {
        for which in run_order(round, has_scm, ctx.args.baseline.is_some()) {
            let result = burst(&ctx, which, round).await;
            match which {
                Which::Ours => ours_bursts.push(result?),
                Which::Baseline => baseline_bursts.push(failure_text(result)),
                Which::Scm => scm_bursts.push(failure_text(result)),
            }
        }
    }
    let ours_burst = Burst::median(&ours_bursts.iter().collect::<Vec<_>>());
    let baseline_burst =
        (!baseline_bursts.is_empty()).then(|| combine(&baseline_bursts, Burst::median));
    let scm_burst = (!scm_bursts.is_empty()).then(|| combine(&scm_bursts, Burst::median));

    let n = ctx.args.reconcile_pods;
    eprintln!("bench: creating {n} TaskRuns and pods (no controller running)");
    let namespace = create_namespace(ctx.client.clone(), "reconcile-").await?;
    let created = create_many(
        &ctx.client,
        &namespace,
        n,
        ctx.args.nodes,
        ctx.args.concurrency,
        ctx.args.small_objects,
    )
    .await?;
    let create_rate = n as f64 / (created.finished - created.started).as_secs_f64();
    eprintln!(
        "bench: created {n} in {:?} ({create_rate:.0} pods/s)",
        created.finished - created.started
    );
    let mut ours_reconciles = Vec::new();
    let mut scm_reconciles = Vec::new();
    for round in 0..rounds {
        for which in run_order(round, has_scm, false) {
            let result = failure_text(reconcile(&ctx, which, &namespace, round).await);
            match which {
                Which::Scm => scm_reconciles.push(result),
                Which::Ours | Which::Baseline => ours_reconciles.push(result),
            }
        }
    }
    let ours_reconcile = combine(&ours_reconciles, Reconcile::median);
    let scm_reconcile =
        (!scm_reconciles.is_empty()).then(|| combine(&scm_reconciles, Reconcile::median));

    let scm_name = if ctx.args.scm.is_some() {
        format!("spire-controller-manager {}", ctx.args.scm_version)
    } else {
        "spire-controller-manager".to_owned()
    };
    println!();
    println!(
        "Controller benchmark: {} cores, load average {} at the start, {} at the end; {} min in all{}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_start,
        load_average(),
        started.elapsed().as_secs() / 60,
        if rounds > 1 {
            format!("; each figure the median of {rounds} rounds")
        } else {
            String::new()
        }
    );
    println!("  {:<52} {:>24} {:>24}", "", "tekton-spire", scm_name);
    println!(
        "Burst: {} TaskRuns with their pods over {} nodes, {} API requests in flight",
        ctx.args.pods, ctx.args.nodes, ctx.args.concurrency
    );
    burst_rows(&ours_burst, scm_burst.as_ref());
    match &baseline_burst {
        Some(Ok(b)) => println!(
            "  before ({}): ListEntries calls per minute during step transitions {:.1}; per pod p50 {}, p99 {}",
            ctx.args
                .baseline
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            b.lists_per_minute,
            secs(b.p50),
            secs(b.p99)
        ),
        Some(Err(e)) => println!("  before: failed: {e}"),
        None => {}
    }
    println!(
        "Full reconcile: {n} pods ({create_rate:.0} pods/s created with TaskRuns and statuses, {}), {n} entries",
        if ctx.args.small_objects {
            "small synthetic objects"
        } else {
            "shaped like Tekton's: steps, results, taskSpec, 4 KB termination message"
        }
    );
    reconcile_rows(&ours_reconcile, scm_reconcile.as_ref());
    if rounds > 1 {
        round_rows(&ours_bursts, &scm_bursts, &ours_reconciles, &scm_reconciles);
    }
    println!(
        "\nEntry first-seen times come from listing every entry of the server (ListEntries,\n\
         {} a page, over the admin socket) in a loop, pausing {:?} or as long as the\n\
         last list took, whichever is longer; the polling interval above is the\n\
         resolution of the per-pod latencies.",
        tekton_spire::spire::LIST_PAGE_SIZE,
        ctx.args.poll_pause
    );
    print_problems("tekton-spire (burst)", &ours_burst.problems);
    if let Some(Ok(b)) = &scm_burst {
        print_problems("spire-controller-manager (burst)", &b.problems);
    }
    if let Ok(r) = &ours_reconcile {
        print_problems("tekton-spire (reconcile)", &r.problems);
    }
    if let Some(Ok(r)) = &scm_reconcile {
        print_problems("spire-controller-manager (reconcile)", &r.problems);
    }
    for (name, result) in [
        (
            "spire-controller-manager burst",
            scm_burst.as_ref().and_then(|r| r.as_ref().err()),
        ),
        ("tekton-spire reconcile", ours_reconcile.as_ref().err()),
        (
            "spire-controller-manager reconcile",
            scm_reconcile.as_ref().and_then(|r| r.as_ref().err()),
        ),
    ] {
        if let Some(e) = result {
            println!("\n{name} failed: {e}");
        }
    }
    Ok(())
}
