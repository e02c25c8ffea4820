//! One leader among the controller's replicas, by a `coordination.k8s.io/v1` Lease, with
//! client-go's semantics:
//!
//! 1. A follower judges expiry on its own clock: the lease is free once the follower has
//!    seen its record unchanged for `lease_duration` (or its holder is empty). The other
//!    replica's `renewTime` is never compared with the local clock.
//! 2. The leader renews every `retry_period`, each attempt bounded in time, and stops
//!    acting once `renew_deadline` (shorter than the lease) has passed since the start of
//!    its last successful renewal. Since a follower waits `lease_duration` from when it
//!    saw that renewal, the old leader has stopped before a new one starts, with
//!    `lease_duration - renew_deadline` to spare.
//! 3. Every write to SPIRE first asks [`Leadership::is_valid`], so a leader that was
//!    paused (or whose renewals hang) never acts on a lease it may have lost.
//! 4. On shutdown the leader releases the lease (empty holder), so a follower takes over
//!    at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::LeaseTimings;

/// The Lease and this replica's name in it.
#[derive(Debug, Clone)]
pub(crate) struct LeaseConfig {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// This replica's identity (the pod name).
    pub(crate) identity: String,
    pub(crate) timings: LeaseTimings,
}

/// Whether this replica may act now. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Leadership(Option<Arc<Mutex<Instant>>>);

impl Leadership {
    /// Without leader election: always valid.
    pub(crate) fn unconditional() -> Self {
        Self(None)
    }

    /// Whether the renew deadline of the last successful renewal is still ahead.
    pub(crate) fn is_valid(&self) -> bool {
        match &self.0 {
            None => true,
            Some(until) => until.lock().is_ok_and(|until| Instant::now() < *until),
        }
    }
}

/// Talks to the Lease and remembers, on the local clock, when its record last changed.
struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<(LeaseSpec, Instant)>,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).max(1)
}

impl Elector {
    fn observe(&mut self, spec: LeaseSpec, at: Instant) {
        if self.observed.as_ref().is_none_or(|(seen, _)| *seen != spec) {
            self.observed = Some((spec, at));
        }
    }

    /// One attempt to take or renew the lease; `Ok(false)` while someone else validly
    /// holds it.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let started = Instant::now();
        let identity = self.config.identity.clone();
        let lease_seconds = seconds(self.config.timings.lease_duration);
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let spec = LeaseSpec {
                holder_identity: Some(identity),
                lease_duration_seconds: Some(lease_seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            let created = self.api.create(&PostParams::default(), &lease).await?;
            self.observe(created.spec.unwrap_or_default(), started);
            return Ok(true);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(spec.clone(), started);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if !holder.is_empty() && holder != identity {
            let valid_for = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(lease_seconds)).unwrap_or(0),
            );
            let changed_at = self.observed.as_ref().map_or(started, |(_, at)| *at);
            if started < changed_at + valid_for {
                return Ok(false);
            }
        }
        let mut next = spec;
        if holder != identity {
            next.acquire_time = Some(now());
            next.lease_transitions = Some(next.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(identity);
        next.lease_duration_seconds = Some(lease_seconds);
        next.renew_time = Some(now());
        lease.spec = Some(next);
        // The resourceVersion read above makes this a compare-and-swap: of two replicas
        // racing for a free lease, one gets a conflict.
        let replaced = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        self.observe(replaced.spec.unwrap_or_default(), started);
        Ok(true)
    }

    /// Gives the lease up, if this replica holds it, so that a follower need not wait.
    async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}

/// An attempt's time limit: a hanging connection must not outlast the renew deadline.
fn attempt_limit(timings: &LeaseTimings) -> Duration {
    timings
        .renew_deadline
        .saturating_sub(timings.retry_period)
        .max(Duration::from_secs(1))
}

/// The replica that holds the lease.
pub(crate) struct Leader {
    elector: Elector,
    valid_until: Arc<Mutex<Instant>>,
}

impl Leader {
    /// The handle the loops ask before they act.
    pub(crate) fn leadership(&self) -> Leadership {
        Leadership(Some(Arc::clone(&self.valid_until)))
    }

    /// Renews the lease until `shutdown` (then releases it); cancels `lost` and returns
    /// once it cannot be renewed within the renew deadline or another replica holds it.
    pub(crate) async fn keep(mut self, shutdown: CancellationToken, lost: CancellationToken) {
        let timings = self.elector.config.timings;
        let mut failing = false;
        loop {
            let pause = timings.retry_period.mul_f64(0.8 + fastrand::f64() * 0.2);
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.release_on_shutdown().await;
                    return;
                }
                () = tokio::time::sleep(pause) => {}
            }
            let started = Instant::now();
            let until = self.valid_until.lock().map(|u| *u).unwrap_or(started);
            let limit = attempt_limit(&timings).min(until.saturating_duration_since(started));
            let attempt = tokio::time::timeout(limit, self.elector.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => {
                    if let Ok(mut until) = self.valid_until.lock() {
                        *until = started + timings.renew_deadline;
                    }
                    if failing {
                        tracing::info!(lease = %self.elector.config.name, "renewed the lease again");
                        failing = false;
                    }
                    continue;
                }
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %self.elector.config.name, "another replica holds the lease; stopping");
                    lost.cancel();
                    return;
                }
                Ok(Err(error)) => {
                    if !failing {
                        tracing::warn!(lease = %self.elector.config.name, error = %crate::telemetry::error_chain(&error), "could not renew the lease; retrying");
                    }
                    failing = true;
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!(lease = %self.elector.config.name, limit = ?limit, "renewing the lease got no answer in time; retrying");
                    }
                    failing = true;
                }
            }
            if Instant::now() >= until {
                tracing::warn!(lease = %self.elector.config.name, renew_deadline = ?timings.renew_deadline,
                    "lease not renewed within the renew deadline; stopped acting");
                lost.cancel();
                return;
            }
        }
    }

    async fn release_on_shutdown(&mut self) {
        let limit = attempt_limit(&self.elector.config.timings).min(Duration::from_secs(3));
        match tokio::time::timeout(limit, self.elector.release()).await {
            Ok(Ok(())) => tracing::info!(lease = %self.elector.config.name, "released the lease"),
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&error), "could not release the lease");
            }
            Err(_) => tracing::warn!("releasing the lease got no answer in time"),
        }
    }
}

/// Waits until this replica holds the lease; `None` if `shutdown` came first.
pub(crate) async fn acquire(
    client: kube::Client,
    config: LeaseConfig,
    shutdown: &CancellationToken,
) -> Option<Leader> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let timings = config.timings;
    let mut elector = Elector {
        api,
        config,
        observed: None,
    };
    let mut last_holder = String::new();
    let mut failing = false;
    loop {
        let started = Instant::now();
        match tokio::time::timeout(attempt_limit(&timings), elector.try_acquire_or_renew()).await {
            Ok(Ok(true)) => {
                tracing::info!(lease = %elector.config.name, identity = %elector.config.identity, "became leader");
                return Some(Leader {
                    elector,
                    valid_until: Arc::new(Mutex::new(started + timings.renew_deadline)),
                });
            }
            Ok(Ok(false)) => {
                failing = false;
                let holder = elector
                    .observed
                    .as_ref()
                    .and_then(|(s, _)| s.holder_identity.clone())
                    .unwrap_or_default();
                if holder != last_holder {
                    tracing::info!(lease = %elector.config.name, leader = %holder, "waiting for the leader's lease to expire");
                    last_holder = holder;
                }
            }
            Ok(Err(error)) => {
                if !failing {
                    tracing::warn!(lease = %elector.config.name, error = %crate::telemetry::error_chain(&error), "could not read or take the lease; retrying");
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!(lease = %elector.config.name, "the lease attempt got no answer in time; retrying");
                }
                failing = true;
            }
        }
        let pause = timings.retry_period.mul_f64(0.8 + fastrand::f64() * 0.2);
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_ends_before_the_renew_deadline() {
        let t = LeaseTimings::default();
        assert_eq!(attempt_limit(&t), Duration::from_secs(8));
        assert!(attempt_limit(&t) < t.renew_deadline && t.renew_deadline < t.lease_duration);
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_lapses_at_the_renew_deadline_without_renewal() {
        let until = Arc::new(Mutex::new(Instant::now() + Duration::from_secs(10)));
        let leadership = Leadership(Some(Arc::clone(&until)));
        assert!(leadership.is_valid());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(leadership.is_valid());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!leadership.is_valid());
        assert!(Leadership::unconditional().is_valid());
    }
}
