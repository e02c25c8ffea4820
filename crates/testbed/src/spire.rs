//! A local SPIRE server and agent, started by scripts/spire-local.sh and stopped on drop
//! (or, for a shared instance, by its watchdog when the test process exits).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{Context as _, bail};

/// How fast entries propagate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// SPIRE's defaults: server cache reload 5 s, agent sync 5 s.
    Default,
    /// spire-config/README.md's tuned settings: 1 s each.
    Tuned,
}

/// A running server and agent.
#[derive(Debug)]
pub struct Spire {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
    shared: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(out: Output, what: &str) -> anyhow::Result<String> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Spire {
    /// Starts a private instance, stopped when dropped.
    ///
    /// # Errors
    /// When SPIRE is not built (run ./scripts/test.sh) or does not become healthy.
    pub fn start(propagation: Propagation) -> anyhow::Result<Self> {
        Self::start_inner(propagation, false)
    }

    /// One instance per test process, with tuned propagation, shared by its tests.
    ///
    /// # Panics
    /// When SPIRE cannot start: every test that needs it fails with the reason.
    #[expect(
        clippy::panic,
        reason = "test support: a test that needs SPIRE must fail loudly without it"
    )]
    pub fn shared() -> &'static Spire {
        static SHARED: OnceLock<Spire> = OnceLock::new();
        SHARED.get_or_init(|| match Self::start_inner(Propagation::Tuned, true) {
            Ok(spire) => spire,
            Err(e) => panic!("cannot start the shared SPIRE instance: {e:#}"),
        })
    }

    fn start_inner(propagation: Propagation, shared: bool) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("tsp-spire-").tempdir()?;
        let mut cmd = Command::new(repo_root().join("scripts/spire-local.sh"));
        cmd.arg("start").arg(dir.path()).env("SPIRE_NO_BUILD", "1");
        if propagation == Propagation::Tuned {
            cmd.arg("--tuned");
        }
        // The watchdog stops a shared instance after this process exits, since statics
        // are never dropped; a private one is stopped by Drop as well.
        cmd.arg("--watch").arg(std::process::id().to_string());
        if shared {
            // Nor is its TempDir: the watchdog deletes it.
            cmd.arg("--remove-dir");
        }
        check(cmd.output()?, "scripts/spire-local.sh start")?;
        let env_text = std::fs::read_to_string(dir.path().join("env"))?;
        let env = env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self { dir, env, shared })
    }

    fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The Workload API endpoint, `unix:///…/agent.sock`.
    pub fn workload_socket(&self) -> &str {
        self.var("SPIFFE_ENDPOINT_SOCKET")
    }

    /// The server's admin socket path.
    pub fn server_socket(&self) -> &Path {
        Path::new(self.var("SPIRE_SERVER_SOCKET"))
    }

    /// The agent's SPIFFE ID, the parent of workload entries.
    pub fn agent_id(&self) -> &str {
        self.var("SPIRE_AGENT_ID")
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        self.var("TRUST_DOMAIN")
    }

    /// The server's TCP endpoint, `127.0.0.1:<bind_port>` from its rendered server.conf.
    ///
    /// # Errors
    /// When server.conf cannot be read or has no bind_port.
    pub fn server_addr(&self) -> anyhow::Result<String> {
        let conf = std::fs::read_to_string(self.dir().join("server.conf"))?;
        let port = conf
            .lines()
            .find_map(|l| l.trim().strip_prefix("bind_port"))
            .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"'))
            .context("server.conf has no bind_port")?;
        Ok(format!("127.0.0.1:{port}"))
    }

    /// The directory holding spire-server and spire-agent.
    pub fn bin_dir(&self) -> &Path {
        Path::new(self.var("SPIRE_BIN"))
    }

    /// Runs `spire-server SUBCOMMAND… -socketPath <admin socket> ARGS…`.
    ///
    /// # Errors
    /// When the command fails.
    pub fn server_cli(&self, subcommand: &[&str], args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(self.bin_dir().join("spire-server"))
            .args(subcommand)
            .arg("-socketPath")
            .arg(self.server_socket())
            .args(args)
            .output()
            .context("running spire-server")?;
        check(out, &format!("spire-server {}", subcommand.join(" ")))
    }

    /// Registers `spiffe_id` for processes matching `selector`, under this agent;
    /// returns the entry ID.
    ///
    /// # Errors
    /// When the server refuses.
    pub fn register(&self, spiffe_id: &str, selector: &str) -> anyhow::Result<String> {
        let out = self.server_cli(
            &["entry", "create"],
            &[
                "-parentID",
                self.agent_id(),
                "-spiffeID",
                spiffe_id,
                "-selector",
                selector,
                "-x509SVIDTTL",
                "3600",
            ],
        )?;
        out.lines()
            .find_map(|l| {
                l.strip_prefix("Entry ID")
                    .map(|r| r.trim_start_matches([' ', ':']).trim().to_owned())
            })
            .context("spire-server printed no entry ID")
    }

    /// The trust bundle as `spire-server bundle show -format FORMAT` prints it
    /// (`pem` or `spiffe`).
    ///
    /// # Errors
    /// When the server refuses.
    pub fn bundle(&self, format: &str) -> anyhow::Result<String> {
        self.server_cli(&["bundle", "show"], &["-format", format])
    }

    /// Stops the server alone (fault tests); the agent keeps running.
    ///
    /// # Errors
    /// When the script fails.
    pub fn stop_server(&self) -> anyhow::Result<()> {
        self.script("stop-server")
    }

    /// Starts the server again with its configuration and data, and waits until healthy.
    ///
    /// # Errors
    /// When it does not become healthy.
    pub fn start_server(&self) -> anyhow::Result<()> {
        self.script("start-server")
    }

    fn script(&self, command: &str) -> anyhow::Result<()> {
        let out = Command::new(repo_root().join("scripts/spire-local.sh"))
            .arg(command)
            .arg(self.dir.path())
            .output()?;
        check(out, &format!("scripts/spire-local.sh {command}")).map(drop)
    }

    /// The instance's directory (configuration, logs, sockets).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Spire {
    fn drop(&mut self) {
        if !self.shared {
            let _ = Command::new(repo_root().join("scripts/spire-local.sh"))
                .arg("stop")
                .arg(self.dir.path())
                .output();
        }
    }
}
