//! How a watch cache is filled. A paginated list holds a whole page of full objects in
//! memory before they are cut down to what the controller reads (objects.rs), and
//! Tekton's pods and TaskRuns run to 30-50 KB each in JSON. Where the API server streams
//! the initial list as watch events (`sendInitialEvents`, Kubernetes' WatchList feature,
//! on by default since 1.34), the cache is filled one object at a time; elsewhere the
//! pages are kept small.

use std::time::Duration;

use futures::StreamExt as _;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

/// Objects per page where the API server cannot stream: at 50 KB an object, a few MB.
pub(crate) const PAGE_SIZE: u32 = 100;

/// The annotation on the bookmark that ends a streamed initial list.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// A label no object carries: the probe streams an empty initial list.
const PROBE_SELECTOR: &str = "tekton-spire.dev/initial-list-probe";

/// How long the probe may take before the controller settles for pages.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// `config` set to stream its initial list if the API server can for `api`'s resource,
/// else to list it in small pages.
pub(crate) async fn choose<K>(api: &Api<K>, what: &str, config: watcher::Config) -> watcher::Config
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match tokio::time::timeout(PROBE_TIMEOUT, streams(api)).await {
        Ok(Ok(())) => {
            tracing::info!(
                watch = what,
                "the API server streams initial lists; filling the cache one object at a time"
            );
            config.streaming_lists()
        }
        Ok(Err(reason)) => {
            tracing::info!(
                watch = what,
                reason,
                page_size = PAGE_SIZE,
                "listing in pages"
            );
            config.page_size(PAGE_SIZE)
        }
        Err(_) => {
            tracing::info!(
                watch = what,
                reason = "the probe timed out",
                page_size = PAGE_SIZE,
                "listing in pages"
            );
            config.page_size(PAGE_SIZE)
        }
    }
}

/// Whether a watch with `sendInitialEvents` ends its (empty) initial list with the
/// bookmark that says so. An API server without the feature refuses the parameter; one
/// older than the parameter ignores it and sends no such bookmark.
async fn streams<K>(api: &Api<K>) -> Result<(), String>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = WatchParams {
        label_selector: Some(PROBE_SELECTOR.to_owned()),
        timeout: Some(5),
        bookmarks: true,
        send_initial_events: true,
        ..WatchParams::default()
    };
    let events = api
        .watch(&params, "")
        .await
        .map_err(|e| format!("the API server refused a streamed list: {e}"))?;
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(WatchEvent::Bookmark(mark))
                if mark.metadata.annotations.contains_key(INITIAL_EVENTS_END) =>
            {
                return Ok(());
            }
            Ok(WatchEvent::Error(status)) => {
                return Err(format!("a streamed list failed: {}", status.message));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("a streamed list failed: {e}")),
        }
    }
    Err("the API server sent no end of its initial list (no WatchList support)".to_owned())
}
