//! Keeping the SPIRE entries equal to what the pods need.
//!
//! A pass computes the desired entries from the watch caches and applies the difference
//! to the owned entries it knows of. What it knows comes from a complete list of the
//! server's entries (at the start, every `resync-interval`, and after any failure that
//! leaves it unsure) and the outcomes of its own changes since; a pass with nothing to
//! change calls nothing. So steady step transitions of running TaskRuns, which wake a
//! pass each, cost no `ListEntries`, and a change made behind the controller's back is
//! repaired by the next resync.
//!
//! Failures are kept apart: a refused entry is reported (a warning and an event on its
//! TaskRun) and retried on its own schedule, never holding back the others; a failed
//! call for one batch or one kind of change does not stop the rest of the pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::desired::{
    Desired, PodOwner, Skip, TaskRunIndex, desired_entries, entry_for, pod_entry_id,
};
use super::events::{Events, Notice, pod_ref, taskrun_ref};
use super::leader::Leadership;
use super::metrics::Metrics;
use super::objects::{CachedPod, CachedTaskRun};
use super::plan::{Classified, Fingerprint, Ownership, plan};
use crate::config::Config;
use crate::spire::{
    self, CREATE_BATCH_SIZE, CreateOutcome, DELETE_BATCH_SIZE, EntryId, EntrySpec, ListFilter,
};

/// Passes triggered by watch events start no sooner after the last one ended than
/// [`pass_gap`] allows; events that arrive meanwhile share one pass. An event after a
/// quiet spell starts a pass at once.
const MIN_GAP: Duration = Duration::from_millis(5);

/// The wait after a pass that planned for `planning` before the next may start: as long
/// as that planning took, so that planning (the CPU a pass spends; at 10,000 pods about
/// 100 ms) takes at most half a core however fast events arrive, while at a few hundred
/// pods (a few milliseconds) a new pod's entry does not wait behind a fixed pause.
fn pass_gap(planning: Duration) -> Duration {
    planning.max(MIN_GAP)
}

/// Create batches in flight at once: the server works on one while the next travels.
const CREATE_CONCURRENCY: usize = 2;

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
    /// Entries the server refused for good (until their spec changes or a resync).
    pub refused: usize,
    /// Changes that failed for a reason that may pass; retried soon.
    pub failed: usize,
    /// Whether the pass listed the server's entries.
    pub listed: bool,
    /// How long that list took, in milliseconds.
    pub list_ms: u64,
    /// How long the pass took to plan: the desired entries from the caches, compared
    /// with the known ones (the CPU it spends; the rest waits on the server).
    pub planning: Duration,
}

impl PassReport {
    fn changed(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PassError {
    #[error("listing the SPIRE server's entries failed")]
    List(#[source] spire::Error),
    #[error("{calls} SPIRE Entry API call(s) failed; the first")]
    Calls {
        calls: usize,
        #[source]
        first: spire::Error,
    },
    #[error("this replica no longer holds the lease")]
    NotLeader,
}

/// Pods without an entry above which the early pass takes their TaskRuns from the cache's
/// initial list as it arrives instead of reading them one at a time.
const EARLY_PASS_MAX_PODS: usize = 100;
/// Entries the early pass sends at once while TaskRuns arrive: as many as the create
/// batches in flight hold, so that the server always has the next batch.
const EARLY_PASS_CHUNK: usize = CREATE_BATCH_SIZE * CREATE_CONCURRENCY;
/// TaskRuns the early pass reads at once.
const EARLY_PASS_READS: usize = 8;

/// `EntryRegistered` events published for pods that were already there when this replica
/// began reconciling. Past these, their registrations are only logged: after a SPIRE
/// server lost its entries, re-registering 10,000 running pods would otherwise write
/// 10,000 events to etcd while the API server is needed most, for news that nobody is
/// waiting on. Pods created since, and refusals, get their event (as long as the
/// publisher's queue has room, events.rs).
const STARTUP_EVENTS: usize = 100;

/// An entry the server did not take, and when to try it again.
#[derive(Debug)]
struct Refusal {
    spec: EntrySpec,
    message: String,
    /// Permanent refusals wait for a resync (or a changed spec); transient ones back off.
    permanent: bool,
    retry_at: Instant,
    delay: Duration,
}

/// The state of the entry loop.
pub(crate) struct EntrySync {
    pub(crate) spire: spire::Client,
    pub(crate) pods: Store<CachedPod>,
    pub(crate) taskruns: Store<CachedTaskRun>,
    pub(crate) config: Arc<Config>,
    pub(crate) leadership: Leadership,
    pub(crate) metrics: Metrics,
    pub(crate) events: Events,
    /// The owned entries as last listed, with our own changes applied since; `None` until
    /// listed, and again after a failure that leaves the server's state unsure.
    known: Option<Classified>,
    refused: HashMap<EntryId, Refusal>,
    /// Unix time this replica began reconciling: registration latencies are measured
    /// only for pods created since, not for those found at startup. Creation times have
    /// whole seconds, so a pod created in the second of the start counts as created since.
    started_at: i64,
    /// `EntryRegistered` events left for pods found at startup ([`STARTUP_EVENTS`]).
    startup_events: usize,
    /// Whether the log has said that [`STARTUP_EVENTS`] ran out.
    startup_events_spent: bool,
}

/// The current Unix time in seconds.
fn unix_now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// A (normal) event about a pod's entry, on its TaskRun, the pod as the related object.
fn entry_notice(owner: PodOwner<'_>, reason: &'static str, note: String) -> Notice {
    Notice {
        regarding: taskrun_ref(owner.namespace, owner.taskrun, owner.taskrun_uid),
        related: Some(pod_ref(owner.namespace, owner.pod, owner.pod_uid)),
        warning: false,
        reason,
        action: "RegisterEntry",
        note,
    }
}

/// Whether a per-entry error will get the same answer when retried as is.
fn permanent(error: &spire::Error) -> bool {
    !error.is_retryable()
        && !matches!(
            error.code(),
            Some(Code::Internal | Code::Unknown | Code::Aborted | Code::NotFound)
        )
}

/// One `BatchCreateEntry` call, made only while this replica leads (`Err(None)` if not).
async fn create_batch<'b>(
    spire: spire::Client,
    leadership: Leadership,
    batch: &'b [&'b EntrySpec],
) -> (&'b [&'b EntrySpec], BatchOutcomes) {
    if !leadership.is_valid() {
        return (batch, Err(None));
    }
    (batch, spire.batch_create(batch).await.map_err(Some))
}

/// Whether `name` is a DNS subdomain (RFC 1123, as Kubernetes checks object names): at
/// most 253 characters of lowercase letters, digits, `-` and `.`, each label starting and
/// ending with a letter or digit.
fn dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A pass's report, or the first of its failed calls.
fn outcome(
    report: PassReport,
    mut call_errors: Vec<spire::Error>,
) -> Result<PassReport, PassError> {
    match call_errors.len() {
        0 => Ok(report),
        calls => Err(PassError::Calls {
            calls,
            first: call_errors.swap_remove(0),
        }),
    }
}

/// A batch call's per-entry outcomes; `Err(None)` when it was not made.
type BatchOutcomes = Result<Vec<Result<CreateOutcome, spire::Error>>, Option<spire::Error>>;

impl EntrySync {
    pub(crate) fn new(
        spire: spire::Client,
        pods: Store<CachedPod>,
        taskruns: Store<CachedTaskRun>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            spire,
            pods,
            taskruns,
            config,
            leadership: Leadership::unconditional(),
            metrics: Metrics::new(),
            events: Events::none(),
            known: None,
            refused: HashMap::new(),
            started_at: unix_now(),
            startup_events: STARTUP_EVENTS,
            startup_events_spent: false,
        }
    }

    fn ownership(&self) -> Ownership {
        Ownership {
            prefix: self.config.entry_id_prefix.clone(),
            cleanup: self.config.entry_id_prefix_cleanup.clone(),
        }
    }

    /// Lists every entry of the server and keeps ours (by ID prefix alone: an entry of
    /// ours whose hint was changed is still found).
    pub(crate) async fn list(&mut self) -> Result<(), PassError> {
        // Dropped first: 10,000 entries are not held twice, and if the list fails, what
        // was known is no longer trusted anyway.
        self.known = None;
        let ownership = self.ownership();
        let mut listed = Classified::default();
        self.spire
            .for_each_entry(&ListFilter::default(), |entry| {
                listed.add(entry, &ownership);
            })
            .await
            .map_err(PassError::List)?;
        self.known = Some(listed);
        Ok(())
    }

    fn desired(&self, now: i64) -> BTreeMap<EntryId, Desired> {
        let taskruns = self.taskruns.state();
        let index = TaskRunIndex::new(taskruns.iter().map(Arc::as_ref));
        desired_entries(&self.pods.state(), &index, &self.config, now)
    }

    /// The pass made at startup once the pod cache has filled, not waiting for the
    /// TaskRun cache, which after a restart takes tens of seconds more (thousands of
    /// TaskRuns as JSON): creates the entries of the pods that have none, reading their
    /// TaskRuns one at a time from the API server. Creates only, since what to delete
    /// depends on every TaskRun; the binding is checked as in every pass
    /// ([`desired_entries`]), on TaskRuns as fresh as the cache's. When more than
    /// [`EARLY_PASS_MAX_PODS`] pods lack an entry (a new SPIRE server, a first install),
    /// it takes their TaskRuns from `arrivals`, the cache's initial list as it arrives,
    /// and stops when that list ends: the server is at work while the cache fills.
    pub(crate) async fn early_pass(
        &mut self,
        client: &kube::Client,
        arrivals: mpsc::Receiver<CachedTaskRun>,
    ) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        if self.known.is_none() {
            self.list().await?;
            report.listed = true;
        }
        let Some(known) = &self.known else {
            return Ok(report);
        };
        let now = unix_now();
        let pods = self.pods.state();
        // The pods that would have an entry if their TaskRun named them, and have none.
        let missing: Vec<&Arc<CachedPod>> = pods
            .iter()
            .filter(|pod| {
                let without_taskrun = entry_for(pod, &TaskRunIndex::default(), &self.config, now);
                matches!(without_taskrun, Err(Skip::NoTaskRun))
                    && pod.taskrun_owner().is_some()
                    && pod
                        .metadata
                        .uid
                        .as_deref()
                        .and_then(|uid| pod_entry_id(&self.config, uid))
                        .is_some_and(|id| !known.ours.contains_key(&id))
            })
            .collect();
        if missing.len() > EARLY_PASS_MAX_PODS {
            tracing::info!(
                pods = missing.len(),
                "many pods lack an entry; creating them as their TaskRuns arrive"
            );
            let missing = missing.into_iter().cloned().collect();
            return self
                .create_as_taskruns_arrive(missing, arrivals, report)
                .await;
        }
        drop(arrivals);
        // Whoever creates the pod writes the owner reference: a name that no TaskRun can
        // have (TaskRun names are DNS subdomains) would be pasted into the request path.
        let names: std::collections::BTreeSet<(String, String)> = missing
            .iter()
            .filter_map(|pod| Some((pod.namespace()?, pod.taskrun_owner()?.name.clone())))
            .filter(|(_, name)| dns_subdomain(name))
            .collect();
        let call_timeout = self.config.call_timeout;
        let reads = futures::stream::iter(names)
            .map(|(namespace, name)| async move {
                let api = kube::Api::<CachedTaskRun>::namespaced(client.clone(), &namespace);
                let read = tokio::time::timeout(call_timeout, api.get_opt(&name)).await;
                ((namespace, name), read)
            })
            .buffer_unordered(EARLY_PASS_READS)
            .collect::<Vec<_>>()
            .await;
        let mut taskruns = Vec::new();
        for (key, read) in reads {
            match read {
                Ok(Ok(Some(taskrun))) => taskruns.push(taskrun),
                Ok(Ok(None)) => {}
                // The full pass will see it in the cache.
                Ok(Err(error)) => {
                    tracing::debug!(namespace = %key.0, taskrun = %key.1, error = %crate::telemetry::error_chain(&error), "could not read a TaskRun");
                }
                Err(_) => {
                    tracing::debug!(namespace = %key.0, taskrun = %key.1, "reading a TaskRun timed out");
                }
            }
        }
        let desired = desired_entries(missing, &TaskRunIndex::new(&taskruns), &self.config, now);
        let create: Vec<&EntrySpec> = desired
            .values()
            .filter(|d| {
                !known.ours.contains_key(&d.spec.id) && !self.refused.contains_key(&d.spec.id)
            })
            .map(|d| &d.spec)
            .collect();
        report.desired = desired.len();
        let mut call_errors = Vec::new();
        if !create.is_empty() {
            self.create(&create, &desired, &mut report, &mut call_errors)
                .await?;
        }
        // The refusals it reported are counted at once, not at the end of the first full
        // pass, which waits for the TaskRun cache.
        if let Some(known) = &self.known {
            self.metrics
                .set_entries(None, known.ours.len(), self.refused.len());
        }
        outcome(report, call_errors)
    }

    /// The early pass for many pods: creates each pod's entry once its TaskRun has
    /// arrived, [`EARLY_PASS_CHUNK`] at a time, until `arrivals` ends (the initial list
    /// is complete and the full passes take over) or no pod waits any more. TaskRuns that
    /// arrived while the channel was full were dropped by the sender (which sends only
    /// TaskRuns that name a pod and have not completed); their pods wait for the first
    /// full pass.
    async fn create_as_taskruns_arrive(
        &mut self,
        missing: Vec<Arc<CachedPod>>,
        mut arrivals: mpsc::Receiver<CachedTaskRun>,
        mut report: PassReport,
    ) -> Result<PassReport, PassError> {
        let mut waiting: HashMap<(String, String), Vec<Arc<CachedPod>>> = HashMap::new();
        for pod in missing {
            if let (Some(namespace), Some(owner)) = (pod.namespace(), pod.taskrun_owner()) {
                let key = (namespace, owner.name.clone());
                waiting.entry(key).or_default().push(pod);
            }
        }
        let mut call_errors = Vec::new();
        let mut ready: BTreeMap<EntryId, Desired> = BTreeMap::new();
        let mut open = true;
        while open && !waiting.is_empty() {
            // Wait only while there is nothing to send.
            while ready.len() < EARLY_PASS_CHUNK && !waiting.is_empty() {
                let next = if ready.is_empty() {
                    arrivals.recv().await.ok_or(TryRecvError::Disconnected)
                } else {
                    arrivals.try_recv()
                };
                let taskrun = match next {
                    Ok(taskrun) => taskrun,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                };
                let (Some(namespace), Some(name)) =
                    (taskrun.namespace(), taskrun.metadata.name.clone())
                else {
                    continue;
                };
                let Some(pods) = waiting.remove(&(namespace, name)) else {
                    continue;
                };
                // Set: the loop ends as soon as a create leaves it unset.
                let known = self.known.as_ref();
                let desired = desired_entries(
                    &pods,
                    &TaskRunIndex::new([&taskrun]),
                    &self.config,
                    unix_now(),
                );
                ready.extend(desired.into_iter().filter(|(id, _)| {
                    known.is_some_and(|k| !k.ours.contains_key(id))
                        && !self.refused.contains_key(id)
                }));
            }
            if ready.is_empty() {
                continue;
            }
            // All of it: a chunk, and a node alias entry that came with its last pod.
            let chunk = std::mem::take(&mut ready);
            let specs: Vec<&EntrySpec> = chunk.values().map(|d| &d.spec).collect();
            report.desired += chunk.len();
            self.create(&specs, &chunk, &mut report, &mut call_errors)
                .await?;
            if self.known.is_none() {
                break;
            }
        }
        tracing::debug!(
            pods = waiting.values().map(Vec::len).sum::<usize>(),
            "early pass done; the first full pass creates the rest"
        );
        if let Some(known) = &self.known {
            self.metrics
                .set_entries(None, known.ours.len(), self.refused.len());
        }
        outcome(report, call_errors)
    }

    /// Forgets what is known of the server's entries, so that the next pass lists them:
    /// for a pass cut short, whose creates may have been made without being recorded.
    pub(crate) fn forget_known(&mut self) {
        self.known = None;
    }

    fn check_leader(&self) -> Result<(), PassError> {
        if self.leadership.is_valid() {
            Ok(())
        } else {
            Err(PassError::NotLeader)
        }
    }

    /// One pass; `list` forces a list of the server's entries first.
    ///
    /// # Guarantees
    /// Deletes only entries under our ID prefix that no live pod needs (and leftovers
    /// under the cleanup prefix), only on the basis of a complete list; creates are
    /// idempotent (deterministic IDs, `ALREADY_EXISTS` is success). Every write is made
    /// only while this replica's leadership is valid. Repeating a pass after a failure
    /// at any point converges.
    pub(crate) async fn pass(&mut self, list: bool) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        if list || self.known.is_none() {
            let started = Instant::now();
            self.list().await?;
            report.listed = true;
            report.list_ms = started.elapsed().as_millis() as u64;
            // A resync retries what the server refused for good.
            if list {
                self.refused.retain(|_, r| !r.permanent);
            }
        }
        let planning_started = Instant::now();
        let now = unix_now();
        let desired = self.desired(now);
        report.desired = desired.len();
        let retry_now = Instant::now();
        self.refused.retain(|id, r| {
            desired
                .get(id)
                .is_some_and(|d| d.spec == r.spec && r.retry_at > retry_now)
        });
        let Some(known) = &self.known else {
            return Ok(report);
        };
        let mut plan = plan(
            desired
                .iter()
                .filter(|(id, _)| !self.refused.contains_key(*id))
                .map(|(id, d)| (id, &d.spec)),
            &known.ours,
        );
        plan.delete.extend(known.leftovers.iter().cloned());
        report.planning = planning_started.elapsed();
        if plan.is_empty() {
            self.metrics
                .set_entries(Some(report.desired), known.ours.len(), self.refused.len());
            return Ok(report);
        }

        let mut call_errors = Vec::new();
        // Creates first: they are what a new pod waits for.
        let mut recreate = Vec::new();
        if !plan.create.is_empty() {
            self.create(&plan.create, &desired, &mut report, &mut call_errors)
                .await?;
        }
        if !plan.update.is_empty() {
            self.check_leader()?;
            match self.spire.batch_update(&plan.update).await {
                Err(error) => {
                    self.known = None;
                    call_errors.push(error);
                }
                Ok(outcomes) => {
                    for (spec, outcome) in plan.update.iter().zip(outcomes) {
                        match outcome {
                            Ok(entry) => {
                                report.updated += 1;
                                tracing::info!(entry_id = %spec.id, spiffe_id = %spec.spiffe_id, "updated entry");
                                self.remember(&entry.spec);
                            }
                            // Gone behind our back: create it instead, in this pass.
                            Err(spire::Error::EntryRejected {
                                code: Code::NotFound,
                                ..
                            }) => {
                                self.forget(&spec.id);
                                recreate.push(*spec);
                            }
                            Err(error) => {
                                self.refuse(spec, &desired, "BatchUpdateEntry", &error, &mut report)
                            }
                        }
                    }
                }
            }
        }
        if !recreate.is_empty() {
            tracing::info!(
                entries = recreate.len(),
                "entries to update were gone from the server; creating them"
            );
            self.create(&recreate, &desired, &mut report, &mut call_errors)
                .await?;
        }
        if !plan.delete.is_empty() {
            for batch in plan.delete.chunks(DELETE_BATCH_SIZE) {
                self.check_leader()?;
                match self.spire.batch_delete(batch).await {
                    Err(error) => {
                        self.known = None;
                        call_errors.push(error);
                    }
                    Ok(outcomes) => {
                        for (id, outcome) in batch.iter().zip(outcomes) {
                            match outcome {
                                Ok(_) => {
                                    report.deleted += 1;
                                    tracing::info!(entry_id = %id, "deleted entry");
                                    self.forget(id);
                                }
                                Err(error) => {
                                    report.failed += 1;
                                    self.metrics.spire_error(
                                        "BatchDeleteEntry",
                                        error.code().unwrap_or(Code::Unknown),
                                    );
                                    tracing::warn!(entry_id = %id, error = %crate::telemetry::error_chain(&error), "could not delete entry");
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(known) = &self.known {
            self.metrics
                .set_entries(Some(report.desired), known.ours.len(), self.refused.len());
        }
        report.refused = self.refused.values().filter(|r| r.permanent).count();
        outcome(report, call_errors)
    }

    /// Creates `specs`, [`CREATE_CONCURRENCY`] batches at a time.
    async fn create(
        &mut self,
        specs: &[&EntrySpec],
        desired: &BTreeMap<EntryId, Desired>,
        report: &mut PassReport,
        call_errors: &mut Vec<spire::Error>,
    ) -> Result<(), PassError> {
        let spire = self.spire.clone();
        let leadership = self.leadership.clone();
        // Made as they are sent: a cold start's thousands of creates are not copied.
        // (By index: a closure over the chunks' slices trips rustc's higher-ranked
        // lifetime check for the spawned pass future.)
        let calls = (0..specs.len().div_ceil(CREATE_BATCH_SIZE)).map(|i| {
            let end = ((i + 1) * CREATE_BATCH_SIZE).min(specs.len());
            let batch = specs.get(i * CREATE_BATCH_SIZE..end).unwrap_or_default();
            create_batch(spire.clone(), leadership.clone(), batch)
        });
        let mut batches = futures::stream::iter(calls).buffered(CREATE_CONCURRENCY);
        while let Some((batch, result)) = batches.next().await {
            let outcomes = match result {
                Err(None) => return Err(PassError::NotLeader),
                Err(Some(error)) => {
                    self.known = None;
                    call_errors.push(error);
                    continue;
                }
                Ok(outcomes) => outcomes,
            };
            for (spec, outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    Ok(CreateOutcome::AlreadyExists(existing)) if existing.spec.id != spec.id => {
                        // Someone registered the same workload first; theirs serves it.
                        let error = spire::Error::EntryRejected {
                            id: spec.id.to_string(),
                            code: Code::AlreadyExists,
                            message: format!(
                                "the entry {} owned by someone else already registers this workload",
                                existing.spec.id
                            ),
                        };
                        self.refuse(spec, desired, "BatchCreateEntry", &error, report);
                    }
                    Ok(outcome) => {
                        report.created += 1;
                        tracing::info!(entry_id = %spec.id, spiffe_id = %spec.spiffe_id, parent_id = %spec.parent_id, "created entry");
                        self.registered(spec, desired);
                        self.remember(&outcome.into_entry().spec);
                    }
                    Err(spire::Error::EntryIdTaken { .. }) => {
                        // Our ID holds something else: what we know is stale.
                        self.known = None;
                        report.failed += 1;
                    }
                    Err(error) => self.refuse(spec, desired, "BatchCreateEntry", &error, report),
                }
            }
        }
        Ok(())
    }

    fn remember(&mut self, spec: &EntrySpec) {
        self.refused.remove(&spec.id);
        if let Some(known) = self.known.as_mut() {
            known.ours.insert(spec.id.clone(), Fingerprint::of(spec));
        }
    }

    fn forget(&mut self, id: &EntryId) {
        if let Some(known) = self.known.as_mut() {
            known.ours.remove(id);
            known.leftovers.retain(|l| l != id);
        }
    }

    /// An entry created for a pod: latency and an event on its TaskRun (for a pod found at
    /// startup, only while [`STARTUP_EVENTS`] lasts).
    fn registered(&mut self, spec: &EntrySpec, desired: &BTreeMap<EntryId, Desired>) {
        let Some(owner) = desired.get(&spec.id).and_then(Desired::owner) else {
            return;
        };
        match owner.pod_created {
            Some(created) if created >= self.started_at => {
                let seconds = (k8s_openapi::jiff::Timestamp::now().as_millisecond() as f64
                    / 1000.0)
                    - created as f64;
                self.metrics.observe_registration(seconds.max(0.0));
            }
            _ if self.startup_events == 0 => {
                if !std::mem::replace(&mut self.startup_events_spent, true) {
                    tracing::info!(
                        events = STARTUP_EVENTS,
                        "published as many EntryRegistered events for pods found at startup \
                         as it may; the entries of the others are only logged"
                    );
                }
                return;
            }
            _ => self.startup_events -= 1,
        }
        self.events.send(entry_notice(
            owner,
            "EntryRegistered",
            format!(
                "SPIRE entry {} registered for pod {}: {}",
                spec.id, owner.pod, spec.spiffe_id
            ),
        ));
    }

    /// An entry the server did not take: remembered with its retry time, and reported
    /// (warning and event) when first refused or refused for another reason.
    fn refuse(
        &mut self,
        spec: &EntrySpec,
        desired: &BTreeMap<EntryId, Desired>,
        method: &'static str,
        error: &spire::Error,
        report: &mut PassReport,
    ) {
        let code = error.code().unwrap_or(Code::Unknown);
        self.metrics.spire_error(method, code);
        let message = crate::telemetry::error_chain(error);
        let permanent = permanent(error);
        if !permanent {
            report.failed += 1;
        }
        let config = &self.config;
        let previous = self.refused.remove(&spec.id);
        let repeated = previous
            .as_ref()
            .is_some_and(|p| p.spec == *spec && p.message == message);
        let delay = match (&previous, permanent) {
            (_, true) => config.resync_interval,
            (Some(p), false) if p.spec == *spec => (p.delay * 2).min(config.retry_max),
            _ => config.retry_min,
        };
        let owner = desired.get(&spec.id).and_then(Desired::owner);
        if repeated {
            tracing::debug!(entry_id = %spec.id, error = %message, "entry refused again");
        } else {
            tracing::warn!(
                entry_id = %spec.id,
                spiffe_id = %spec.spiffe_id,
                pod = owner.map_or("", |o| o.pod),
                namespace = owner.map_or("", |o| o.namespace),
                taskrun = owner.map_or("", |o| o.taskrun),
                code = ?code,
                permanent,
                error = %message,
                "the SPIRE server refused an entry; the others go ahead"
            );
            if let Some(owner) = owner {
                self.events.send(Notice {
                    warning: true,
                    ..entry_notice(
                        owner,
                        "EntryRefused",
                        format!(
                            "SPIRE entry {} for pod {} was refused ({code:?}): {message}",
                            spec.id, owner.pod
                        ),
                    )
                });
            }
        }
        self.refused.insert(
            spec.id.clone(),
            Refusal {
                spec: spec.clone(),
                message,
                permanent,
                retry_at: Instant::now() + delay,
                delay,
            },
        );
    }

    /// When the earliest transient refusal is due for a retry.
    fn next_retry(&self) -> Option<Instant> {
        self.refused
            .values()
            .filter(|r| !r.permanent)
            .map(|r| r.retry_at)
            .min()
    }

    /// Runs passes until `shutdown` or the loss of leadership: after every trigger
    /// (bursts merged), when a refused entry is due, every `resync_interval` with a full
    /// list, and after a failed call with jittered exponential backoff.
    pub(crate) async fn run(mut self, trigger: Arc<Notify>, shutdown: CancellationToken) {
        let config = Arc::clone(&self.config);
        let mut delay = config.retry_min;
        let mut failures = 0u32;
        // The entries listed at startup (mod.rs) serve until the first resync: the first
        // pass does not list all of them again seconds later.
        let mut next_resync = if self.known.is_some() {
            Instant::now() + config.resync_interval
        } else {
            Instant::now()
        };
        let mut backoff_until: Option<Instant> = None;
        // No pass yet, so no wait: the first event starts one at once.
        let mut last_pass_end = Instant::now();
        let mut gap = Duration::ZERO;
        loop {
            let wake = [Some(next_resync), backoff_until, self.next_retry()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_resync);
            // After a failed call only the backoff wakes the loop: watch events keep
            // coming during an outage and must not turn retries into a busy loop.
            let triggered = async {
                if backoff_until.is_none() {
                    trigger.notified().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = triggered => {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep_until(last_pass_end + gap) => {}
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            let resync = Instant::now() >= next_resync;
            let span = tracing::info_span!("entry_pass", resync);
            let started = Instant::now();
            // A pass may take minutes (thousands of creates on a cold start); stopping in
            // the middle of one is safe, since the next start repeats it.
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = tracing::Instrument::instrument(self.pass(resync), span) => result,
            };
            last_pass_end = Instant::now();
            if resync {
                next_resync = last_pass_end + config.resync_interval;
            }
            let elapsed = started.elapsed();
            match result {
                Ok(report) => {
                    backoff_until = None;
                    gap = pass_gap(report.planning);
                    if failures > 0 {
                        tracing::info!(after_failures = failures, "entry pass succeeded again");
                    }
                    if report.changed() || report.listed {
                        self.metrics.observe_pass(elapsed.as_secs_f64());
                    }
                    if report.changed() {
                        tracing::info!(
                            desired = report.desired,
                            created = report.created,
                            updated = report.updated,
                            deleted = report.deleted,
                            refused = report.refused,
                            listed = report.listed,
                            planning_ms = report.planning.as_millis() as u64,
                            elapsed_ms = elapsed.as_millis() as u64,
                            "entry pass"
                        );
                    } else if report.listed {
                        tracing::debug!(
                            desired = report.desired,
                            listed = report.listed,
                            list_ms = report.list_ms,
                            elapsed_ms = elapsed.as_millis() as u64,
                            "entry pass"
                        );
                    }
                    failures = 0;
                    delay = config.retry_min;
                }
                Err(PassError::NotLeader) => {
                    tracing::warn!("stopped mid-pass: this replica's leadership lapsed");
                    return;
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
                    backoff_until =
                        Some(Instant::now() + delay.mul_f64(0.5 + fastrand::f64() * 0.5));
                    delay = (delay * 2).min(config.retry_max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planning_bounds_the_pass_rate_to_half_a_core() {
        // A pass that planned for 100 ms (10,000 pods) is followed by 100 ms of rest.
        let heavy = Duration::from_millis(100);
        assert_eq!(pass_gap(heavy), heavy);
        // A cheap one is not held back by a fixed pause, but events a moment apart merge.
        assert_eq!(pass_gap(Duration::from_millis(2)), MIN_GAP);
        assert_eq!(pass_gap(Duration::ZERO), MIN_GAP);
    }

    #[test]
    fn only_names_a_taskrun_can_have_reach_a_request_path() {
        for good in ["build", "build-1.x", "a", &"a".repeat(253)] {
            assert!(dns_subdomain(good), "{good}");
        }
        for bad in [
            "",
            "Build",
            "a..b",
            "-a",
            "a-",
            "?watch=true",
            "a/b",
            "%2e%2e",
            "a b",
            &"a".repeat(254),
        ] {
            assert!(!dns_subdomain(bad), "{bad}");
        }
    }
}
