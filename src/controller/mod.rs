//! The controller: a SPIRE registration entry for every running TaskRun pod, removed when
//! no longer needed, and a verdict on every completed TaskRun that asked for one.
//!
//! Correctness needs no memory of its own: passes compare what the watch caches say the
//! pods need with the entries listed from the server (ID prefix alone), so a crash at any
//! instant loses nothing and leaks nothing; the next pass repairs it. Entries also carry
//! an expiry, so that SPIRE prunes them should the controller be uninstalled.
//!
//! The two loops can run in separate processes under separate service accounts (the
//! default deployment): the entry loop needs SPIRE admin rights and only reads
//! Kubernetes; the verdict loop needs no SPIRE rights but writes TaskRun status.

mod desired;
mod entries;
mod events;
mod initial_list;
mod leader;
mod metrics;
mod objects;
mod plan;
mod protobuf_pods;
mod trust_bundle;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServerConnection, VERDICT_OPT_IN_LABEL};
use crate::spire::{self, ClientConfig, Endpoint};

pub use desired::TASKRUN_LABEL;
pub use verdict::{CONDITION_TYPE, REASON_FAILED, REASON_VERIFIED};

use leader::{Leadership, LeaseConfig};
use metrics::Metrics;
use objects::{CachedPod, CachedTaskRun, compact_pod, keep_labels};

/// How long the early entry pass (entries.rs) may take: it reads at most 100 TaskRuns and
/// creates at most 100 entries, or else creates entries until the TaskRun cache has
/// filled; past this the first full pass does the rest.
const EARLY_PASS_DEADLINE: Duration = Duration::from_secs(30);

/// TaskRuns of the initial list held for the early entry pass while it waits on the
/// server; more arrive than it can register (the server writes some 30 entries a
/// second), and those left out wait for the first full pass.
const EARLY_PASS_ARRIVALS: usize = 512;

/// How long shutdown waits for the loops to stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The lease of the entry loop (alone or with the verdict loop).
pub const ENTRIES_LEASE: &str = "tekton-spire-controller";
/// The lease of a verdict loop that runs alone.
pub const VERDICTS_LEASE: &str = "tekton-spire-verdict";

/// Which loops this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Components {
    /// The SPIRE entries alone (needs SPIRE admin rights; reads Kubernetes only).
    Entries,
    /// The verdicts alone (needs `taskruns/status` patch for conditions; no SPIRE rights).
    Verdicts,
    /// Both, sharing one TaskRun cache, under one service account with both rights.
    All,
}

impl Components {
    fn entries(self) -> bool {
        matches!(self, Components::Entries | Components::All)
    }
    fn verdicts(self) -> bool {
        matches!(self, Components::Verdicts | Components::All)
    }
}

/// Why the controller stopped. Configuration errors are not worth retrying.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SPIRE server endpoint is misconfigured (retrying cannot help).
    #[error("cannot use the SPIRE server endpoint {endpoint}")]
    Spire {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: spire::Error,
    },
    /// This replica lost the lease (or could not renew it in time); it stops so that it
    /// restarts as a follower.
    #[error("lost the leader lease")]
    LostLease,
    /// The server's SPIFFE ID in the configuration is not one.
    #[error("spire-server-id {0:?} is not a SPIFFE ID")]
    ServerId(String),
    /// The metrics address cannot be bound.
    #[error("cannot serve metrics on {address}")]
    Metrics {
        /// The address.
        address: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The API resource of `tekton.dev/v1` TaskRuns.
pub fn taskrun_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: "tekton.dev/v1".into(),
        kind: "TaskRun".into(),
        plural: "taskruns".into(),
    }
}

/// The Kubernetes client the controller runs with: from the environment (in a pod, or
/// `KUBECONFIG`), its pod watches in protobuf (protobuf_pods.rs).
///
/// # Errors
/// When no configuration is found or it cannot be used.
pub async fn kube_client() -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&protobuf_pods::ProtobufPodsLayer)
        .build())
}

fn endpoint(config: &Config) -> Result<(Endpoint, ClientConfig), Error> {
    let client_config = ClientConfig::default()
        .call_timeout(config.call_timeout)
        .keepalive(config.spire_keepalive)
        .reconnect_after(config.spire_reconnect_after);
    match &config.server {
        ServerConnection::AdminSocket(path) => {
            Ok((Endpoint::AdminSocket(path.clone()), client_config))
        }
        ServerConnection::Mtls {
            address,
            server_id,
            workload_socket,
        } => Ok((
            Endpoint::Tcp {
                addr: address.clone(),
                server_id: server_id
                    .parse()
                    .map_err(|_| Error::ServerId(server_id.clone()))?,
            },
            client_config.workload_api(workload_socket.clone()),
        )),
    }
}

/// Connects to the SPIRE server, retrying with backoff while it is unreachable.
async fn connect_spire(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<Option<spire::Client>, Error> {
    let (endpoint, client_config) = endpoint(config)?;
    let mut delay = config.retry_min;
    let mut attempts = 0u32;
    loop {
        match spire::Client::connect(endpoint.clone(), client_config.clone()).await {
            Ok(client) => return Ok(Some(client)),
            Err(source) if !source.is_retryable() => {
                return Err(Error::Spire {
                    endpoint: endpoint.to_string(),
                    source,
                });
            }
            Err(error) => {
                attempts += 1;
                if attempts == 1 {
                    tracing::warn!(endpoint = %endpoint, error = %crate::telemetry::error_chain(&error), "SPIRE server unreachable; retrying");
                }
                let sleep = delay.mul_f64(0.5 + fastrand::f64() * 0.5);
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(sleep) => {}
                }
                delay = (delay * 2).min(config.retry_max);
            }
        }
    }
}

/// Runs `components` until `shutdown` is cancelled.
///
/// # Errors
/// When the SPIRE endpoint or the metrics address is misconfigured, or this replica
/// lost the lease. Transient failures (SPIRE or the API server unreachable, watches cut)
/// are retried with backoff and never end it.
pub async fn run(
    config: Config,
    components: Components,
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    tracing::info!(config = ?config, components = ?components, "starting controller");
    if components.verdicts() && config.accept_tekton_format {
        tracing::warn!(
            "accept-tekton-format is on: verdicts accept Tekton's TEP-0089 format, which signs no \
             result names (two results can swap values and signatures), binds no TaskRun UID \
             (a later TaskRun of the same name can replay), joins array values with an \
             ambiguous comma and carries the leaf certificate alone (docs/tekton-format.md)"
        );
    }
    let metrics = Metrics::new();
    let server = match config.metrics_address {
        Some(address) => Some(
            metrics::serve(address, metrics.clone(), shutdown.clone())
                .await
                .map_err(|source| Error::Metrics { address, source })?,
        ),
        None => None,
    };
    let result = run_elected(config, components, client, shutdown, metrics).await;
    if let Some(server) = server {
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    }
    result
}

async fn run_elected(
    config: Config,
    components: Components,
    client: kube::Client,
    shutdown: CancellationToken,
    metrics: Metrics,
) -> Result<(), Error> {
    let Some(namespace) = config.leader_election_namespace.clone() else {
        return run_as_leader(
            config,
            components,
            client,
            shutdown,
            Leadership::unconditional(),
            metrics,
        )
        .await;
    };
    let lease = LeaseConfig {
        namespace,
        name: if components == Components::Verdicts {
            VERDICTS_LEASE
        } else {
            ENTRIES_LEASE
        }
        .into(),
        identity: identity(),
        timings: config.leader_election,
    };
    let lease_name = lease.name.clone();
    // A follower is ready: it serves nothing but is healthy and takes over when needed.
    metrics.set_ready(true);
    metrics.set_leader(&lease_name, false);
    let Some(leader) = leader::acquire(client.clone(), lease, &shutdown).await else {
        return Ok(());
    };
    metrics.set_leader(&lease_name, true);
    let lost = CancellationToken::new();
    let inner = shutdown.child_token();
    let leadership = leader.leadership();
    let keeper = tokio::spawn(leader.keep(shutdown.clone(), lost.clone()));
    let stop_on_loss = {
        let (lost, inner) = (lost.clone(), inner.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            inner.cancel();
        })
    };
    let result = run_as_leader(
        config,
        components,
        client,
        inner,
        leadership,
        metrics.clone(),
    )
    .await;
    stop_on_loss.abort();
    metrics.set_leader(&lease_name, false);
    if lost.is_cancelled() {
        keeper.abort();
        return Err(Error::LostLease);
    }
    // Shutting down: the keeper releases the lease so that a follower takes over at once.
    if tokio::time::timeout(Duration::from_secs(5), keeper)
        .await
        .is_err()
    {
        tracing::warn!("the lease was not released within 5 s");
    }
    result
}

/// This replica's name for the lease: the pod name (`POD_NAME`, from the downward API),
/// else the host name.
fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("tekton-spire-{}", std::process::id()))
}

async fn run_as_leader(
    config: Config,
    components: Components,
    client: kube::Client,
    shutdown: CancellationToken,
    leadership: Leadership,
    metrics: Metrics,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let trigger = Arc::new(Notify::new());
    let events = events::Events::start(client.clone(), shutdown.clone());
    let mut tasks = tokio::task::JoinSet::new();

    // One TaskRun cache for both loops, trimmed while parsed (objects.rs). A verdict loop
    // alone that judges by label only watches the labelled TaskRuns.
    let taskrun_writer: Writer<CachedTaskRun> = Writer::default();
    let taskrun_store = taskrun_writer.as_reader();
    let taskrun_watch = if !components.entries() && config.verdict_namespaces.is_empty() {
        watcher::Config::default().labels(&format!("{VERDICT_OPT_IN_LABEL}=true"))
    } else {
        watcher::Config::default()
    };
    let taskrun_api = Api::<CachedTaskRun>::all(client.clone());
    let pod_api = Api::<CachedPod>::all(client.clone());
    // Completed pods leave the cache: the API server sends them as deleted once they no
    // longer match the field selector.
    let pod_watch = watcher::Config::default()
        .labels(TASKRUN_LABEL)
        .fields("status.phase!=Succeeded,status.phase!=Failed");
    let (taskrun_watch, pod_watch) = tokio::join!(
        initial_list::choose(&taskrun_api, "taskruns", taskrun_watch),
        async {
            if components.entries() {
                initial_list::choose(&pod_api, "pods", pod_watch).await
            } else {
                pod_watch
            }
        },
    );
    let taskrun_events = reflector::reflector(
        taskrun_writer,
        watcher(taskrun_api, taskrun_watch)
            .default_backoff()
            .modify(|tr| keep_labels(&mut tr.metadata, &[VERDICT_OPT_IN_LABEL])),
    );
    let (verdict_tx, verdict_rx) = futures::channel::mpsc::unbounded::<CachedTaskRun>();
    let to_verdicts = components.verdicts().then(|| {
        let config = Arc::clone(&config);
        let tx = verdict_tx.clone();
        move |tr: &CachedTaskRun| {
            if tr.completed() && verdict::opted_in(tr, &config) {
                let _ = tx.unbounded_send(tr.clone());
            }
        }
    });
    drop(verdict_tx);
    let (arrivals_tx, arrivals) = tokio::sync::mpsc::channel(EARLY_PASS_ARRIVALS);
    tasks.spawn(forward_events(
        taskrun_events,
        "taskruns",
        components.entries().then(|| Arc::clone(&trigger)),
        to_verdicts,
        // Only what could give a pod an entry, so that completed TaskRuns (most of a
        // cluster's) do not crowd the channel.
        components
            .entries()
            .then_some((arrivals_tx, |tr: &CachedTaskRun| {
                tr.status.pod_name.is_some() && !tr.completed()
            })),
        shutdown.clone(),
    ));

    let pod_store = if components.entries() {
        let pod_writer: Writer<CachedPod> = Writer::default();
        let pod_store = pod_writer.as_reader();
        let pod_events = reflector::reflector(
            pod_writer,
            watcher(pod_api, pod_watch)
                .default_backoff()
                .modify(compact_pod),
        );
        tasks.spawn(forward_events(
            pod_events,
            "pods",
            Some(Arc::clone(&trigger)),
            None::<fn(&CachedPod)>,
            None,
            shutdown.clone(),
        ));
        Some(pod_store)
    } else {
        None
    };

    // Connect to SPIRE and list its entries while the caches fill.
    let sync = async {
        let Some(pods) = pod_store.clone() else {
            return Ok(None);
        };
        let Some(spire) = connect_spire(&config, &shutdown).await? else {
            return Ok(None);
        };
        let observer_metrics = metrics.clone();
        let spire = spire.with_observer(Arc::new(move |method, code| {
            observer_metrics.spire_call(method, code);
        }));
        let mut sync =
            entries::EntrySync::new(spire, pods, taskrun_store.clone(), Arc::clone(&config));
        sync.leadership = leadership.clone();
        sync.metrics = metrics.clone();
        sync.events = events.clone();
        if let Err(error) = sync.list().await {
            tracing::debug!(error = %crate::telemetry::error_chain(&error), "listing entries at startup failed; the first pass lists again");
        }
        Ok::<_, Error>(Some(sync))
    };
    let pods_filled = async {
        match &pod_store {
            Some(store) => store.wait_until_ready().await,
            None => Ok(()),
        }
    };
    let (sync, pods_filled) = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        both = async { tokio::join!(sync, pods_filled) } => both,
    };
    let mut sync = sync?;
    if pods_filled.is_err() || shutdown.is_cancelled() {
        return Ok(());
    }
    // Never plan deletes on a cache that has not been filled (an empty cache would mean
    // "delete every entry"); creates for pods without an entry need not wait for the
    // TaskRuns, which fill more slowly.
    if let Some(sync) = sync.as_mut() {
        let started = tokio::time::Instant::now();
        // Bounded, so that nothing a pod's owner reference says holds back the full
        // passes; what it did not create, the first of them does.
        let early = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            early = tokio::time::timeout(EARLY_PASS_DEADLINE, sync.early_pass(&client, arrivals)) => early,
        };
        match early {
            Err(_) => {
                // Creates cut off mid-call may have been made unrecorded.
                sync.forget_known();
                tracing::warn!(
                    deadline = ?EARLY_PASS_DEADLINE,
                    "the early entry pass did not finish in time; the first full pass completes it"
                );
            }
            Ok(Ok(report)) => tracing::info!(
                created = report.created,
                failed = report.failed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "early entry pass"
            ),
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&error), "early entry pass failed; the first full pass repeats it");
            }
        }
    }
    let ready = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        ready = taskrun_store.wait_until_ready() => ready,
    };
    if ready.is_err() || shutdown.is_cancelled() {
        return Ok(());
    }
    tracing::info!("watch caches filled; reconciling entries");
    metrics.set_ready(true);

    if let Some(sync) = sync {
        tasks.spawn(sync.run(Arc::clone(&trigger), shutdown.clone()));
    }
    if components.verdicts() {
        tasks.spawn(verdict::run(
            client,
            taskrun_store,
            verdict_rx,
            Arc::clone(&config),
            events,
            metrics,
            shutdown.clone(),
        ));
    }

    shutdown.cancelled().await;
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            "background tasks did not stop within {SHUTDOWN_TIMEOUT:?}; abandoning them"
        );
    }
    Ok(())
}

/// Where the objects of a first initial list go as well, and which of them.
type InitialTap<K> = (tokio::sync::mpsc::Sender<K>, fn(&K) -> bool);

/// Drives a reflector stream (which fills its cache) and turns every event into a
/// trigger for the entry pass and, for each changed object, a call of `each`. Watch
/// errors are retried by the stream's backoff. The objects of the first initial list that
/// `initial`'s function accepts go to its channel as well, as far as it has room, and the
/// channel is closed when that list ends.
async fn forward_events<K: kube::Resource + Clone>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    what: &'static str,
    trigger: Option<Arc<Notify>>,
    each: Option<impl Fn(&K)>,
    mut initial: Option<InitialTap<K>>,
    shutdown: CancellationToken,
) {
    let mut events = std::pin::pin!(events);
    let mut failing = false;
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = events.next() => next,
        };
        match next {
            None => return,
            Some(Ok(event)) => {
                if failing {
                    tracing::info!(watch = what, "watch recovered");
                    failing = false;
                }
                if let Some(each) = &each {
                    match &event {
                        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => each(o),
                        _ => {}
                    }
                }
                match (&event, &initial) {
                    (watcher::Event::InitApply(o), Some((tx, wanted))) if wanted(o) => {
                        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                            tx.try_send(o.clone())
                        {
                            initial = None;
                        }
                    }
                    (watcher::Event::InitDone, Some(_)) => initial = None,
                    _ => {}
                }
                if let Some(trigger) = &trigger {
                    trigger.notify_one();
                }
            }
            Some(Err(error)) => {
                if !failing {
                    tracing::warn!(watch = what, error = %crate::telemetry::error_chain(&error), "watch failed; retrying with backoff");
                    failing = true;
                }
            }
        }
    }
}
