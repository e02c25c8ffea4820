//! The SPIRE client's error type and how gRPC status codes map onto it.

use std::time::Duration;

use spiffe::SpiffeId;
use tonic::Code;

use super::entry::EntryId;

/// An error from the SPIRE client, for a whole call or for one item of a batch.
///
/// Worth retrying (with backoff; [`Error::is_retryable`] says so): [`Error::Connect`],
/// [`Error::WorkloadApi`], [`Error::Timeout`], [`Error::Unavailable`], and
/// [`Error::EntryRejected`] when its code is `UNAVAILABLE`, `DEADLINE_EXCEEDED` or
/// `RESOURCE_EXHAUSTED`. Every other error needs a change of configuration, permissions
/// or request first; retrying it as is gives the same answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached. Retryable.
    #[error(
        "cannot connect to the SPIRE server at {endpoint} (is it running, and is the address right?)"
    )]
    Connect {
        /// The endpoint, as configured.
        endpoint: String,
        /// What failed.
        #[source]
        source: tonic::transport::Error,
    },

    /// The server at a TCP endpoint did not present a valid X509-SVID for the expected
    /// server ID. Not retryable.
    #[error(
        "the server at {addr} is not {server_id} (check the server address and ID, and that the \
         trust bundle from the Workload API is this server's)"
    )]
    ServerNotAuthenticated {
        /// The address connected to.
        addr: String,
        /// The SPIFFE ID the server had to prove.
        server_id: SpiffeId,
        /// The TLS failure.
        #[source]
        source: tonic::transport::Error,
    },

    /// The Workload API delivered no trust bundle for the server ID's trust domain, so the
    /// server cannot be authenticated. Not retryable.
    #[error(
        "the Workload API has no trust bundle for {trust_domain}, the trust domain of the server \
         ID (check the server ID, or federation with that trust domain)"
    )]
    NoTrustBundle {
        /// The server ID's trust domain.
        trust_domain: spiffe::TrustDomain,
    },

    /// The endpoint's address cannot be used. Not retryable.
    #[error("invalid SPIRE server address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as configured.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// This workload's X509-SVID could not be obtained from the Workload API (TCP
    /// endpoints only). Retryable: the agent may still be starting, or the admin entry may
    /// not have reached it yet.
    #[error(
        "cannot obtain an X509-SVID from the Workload API (is the agent's socket mounted, and does \
         an admin entry select this workload?)"
    )]
    WorkloadApi {
        /// What failed.
        #[source]
        source: spiffe::X509SourceError,
    },

    /// The TLS client configuration could not be built. Not retryable.
    #[error("cannot build the TLS client configuration from the Workload API material")]
    TlsConfig {
        /// What failed.
        #[source]
        source: spiffe_rustls::Error,
    },

    /// No answer within the configured per-call timeout. Retryable.
    #[error("{method} got no answer within {timeout:?}")]
    Timeout {
        /// The RPC.
        method: &'static str,
        /// The configured timeout.
        timeout: Duration,
    },

    /// The call failed with `UNAVAILABLE`, `DEADLINE_EXCEEDED` or `RESOURCE_EXHAUSTED`.
    /// Retryable.
    #[error("{method} failed with status {code:?}, which is transient")]
    Unavailable {
        /// The RPC.
        method: &'static str,
        /// The status code.
        code: Code,
        /// The status.
        #[source]
        source: Box<tonic::Status>,
    },

    /// The call was refused with `PERMISSION_DENIED` or `UNAUTHENTICATED`. Not retryable.
    #[error(
        "{method} was denied (over TCP the caller's SPIFFE ID needs an entry with admin set, or a \
         place in the server's admin_ids)"
    )]
    PermissionDenied {
        /// The RPC.
        method: &'static str,
        /// The status.
        #[source]
        source: Box<tonic::Status>,
    },

    /// The call was refused with `INVALID_ARGUMENT` as a whole (for example a filter
    /// naming another trust domain). Not retryable.
    #[error("{method} was refused as invalid")]
    InvalidArgument {
        /// The RPC.
        method: &'static str,
        /// The status.
        #[source]
        source: Box<tonic::Status>,
    },

    /// The call failed with another status (`INTERNAL`, `UNIMPLEMENTED`, ...). Not
    /// retryable as such; a later reconcile pass tries again.
    #[error("{method} failed with status {code:?}")]
    Rpc {
        /// The RPC.
        method: &'static str,
        /// The status code.
        code: Code,
        /// The status.
        #[source]
        source: Box<tonic::Status>,
    },

    /// One entry of a batch was refused (for example `INVALID_ARGUMENT` for a SPIFFE ID
    /// outside the server's trust domain, or `NOT_FOUND` when updating a missing entry).
    /// Retryable only when its code is.
    #[error("entry {id} was refused with status {code:?}: {message}")]
    EntryRejected {
        /// The entry's ID as requested.
        id: String,
        /// The status code.
        code: Code,
        /// The server's explanation.
        message: String,
    },

    /// The requested entry ID is held by an entry with another SPIFFE ID, parent or
    /// selectors (`ALREADY_EXISTS` without an entry). Not retryable: delete or update
    /// that entry first.
    #[error("entry ID {id} is taken by an entry with another SPIFFE ID, parent or selectors")]
    EntryIdTaken {
        /// The requested ID.
        id: EntryId,
        /// The server's explanation.
        message: String,
    },

    /// A caller-supplied entry ID breaks SPIRE's rules. Not retryable.
    #[error("invalid entry ID {id:?}: {rule}")]
    InvalidEntryId {
        /// The rejected ID.
        id: String,
        /// The rule it breaks.
        rule: &'static str,
    },

    /// A selector is not `type:value` with both parts non-empty and no `:` in the type.
    /// Not retryable.
    #[error("invalid selector {selector:?}: expected type:value")]
    InvalidSelector {
        /// The rejected selector.
        selector: String,
    },

    /// An entry from the server has a missing or malformed SPIFFE ID. Not retryable.
    #[error("entry {id} from the server has no valid {field}")]
    InvalidEntry {
        /// The entry's ID.
        id: String,
        /// `spiffe_id` or `parent_id`.
        field: &'static str,
        /// The parse failure, when the field was present.
        #[source]
        source: Option<spiffe::SpiffeIdError>,
    },

    /// The server's answer breaks the API's contract. Not retryable.
    #[error("{method} returned an unexpected response: {problem}")]
    UnexpectedResponse {
        /// The RPC.
        method: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Whether a gRPC status code names a transient condition.
pub(crate) fn is_retryable_code(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted
    )
}

impl Error {
    /// Whether the same call may succeed later without any change (see the type's doc).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::WorkloadApi { .. }
            | Error::Timeout { .. }
            | Error::Unavailable { .. } => true,
            Error::EntryRejected { code, .. } => is_retryable_code(*code),
            _ => false,
        }
    }

    /// The gRPC status code, for errors that carry one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Unavailable { code, .. }
            | Error::Rpc { code, .. }
            | Error::EntryRejected { code, .. } => Some(*code),
            Error::PermissionDenied { source, .. } => Some(source.code()),
            Error::InvalidArgument { .. } => Some(Code::InvalidArgument),
            Error::EntryIdTaken { .. } => Some(Code::AlreadyExists),
            Error::Timeout { .. } => Some(Code::DeadlineExceeded),
            _ => None,
        }
    }

    /// Classifies a failed call.
    pub(crate) fn from_status(method: &'static str, status: tonic::Status) -> Self {
        let code = status.code();
        let source = Box::new(status);
        match code {
            c if is_retryable_code(c) => Error::Unavailable {
                method,
                code,
                source,
            },
            Code::PermissionDenied | Code::Unauthenticated => {
                Error::PermissionDenied { method, source }
            }
            Code::InvalidArgument => Error::InvalidArgument { method, source },
            _ => Error::Rpc {
                method,
                code,
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_retryable_and_request_errors_are_not() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
        ] {
            let err = Error::from_status("ListEntries", tonic::Status::new(code, "x"));
            assert!(matches!(err, Error::Unavailable { .. }), "{code:?}");
            assert!(err.is_retryable());
        }
        for (code, permission) in [
            (Code::InvalidArgument, false),
            (Code::PermissionDenied, true),
            (Code::Unauthenticated, true),
        ] {
            let err = Error::from_status("ListEntries", tonic::Status::new(code, "x"));
            assert!(!err.is_retryable(), "{code:?}");
            assert_eq!(matches!(err, Error::PermissionDenied { .. }), permission);
        }
        let err = Error::from_status("ListEntries", tonic::Status::internal("x"));
        assert!(matches!(
            err,
            Error::Rpc {
                code: Code::Internal,
                ..
            }
        ));
        assert!(!err.is_retryable());
    }

    #[test]
    fn an_entry_rejection_is_retryable_only_when_its_code_is() {
        let rejected = |code| Error::EntryRejected {
            id: "a".into(),
            code,
            message: String::new(),
        };
        assert!(rejected(Code::Unavailable).is_retryable());
        assert!(!rejected(Code::InvalidArgument).is_retryable());
    }

    #[test]
    fn the_error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 128);
    }
}
