//! The `tekton-spire-sign` command line (the binary is src/bin/tekton-spire-sign.rs).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::helper;

/// Sign this TaskRun's results with the pod's SPIFFE X.509-SVID.
///
/// Run it as the Task's last step. It reads the results the earlier steps wrote, fetches
/// the pod's X.509-SVID from the SPIRE agent (waiting, up to --timeout, for the
/// controller's registration entry to reach the agent), signs, and writes the signature
/// result(s) next to the results. The private key never leaves memory.
#[derive(Parser, Debug)]
#[command(
    name = "tekton-spire-sign",
    version,
    after_help = "Example step (the seal format, the default):
  - name: sign
    image: tekton-spire-sign
    args: [--taskrun-namespace=$(context.taskRun.namespace),
           --taskrun-name=$(context.taskRun.name),
           --taskrun-uid=$(context.taskRun.uid)]
    env:
      - name: POD_NAME
        valueFrom: {fieldRef: {fieldPath: metadata.name}}
The Task declares one more result, TEKTON_SPIRE_SEAL. Verify with:
  tekton-spire verify --taskrun tr.json --bundle bundle.json --trust-domain example.org"
)]
pub struct Args {
    /// Directory holding the step results.
    #[arg(long, value_name = "DIR", default_value = helper::DEFAULT_RESULTS_DIR)]
    pub results_dir: PathBuf,
    /// SPIFFE Workload API endpoint of the SPIRE agent.
    #[arg(long, value_name = "URI", env = "SPIFFE_ENDPOINT_SOCKET", default_value = helper::DEFAULT_SOCKET)]
    pub socket: String,
    /// Seconds to wait for the X.509-SVID. The agent learns of a new entry within its
    /// sync interval (5 s by default) plus the server's cache reload (5 s by default).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// `seal`: one TEKTON_SPIRE_SEAL result binding the TaskRun's identity, signing
    /// time and every result. `tekton`: Tekton's TEP-0089 results (SVID,
    /// RESULT_MANIFEST, RESULT_MANIFEST.sig and <name>.sig for each result).
    #[arg(long, value_enum, default_value_t = FormatArg::Seal)]
    pub format: FormatArg,
    /// The TaskRun's namespace: pass $(context.taskRun.namespace). Required for the seal.
    #[arg(long, value_name = "NS", required_if_eq("format", "seal"))]
    pub taskrun_namespace: Option<String>,
    /// The TaskRun's name: pass $(context.taskRun.name). Required for the seal.
    #[arg(long, value_name = "NAME", required_if_eq("format", "seal"))]
    pub taskrun_name: Option<String>,
    /// The TaskRun's UID: pass $(context.taskRun.uid). Required for the seal, which binds
    /// it so that the signature cannot be replayed onto a later TaskRun of the same name.
    #[arg(long, value_name = "UID", required_if_eq("format", "seal"))]
    pub taskrun_uid: Option<String>,
    /// This pod's name, from the downward API (env POD_NAME, fieldRef metadata.name):
    /// Tekton names the pod of a TaskRun's first attempt `<...>-pod` and the pod of retry N
    /// `<...>-pod-retry<N>`, and the seal binds that attempt, so that a sealed result cannot
    /// be copied from an earlier attempt (status.retriesStatus) into the final status.
    /// Required for the seal unless --taskrun-retry-count is given. (Tekton v1.15's
    /// $(context.task.retry-count) stays 0 on every retry of a TaskRun: it substitutes the
    /// spec once and keeps the result in status.taskSpec.)
    #[arg(
        long,
        value_name = "NAME",
        env = "POD_NAME",
        conflicts_with = "taskrun_retry_count"
    )]
    pub pod_name: Option<String>,
    /// Which attempt of the TaskRun this is, when the pod's name does not say it (not a
    /// pod Tekton named): 0 for the first attempt, then 1, 2, ... A decimal number, 0 to
    /// 999999999, without leading zeros.
    #[arg(long, value_name = "N", value_parser = parse_retry_count)]
    pub taskrun_retry_count: Option<u32>,
    /// A result to sign, as NAME or NAME:TYPE (TYPE: string, array or object, as the
    /// Task declares it); repeat for each. By default every file in --results-dir is
    /// signed and typed by its text. Name the declared results when a step writes other
    /// files there, or when a `string` result holds JSON text (the status keeps it as a
    /// string, so say NAME:string).
    #[arg(long = "result", value_name = "NAME[:TYPE]")]
    pub results: Vec<helper::ResultSpec>,
    /// More results to sign, as --result takes them: a Tekton array parameter expands
    /// into separate arguments (`$(params.results[*])`, the StepAction in deploy/).
    #[arg(value_name = "NAME[:TYPE]")]
    pub more_results: Vec<helper::ResultSpec>,
    /// Log lines as text or JSON, on stderr.
    #[arg(long, value_enum, default_value_t = LogArg::Text)]
    pub log_format: LogArg,
}

/// The retry count in the one form Tekton writes it and the seal carries it.
fn parse_retry_count(text: &str) -> Result<u32, String> {
    if text.contains("$(") {
        return Err(format!(
            "{text:?} was not substituted: a Tekton variable reached the helper as written; give the attempt as a number, or set POD_NAME instead"
        ));
    }
    tekton_spire_verify::seal::parse_attempt(text).map_err(|_| {
        format!(
            "{text:?} is not a retry count: a decimal number from 0 to {} without leading zeros",
            tekton_spire_verify::seal::MAX_ATTEMPT
        )
    })
}

/// The attempt a pod of Tekton's is for, read from its name: `…-pod` is the first (0),
/// `…-pod-retry<N>` retry N.
pub fn attempt_of_pod(name: &str) -> Result<u32, String> {
    if name.ends_with("-pod") {
        return Ok(0);
    }
    name.rsplit_once("-pod-retry")
        .and_then(|(_, n)| tekton_spire_verify::seal::parse_attempt(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!(
                "the pod name {name:?} does not say which attempt this is: Tekton names a TaskRun's pods <...>-pod and <...>-pod-retry<N>; set POD_NAME from the downward API (fieldRef metadata.name), or pass --taskrun-retry-count"
            )
        })
}

/// The signature format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The tekton-spire seal.
    Seal,
    /// Tekton's TEP-0089 results.
    Tekton,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogArg {
    /// Text.
    Text,
    /// JSON.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_is_read_from_the_name_tekton_gives_the_pod() {
        assert_eq!(attempt_of_pod("build-abc-pod"), Ok(0));
        assert_eq!(attempt_of_pod("build-abc-pod-retry1"), Ok(1));
        assert_eq!(attempt_of_pod("build-pod-retry-abc-pod-retry12"), Ok(12));
        // kmeta.ChildName shortens a long TaskRun name with a hash, never the suffix.
        assert_eq!(
            attempt_of_pod("a0123456789abcdef0123456789abcdef-pod-retry3"),
            Ok(3)
        );
        for bad in [
            "build-abc",
            "build-abc-pod-retry0",
            "build-abc-pod-retry01",
            "build-abc-pod-retry",
            "build-abc-pod-retryx",
            "build-abc-pod-2",
            "",
        ] {
            let err = attempt_of_pod(bad).unwrap_err();
            assert!(err.contains("does not say which attempt"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_retry_count_is_read_only_in_the_form_tekton_writes() {
        assert_eq!(parse_retry_count("0"), Ok(0));
        assert_eq!(parse_retry_count("12"), Ok(12));
        assert_eq!(parse_retry_count("999999999"), Ok(999_999_999));
        for bad in ["", "01", "+1", "-1", "1.0", " 1", "1000000000", "x"] {
            let err = parse_retry_count(bad).unwrap_err();
            assert!(err.contains("not a retry count"), "{bad:?}: {err}");
        }
        let err = parse_retry_count("$(context.task.retry-count)").unwrap_err();
        assert!(err.contains("was not substituted"), "{err}");
    }
}
