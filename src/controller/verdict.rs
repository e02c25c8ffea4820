//! The verdict on a completed TaskRun: its signed results are verified with the
//! verifier library and the outcome is recorded as the `SignedResultsVerified` condition
//! (Tekton's condition type and reasons), for people and policies to see.
//!
//! The condition is advisory: whoever can write the status can write it too, so whoever
//! produces provenance runs the verifier itself. To keep it honest the verdict is
//! recomputed on every change of the TaskRun and rewritten when it differs, so a status
//! edited after a "True" verdict turns "False" again.
//!
//! Only TaskRuns that opted in are judged (a namespace in `verdict-namespaces`, or the
//! label `tekton-spire.dev/verify: "true"`), a few at a time. The loop is fed from the
//! trimmed TaskRun cache the entry loop also reads, and fetches the full TaskRun only to
//! judge it. With `verdicts: event` it writes events alone and needs no write access to
//! TaskRuns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use serde_json::{Value, json};
use tekton_spire_verify::{Format, Policy, TaskRun, TrustBundle, verify};
use tokio_util::sync::CancellationToken;

use super::events::{Events, Notice, taskrun_ref};
use super::metrics::Metrics;
use super::objects::CachedTaskRun;
use super::trust_bundle::{BundleError, Bundles};
use crate::config::{Config, VERDICT_OPT_IN_LABEL, VerdictOutput};

/// Tekton's condition type.
pub const CONDITION_TYPE: &str = "SignedResultsVerified";
/// Tekton's reason for verified results.
pub const REASON_VERIFIED: &str = "TaskRunResultsVerified";
/// Tekton's reason for rejected results.
pub const REASON_FAILED: &str = "TaskRunResultsVerificationFailed";
/// Longest one TaskRun's verdict may take. The verifier reads every input up to its size
/// limit in well under this (docs/measurements.md); the budget is the backstop that keeps
/// one hostile status from holding up the verdicts of every other TaskRun.
pub(crate) const VERDICT_BUDGET: Duration = Duration::from_secs(2);

/// Why a verdict could not be recorded; all are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerdictError {
    #[error("no trust bundle for the verdict")]
    Bundle(#[from] BundleError),
    #[error("cannot patch the TaskRun's status")]
    Patch(#[source] kube::Error),
    #[error("cannot read the TaskRun")]
    Get(#[source] kube::Error),
}

struct Context {
    api_resource: ApiResource,
    bundles: Bundles,
    client: kube::Client,
    config: Arc<Config>,
    events: Events,
    metrics: Metrics,
    /// With `verdicts: event`: the last verdict published per TaskRun UID, so that an
    /// unchanged verdict is not published again.
    published: Mutex<HashMap<String, (String, String)>>,
    /// The resourceVersion our own last status patch produced, per TaskRun UID: the
    /// change it causes needs no second judgement.
    written: Mutex<HashMap<String, String>>,
}

/// Whether the TaskRun asked to be judged.
pub(crate) fn opted_in(taskrun: &CachedTaskRun, config: &Config) -> bool {
    taskrun
        .labels()
        .get(VERDICT_OPT_IN_LABEL)
        .map(String::as_str)
        == Some("true")
        || taskrun
            .namespace()
            .is_some_and(|ns| config.verdict_namespaces.contains(&ns))
}

/// The condition the TaskRun should carry, or `None` while it has not completed.
pub(crate) fn verdict(
    taskrun: &DynamicObject,
    bundle: TrustBundle,
    config: &Config,
) -> Option<Value> {
    let status = taskrun.data.get("status")?;
    if status.get("completionTime").is_none_or(Value::is_null) {
        return None;
    }
    let document = serde_json::to_vec(taskrun).unwrap_or_default();
    let (status, reason, message) = match TaskRun::parse(&document) {
        Err(e) => (
            "False",
            REASON_FAILED,
            format!(
                "the TaskRun cannot be read: {}",
                crate::telemetry::error_chain(&e)
            ),
        ),
        Ok(parsed) => match verify(&parsed, &policy(config, bundle)) {
            Ok(v) => (
                "True",
                REASON_VERIFIED,
                format!(
                    "{} result(s) signed by {} ({} format)",
                    v.results().len(),
                    v.spiffe_id(),
                    v.format()
                ),
            ),
            Err(rejection) => (
                "False",
                REASON_FAILED,
                format!("[{}] {rejection}", rejection.code()),
            ),
        },
    };
    Some(json!({"type": CONDITION_TYPE, "status": status, "reason": reason, "message": message}))
}

/// Runs `work` (a verdict) on the blocking pool and waits at most `budget` for it, so that
/// the reconciles of other TaskRuns, polled by the same task, go on meanwhile. `None` when
/// the budget ran out; the work then finishes in the background and is dropped.
pub(crate) async fn within_budget<T: Send + 'static>(
    budget: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::time::timeout(budget, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(done)) => Some(done),
        // The verifier does not panic; if it did, that TaskRun gets no verdict.
        Ok(Err(_)) | Err(_) => None,
    }
}

/// The verdict of [`verdict`], within [`VERDICT_BUDGET`]: a TaskRun whose verdict takes
/// longer is judged not verified.
async fn verdict_within_budget(
    taskrun: Arc<DynamicObject>,
    bundle: TrustBundle,
    config: Arc<Config>,
) -> Option<Value> {
    let completed = taskrun
        .data
        .pointer("/status/completionTime")
        .is_some_and(|t| !t.is_null());
    match within_budget(VERDICT_BUDGET, move || verdict(&taskrun, bundle, &config)).await {
        Some(wanted) => wanted,
        None => completed.then(|| {
            json!({
                "type": CONDITION_TYPE, "status": "False", "reason": REASON_FAILED,
                "message": format!(
                    "[verdict.budget] verification did not finish within {} s",
                    VERDICT_BUDGET.as_secs()
                ),
            })
        }),
    }
}

/// The seal alone unless Tekton's format is accepted by configuration.
fn policy(config: &Config, bundle: TrustBundle) -> Policy {
    let policy = Policy::new(config.trust_domain.clone(), bundle);
    if config.accept_tekton_format {
        policy
    } else {
        policy.require_format(Format::Seal)
    }
}

async fn reconcile(cached: Arc<CachedTaskRun>, ctx: Arc<Context>) -> Result<Action, VerdictError> {
    if !cached.completed() || !opted_in(&cached, &ctx.config) {
        return Ok(Action::await_change());
    }
    let ours = ctx.written.lock().is_ok_and(|w| {
        cached
            .uid()
            .and_then(|uid| w.get(&uid).cloned())
            .is_some_and(|rv| Some(rv) == cached.resource_version())
    });
    if ours {
        return Ok(Action::await_change());
    }
    let bundle = ctx.bundles.current(&ctx.config.trust_domain)?;
    let namespace = cached.namespace().unwrap_or_default();
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.api_resource);
    // The cache holds a trimmed copy; the verifier reads the whole TaskRun.
    let Some(taskrun) = api
        .get_opt(&cached.name_any())
        .await
        .map_err(VerdictError::Get)?
    else {
        return Ok(Action::await_change());
    };
    let taskrun = Arc::new(taskrun);
    let Some(mut wanted) =
        verdict_within_budget(Arc::clone(&taskrun), bundle, Arc::clone(&ctx.config)).await
    else {
        return Ok(Action::await_change());
    };
    let field = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let regarding = taskrun_ref(
        &namespace,
        &taskrun.name_any(),
        &taskrun.uid().unwrap_or_default(),
    );
    if ctx.config.verdicts == VerdictOutput::Event {
        let key = taskrun.uid().unwrap_or_default();
        let value = (field(&wanted, "reason"), field(&wanted, "message"));
        let fresh = ctx
            .published
            .lock()
            .map(|mut p| p.insert(key, value.clone()).as_ref() != Some(&value))
            .unwrap_or(true);
        if fresh {
            publish(&ctx, regarding, &wanted);
        }
        return Ok(Action::await_change());
    }
    let conditions: Vec<Value> = taskrun
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let current = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE));
    let same = current.is_some_and(|c| {
        ["status", "reason", "message"]
            .iter()
            .all(|k| c.get(*k) == wanted.get(*k))
    });
    if same {
        return Ok(Action::await_change());
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    wanted["lastTransitionTime"] = json!(
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
    let mut updated: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c.get("type").and_then(Value::as_str) != Some(CONDITION_TYPE))
        .collect();
    updated.push(wanted.clone());
    // The resourceVersion makes the merge patch conditional: if the TaskRun changed since
    // it was read, the patch fails with a conflict and the next reconcile sees the change.
    let patch = json!({
        "metadata": {"resourceVersion": taskrun.resource_version()},
        "status": {"conditions": updated},
    });
    let patched = api
        .patch_status(
            &taskrun.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(VerdictError::Patch)?;
    if let (Some(uid), Some(rv), Ok(mut written)) = (
        patched.uid(),
        patched.resource_version(),
        ctx.written.lock(),
    ) {
        written.insert(uid, rv);
    }
    // An event too, for `kubectl describe taskrun`; losing it loses nothing.
    publish(&ctx, regarding, &wanted);
    tracing::info!(
        taskrun = %taskrun.name_any(), namespace = %namespace,
        verdict = %wanted["status"], reason = %wanted["reason"], message = %wanted["message"],
        "recorded verdict"
    );
    Ok(Action::await_change())
}

fn publish(ctx: &Context, regarding: k8s_openapi::api::core::v1::ObjectReference, wanted: &Value) {
    let reason = wanted["reason"].as_str().unwrap_or_default();
    ctx.metrics.verdict(reason);
    ctx.events.send(Notice {
        regarding,
        related: None,
        warning: wanted["status"] != "True",
        reason: if reason == REASON_VERIFIED {
            REASON_VERIFIED
        } else {
            REASON_FAILED
        },
        action: "VerifySignedResults",
        note: wanted["message"].as_str().unwrap_or_default().to_owned(),
    });
}

fn error_policy(taskrun: Arc<CachedTaskRun>, error: &VerdictError, _ctx: Arc<Context>) -> Action {
    let conflict = matches!(error, VerdictError::Patch(kube::Error::Api(s)) if s.code == 409);
    if conflict {
        tracing::debug!(taskrun = %taskrun.name_any(), "status changed while recording the verdict; retrying");
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(taskrun = %taskrun.name_any(), error = %crate::telemetry::error_chain(error), "could not record the verdict");
    Action::requeue(Duration::from_secs(5).mul_f64(0.5 + fastrand::f64()))
}

/// Runs the verdict controller until `shutdown`: `trigger` carries every change of a
/// TaskRun in `store` (the shared cache).
pub(crate) async fn run(
    client: kube::Client,
    store: Store<CachedTaskRun>,
    trigger: futures::channel::mpsc::UnboundedReceiver<CachedTaskRun>,
    config: Arc<Config>,
    events: Events,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let Some(source) = &config.trust_bundle else {
        tracing::info!(
            "neither trust-bundle-path nor spire-socket-path is set: no verdicts are recorded on TaskRuns"
        );
        return;
    };
    let Some(bundles) = Bundles::open(source, config.call_timeout, &shutdown).await else {
        return;
    };
    let concurrency = config.verdict_concurrency;
    let ctx = Arc::new(Context {
        api_resource: super::taskrun_resource(),
        bundles,
        client,
        config,
        events,
        metrics,
        published: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
    });
    Controller::for_stream(trigger.map(Ok), store)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|_| async {})
        .await;
    if let Some(ctx) = Arc::into_inner(ctx) {
        ctx.bundles.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Arc<Config> {
        Arc::new(
            Config::parse(
                "spire-trust-domain: example.org\ncluster-name: test\nspire-server-socket: /nonexistent\n",
            )
            .unwrap(),
        )
    }

    fn vector(name: &str) -> DynamicObject {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/seal/");
        serde_json::from_slice(&std::fs::read(format!("{path}{name}")).unwrap()).unwrap()
    }

    fn root() -> TrustBundle {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/seal/pki/root.pem"
        );
        TrustBundle::read(std::path::Path::new(path)).unwrap()
    }

    /// One task polls both verdicts, as kube's controller polls its reconciles. The hostile
    /// one stands in with a verification that takes 3 s: the verifier itself has no input
    /// that slow any more (tests/hostile_inputs.rs), which is why this needs a stand-in.
    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_verdict_delays_nothing_but_itself() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let ordinary = Arc::new(vector("pristine-v1-json.json"));
        let slow_finished = Arc::new(AtomicBool::new(false));
        let flag = slow_finished.clone();
        let slow = within_budget(Duration::from_millis(300), move || {
            std::thread::sleep(Duration::from_secs(3));
            flag.store(true, Ordering::SeqCst);
        });
        let fast = verdict_within_budget(ordinary, root(), config());
        let (slow, fast) = tokio::join!(slow, fast);
        assert_eq!(slow, None, "the slow verdict must be cut off at its budget");
        assert_eq!(fast.unwrap()["status"], "True");
        assert!(
            !slow_finished.load(Ordering::SeqCst),
            "both verdicts must be in before the slow work ends"
        );
    }
}
