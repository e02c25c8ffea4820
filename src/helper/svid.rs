//! Fetching the X.509-SVID from the Workload API, waiting with backoff until the
//! registration entry reaches the agent or the deadline passes.
//!
//! A pod may hold several identities: beside the TaskRun's entry, an installation of
//! spire-controller-manager commonly gives every pod `ns/<ns>/sa/<sa>`, and the agent
//! orders SVIDs by entry ID, so "the" SVID (the first) may be the other one. The helper
//! asks for all of them and takes the one with the TaskRun's SPIFFE ID path, waiting for
//! it as long as for the first identity.

use std::time::Duration;

use spiffe::workload_api::error::WorkloadApiError;
use spiffe::{WorkloadApiClient, X509Svid};
use tokio::time::Instant;

/// Bounds of the retry delay.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling to 2 s: the agent learns of a new entry within its sync interval
    /// (5 s by default), so polling faster than that mostly finds nothing new.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

/// Why no SVID could be had.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The socket address is not a Workload API endpoint; retrying cannot help.
    #[error("{socket:?} is not a Workload API endpoint (expected unix:///path/to/socket)")]
    InvalidSocket {
        /// The address given.
        socket: String,
        /// The cause.
        #[source]
        source: WorkloadApiError,
    },
    /// The agent answered, but issued no identity to this process before the deadline.
    #[error(
        "no X.509-SVID was issued to this process within {waited:?}: check that a registration entry matches this pod (the controller creates spiffe://<trust-domain>/ns/<namespace>/taskrun/<name> when the pod is scheduled) and that the agent can reach the server"
    )]
    NoIdentity {
        /// How long it waited.
        waited: Duration,
    },
    /// The agent issued identities to this process, but none with the expected path
    /// before the deadline.
    #[error(
        "none of the X.509-SVIDs issued to this process within {waited:?} is this TaskRun's (expected the path {expected_path}, got {found:?}): check that the controller registered the TaskRun's entry for this pod and container"
    )]
    NotThisTaskRun {
        /// The path the SVID should have.
        expected_path: String,
        /// The SPIFFE IDs that were issued.
        found: Vec<String>,
        /// How long it waited.
        waited: Duration,
    },
    /// The agent could not be reached before the deadline.
    #[error(
        "could not reach the SPIFFE Workload API at {socket} within {waited:?}: check that the SPIFFE CSI driver volume is mounted and SPIFFE_ENDPOINT_SOCKET names its socket"
    )]
    Unreachable {
        /// The address used.
        socket: String,
        /// How long it waited.
        waited: Duration,
        /// The last error seen.
        #[source]
        source: WorkloadApiError,
    },
}

/// Which of the process's SVIDs to take.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wanted<'a> {
    /// The one whose SPIFFE ID has this path (in any trust domain: the verifier judges
    /// the trust domain).
    Path(&'a str),
    /// The agent's default (the first).
    Default,
}

/// Fetches the wanted X.509-SVID, retrying with jittered exponential backoff until
/// `deadline` has passed.
///
/// # Errors
/// [`FetchError::InvalidSocket`] at once; otherwise the last failure once the deadline
/// has passed.
pub(super) async fn fetch(
    socket: &str,
    deadline: Duration,
    backoff: &Backoff,
    wanted: Wanted<'_>,
) -> Result<X509Svid, FetchError> {
    let started = Instant::now();
    let give_up = started + deadline;
    let mut delay = backoff.initial;
    let mut last_error: Option<WorkloadApiError> = None;
    let mut others: Vec<String> = Vec::new();
    loop {
        match tokio::time::timeout_at(give_up, attempt(socket)).await {
            Ok(Ok(svids)) => {
                let chosen = match wanted {
                    Wanted::Default => svids.into_iter().next(),
                    Wanted::Path(path) => {
                        let (mine, rest): (Vec<_>, Vec<_>) = svids
                            .into_iter()
                            .partition(|s| s.spiffe_id().path() == path);
                        others = rest.iter().map(|s| s.spiffe_id().to_string()).collect();
                        mine.into_iter().next()
                    }
                };
                if let Some(svid) = chosen {
                    tracing::info!(spiffe_id = %svid.spiffe_id(), elapsed_ms = started.elapsed().as_millis() as u64, "received X.509-SVID");
                    return Ok(svid);
                }
                tracing::debug!(issued = ?others, "identities issued, not yet this TaskRun's");
            }
            Ok(Err(e @ WorkloadApiError::Endpoint(_))) => {
                return Err(FetchError::InvalidSocket {
                    socket: socket.to_owned(),
                    source: e,
                });
            }
            Ok(Err(error)) => {
                if last_error.is_none() {
                    tracing::info!(error = %error, "no SVID yet; waiting for the registration entry to reach the agent");
                } else {
                    tracing::debug!(error = %error, "no SVID yet");
                }
                last_error = Some(error);
            }
            // The deadline passed during an attempt: judge by what the agent said before.
            Err(_elapsed) => {}
        }
        let now = Instant::now();
        if now >= give_up {
            let waited = now - started;
            if let (Wanted::Path(path), false) = (wanted, others.is_empty()) {
                return Err(FetchError::NotThisTaskRun {
                    expected_path: path.to_owned(),
                    found: others,
                    waited,
                });
            }
            return Err(match last_error {
                Some(
                    WorkloadApiError::NoIdentityIssued | WorkloadApiError::PermissionDenied(_),
                ) => FetchError::NoIdentity { waited },
                other => FetchError::Unreachable {
                    socket: socket.to_owned(),
                    waited,
                    source: other.unwrap_or(WorkloadApiError::EmptyResponse),
                },
            });
        }
        // Full jitter: spreads the pods of a burst over the interval.
        let sleep = delay.mul_f64(0.5 + fastrand::f64() * 0.5);
        tokio::time::sleep_until((now + sleep).min(give_up)).await;
        delay = (delay * 2).min(backoff.max);
    }
}

async fn attempt(socket: &str) -> Result<Vec<X509Svid>, WorkloadApiError> {
    let client = WorkloadApiClient::connect_to(socket).await?;
    client.fetch_all_x509_svids().await
}
