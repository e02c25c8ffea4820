//! `tekton-spire-testbed`: helpers for the demo script.
//!
//! `tekton-spire-testbed taskrun RESULTS_DIR NAMESPACE NAME UID` prints a tekton.dev/v1 TaskRun, as
//! Tekton would report it, whose results are the files of RESULTS_DIR; it started a
//! minute ago and completed now.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tekton_spire_testbed::taskrun::{Meta, from_results_dir};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, dir, namespace, name, uid] = &args[..] else {
        bail!("usage: tekton-spire-testbed taskrun RESULTS_DIR NAMESPACE NAME UID");
    };
    if command != "taskrun" {
        bail!("unknown command {command:?}; the one command is 'taskrun'");
    }
    let meta = Meta::just_completed(namespace, name, uid);
    let doc = from_results_dir(&PathBuf::from(dir), &meta)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).context("encoding the TaskRun")?
    );
    Ok(())
}
