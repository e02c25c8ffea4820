//! A service started by one of the `scripts/*-local.sh` scripts in a temporary
//! directory: started with `start DIR …`, described by `DIR/env`, stopped with
//! `stop DIR` on drop, or by the script's watchdog when the test process exits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail};

/// The repository's top directory.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The command's stdout, or an error with everything it printed.
pub(crate) fn check(out: Output, what: &str) -> anyhow::Result<String> {
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

/// A running instance of a `scripts/<name>-local.sh` service.
#[derive(Debug)]
pub(crate) struct Instance {
    script: &'static str,
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
    shared: bool,
}

impl Instance {
    /// Runs `scripts/<script> start DIR ARGS… --watch <this pid>` with `no_build=1` in
    /// the environment (tests never start a long build). A shared instance lives as long
    /// as the test process: its watchdog stops it and deletes DIR, since statics are
    /// never dropped.
    pub(crate) fn start(
        script: &'static str,
        no_build: &str,
        args: &[&str],
        shared: bool,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("tsp-").tempdir()?;
        let mut cmd = Command::new(repo_root().join("scripts").join(script));
        cmd.arg("start")
            .arg(dir.path())
            .args(args)
            .env(no_build, "1")
            .arg("--watch")
            .arg(std::process::id().to_string());
        if shared {
            cmd.arg("--remove-dir");
        }
        let out = cmd
            .output()
            .with_context(|| format!("running scripts/{script}"))?;
        check(out, &format!("scripts/{script} start"))?;
        let env = std::fs::read_to_string(dir.path().join("env"))?
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self {
            script,
            dir,
            env,
            shared,
        })
    }

    /// A variable of `DIR/env`, empty if absent.
    pub(crate) fn var(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The instance's directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `scripts/<script> COMMAND DIR`.
    pub(crate) fn run(&self, command: &str) -> anyhow::Result<()> {
        let out = Command::new(repo_root().join("scripts").join(self.script))
            .arg(command)
            .arg(self.dir.path())
            .output()?;
        check(out, &format!("scripts/{} {command}", self.script)).map(drop)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.shared {
            let _ = self.run("stop");
        }
    }
}
