//! Keeping the SPIRE entries equal to what the pods need: one stateless pass that lists
//! our entries, computes the desired set from the watch caches and applies the
//! difference; run on every watch event (bursts merged) and on a timer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::desired::{TaskRuns, desired_entries};
use super::plan::plan;
use crate::config::Config;
use crate::spire::{self, CreateOutcome, ListFilter};

/// Bursts of watch events closer than this share one pass.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Counts of one pass, for its log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassReport {
    /// Entries the pods need.
    pub desired: usize,
    /// Entries created.
    pub created: usize,
    /// Entries updated.
    pub updated: usize,
    /// Entries deleted.
    pub deleted: usize,
    /// Per-entry changes the server refused.
    pub failed: usize,
}

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassError {
    #[error("SPIRE Entry API call failed")]
    Spire(#[from] spire::Error),
    #[error("{failed} entry change(s) were refused by the server")]
    Partial { failed: usize },
}

/// A (namespace, name) index of the TaskRun cache, made once per pass.
struct TaskRunIndex(HashMap<(String, String), Arc<DynamicObject>>);

impl TaskRuns for TaskRunIndex {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.0
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
}

/// The state one pass reads: the SPIRE client and the watch caches.
pub(crate) struct EntrySync {
    pub(crate) spire: spire::Client,
    pub(crate) pods: Store<Pod>,
    pub(crate) taskruns: Store<DynamicObject>,
    pub(crate) config: Arc<Config>,
}

impl EntrySync {
    /// One full pass.
    ///
    /// # Guarantees
    /// Deletes only entries under our ID prefix that no live pod needs, and only after a
    /// complete list; creates are idempotent (deterministic IDs, `ALREADY_EXISTS` is
    /// success). Repeating a pass after a failure at any point converges.
    pub(crate) async fn pass(&self) -> Result<PassReport, PassError> {
        let config = &self.config;
        let actual = self
            .spire
            .list_entries(&ListFilter::default().by_hint(config.entry_hint.clone()))
            .await?;
        let index = TaskRunIndex(
            self.taskruns
                .state()
                .into_iter()
                .map(|tr| ((tr.namespace().unwrap_or_default(), tr.name_any()), tr))
                .collect(),
        );
        let pods = self.pods.state();
        let desired = desired_entries(pods.iter().map(Arc::as_ref), &index, config);
        let plan = plan(&desired, &actual, &config.entry_id_prefix);
        let mut report = PassReport {
            desired: desired.len(),
            ..PassReport::default()
        };
        if plan.is_empty() {
            return Ok(report);
        }

        if !plan.delete.is_empty() {
            for (id, outcome) in plan
                .delete
                .iter()
                .zip(self.spire.batch_delete(&plan.delete).await?)
            {
                match outcome {
                    Ok(_) => {
                        report.deleted += 1;
                        tracing::info!(entry_id = %id, "deleted entry");
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(entry_id = %id, error = %crate::telemetry::error_chain(&error), "could not delete entry");
                    }
                }
            }
        }
        if !plan.create.is_empty() {
            for (spec, outcome) in plan
                .create
                .iter()
                .zip(self.spire.batch_create(&plan.create).await?)
            {
                match outcome {
                    Ok(CreateOutcome::AlreadyExists(existing)) if existing.spec.id != spec.id => {
                        // Someone registered the same workload first; theirs serves it.
                        tracing::warn!(entry_id = %spec.id, existing_entry_id = %existing.spec.id, spiffe_id = %spec.spiffe_id,
                            "an entry owned by someone else already registers this workload");
                    }
                    Ok(_) => {
                        report.created += 1;
                        tracing::info!(entry_id = %spec.id, spiffe_id = %spec.spiffe_id, parent_id = %spec.parent_id, "created entry");
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(entry_id = %spec.id, error = %crate::telemetry::error_chain(&error), "could not create entry");
                    }
                }
            }
        }
        if !plan.update.is_empty() {
            for (spec, outcome) in plan
                .update
                .iter()
                .zip(self.spire.batch_update(&plan.update).await?)
            {
                match outcome {
                    Ok(_) => {
                        report.updated += 1;
                        tracing::info!(entry_id = %spec.id, spiffe_id = %spec.spiffe_id, "updated entry");
                    }
                    Err(error) => {
                        report.failed += 1;
                        tracing::warn!(entry_id = %spec.id, error = %crate::telemetry::error_chain(&error), "could not update entry");
                    }
                }
            }
        }
        if report.failed > 0 {
            return Err(PassError::Partial {
                failed: report.failed,
            });
        }
        Ok(report)
    }

    /// Runs passes until `shutdown`: after every trigger (bursts merged), every
    /// `resync_interval`, and after a failure with jittered exponential backoff.
    pub(crate) async fn run(self, trigger: Arc<Notify>, shutdown: CancellationToken) {
        let config = Arc::clone(&self.config);
        let mut delay = config.retry_min;
        let mut failures = 0u32;
        let mut next = Duration::ZERO;
        loop {
            // After a failure only the backoff wakes the loop: watch events keep coming
            // during an outage and must not turn retries into a busy loop.
            let triggered = async {
                if failures == 0 {
                    trigger.notified().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = triggered => {}
                () = tokio::time::sleep(next) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(DEBOUNCE) => {}
            }
            let span = tracing::info_span!("entry_pass");
            let started = tokio::time::Instant::now();
            // A pass may take minutes (thousands of creates on a cold start); stopping in
            // the middle of one is safe, since the next start repeats it.
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = tracing::Instrument::instrument(self.pass(), span) => result,
            };
            match result {
                Ok(report) => {
                    if failures > 0 {
                        tracing::info!(after_failures = failures, "entry pass succeeded again");
                    }
                    if report.created + report.updated + report.deleted > 0 {
                        tracing::info!(
                            desired = report.desired,
                            created = report.created,
                            updated = report.updated,
                            deleted = report.deleted,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "entry pass"
                        );
                    }
                    failures = 0;
                    delay = config.retry_min;
                    next = config.resync_interval;
                }
                Err(error) => {
                    failures += 1;
                    let message = crate::telemetry::error_chain(&error);
                    // Warn once per outage, then keep quiet at debug.
                    if failures == 1 {
                        tracing::warn!(error = %message, "entry pass failed; retrying with backoff");
                    } else {
                        tracing::debug!(error = %message, failures, "entry pass failed again");
                    }
                    next = delay.mul_f64(0.5 + fastrand::f64() * 0.5);
                    delay = (delay * 2).min(config.retry_max);
                }
            }
        }
    }
}
