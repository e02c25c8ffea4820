//! The one-node cluster (scripts/cluster-local.sh): a real kubelet, containerd, scheduler,
//! controller-manager and kube-proxy, with SPIRE and the controller installed the way
//! README's "Install in a cluster" says, step by step.
//!
//! One node per machine: when `TEKTON_SPIRE_NODE` names the directory of a running node
//! (`./scripts/test.sh` starts one for all node tests), the tests use it; otherwise the
//! first test starts one for the test process (its watchdog stops it when the process
//! exits). Node tests change the cluster (they kill pods, relabel the node): each holds
//! the guard [`Node::serial`] returns, so the tests of one process take turns.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::instance::{Instance, check, repo_root};

/// A running node with SPIRE and the controller installed.
#[derive(Debug)]
pub struct Node {
    env: HashMap<String, String>,
    _instance: Option<Instance>,
}

/// Whether Tekton's controller runs on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tekton {
    /// Installed and running: Tekton creates the pods and writes the statuses.
    Running,
    /// Not running: the test plays Tekton's controller.
    Stopped,
}

/// The ID prefix of the controller's entries as deploy/ configures it:
/// `tekton-spire.<cluster-name>.`, with `cluster-name: demo-cluster` in
/// deploy/controller.yaml.
pub const ENTRY_PREFIX: &str = "tekton-spire.demo-cluster.";

/// What the install steps did once per process.
static INSTALLED: Mutex<bool> = Mutex::new(false);

impl Node {
    /// The node of this test process, with SPIRE and the controller installed, and this
    /// test's turn on it (hold the guard for the whole test).
    ///
    /// # Panics
    /// When the node cannot start or the install fails: every node test fails with the
    /// reason.
    #[expect(
        clippy::panic,
        reason = "test support: a test that needs the node must fail loudly without it"
    )]
    pub fn serial() -> (&'static Node, MutexGuard<'static, ()>) {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        static SHARED: OnceLock<Node> = OnceLock::new();
        let node = SHARED.get_or_init(|| match Self::attach_or_start() {
            Ok(node) => node,
            Err(e) => panic!("cannot start the one-node cluster: {e:#}"),
        });
        let mut installed = INSTALLED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*installed {
            if let Err(e) = node.install() {
                panic!("installing SPIRE and the controller on the node failed: {e:#}");
            }
            *installed = true;
        }
        (node, turn)
    }

    fn attach_or_start() -> anyhow::Result<Self> {
        if let Some(dir) = std::env::var_os("TEKTON_SPIRE_NODE") {
            let env = read_env(&Path::new(&dir).join("env")).with_context(|| {
                format!(
                    "TEKTON_SPIRE_NODE={}: no running node there",
                    dir.to_string_lossy()
                )
            })?;
            return Ok(Self {
                env,
                _instance: None,
            });
        }
        let instance = Instance::start("cluster-local.sh", "KUBE_NO_BUILD", &[], true)?;
        let env = read_env(&instance.dir().join("env"))?;
        Ok(Self {
            env,
            _instance: Some(instance),
        })
    }

    /// A variable of the node's `env` file, empty if absent.
    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.var("NODE_NAME")
    }

    /// The admin's kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        Path::new(self.var("KUBECONFIG"))
    }

    /// A kube client as the admin (one per tokio runtime: every `#[tokio::test]` has its own).
    ///
    /// # Errors
    /// When the kubeconfig cannot be read.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig_path())?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(Path::new(self.var("KUBE_BIN")).join("kubectl"));
        cmd.args(args).env("KUBECONFIG", self.kubeconfig_path());
        cmd
    }

    /// Runs kubectl as the admin; its stdout, or an error with all it printed.
    ///
    /// # Errors
    /// When kubectl fails.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .kubectl_command(args)
            .output()
            .context("running kubectl")?;
        check(out, &format!("kubectl {}", args.join(" ")))
    }

    /// Runs kubectl with `input` on its stdin (`-f -`).
    ///
    /// # Errors
    /// When kubectl fails.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> anyhow::Result<String> {
        let mut child = self
            .kubectl_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl")?;
        child
            .stdin
            .take()
            .context("kubectl's stdin")?
            .write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        check(out, &format!("kubectl {}", args.join(" ")))
    }

    /// The trust bundle as README says to fetch it: `spire-server bundle show -format pem`.
    ///
    /// # Errors
    /// When kubectl or the server command fails.
    pub fn trust_bundle_pem(&self) -> anyhow::Result<String> {
        self.spire_server_text(&["bundle", "show", "-format", "pem"])
    }

    /// Runs `spire-server ARGS… -socketPath …` in the server's pod (the image has no
    /// shell: the binary itself is exec'd), with `-output json`.
    ///
    /// # Errors
    /// When kubectl or the server command fails.
    pub fn spire_server(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-output", "json"]);
        let out = self.spire_server_text(&all)?;
        serde_json::from_str(&out).with_context(|| format!("spire-server printed no JSON: {out}"))
    }

    /// `spire-server ARGS… -socketPath …` in the server's pod; what it printed.
    fn spire_server_text(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec![
            "-n",
            "spire",
            "exec",
            "spire-server-0",
            "-c",
            "spire-server",
            "--",
            "/opt/spire/bin/spire-server",
        ];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-socketPath", "/run/spire/sockets/api.sock"]);
        self.kubectl(&all)
    }

    /// The SPIRE entries whose ID starts with `prefix`, as the server prints them.
    ///
    /// # Errors
    /// When the server cannot be asked.
    pub fn entries_with_prefix(&self, prefix: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let all = self.spire_server(&["entry", "show"])?;
        Ok(all["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
            .collect())
    }

    /// Polls `check` every 250 ms until it returns `Some` or `timeout` passes.
    ///
    /// # Errors
    /// With `what` and the last error of `check`, on timeout.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let mut last = None;
        loop {
            match check() {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) => last = Some(e),
            }
            if started.elapsed() > timeout {
                match last {
                    Some(e) => bail!("{what}: not within {timeout:?}; last error: {e:#}"),
                    None => bail!("{what}: not within {timeout:?}"),
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Installs Tekton Pipelines from its release configuration (scripts/tekton-install.sh)
    /// and runs its controller, or, with `Tekton::Stopped`, keeps its controller scaled to
    /// zero so that a test can write TaskRun statuses itself, as Tekton's controller would.
    ///
    /// # Errors
    /// When the install or the scaling fails.
    pub fn tekton(&self, state: Tekton) -> anyhow::Result<()> {
        let installed = self
            .kubectl(&[
                "-n",
                "tekton-pipelines",
                "get",
                "deployment",
                "tekton-pipelines-controller",
            ])
            .is_ok();
        match (state, installed) {
            (Tekton::Stopped, false) => Ok(()),
            (Tekton::Stopped, true) => {
                self.kubectl(&[
                    "-n",
                    "tekton-pipelines",
                    "scale",
                    "deployment/tekton-pipelines-controller",
                    "--replicas=0",
                ])?;
                self.wait_for(
                    "Tekton's controller to stop",
                    Duration::from_secs(120),
                    || {
                        let pods = self.kubectl(&[
                            "-n",
                            "tekton-pipelines",
                            "get",
                            "pods",
                            "-l",
                            "app.kubernetes.io/name=controller",
                            "-o",
                            "name",
                        ])?;
                        Ok(pods.trim().is_empty().then_some(()))
                    },
                )
            }
            (Tekton::Running, _) => {
                if !installed {
                    let out = Command::new(repo_root().join("scripts/tekton-install.sh"))
                        .arg(Path::new(self.var("KUBE_BIN")).join("kubectl"))
                        .env("KUBECONFIG", self.kubeconfig_path())
                        .env("PROGRAMS_NO_BUILD", "1")
                        .output()?;
                    check(out, "scripts/tekton-install.sh")?;
                }
                self.kubectl(&[
                    "-n",
                    "tekton-pipelines",
                    "scale",
                    "deployment/tekton-pipelines-controller",
                    "--replicas=1",
                ])?;
                self.kubectl(&[
                    "-n",
                    "tekton-pipelines",
                    "rollout",
                    "status",
                    "deployment/tekton-pipelines-controller",
                    "--timeout=300s",
                ])?;
                self.kubectl(&[
                    "-n",
                    "tekton-pipelines",
                    "rollout",
                    "status",
                    "deployment/tekton-pipelines-webhook",
                    "--timeout=300s",
                ])?;
                // A Ready webhook pod is not yet a webhook the API server reaches (its
                // Service's endpoints follow): wait until a Task passes its admission.
                let probe = serde_json::json!({
                    "apiVersion": "tekton.dev/v1", "kind": "Task",
                    "metadata": {"name": "webhook-probe", "namespace": "default"},
                    "spec": {"steps": [{"name": "s", "image": "busybox", "command": ["true"]}]}
                })
                .to_string();
                self.wait_for(
                    "Tekton's webhook to answer",
                    Duration::from_secs(120),
                    || {
                        Ok(self
                            .kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], &probe)
                            .is_ok()
                            .then_some(()))
                    },
                )
            }
        }
    }

    /// README's "Install in a cluster", step by step (scripts/cluster-install.sh, which
    /// `demo.sh --cluster` runs too).
    fn install(&self) -> anyhow::Result<()> {
        let out = Command::new(repo_root().join("scripts/cluster-install.sh"))
            .arg(self.var("CLUSTER_DIR"))
            .output()?;
        check(out, "scripts/cluster-install.sh").map(drop)
    }

    /// A namespace of its own for a test: `PREFIX-` and five hex digits.
    ///
    /// # Errors
    /// When kubectl fails.
    pub fn namespace(&self, prefix: &str) -> anyhow::Result<String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let ns = format!("{prefix}-{:05x}", nanos & 0xfffff);
        self.kubectl(&["create", "namespace", &ns])?;
        Ok(ns)
    }

    /// `kubectl ARGS… -o json`, parsed.
    ///
    /// # Errors
    /// When kubectl fails or prints no JSON.
    pub fn json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl(&all)?;
        serde_json::from_str(&out).with_context(|| format!("kubectl printed no JSON: {out}"))
    }

    /// The TaskRun `name` of namespace `ns`.
    ///
    /// # Errors
    /// When kubectl fails.
    pub fn taskrun(&self, ns: &str, name: &str) -> anyhow::Result<serde_json::Value> {
        self.json(&["-n", ns, "get", "taskrun", name])
    }

    /// Applies `patch` (a JSON merge patch such as `{"status": {...}}`) to the TaskRun through
    /// the status subresource, as Tekton's controller does, or anyone who may patch
    /// `taskruns/status`.
    ///
    /// # Errors
    /// When kubectl fails.
    pub fn patch_status(
        &self,
        ns: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let patch = patch.to_string();
        self.kubectl(&[
            "-n",
            ns,
            "patch",
            "taskrun",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ])
        .map(drop)
    }

    /// The controller's entries ([`ENTRY_PREFIX`]) whose SPIFFE ID is the one
    /// the controller gives TaskRun `name` of namespace `ns`.
    ///
    /// # Errors
    /// When the server cannot be asked.
    pub fn taskrun_entries(
        &self,
        trust_domain: &str,
        ns: &str,
        name: &str,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let wanted = format!("spiffe://{trust_domain}/ns/{ns}/taskrun/{name}");
        Ok(self
            .entries_with_prefix(ENTRY_PREFIX)?
            .into_iter()
            .filter(|e| spiffe_id_of(e) == wanted)
            .collect())
    }

    /// `kubectl get taskrun NAME -o json | tekton-spire verify --taskrun - --bundle B
    /// --trust-domain TD`, with the bundle fetched as README says: the exit code and all
    /// that `cli` (the `tekton-spire` binary under test) printed.
    ///
    /// # Errors
    /// When kubectl or the bundle fetch fails, or `cli` cannot run.
    pub fn verify_taskrun(
        &self,
        cli: &Path,
        trust_domain: &str,
        ns: &str,
        name: &str,
    ) -> anyhow::Result<(i32, String)> {
        let dir = tempfile::tempdir()?;
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, self.trust_bundle_pem()?)?;
        let taskrun = self.kubectl(&["-n", ns, "get", "taskrun", name, "-o", "json"])?;
        let mut child = Command::new(cli)
            .args(["verify", "--taskrun", "-", "--bundle"])
            .arg(&bundle)
            .args(["--trust-domain", trust_domain])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", cli.display()))?;
        child
            .stdin
            .take()
            .context("verify's stdin")?
            .write_all(taskrun.as_bytes())?;
        let out = child.wait_with_output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }

    /// The repository directory of a test asset.
    pub fn asset(&self, relative: &str) -> PathBuf {
        repo_root().join(relative)
    }
}

fn read_env(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// The SPIFFE ID of an entry as `spire-server entry show -output json` prints it.
pub fn spiffe_id_of(entry: &serde_json::Value) -> String {
    format!(
        "spiffe://{}{}",
        entry["spiffe_id"]["trust_domain"].as_str().unwrap_or(""),
        entry["spiffe_id"]["path"].as_str().unwrap_or("")
    )
}

/// The condition of type `kind` of an object's status, or null.
pub fn condition<'a>(object: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&serde_json::Value::Null)
}
