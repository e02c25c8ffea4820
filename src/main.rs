//! The `tekton-spire` command: parses flags and calls the library.

use std::process::ExitCode;

use tekton_spire::audit;
use tekton_spire::cli::{
    self, Command, ControllerArgs, FormatArg, OutputArg, RunArg, UnverifiableArg,
};
use tekton_spire_verify::Format;
use tekton_spire_verify::pipelinerun::Unverifiable;

fn main() -> ExitCode {
    let cli = cli::parse();
    match cli.command {
        Command::Controller(args) => run_controller(&args),
        Command::Verify(args) => audit::run(&audit::Request {
            taskruns: args.taskrun,
            pipelinerun: args.pipelinerun,
            bundles: args.bundle,
            trust_domain: args.trust_domain,
            // The seal unless told otherwise: Tekton's format is opt-in.
            require_format: match (args.require_format, args.accept_tekton_format) {
                (Some(FormatArg::Seal), _) | (None, false) => Some(Format::Seal),
                (Some(FormatArg::Tekton), _) => Some(Format::Tekton),
                (None, true) => None,
            },
            clock_skew_seconds: args.clock_skew,
            unverifiable: match args.unverifiable_results {
                UnverifiableArg::Reject => Unverifiable::Reject,
                UnverifiableArg::Allow => Unverifiable::Allow,
            },
            output: match args.output {
                OutputArg::Text => audit::Output::Text,
                OutputArg::Json => audit::Output::Json,
            },
        }),
        Command::Completions(args) => {
            match cli::docs::completions(args.shell, args.bin, &mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tekton-spire: cannot write the completions: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Man(args) => match cli::docs::man_pages(&args.dir) {
            Ok(pages) => {
                for page in pages {
                    println!("{}", page.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "tekton-spire: cannot write the man pages to {}: {e}",
                    args.dir.display()
                );
                ExitCode::FAILURE
            }
        },
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
        let client = match tekton_spire::controller::kube_client().await {
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
