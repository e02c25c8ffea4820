//! The `tekton-spire` command: parses flags and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tekton_spire::audit;
use tekton_spire_verify::Format;

/// Non-falsifiable Tekton TaskRun results with SPIRE.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify the signed results of a TaskRun against a trust bundle.
    ///
    /// Checks the certificate chain to the bundle at the time of signing (so an audit
    /// years later still works after SVIDs and CAs rotated away), that the signing
    /// certificate is an X.509-SVID naming exactly this TaskRun
    /// (spiffe://<trust-domain>/ns/<namespace>/taskrun/<name>), every signature, and that
    /// the signed results are exactly the results in the status. Reads both Tekton's
    /// TEP-0089 format and the tekton-spire seal.
    ///
    /// Exit status: 0 verified, 1 rejected (the reason names the failed rule),
    /// 2 an input could not be read or understood.
    #[command(after_help = "Examples:
  kubectl get taskrun build-abc -o json > tr.json
  spire-server bundle show -format spiffe > bundle.json
  tekton-spire verify --taskrun tr.json --bundle bundle.json --trust-domain example.org

  # CA rotation: trust the old and the new roots; read the TaskRun from stdin
  kubectl get taskrun build-abc -o yaml | tekton-spire verify --taskrun - \\
      --bundle old-root.pem --bundle new-root.pem --trust-domain example.org --output json")]
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
}

#[derive(clap::Args)]
struct ControllerArgs {
    /// The configuration file (YAML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Log lines as text or JSON, on stderr.
    #[arg(long, value_enum, default_value_t = OutputArg::Text)]
    log_format: OutputArg,
    /// Which loops to run: `entries` needs SPIRE admin rights and reads Kubernetes only,
    /// `verdicts` needs no SPIRE rights but writes TaskRun status; run them as separate
    /// Deployments under separate service accounts, or `all` in one.
    #[arg(long, value_enum, default_value_t = RunArg::Entries)]
    run: RunArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum RunArg {
    Entries,
    Verdicts,
    All,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The TaskRun to verify, JSON or YAML (tekton.dev/v1 or v1beta1), as
    /// `kubectl get taskrun NAME -o json` prints it; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    taskrun: PathBuf,
    /// A trust bundle of the trust domain: PEM CERTIFICATE blocks, or a SPIFFE bundle
    /// as `spire-server bundle show -format spiffe` prints it. Repeat it to trust
    /// several (for example across a CA rotation).
    #[arg(long, value_name = "FILE", required = true)]
    bundle: Vec<PathBuf>,
    /// The trust domain that must have issued the SVID, for example `example.org`.
    #[arg(long, value_name = "TD")]
    trust_domain: String,
    /// Accept only this format. Without it only the seal is accepted, unless
    /// --accept-tekton-format is given.
    #[arg(long, value_enum, value_name = "FORMAT")]
    require_format: Option<FormatArg>,
    /// Accept Tekton's TEP-0089 format as well as the seal. Its weaknesses: result names
    /// are not signed (two results can swap values and signatures), the TaskRun's UID is
    /// not bound (a later TaskRun of the same name can replay the results), array and
    /// object values are comma-joined ambiguously, and only the leaf certificate is
    /// carried (docs/tekton-format.md).
    #[arg(long)]
    accept_tekton_format: bool,
    /// Clock skew, in seconds, allowed between the signing pod and the TaskRun's start
    /// and completion times when judging a seal's signing time.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    clock_skew: u32,
    /// `text` prints one line (a rejection on stderr); `json` prints one object on stdout
    /// with the verdict, format, SPIFFE ID and signing time, or the reason's code.
    #[arg(long, value_enum, default_value_t = OutputArg::Text)]
    output: OutputArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// The tekton-spire seal.
    Seal,
    /// Tekton's TEP-0089 format.
    Tekton,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputArg {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Controller(args) => run_controller(&args),
        Command::Verify(args) => audit::run(&audit::Request {
            taskrun: args.taskrun,
            bundles: args.bundle,
            trust_domain: args.trust_domain,
            // The seal unless told otherwise: Tekton's format is opt-in.
            require_format: match (args.require_format, args.accept_tekton_format) {
                (Some(FormatArg::Seal), _) | (None, false) => Some(Format::Seal),
                (Some(FormatArg::Tekton), _) => Some(Format::Tekton),
                (None, true) => None,
            },
            clock_skew_seconds: args.clock_skew,
            output: match args.output {
                OutputArg::Text => audit::Output::Text,
                OutputArg::Json => audit::Output::Json,
            },
        }),
    }
}

fn run_controller(args: &ControllerArgs) -> ExitCode {
    use tekton_spire::telemetry::{self, LogFormat};
    telemetry::init(match args.log_format {
        OutputArg::Text => LogFormat::Text,
        OutputArg::Json => LogFormat::Json,
    });
    let config = match tekton_spire::config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %telemetry::error_chain(&e), "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %telemetry::error_chain(&e), "cannot configure the Kubernetes client; run in a pod or set KUBECONFIG");
                return ExitCode::from(2);
            }
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            on_signal.cancel();
        });
        let components = match args.run {
            RunArg::Entries => tekton_spire::controller::Components::Entries,
            RunArg::Verdicts => tekton_spire::controller::Components::Verdicts,
            RunArg::All => tekton_spire::controller::Components::All,
        };
        match tekton_spire::controller::run(config, components, client, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %telemetry::error_chain(&e), "controller stopped");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
