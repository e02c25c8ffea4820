//! The pod sandbox process: holds a pod's namespaces open and exits on SIGTERM or SIGINT.
//!
//! containerd's CRI starts one per pod from its `sandbox_image`; no image can be pulled on
//! the test node, so the project builds its own. The process is PID 1 of its PID
//! namespace, where the kernel drops every signal that has no handler: it must install
//! handlers to be stoppable by anything but SIGKILL.

use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("pause: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Blocks until one of them arrives.
    let _ = signals.forever().next();
    ExitCode::SUCCESS
}
