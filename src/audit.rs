//! The `tekton-spire verify` command: read a TaskRun and trust bundles from files,
//! verify, and report the verdict as text or JSON with an exit code.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use tekton_spire_verify::{
    Format, Policy, Rejection, TaskRun, TrustBundle, TrustDomain, Verified, bundle, taskrun,
};
use time::format_description::well_known::Rfc3339;

use crate::telemetry::error_chain;

/// Exit code: the results verified.
pub const EXIT_VERIFIED: u8 = 0;
/// Exit code: the TaskRun was read and its results rejected.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code: an input could not be read or understood.
pub const EXIT_INVALID: u8 = 2;

/// How the verdict is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One line for people: the verdict on stdout, a rejection on stderr.
    Text,
    /// One JSON object on stdout, whatever the verdict.
    Json,
}

/// What the `verify` command was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The TaskRun file; `-` reads standard input.
    pub taskrun: PathBuf,
    /// Bundle files, all of the trust domain.
    pub bundles: Vec<PathBuf>,
    /// The trust domain the SVID must belong to.
    pub trust_domain: String,
    /// Only this format is accepted, if set; `None` accepts Tekton's format too, whose
    /// weaknesses are then printed on stderr.
    pub require_format: Option<Format>,
    /// Clock skew allowed around the run, in seconds.
    pub clock_skew_seconds: u32,
    /// How to print the verdict.
    pub output: Output,
}

/// An input that could not be read or understood (exit 2).
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("--trust-domain {name:?} is not a trust domain name")]
    TrustDomain {
        name: String,
        #[source]
        source: tekton_spire_verify::IdError,
    },
    #[error("cannot read the TaskRun {path}")]
    TaskRun {
        path: String,
        #[source]
        source: taskrun::Error,
    },
    #[error("cannot read the bundle {path}")]
    BundleFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot use the bundle {path}")]
    Bundle {
        path: String,
        #[source]
        source: bundle::Error,
    },
}

impl InputError {
    fn code(&self) -> &'static str {
        match self {
            Self::TrustDomain { .. } => "input.trust-domain",
            Self::TaskRun { source, .. } => source.code(),
            Self::BundleFile { .. } | Self::Bundle { .. } => "bundle.invalid",
        }
    }
}

/// Runs the command and prints the verdict; returns the exit code.
pub fn run(request: &Request) -> ExitCode {
    let verdict =
        load(request).map(|(taskrun, policy)| tekton_spire_verify::verify(&taskrun, &policy));
    let code = match &verdict {
        Ok(Ok(_)) => EXIT_VERIFIED,
        Ok(Err(_)) => EXIT_REJECTED,
        Err(_) => EXIT_INVALID,
    };
    match request.output {
        Output::Json => println!("{}", as_json(&verdict)),
        Output::Text => match &verdict {
            Ok(Ok(v)) => println!("{}", describe_verified(v)),
            Ok(Err(r)) => eprintln!("rejected [{}]: {}", r.code(), error_chain(r)),
            Err(e) => eprintln!("error [{}]: {}", e.code(), error_chain(e)),
        },
    }
    if let Ok(Ok(v)) = &verdict
        && v.format() == Format::Tekton
    {
        eprintln!(
            "warning: accepted in Tekton's TEP-0089 format, which signs no result names (two \
             results can swap values and signatures), binds no TaskRun UID (a later TaskRun \
             of the same name can replay), joins array values with an ambiguous comma and \
             carries the leaf certificate alone (docs/tekton-format.md)"
        );
    }
    ExitCode::from(code)
}

fn load(request: &Request) -> Result<(TaskRun, Policy), InputError> {
    let trust_domain =
        TrustDomain::new(&request.trust_domain).map_err(|source| InputError::TrustDomain {
            name: request.trust_domain.clone(),
            source,
        })?;
    let mut trusted = TrustBundle::default();
    for path in &request.bundles {
        trusted.extend(read_bundle(path)?);
    }
    let taskrun = read_taskrun(&request.taskrun).map_err(|source| InputError::TaskRun {
        path: request.taskrun.display().to_string(),
        source,
    })?;
    let mut policy = Policy::new(trust_domain, trusted)
        .clock_skew(time::Duration::seconds(request.clock_skew_seconds.into()));
    if let Some(format) = request.require_format {
        policy = policy.require_format(format);
    }
    Ok((taskrun, policy))
}

fn read_taskrun(path: &Path) -> Result<TaskRun, taskrun::Error> {
    if path.as_os_str() == "-" {
        return TaskRun::from_reader(io::stdin().lock());
    }
    TaskRun::from_reader(File::open(path).map_err(taskrun::Error::Read)?)
}

fn read_bundle(path: &Path) -> Result<TrustBundle, InputError> {
    let file_error = |source| InputError::BundleFile {
        path: path.display().to_string(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(file_error)?
        .take(bundle::MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(file_error)?;
    TrustBundle::load(&bytes).map_err(|source| InputError::Bundle {
        path: path.display().to_string(),
        source,
    })
}

fn describe_verified(v: &Verified) -> String {
    format!(
        "verified: {} result(s) signed by {} at {} ({} format)",
        v.results().len(),
        v.spiffe_id(),
        rfc3339(v.signed_at()),
        v.format()
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn as_json(verdict: &Result<Result<Verified, Rejection>, InputError>) -> serde_json::Value {
    match verdict {
        Ok(Ok(v)) => json!({
            "verdict": "verified",
            "format": v.format().to_string(),
            "spiffeId": v.spiffe_id().to_string(),
            "signedAt": rfc3339(v.signed_at()),
            "results": v.results(),
        }),
        Ok(Err(r)) => json!({
            "verdict": "rejected",
            "reason": { "code": r.code(), "message": error_chain(r) },
        }),
        Err(e) => json!({
            "verdict": "invalid",
            "reason": { "code": e.code(), "message": error_chain(e) },
        }),
    }
}
