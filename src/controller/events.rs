//! Kubernetes events about TaskRuns (an entry registered or refused), published in the
//! background: a pass never waits for the API server, and an event lost when the queue
//! is full loses nothing but the event.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events waiting to be published; beyond that, new ones are dropped.
const QUEUE: usize = 1024;

/// One event to publish.
#[derive(Debug)]
pub(crate) struct Notice {
    /// The object it is about (a TaskRun).
    pub(crate) regarding: ObjectReference,
    /// Another object it involves (the pod).
    pub(crate) related: Option<ObjectReference>,
    pub(crate) warning: bool,
    pub(crate) reason: &'static str,
    pub(crate) action: &'static str,
    pub(crate) note: String,
}

/// A TaskRun's reference.
pub(crate) fn taskrun_ref(namespace: &str, name: &str, uid: &str) -> ObjectReference {
    reference("tekton.dev/v1", "TaskRun", namespace, name, uid)
}

/// A pod's reference.
pub(crate) fn pod_ref(namespace: &str, name: &str, uid: &str) -> ObjectReference {
    reference("v1", "Pod", namespace, name, uid)
}

fn reference(
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    uid: &str,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        namespace: Some(namespace.to_owned()),
        name: Some(name.to_owned()),
        uid: (!uid.is_empty()).then(|| uid.to_owned()),
        ..ObjectReference::default()
    }
}

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Events(Option<mpsc::Sender<Notice>>);

impl Events {
    /// Events that go nowhere (tests, or no API client).
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// Starts the publisher; it stops at `shutdown`.
    pub(crate) fn start(client: kube::Client, shutdown: CancellationToken) -> Self {
        let (tx, mut rx) = mpsc::channel::<Notice>(QUEUE);
        let reporter = Reporter {
            controller: "tekton-spire-controller".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        tokio::spawn(async move {
            loop {
                let notice = tokio::select! {
                    () = shutdown.cancelled() => return,
                    notice = rx.recv() => match notice {
                        Some(n) => n,
                        None => return,
                    },
                };
                let event = Event {
                    type_: if notice.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: notice.reason.into(),
                    note: Some(notice.note.chars().take(1000).collect()),
                    action: notice.action.into(),
                    secondary: notice.related,
                };
                // A recorder per event: one recorder keeps every event it published in
                // the last 6 minutes (to count repeats as a series), which during a cold
                // start of 10,000 pods is 10,000 events held for nothing, since these do
                // not repeat (a refusal is reported once, entries.rs).
                let recorder = Recorder::new(client.clone(), reporter.clone());
                if let Err(error) = recorder.publish(&event, &notice.regarding).await {
                    tracing::debug!(error = %crate::telemetry::error_chain(&error), "could not publish an event");
                }
            }
        });
        Self(Some(tx))
    }

    /// Queues `notice`; drops it when the queue is full.
    pub(crate) fn send(&self, notice: Notice) {
        if let Some(tx) = &self.0
            && tx.try_send(notice).is_err()
        {
            tracing::debug!("event queue full; an event was dropped");
        }
    }
}
