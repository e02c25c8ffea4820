//! The command lines of both binaries, kept in the library so that shell completions and
//! man pages are generated from the very definitions that parse them (clap_complete,
//! clap_mangen: clap's own crates, so the generated text cannot drift from the flags).

pub mod docs;
pub mod sign;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::audit;

/// Non-falsifiable Tekton TaskRun results with SPIRE.
#[derive(Parser, Debug)]
#[command(name = "tekton-spire", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify the signed results of TaskRuns, or of a PipelineRun end to end, against a
    /// trust bundle.
    ///
    /// Checks the certificate chain to the bundle at the time of signing (so an audit
    /// years later still works after SVIDs and CAs rotated away), that the signing
    /// certificate is an X.509-SVID naming exactly this TaskRun
    /// (spiffe://<trust-domain>/ns/<namespace>/taskrun/<name>), every signature, and that
    /// the signed results are exactly the results in the status. Accepts the
    /// tekton-spire seal, and Tekton's TEP-0089 format only with --accept-tekton-format.
    ///
    /// --taskrun takes one TaskRun, a List of them (as `kubectl get taskruns -o json`
    /// prints it) or several files, and gives one verdict per TaskRun. With
    /// --pipelinerun, the TaskRuns are that PipelineRun's, and the verdict is on the
    /// PipelineRun: every child present, its own and verified, and every result equal to
    /// the value made from the verified TaskRun results (docs/pipelinerun.md).
    ///
    /// Exit status: 0 verified, 1 rejected (the reason names the failed rule),
    /// 2 an input could not be read or understood (or a usage error); for several
    /// TaskRuns, the worst of their verdicts.
    #[command(after_help = "Examples:
  kubectl get taskrun build-abc -o json > tr.json
  spire-server bundle show -format spiffe > bundle.json
  tekton-spire verify --taskrun tr.json --bundle bundle.json --trust-domain example.org

  # every TaskRun of a namespace, one JSON verdict a line
  kubectl get taskruns -o json | tekton-spire verify --taskrun - \\
      --bundle bundle.json --trust-domain example.org -o json

  # a PipelineRun end to end
  kubectl get pipelinerun release-1 -o json > pr.json
  kubectl get taskruns -l tekton.dev/pipelineRun=release-1 -o json > trs.json
  tekton-spire verify --pipelinerun pr.json --taskrun trs.json \\
      --bundle bundle.json --trust-domain example.org

  # CA rotation: trust the old and the new roots
  tekton-spire verify --taskrun tr.json --bundle old-root.pem --bundle new-root.pem \\
      --trust-domain example.org")]
    Verify(VerifyArgs),
    /// Run the controller: a SPIRE entry for every running TaskRun pod (--run entries, the
    /// default), a verdict (condition SignedResultsVerified) on every completed TaskRun
    /// that opted in (--run verdicts), or both in one process (--run all).
    ///
    /// Talks to Kubernetes with the in-cluster service account, or the KUBECONFIG file,
    /// and to the SPIRE server's Entry API over its admin socket or mTLS, as the
    /// configuration file says. Serves Prometheus metrics, /healthz and /readyz on
    /// metrics-address (default 0.0.0.0:9090). Stops cleanly on SIGTERM or SIGINT.
    #[command(
        after_help = "Example configuration (keys as in Tekton's SPIRE ConfigMap where Tekton has one):
  spire-trust-domain: example.org
  cluster-name: prod                                 # required; entry IDs are tekton-spire.<cluster-name>.<pod UID>
  spire-server-addr: spire-server.spire.svc:8081   # or spire-server-socket: /run/spire/server/private/api.sock
  spire-socket-path: unix:///spiffe-workload-api/spire-agent.sock
  spire-node-alias-prefix: /tekton-node/
  node-alias-cluster: demo-cluster                   # also manage the node alias entries
  leader-election-namespace: tekton-spire            # several replicas, one leader
  signing-container: step-sign                       # narrow-to-signing-container: false to allow every step
  trust-bundle-path: /run/spire/bundle/bundle.crt    # verdicts; omit to record none
  verdict-namespaces: [team-a]                       # or label TaskRuns tekton-spire.dev/verify=true
  verdicts: condition                                # or event: needs no write access to TaskRuns
  metrics-address: 0.0.0.0:9090
  resync-interval: 10s"
    )]
    Controller(ControllerArgs),
    /// Print a shell completion script for tekton-spire (or, with --bin, tekton-spire-sign).
    #[command(after_help = "Example:
  tekton-spire completions bash > /etc/bash_completion.d/tekton-spire")]
    Completions(CompletionsArgs),
    /// Write the man pages of tekton-spire, its subcommands and tekton-spire-sign.
    #[command(after_help = "Example:
  tekton-spire man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
}

/// `tekton-spire controller`.
#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// The configuration file (YAML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Log lines as text or JSON, on stderr.
    #[arg(long, value_enum, default_value_t = OutputArg::Text)]
    pub log_format: OutputArg,
    /// Which loops to run: `entries` needs SPIRE admin rights and reads Kubernetes only,
    /// `verdicts` needs no SPIRE rights but writes TaskRun status; run them as separate
    /// Deployments under separate service accounts, or `all` in one.
    #[arg(long, value_enum, default_value_t = RunArg::Entries)]
    pub run: RunArg,
}

/// `tekton-spire verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// TaskRuns to verify, JSON or YAML (tekton.dev/v1 or v1beta1): one TaskRun, or a
    /// `v1` List of them, as `kubectl get taskrun(s) -o json|yaml` prints it. Several
    /// files may follow, or the flag be repeated; `-` reads standard input (once).
    #[arg(long, value_name = "FILE|-", required = true, num_args = 1..)]
    pub taskrun: Vec<PathBuf>,
    /// Verify this PipelineRun end to end (`kubectl get pipelinerun NAME -o json`);
    /// --taskrun then gives its TaskRuns
    /// (`kubectl get taskruns -l tekton.dev/pipelineRun=NAME -o json`).
    #[arg(long, value_name = "FILE|-")]
    pub pipelinerun: Option<PathBuf>,
    /// A trust bundle of the trust domain: PEM CERTIFICATE blocks, DER certificates, a
    /// SPIFFE bundle (`spire-server bundle show -format spiffe`) or SPIRE's bundle JSON
    /// (`-output json`); or a directory of such files. Repeat it to trust several (for
    /// example across a CA rotation).
    #[arg(long, value_name = "FILE|DIR", required = true)]
    pub bundle: Vec<PathBuf>,
    /// The trust domain that must have issued the SVID: `example.org` or
    /// `spiffe://example.org`.
    #[arg(long, value_name = "TD")]
    pub trust_domain: String,
    /// Accept only this format. Without it only the seal is accepted, unless
    /// --accept-tekton-format is given.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub require_format: Option<FormatArg>,
    /// Accept Tekton's TEP-0089 format as well as the seal. Its weaknesses: result names
    /// are not signed (two results can swap values and signatures), the TaskRun's UID is
    /// not bound (a later TaskRun of the same name can replay the results), array and
    /// object values are comma-joined ambiguously, and only the leaf certificate is
    /// carried (docs/tekton-format.md).
    #[arg(long)]
    pub accept_tekton_format: bool,
    /// Clock skew, in seconds, allowed between the signing pod and the TaskRun's start
    /// and completion times when judging a seal's signing time.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub clock_skew: u32,
    /// With --pipelinerun: what a PipelineRun result that cannot be traced to verified
    /// TaskRun results does (one made from a CustomRun's results, or from no task
    /// result): `reject` the PipelineRun, or `allow` it, reported as unverifiable.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = UnverifiableArg::Reject, requires = "pipelinerun")]
    pub unverifiable_results: UnverifiableArg,
    /// `text` prints one line per verdict (rejections on stderr); `json` prints one
    /// object per verdict, a line each, on stdout (docs/verify-output.md).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,
}

/// `tekton-spire completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
    /// The binary to complete.
    #[arg(long, value_enum, default_value_t = docs::Binary::TektonSpire)]
    pub bin: docs::Binary,
}

/// `tekton-spire man`.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// The directory to write the pages to (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// Which of the controller's loops a process runs.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RunArg {
    /// SPIRE entries for TaskRun pods (needs SPIRE admin rights).
    Entries,
    /// Verdicts on completed TaskRuns that opted in (writes TaskRun status).
    Verdicts,
    /// Both, in one process.
    All,
}

/// A signature format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// The tekton-spire seal.
    Seal,
    /// Tekton's TEP-0089 format.
    Tekton,
}

/// How output is printed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputArg {
    /// Lines for people.
    Text,
    /// JSON.
    Json,
}

/// What an untraceable PipelineRun result does.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum UnverifiableArg {
    /// Reject the PipelineRun.
    Reject,
    /// Report the result as unverifiable.
    Allow,
}

/// Parses the command line. A usage error when `--output json` (or `-o json`) was asked
/// for is printed as a JSON verdict on stdout, so that scripts reading JSON always get
/// JSON; otherwise clap prints it. Either way the process exits 2 (help and version exit
/// 0).
pub fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => match stdin_twice(&cli) {
            None => cli,
            Some(e) => exit_usage(&e, &args),
        },
        Err(e) => exit_usage(&e, &args),
    }
}

fn stdin_twice(cli: &Cli) -> Option<clap::Error> {
    let Command::Verify(v) = &cli.command else {
        return None;
    };
    let stdin = v
        .taskrun
        .iter()
        .chain(&v.pipelinerun)
        .filter(|p| p.as_os_str() == "-")
        .count();
    (stdin > 1).then(|| {
        Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            "standard input (-) can be read only once",
        )
    })
}

fn exit_usage(e: &clap::Error, args: &[OsString]) -> ! {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !informational && json_requested(args) {
        let message = e.render().to_string();
        println!(
            "{}",
            serde_json::json!({
                "schemaVersion": audit::SCHEMA_VERSION,
                "verdict": "invalid",
                "taskRun": null,
                "source": null,
                "reason": {"code": "usage", "message": message.trim_end()},
            })
        );
        std::process::exit(i32::from(audit::EXIT_INVALID));
    }
    e.exit()
}

/// Whether the raw arguments ask for JSON output, in any spelling clap accepts.
fn json_requested(args: &[OsString]) -> bool {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.iter().enumerate().any(|(i, a)| {
        matches!(*a, "--output=json" | "-o=json" | "-ojson")
            || (matches!(*a, "--output" | "-o") && args.get(i + 1) == Some(&"json"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_spelling_of_json_output_is_recognised() {
        for args in [
            &["x", "-o", "json"][..],
            &["x", "--output", "json"],
            &["x", "--output=json"],
            &["x", "-ojson"],
        ] {
            assert!(json_requested(&os(args)), "{args:?}");
        }
        assert!(!json_requested(&os(&["x", "-o", "text"])));
        assert!(!json_requested(&os(&["x", "--taskrun", "json"])));
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
        sign::Args::command().debug_assert();
    }
}
