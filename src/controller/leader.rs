//! One leader among the controller's replicas, by a `coordination.k8s.io/v1` Lease.
//!
//! The entry pass is stateless and idempotent, so two leaders for a moment (a paused
//! process that wakes after losing its lease) do no harm beyond duplicate work: the lease
//! exists to avoid that work and the churn of two replicas with different caches.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

/// Lease timings (those of client-go's defaults).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
}

/// Outcome of one attempt to take or keep the lease.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    HeldByOther(String),
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

async fn try_acquire(api: &Api<Lease>, config: &LeaseConfig) -> Result<Attempt, kube::Error> {
    let seconds = i32::try_from(config.duration.as_secs()).unwrap_or(i32::MAX);
    let existing = api.get_opt(&config.name).await?;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        api.create(&PostParams::default(), &lease).await?;
        return Ok(Attempt::Held);
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
        let valid_for =
            SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(seconds).into());
        renewed.0 + valid_for < Timestamp::now()
    });
    if holder != config.identity && !holder.is_empty() && !expired {
        return Ok(Attempt::HeldByOther(holder));
    }
    if holder != config.identity {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(now());
    // The resourceVersion read above makes this a compare-and-swap: of two replicas
    // racing for an expired lease, one gets a conflict.
    api.replace(&config.name, &PostParams::default(), &lease)
        .await?;
    Ok(Attempt::Held)
}

/// Waits until this replica holds the lease; `false` if `shutdown` came first.
pub async fn acquire(
    client: kube::Client,
    config: &LeaseConfig,
    shutdown: &CancellationToken,
) -> bool {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut last_holder = String::new();
    loop {
        match try_acquire(&api, config).await {
            Ok(Attempt::Held) => {
                tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
                return true;
            }
            Ok(Attempt::HeldByOther(holder)) => {
                if holder != last_holder {
                    tracing::info!(lease = %config.name, leader = %holder, "waiting for the leader's lease to expire");
                    last_holder = holder;
                }
            }
            Err(error) => {
                tracing::debug!(error = %crate::telemetry::error_chain(&error), "lease attempt failed")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(config.renew_every) => {}
        }
    }
}

/// Renews the lease until `shutdown`; cancels `lost` (and returns) if it cannot be
/// renewed within its duration, since another replica may then take over.
pub async fn keep(
    client: kube::Client,
    config: LeaseConfig,
    shutdown: CancellationToken,
    lost: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.renew_every) => {}
        }
        match try_acquire(&api, &config).await {
            Ok(Attempt::Held) => last_renewal = tokio::time::Instant::now(),
            Ok(Attempt::HeldByOther(holder)) => {
                tracing::error!(leader = %holder, "lost the lease to another replica; stopping");
                lost.cancel();
                return;
            }
            Err(error) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&error), "could not renew the lease");
                if last_renewal.elapsed() >= config.duration {
                    tracing::error!("lease not renewed within its duration; stopping");
                    lost.cancel();
                    return;
                }
            }
        }
    }
}
