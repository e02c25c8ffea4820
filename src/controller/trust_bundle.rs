//! The trust bundle that verdicts are judged against: from the controller's own Workload
//! API (the default: SPIRE keeps it current through CA rotations) or from a file.

use std::path::PathBuf;
use std::time::Duration;

use spiffe::X509Source;
use tekton_spire_verify::{TrustBundle, TrustDomain};
use tokio_util::sync::CancellationToken;

use crate::config::TrustBundleSource;

/// Why no bundle is at hand for a verdict; all are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BundleError {
    #[error("the trust bundle {origin} is unusable")]
    Unusable {
        origin: String,
        #[source]
        source: tekton_spire_verify::bundle::Error,
    },
    #[error(
        "the Workload API holds no bundle for trust domain {trust_domain} (is spire-trust-domain the agent's?)"
    )]
    NoBundle { trust_domain: String },
}

/// An open source of trust bundles.
pub(crate) enum Bundles {
    WorkloadApi(X509Source),
    File(PathBuf),
}

impl Bundles {
    /// Opens the source; for the Workload API, waits (retrying with backoff, each attempt
    /// bounded by `timeout`) until the agent has served this workload once, or `shutdown`.
    pub(crate) async fn open(
        source: &TrustBundleSource,
        timeout: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Self> {
        let endpoint = match source {
            TrustBundleSource::File(path) => return Some(Self::File(path.clone())),
            TrustBundleSource::WorkloadApi(endpoint) => endpoint,
            #[expect(
                unreachable_patterns,
                reason = "the enum is non_exhaustive for other crates"
            )]
            _ => return None,
        };
        let mut delay = Duration::from_millis(500);
        loop {
            let attempt = X509Source::builder()
                .endpoint(endpoint)
                .initial_sync_timeout(timeout)
                .build();
            tokio::select! {
                () = shutdown.cancelled() => return None,
                built = attempt => match built {
                    Ok(source) => return Some(Self::WorkloadApi(source)),
                    Err(error) => tracing::warn!(
                        endpoint = %endpoint,
                        error = %crate::telemetry::error_chain(&error),
                        "no trust bundle from the Workload API yet (has the controller's own entry reached its agent?); retrying"
                    ),
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// The current bundle of `trust_domain`.
    pub(crate) fn current(&self, trust_domain: &TrustDomain) -> Result<TrustBundle, BundleError> {
        match self {
            // A file, or a directory of them (a mounted ConfigMap).
            Self::File(path) => TrustBundle::read(path).map_err(|source| BundleError::Unusable {
                origin: path.display().to_string(),
                source,
            }),
            Self::WorkloadApi(source) => {
                let no_bundle = || BundleError::NoBundle {
                    trust_domain: trust_domain.to_string(),
                };
                let td =
                    spiffe::TrustDomain::new(trust_domain.to_string()).map_err(|_| no_bundle())?;
                let bundle = source
                    .try_bundle_for_trust_domain(&td)
                    .ok_or_else(no_bundle)?;
                // The verifier reads PEM; the Workload API hands DER.
                let pem = pem::encode_many(
                    &bundle
                        .authorities()
                        .iter()
                        .map(|root| pem::Pem::new("CERTIFICATE", root.as_ref().to_vec()))
                        .collect::<Vec<_>>(),
                );
                TrustBundle::load(pem.as_bytes()).map_err(|source| BundleError::Unusable {
                    origin: format!("from the Workload API for {trust_domain}"),
                    source,
                })
            }
        }
    }

    /// Stops the Workload API stream.
    pub(crate) async fn close(self) {
        if let Self::WorkloadApi(source) = self {
            source.shutdown().await;
        }
    }
}
