//! A local SPIRE server and agent, started by scripts/spire-local.sh and stopped on drop
//! (or, for a shared instance, by its watchdog when the test process exits).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Context as _;

use crate::instance::{Instance, check};

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
    instance: Instance,
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

    /// As [`Spire::start`], with the server's audit log on: every API call is logged
    /// ("API accessed", with its method) to [`Spire::server_log`].
    ///
    /// # Errors
    /// As [`Spire::start`].
    pub fn start_audited(propagation: Propagation) -> anyhow::Result<Self> {
        Self::start_with(propagation, &["--audit-log"], false)
    }

    fn start_inner(propagation: Propagation, shared: bool) -> anyhow::Result<Self> {
        Self::start_with(propagation, &[], shared)
    }

    fn start_with(propagation: Propagation, extra: &[&str], shared: bool) -> anyhow::Result<Self> {
        let mut args: Vec<&str> = extra.to_vec();
        if propagation == Propagation::Tuned {
            args.push("--tuned");
        }
        let instance = Instance::start("spire-local.sh", "SPIRE_NO_BUILD", &args, shared)?;
        Ok(Self { instance })
    }

    /// The server's log file.
    pub fn server_log(&self) -> std::path::PathBuf {
        self.dir().join("server.log")
    }

    /// The server's process ID (fault tests freeze it with SIGSTOP).
    ///
    /// # Errors
    /// When the pid file cannot be read.
    pub fn server_pid(&self) -> anyhow::Result<u32> {
        Ok(std::fs::read_to_string(self.dir().join("server.pid"))?
            .trim()
            .parse()?)
    }

    fn var(&self, key: &str) -> &str {
        self.instance.var(key)
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
        self.register_with_ttl(spiffe_id, selector, 3600)
    }

    /// As [`Spire::register`], with the X509-SVID TTL in seconds.
    ///
    /// # Errors
    /// When the server refuses.
    pub fn register_with_ttl(
        &self,
        spiffe_id: &str,
        selector: &str,
        ttl_secs: u32,
    ) -> anyhow::Result<String> {
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
                &ttl_secs.to_string(),
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
        self.instance.run("stop-server")
    }

    /// Starts the server again with its configuration and data, and waits until healthy.
    ///
    /// # Errors
    /// When it does not become healthy.
    pub fn start_server(&self) -> anyhow::Result<()> {
        self.instance.run("start-server")
    }

    /// The instance's directory (configuration, logs, sockets).
    pub fn dir(&self) -> &Path {
        self.instance.dir()
    }
}
