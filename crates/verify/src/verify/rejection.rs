//! Why a TaskRun's signed results were rejected.

use time::OffsetDateTime;

use crate::spiffe_id::IdError;
use crate::verify::Format;

/// Why verification rejected a TaskRun. Each variant is one rule; [`Rejection::code`]
/// gives a stable name for scripts and policies. Not worth retrying: the same input is
/// rejected the same way (a TaskRun that has not completed yet is the one exception, see
/// [`Rejection::NotComplete`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The status cannot be read: a result duplicated, of another shape than a string,
    /// an array or an object of strings, a run time that is not RFC 3339, and so on.
    /// Whoever writes the status controls all of it, so this is a verdict, not bad input.
    #[error("the TaskRun's status is malformed: {problem}")]
    MalformedStatus {
        /// What is wrong with it.
        problem: String,
    },
    /// No signature material of any format.
    #[error(
        "the TaskRun carries no signature material (no seal result, no SVID or RESULT_MANIFEST result); check that the signing step ran and that the Task declares its results"
    )]
    Unsigned,
    /// The format found is not the one the policy requires.
    #[error(
        "the TaskRun is signed in the {found} format, but the policy requires the {required} format"
    )]
    FormatNotAllowed {
        /// Format found on the TaskRun.
        found: Format,
        /// Format the policy requires.
        required: Format,
    },
    /// A piece of signature material is missing.
    #[error("signature material {result:?} is missing from the TaskRun's results")]
    MissingMaterial {
        /// The result that should hold it.
        result: String,
    },
    /// A piece of signature material does not parse.
    #[error("signature material {result:?} is malformed: {problem}")]
    MalformedMaterial {
        /// The result that holds it.
        result: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The TaskRun has not completed, so its signing time cannot be bounded yet.
    #[error("the TaskRun has no status.{field}; results are verified once it has completed")]
    NotComplete {
        /// The missing status field.
        field: &'static str,
    },
    /// The TaskRun's completion precedes its start.
    #[error("the TaskRun's completionTime {completion} precedes its startTime {start}")]
    TimeOrder {
        /// `status.startTime`.
        start: OffsetDateTime,
        /// `status.completionTime`.
        completion: OffsetDateTime,
    },
    /// The seal was made outside the TaskRun's run.
    #[error(
        "the seal was signed at {signed_at}, outside the TaskRun's run from {start} to {completion} (allowing {skew_seconds} s of clock skew)"
    )]
    SignedOutsideRun {
        /// The signing time in the seal.
        signed_at: OffsetDateTime,
        /// `status.startTime`.
        start: OffsetDateTime,
        /// `status.completionTime`.
        completion: OffsetDateTime,
        /// The clock skew allowed on either side.
        skew_seconds: i64,
    },
    /// The TaskRun has no UID, which the seal binds.
    #[error(
        "the TaskRun has no metadata.uid; the seal binds the UID, so verify the TaskRun as the API server returns it"
    )]
    MissingUid,
    /// The seal was made in another attempt of this TaskRun than the one its status
    /// reports: copied, with its results, from `status.retriesStatus`, or made by a pod
    /// Tekton retried.
    #[error(
        "the seal was made in attempt {sealed} (zero-based), but the TaskRun's status reports attempt {reported} ({reported} entries in status.retriesStatus); a seal copied from an earlier attempt is not this attempt's"
    )]
    AttemptMismatch {
        /// The attempt the seal binds.
        sealed: u32,
        /// The attempt the status reports: the number of entries of `status.retriesStatus`.
        reported: usize,
    },
    /// A `sealv1` seal, which binds no attempt, on a TaskRun that was retried.
    #[error(
        "the seal is a sealv1, which does not bind the attempt, and the TaskRun was retried ({earlier} entries in status.retriesStatus): it could be an earlier attempt's; re-run the Task with a signing step that writes sealv2"
    )]
    AttemptUnbound {
        /// The number of entries of `status.retriesStatus`.
        earlier: usize,
    },
    /// No path from the signing certificate to a root of the trust bundle.
    #[error(
        "no chain from certificate {subject:?} to a root of the trust bundle; check that the bundle is the one of the trust domain that issued the SVID, and that the chain carries every intermediate"
    )]
    Untrusted {
        /// Subject of the certificate whose issuer was not found.
        subject: String,
    },
    /// An issuer on the path is not a CA allowed to sign certificates.
    #[error(
        "issuer {subject:?} is not a CA allowed to sign certificates (basicConstraints CA:true and keyUsage keyCertSign are required)"
    )]
    IssuerNotCa {
        /// Subject of the issuer.
        subject: String,
    },
    /// A CA on the path allows fewer intermediates below it than the path has.
    #[error(
        "CA {subject:?} allows {limit} intermediate(s) below it (pathLenConstraint), the path has {intermediates}"
    )]
    PathLength {
        /// Subject of the CA.
        subject: String,
        /// Its pathLenConstraint.
        limit: u32,
        /// Intermediates between it and the signing certificate.
        intermediates: usize,
    },
    /// A certificate below a CA names a URI its name constraints do not allow.
    #[error("CA {issuer:?} does not allow the URI {uri:?} below it (nameConstraints)")]
    NameConstraints {
        /// Subject of the CA whose constraints are broken.
        issuer: String,
        /// The URI SAN that breaks them.
        uri: String,
    },
    /// A carried certificate is not on the path to the root.
    #[error(
        "certificate {subject:?} in the chain is not on the path from the signing certificate to the trust bundle"
    )]
    ExtraCertificate {
        /// Subject of the stray certificate.
        subject: String,
    },
    /// A certificate on the path was not yet valid at signing time.
    #[error(
        "certificate {subject:?} was not yet valid at the signing time {at} (notBefore {not_before})"
    )]
    NotYetValid {
        /// Subject of the certificate.
        subject: String,
        /// Its notBefore.
        not_before: OffsetDateTime,
        /// The signing time.
        at: OffsetDateTime,
    },
    /// A certificate on the path had expired at signing time.
    #[error("certificate {subject:?} had expired at the signing time {at} (notAfter {not_after})")]
    Expired {
        /// Subject of the certificate.
        subject: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
        /// The signing time.
        at: OffsetDateTime,
    },
    /// A certificate, or an extension in it, does not parse.
    #[error("certificate {index} of the chain is malformed: {problem}")]
    MalformedCertificate {
        /// Position in the chain, the leaf being 0.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The leaf does not have exactly one URI SAN holding a SPIFFE ID.
    #[error(
        "the signing certificate is not an X.509-SVID: it must have exactly one URI SAN, it has {count}"
    )]
    UriSanCount {
        /// URI SANs found.
        count: usize,
    },
    /// The leaf's URI SAN is not a valid SPIFFE ID.
    #[error("the signing certificate's URI SAN is not a valid SPIFFE ID")]
    InvalidSpiffeId(#[source] IdError),
    /// The leaf is a CA certificate.
    #[error(
        "the signing certificate is not an X.509-SVID: leaf certificates must not be CAs (basicConstraints CA:true)"
    )]
    LeafIsCa,
    /// The leaf's key usage is wrong for an X.509-SVID.
    #[error("the signing certificate is not an X.509-SVID: leaf certificate {rule}")]
    LeafKeyUsage {
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The leaf's SPIFFE ID is in another trust domain.
    #[error("the signing certificate's SPIFFE ID {actual} is not in the trust domain {expected}")]
    WrongTrustDomain {
        /// The expected trust domain.
        expected: String,
        /// The SPIFFE ID found.
        actual: String,
    },
    /// The leaf's SPIFFE ID names another workload.
    #[error("the signing certificate belongs to {actual}, not to this TaskRun ({expected})")]
    WrongIdentity {
        /// The ID this TaskRun must have.
        expected: String,
        /// The ID found.
        actual: String,
    },
    /// The TaskRun's name or namespace cannot form a SPIFFE ID.
    #[error("the TaskRun's namespace and name cannot form a SPIFFE ID")]
    UnnamableTaskRun(#[source] IdError),
    /// The SVID's key type or a certificate's signature algorithm is not supported.
    #[error("unsupported algorithm: {detail}")]
    UnsupportedAlgorithm {
        /// What was found.
        detail: String,
    },
    /// A certificate's signature on the path does not verify.
    #[error("the signature on certificate {subject:?} does not verify with its issuer's key")]
    BadCertificateSignature {
        /// Subject of the certificate.
        subject: String,
    },
    /// A signature over results does not verify.
    #[error("the signature over {over} does not verify with the signing certificate's key")]
    BadSignature {
        /// What was signed (a result name, the manifest, or the seal).
        over: String,
    },
    /// A result has no signature.
    #[error("result {result:?} is not signed")]
    UnsignedResult {
        /// The result.
        result: String,
    },
    /// A signed result is missing from the status.
    #[error("result {result:?} was signed but is missing from the TaskRun's status")]
    MissingResult {
        /// The result.
        result: String,
    },
    /// A signature exists for no result.
    #[error("signature {signature:?} belongs to no result in the TaskRun's status")]
    StraySignature {
        /// The signature result.
        signature: String,
    },
    /// A result's declared type disagrees with its value.
    #[error("result {result:?} declares type {declared:?} but holds a value of type {actual:?}")]
    TypeMismatch {
        /// The result.
        result: String,
        /// The `type` field.
        declared: String,
        /// The value's shape.
        actual: &'static str,
    },
}

impl Rejection {
    /// A stable code naming the rule, such as `chain.untrusted` or `signature.invalid`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedStatus { .. } => "status.malformed",
            Self::Unsigned => "material.absent",
            Self::FormatNotAllowed { .. } => "format.not-allowed",
            Self::MissingMaterial { .. } => "material.missing",
            Self::MalformedMaterial { .. } | Self::MalformedCertificate { .. } => {
                "material.malformed"
            }
            Self::NotComplete { .. } => "taskrun.not-complete",
            Self::TimeOrder { .. } => "taskrun.time-order",
            Self::SignedOutsideRun { .. } => "seal.time-outside-run",
            Self::MissingUid => "taskrun.no-uid",
            Self::AttemptMismatch { .. } => "seal.attempt-mismatch",
            Self::AttemptUnbound { .. } => "seal.attempt-unbound",
            Self::Untrusted { .. } => "chain.untrusted",
            Self::IssuerNotCa { .. } => "chain.issuer-not-ca",
            Self::ExtraCertificate { .. } => "chain.extra-certificate",
            Self::PathLength { .. } => "chain.path-length",
            Self::NameConstraints { .. } => "chain.name-constraints",
            Self::NotYetValid { .. } => "chain.not-yet-valid",
            Self::Expired { .. } => "chain.expired",
            Self::BadCertificateSignature { .. } => "chain.signature",
            Self::UriSanCount { .. } | Self::InvalidSpiffeId(_) => "svid.uri-san",
            Self::LeafIsCa => "svid.ca",
            Self::LeafKeyUsage { .. } => "svid.key-usage",
            Self::WrongTrustDomain { .. } => "identity.trust-domain",
            Self::WrongIdentity { .. } | Self::UnnamableTaskRun(_) => "identity.mismatch",
            Self::UnsupportedAlgorithm { .. } => "signature.algorithm",
            Self::BadSignature { .. } => "signature.invalid",
            Self::UnsignedResult { .. } => "results.unsigned",
            Self::MissingResult { .. } => "results.missing",
            Self::StraySignature { .. } => "results.stray-signature",
            Self::TypeMismatch { .. } => "results.type-mismatch",
        }
    }
}
