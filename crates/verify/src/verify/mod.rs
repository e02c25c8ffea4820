//! Verification of a TaskRun's signed results: a policy in, a verdict out.

mod chain;
mod der;
mod legacy;
mod rejection;
mod seal;
mod shape;

use std::fmt;

use time::{Duration, OffsetDateTime};

use crate::bundle::TrustBundle;
use crate::crypto::{PublicKey, SignatureError};
use crate::spiffe_id::{SpiffeId, TrustDomain};
use crate::taskrun::TaskRun;

pub(crate) use chain::parse as parse_certificate;
pub use rejection::Rejection;

/// Clock skew allowed by default between the pod that signs and the controller that
/// stamps the TaskRun's start and completion times.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::seconds(60);

/// A signed-results format.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tekton's TEP-0089 format (`SVID`, `RESULT_MANIFEST`, `<name>.sig`).
    Tekton,
    /// The tekton-spire seal (one `TEKTON_SPIRE_SEAL` result).
    Seal,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tekton => "tekton",
            Self::Seal => "seal",
        })
    }
}

/// What a verifier trusts and requires.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Policy {
    trust_domain: TrustDomain,
    bundle: TrustBundle,
    required_format: Option<Format>,
    clock_skew: Duration,
}

impl Policy {
    /// Trusts `bundle` as the roots of `trust_domain`; accepts either format, with
    /// [`DEFAULT_CLOCK_SKEW`].
    pub fn new(trust_domain: TrustDomain, bundle: TrustBundle) -> Self {
        Self {
            trust_domain,
            bundle,
            required_format: None,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }

    /// Accepts only TaskRuns signed in `format`.
    #[must_use]
    pub fn require_format(mut self, format: Format) -> Self {
        self.required_format = Some(format);
        self
    }

    /// Sets the clock skew allowed around the TaskRun's run when judging a seal's
    /// signing time. Negative values count as zero.
    #[must_use]
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew.max(Duration::ZERO);
        self
    }
}

/// Proof that a TaskRun's results verified. Only [`verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    format: Format,
    spiffe_id: SpiffeId,
    signed_at: OffsetDateTime,
    results: Vec<String>,
}

impl Verified {
    /// The format the TaskRun was signed in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The SPIFFE ID of the signing certificate.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The time the signatures were judged at: the seal's signing time, or for Tekton's
    /// format (which signs no time) the TaskRun's completion time.
    pub fn signed_at(&self) -> OffsetDateTime {
        self.signed_at
    }

    /// The names of the results the signature covers, sorted.
    pub fn results(&self) -> &[String] {
        &self.results
    }
}

/// The TaskRun's start and completion, known to be present and ordered.
#[derive(Debug, Clone, Copy)]
struct RunTimes {
    start: OffsetDateTime,
    completion: OffsetDateTime,
}

/// Verifies the signed results of `taskrun` under `policy`.
///
/// Checks, in order:
/// 0. the status is well-formed (results, their names and values, run times);
/// 1. the TaskRun carries signature material, in a format the policy allows;
/// 2. it has completed: start and completion times present, in order;
/// 3. every result's declared type matches its value;
/// 4. the format's own checks: the certificate chain to the bundle at the signing time,
///    the leaf being an X.509-SVID whose SPIFFE ID is this TaskRun's, every signature,
///    and the signed set of results equalling the status's set.
///
/// # Errors
/// The first rule the TaskRun breaks, as a [`Rejection`].
pub fn verify(taskrun: &TaskRun, policy: &Policy) -> Result<Verified, Rejection> {
    // 0. The status.
    if let Some(problem) = &taskrun.malformed_status {
        return Err(Rejection::MalformedStatus {
            problem: problem.clone(),
        });
    }
    // 1. Format.
    let format = detect_format(taskrun).ok_or(Rejection::Unsigned)?;
    if let Some(required) = policy.required_format
        && required != format
    {
        return Err(Rejection::FormatNotAllowed {
            found: format,
            required,
        });
    }
    // 2. Run times.
    let start = taskrun
        .start_time
        .ok_or(Rejection::NotComplete { field: "startTime" })?;
    let completion = taskrun.completion_time.ok_or(Rejection::NotComplete {
        field: "completionTime",
    })?;
    if completion < start {
        return Err(Rejection::TimeOrder { start, completion });
    }
    let run = RunTimes { start, completion };
    // 3. Declared types.
    for result in &taskrun.results {
        let actual = result.value.type_name();
        if let Some(declared) = &result.declared_type
            && declared != actual
        {
            return Err(Rejection::TypeMismatch {
                result: result.name.clone(),
                declared: declared.clone(),
                actual,
            });
        }
    }
    // 4. The format's checks.
    match format {
        Format::Tekton => legacy::verify(taskrun, policy, run),
        Format::Seal => seal::verify(taskrun, policy, run),
    }
}

/// The format a TaskRun carries: a seal result wins, since a seal signs every other
/// result, Tekton-format material included.
fn detect_format(taskrun: &TaskRun) -> Option<Format> {
    if taskrun.result(crate::seal::RESULT_NAME).is_some() {
        Some(Format::Seal)
    } else if taskrun
        .results
        .iter()
        .any(|r| crate::legacy::is_material(&r.name))
    {
        Some(Format::Tekton)
    } else {
        None
    }
}

/// The leaf's SPIFFE ID must be this TaskRun's, in the policy's trust domain.
fn check_identity(
    spiffe_id: &SpiffeId,
    taskrun: &TaskRun,
    policy: &Policy,
) -> Result<(), Rejection> {
    if spiffe_id.trust_domain() != &policy.trust_domain {
        return Err(Rejection::WrongTrustDomain {
            expected: policy.trust_domain.to_string(),
            actual: spiffe_id.to_string(),
        });
    }
    let expected = SpiffeId::for_taskrun(&policy.trust_domain, &taskrun.namespace, &taskrun.name)
        .map_err(Rejection::UnnamableTaskRun)?;
    if *spiffe_id != expected {
        return Err(Rejection::WrongIdentity {
            expected: expected.to_string(),
            actual: spiffe_id.to_string(),
        });
    }
    Ok(())
}

/// A signature the leaf made over `message` (the name of what was signed goes in the
/// rejection).
fn check_signature(
    key: &PublicKey,
    message: &[u8],
    sig: &[u8],
    over: &str,
) -> Result<(), Rejection> {
    key.verify_message(message, sig).map_err(|e| match e {
        SignatureError::Invalid => Rejection::BadSignature { over: over.into() },
        SignatureError::Unsupported(detail) => Rejection::UnsupportedAlgorithm { detail },
    })
}
