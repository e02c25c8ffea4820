//! Prometheus metrics, `/healthz` and `/readyz`, served over HTTP on
//! `metrics-address` (default `0.0.0.0:9090`).
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `tekton_spire_entries` | gauge: entries by state after the last pass | `state`: `desired`, `registered`, `refused` |
//! | `tekton_spire_entry_pass_duration_seconds` | histogram of entry passes that called SPIRE | |
//! | `tekton_spire_entry_registration_seconds` | histogram: pod created (its `creationTimestamp`) → its entry created | |
//! | `tekton_spire_spire_calls_total` | counter of Entry API calls (one per page or batch) | `method` |
//! | `tekton_spire_spire_errors_total` | counter of failed calls and refused entries | `method`, `code` |
//! | `tekton_spire_verdicts_total` | counter of recorded verdicts | `reason` |
//! | `tekton_spire_leader` | gauge: 1 while this replica holds the lease | `lease` |

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    method: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabel {
    lease: String,
}

/// The controller's metrics; cheap to clone, clones share the values.
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    entries: Family<StateLabel, Gauge>,
    pass_duration: Histogram,
    registration: Histogram,
    spire_calls: Family<MethodLabel, Counter>,
    spire_errors: Family<ErrorLabels, Counter>,
    verdicts: Family<ReasonLabel, Counter>,
    leader: Family<LeaseLabel, Gauge>,
    ready: Arc<AtomicBool>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let entries = Family::<StateLabel, Gauge>::default();
        registry.register(
            "tekton_spire_entries",
            "Owned SPIRE entries by state after the last pass",
            entries.clone(),
        );
        // 10 ms to ~5.5 min.
        let pass_duration = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "tekton_spire_entry_pass_duration_seconds",
            "Duration of entry passes that called the SPIRE server",
            pass_duration.clone(),
        );
        // 50 ms to ~14 min.
        let registration = Histogram::new(exponential_buckets(0.05, 2.0, 15));
        registry.register(
            "tekton_spire_entry_registration_seconds",
            "From a pod's creation to the creation of its entry",
            registration.clone(),
        );
        let spire_calls = Family::<MethodLabel, Counter>::default();
        registry.register(
            "tekton_spire_spire_calls",
            "SPIRE Entry API calls (one per page or batch)",
            spire_calls.clone(),
        );
        let spire_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "tekton_spire_spire_errors",
            "Failed SPIRE calls and refused entries, by gRPC code",
            spire_errors.clone(),
        );
        let verdicts = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "tekton_spire_verdicts",
            "Verdicts recorded on TaskRuns, by reason",
            verdicts.clone(),
        );
        let leader = Family::<LeaseLabel, Gauge>::default();
        registry.register(
            "tekton_spire_leader",
            "1 while this replica holds the lease",
            leader.clone(),
        );
        Self {
            registry: Arc::new(registry),
            entries,
            pass_duration,
            registration,
            spire_calls,
            spire_errors,
            verdicts,
            leader,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the entry gauges; `desired` is `None` when only some pods were looked at (the
    /// early pass), which leaves that gauge as it was.
    pub(crate) fn set_entries(&self, desired: Option<usize>, registered: usize, refused: usize) {
        for (state, n) in [
            ("desired", desired),
            ("registered", Some(registered)),
            ("refused", Some(refused)),
        ] {
            if let Some(n) = n {
                self.entries
                    .get_or_create(&StateLabel { state })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    pub(crate) fn observe_pass(&self, seconds: f64) {
        self.pass_duration.observe(seconds);
    }

    pub(crate) fn observe_registration(&self, seconds: f64) {
        self.registration.observe(seconds);
    }

    pub(crate) fn spire_call(&self, method: &'static str, code: Option<tonic::Code>) {
        self.spire_calls
            .get_or_create(&MethodLabel { method })
            .inc();
        if let Some(code) = code {
            self.spire_error(method, code);
        }
    }

    pub(crate) fn spire_error(&self, method: &'static str, code: tonic::Code) {
        self.spire_errors
            .get_or_create(&ErrorLabels {
                method,
                code: format!("{code:?}"),
            })
            .inc();
    }

    pub(crate) fn verdict(&self, reason: &str) {
        self.verdicts
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn set_leader(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabel {
                lease: lease.to_owned(),
            })
            .set(i64::from(leading));
    }

    /// Marks the replica ready (`/readyz` answers 200).
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

async fn metrics(State(m): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn readyz(State(m): State<Metrics>) -> impl IntoResponse {
    if m.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Binds `address` and serves until `shutdown`. `/healthz` answers 200 while the process
/// serves at all; `/readyz` once the replica follows the lease or, as leader, has filled
/// its caches.
///
/// # Errors
/// When the address cannot be bound.
pub(crate) async fn serve(
    address: SocketAddr,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/metrics", get(self::metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::warn!(error = %error, "the metrics server stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_count_leaves_the_desired_gauge_as_it_was() {
        let m = Metrics::new();
        m.set_entries(Some(3), 2, 0);
        m.set_entries(None, 4, 1);
        let text = m.encode();
        for line in [
            "tekton_spire_entries{state=\"desired\"} 3",
            "tekton_spire_entries{state=\"registered\"} 4",
            "tekton_spire_entries{state=\"refused\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn every_documented_metric_is_exposed() {
        let m = Metrics::new();
        m.set_entries(Some(3), 2, 1);
        m.observe_pass(0.2);
        m.observe_registration(0.7);
        m.spire_call("ListEntries", None);
        m.spire_call("BatchCreateEntry", Some(tonic::Code::Unavailable));
        m.verdict("TaskRunResultsVerified");
        m.set_leader("tekton-spire-controller", true);
        let text = m.encode();
        for line in [
            "tekton_spire_entries{state=\"refused\"} 1",
            "tekton_spire_entry_pass_duration_seconds_count 1",
            "tekton_spire_entry_registration_seconds_count 1",
            "tekton_spire_spire_calls_total{method=\"ListEntries\"} 1",
            "tekton_spire_spire_errors_total{method=\"BatchCreateEntry\",code=\"Unavailable\"} 1",
            "tekton_spire_verdicts_total{reason=\"TaskRunResultsVerified\"} 1",
            "tekton_spire_leader{lease=\"tekton-spire-controller\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
