//! `tekton-spire-sign`: the signing helper a Task runs as its last step.

use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use tekton_spire::cli::sign::{Args, FormatArg, LogArg, attempt_of_pod};
use tekton_spire::helper::{self, Config, Output};
use tekton_spire::telemetry::{self, LogFormat};

fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(match args.log_format {
        LogArg::Text => LogFormat::Text,
        LogArg::Json => LogFormat::Json,
    });
    let output = match args.format {
        FormatArg::Tekton => Output::Tekton,
        FormatArg::Seal => {
            // No default attempt is safe to assume: a retry sealed as attempt 0 would be
            // rejected.
            let attempt = match (&args.pod_name, args.taskrun_retry_count) {
                (_, Some(attempt)) => attempt,
                (Some(pod), None) => match attempt_of_pod(pod) {
                    Ok(attempt) => attempt,
                    Err(message) => Args::command()
                        .error(ErrorKind::ValueValidation, message)
                        .exit(),
                },
                (None, None) => Args::command()
                    .error(
                        ErrorKind::MissingRequiredArgument,
                        "the seal needs the attempt: set POD_NAME from the downward API (env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]) or pass --taskrun-retry-count <N>",
                    )
                    .exit(),
            };
            Output::Seal {
                namespace: args.taskrun_namespace.unwrap_or_default(),
                name: args.taskrun_name.unwrap_or_default(),
                uid: args.taskrun_uid.unwrap_or_default(),
                attempt,
            }
        }
    };
    let mut config = Config::new(output);
    config.results_dir = args.results_dir;
    config.socket = args.socket;
    config.deadline = Duration::from_secs(args.timeout);
    config.results = args.results.into_iter().chain(args.more_results).collect();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tekton-spire-sign: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(helper::run(&config)) {
        Ok(signed) => {
            tracing::info!(
                spiffe_id = %signed.spiffe_id,
                results = ?signed.results,
                written = ?signed.written,
                "results signed"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %telemetry::error_chain(&e), "signing failed");
            ExitCode::FAILURE
        }
    }
}
