//! The controller: a SPIRE registration entry for every running TaskRun pod, removed when
//! no longer needed, and a verdict on every completed TaskRun.
//!
//! Correctness needs no memory of its own: each pass lists the entries it owns (ID
//! prefix and hint) and compares them with what the watch caches say the pods need, so a
//! crash at any instant loses nothing and leaks nothing; the next pass repairs it.

mod desired;
mod entries;
mod leader;
mod plan;
mod trust_bundle;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServerConnection};
use crate::spire::{self, ClientConfig, Endpoint};

pub use desired::TASKRUN_LABEL;
pub use verdict::{CONDITION_TYPE, REASON_FAILED, REASON_VERIFIED};

/// How long shutdown waits for the loops to stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Another replica took the lease; this one stops so that it restarts as a follower.
    #[error("lost the leader lease")]
    LostLease,
    /// The server's SPIFFE ID in the configuration is not one.
    #[error("spire-server-id {0:?} is not a SPIFFE ID")]
    ServerId(String),
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

fn endpoint(config: &Config) -> Result<(Endpoint, ClientConfig), Error> {
    let client_config = ClientConfig::default().call_timeout(config.call_timeout);
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

/// Runs the controller until `shutdown` is cancelled.
///
/// # Errors
/// When the SPIRE endpoint is misconfigured. Transient failures (SPIRE or the API server
/// unreachable, watches cut) are retried with backoff and never end it.
pub async fn run(
    config: Config,
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    tracing::info!(config = ?config, "starting controller");
    let Some(namespace) = config.leader_election_namespace.clone() else {
        return run_as_leader(config, client, shutdown).await;
    };
    let lease = leader::LeaseConfig {
        namespace,
        name: "tekton-spire-controller".into(),
        identity: identity(),
        duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(2),
    };
    if !leader::acquire(client.clone(), &lease, &shutdown).await {
        return Ok(());
    }
    let lost = CancellationToken::new();
    let inner = shutdown.child_token();
    let keeper = tokio::spawn(leader::keep(
        client.clone(),
        lease,
        shutdown.clone(),
        lost.clone(),
    ));
    let stop_on_loss = {
        let (lost, inner) = (lost.clone(), inner.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            inner.cancel();
        })
    };
    let result = run_as_leader(config, client, inner).await;
    stop_on_loss.abort();
    keeper.abort();
    if lost.is_cancelled() {
        return Err(Error::LostLease);
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
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let config = Arc::new(config);
    let Some(spire) = connect_spire(&config, &shutdown).await? else {
        return Ok(());
    };
    let trigger = Arc::new(Notify::new());
    let taskruns = taskrun_resource();

    let pod_writer: Writer<Pod> = Writer::default();
    let pods = pod_writer.as_reader();
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().labels(TASKRUN_LABEL),
        )
        .default_backoff()
        .modify(trim),
    );
    let taskrun_writer: Writer<DynamicObject> = Writer::new(taskruns.clone());
    let taskrun_store = taskrun_writer.as_reader();
    let taskrun_events = reflector::reflector(
        taskrun_writer,
        watcher(
            Api::<DynamicObject>::all_with(client.clone(), &taskruns),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(trim),
    );

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(forward_events(
        pod_events,
        "pods",
        Arc::clone(&trigger),
        shutdown.clone(),
    ));
    tasks.spawn(forward_events(
        taskrun_events,
        "taskruns",
        Arc::clone(&trigger),
        shutdown.clone(),
    ));

    // Never plan on a cache that has not been filled: an empty cache would mean
    // "delete every entry".
    tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        ready = async { tokio::try_join!(pods.wait_until_ready(), taskrun_store.wait_until_ready()) } => {
            if ready.is_err() {
                return Ok(());
            }
        }
    }
    tracing::info!("watch caches filled; reconciling entries");
    let sync = entries::EntrySync {
        spire,
        pods,
        taskruns: taskrun_store,
        config: Arc::clone(&config),
    };
    tasks.spawn(sync.run(Arc::clone(&trigger), shutdown.clone()));
    tasks.spawn(verdict::run(
        client,
        taskruns,
        Arc::clone(&config),
        shutdown.clone(),
    ));

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

/// Drops what no pass reads before an object enters a cache: managed fields and the
/// last-applied annotation are often the largest part of a small object.
fn trim<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Drives a reflector stream (which fills its cache) and turns every event into a
/// trigger for the entry pass. Watch errors are retried by the stream's backoff.
async fn forward_events<K>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    what: &'static str,
    trigger: Arc<Notify>,
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
            Some(Ok(_)) => {
                if failing {
                    tracing::info!(watch = what, "watch recovered");
                    failing = false;
                }
                trigger.notify_one();
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
