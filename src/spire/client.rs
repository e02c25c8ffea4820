//! The Entry API calls: list with paging, and batched create, update and delete with
//! one outcome per entry.

use std::borrow::Borrow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use spiffe::X509Source;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use super::connect::{ClientConfig, Endpoint, connect};
use super::entry::{Entry, EntryId, EntrySpec, spec_mask};
use super::error::Error;
use super::filter::ListFilter;
use super::proto::spire::api::server::entry::v1 as api;
use super::proto::spire::api::server::entry::v1::entry_client::EntryClient;
use super::proto::spire::api::types as pb;

/// Entries per `ListEntries` page: the size SPIRE itself uses (its CLI, and the sync of
/// its agents). Each page is a query and a round trip; 500 entries are about 200 KB.
pub const LIST_PAGE_SIZE: usize = 500;
/// Entries per `BatchCreateEntry` and `BatchUpdateEntry` call.
pub const CREATE_BATCH_SIZE: usize = 50;
/// IDs per `BatchDeleteEntry` call.
pub const DELETE_BATCH_SIZE: usize = 200;
/// What a batch write's deadline allows for each entry in it (see `write_timeout`): a
/// SPIRE server with SQLite and 10,000 entries wrote 5 a second on the benchmark machine.
const WRITE_TIME_PER_ENTRY: Duration = Duration::from_secs(1);

/// What creating one entry came to. Both are success: the entry is in place.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The entry was created as requested.
    Created(Entry),
    /// The server already holds an entry with the same SPIFFE ID, parent and selectors
    /// (`ALREADY_EXISTS`), returned as stored. Its ID is usually the requested one (a
    /// repeated create); it differs when someone else registered the same workload
    /// first, and then no entry with the requested ID was made. Other fields (hint,
    /// TTL, DNS names, admin) are as stored, not as requested.
    AlreadyExists(Entry),
}

impl CreateOutcome {
    /// The entry now on the server.
    pub fn entry(&self) -> &Entry {
        match self {
            CreateOutcome::Created(e) | CreateOutcome::AlreadyExists(e) => e,
        }
    }

    /// The entry now on the server.
    pub fn into_entry(self) -> Entry {
        match self {
            CreateOutcome::Created(e) | CreateOutcome::AlreadyExists(e) => e,
        }
    }
}

/// What deleting one entry came to. Both are success: the entry is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteOutcome {
    /// The entry was deleted.
    Deleted,
    /// There was no such entry (`NOT_FOUND`).
    NotFound,
}

/// Told of every call: the method, and the gRPC code when it failed (`DEADLINE_EXCEEDED`
/// for a call that timed out locally).
pub type CallObserver = Arc<dyn Fn(&'static str, Option<Code>) + Send + Sync>;

/// A client of the SPIRE Server Entry API. Cheap to clone; clones share the connection.
///
/// The connection sends HTTP/2 keepalive pings (and, over TCP, TCP keepalives) so that a
/// server lost without closing the connection is noticed within
/// [`ClientConfig::keepalive`] and its timeout, and after
/// [`ClientConfig::reconnect_after`] consecutive failed calls the channel is rebuilt from
/// scratch.
///
/// Retrying is the caller's business: [`Error::is_retryable`] tells which failures are
/// worth it.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    observer: Option<CallObserver>,
}

struct Shared {
    endpoint: Endpoint,
    config: ClientConfig,
    rpc: std::sync::RwLock<EntryClient<Channel>>,
    source: Option<X509Source>,
    /// Consecutive calls that failed in a way a new connection might cure.
    failures: AtomicU32,
    rebuilding: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared.endpoint)
            .field("call_timeout", &self.shared.config.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the server. For [`Endpoint::Tcp`] this first waits (up to
    /// [`ClientConfig::svid_timeout`]) for this workload's X509-SVID from the Workload API.
    ///
    /// # Errors
    /// [`Error::Connect`] or [`Error::WorkloadApi`] (both retryable) when the server or the
    /// agent cannot be reached; [`Error::ServerNotAuthenticated`], [`Error::InvalidAddress`]
    /// [`Error::NoTrustBundle`] or [`Error::TlsConfig`] when the configuration is wrong.
    pub async fn connect(endpoint: Endpoint, config: ClientConfig) -> Result<Self, Error> {
        let connection = connect(&endpoint, &config, None).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                endpoint,
                config,
                rpc: std::sync::RwLock::new(EntryClient::new(connection.channel)),
                source: connection.source,
                failures: AtomicU32::new(0),
                rebuilding: tokio::sync::Mutex::new(()),
            }),
            observer: None,
        })
    }

    /// This client, telling `observer` of every call (for metrics).
    #[must_use]
    pub fn with_observer(mut self, observer: CallObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// Stops the Workload API watch of an mTLS client. Calls made afterwards on this client
    /// or its clones fail once the connection needs a new handshake.
    pub async fn shutdown(self) {
        if let Some(source) = &self.shared.source {
            source.clone().shutdown().await;
        }
    }

    fn rpc(&self) -> EntryClient<Channel> {
        match self.shared.rpc.read() {
            Ok(rpc) => rpc.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs one RPC under the call timeout, which the server also receives as deadline.
    async fn call<T, F>(
        &self,
        method: &'static str,
        rpc: impl FnOnce(EntryClient<Channel>) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<Response<T>, Status>>,
    {
        self.call_within(method, self.shared.config.call_timeout, rpc)
            .await
    }

    /// Runs one RPC under `timeout`, which the server also receives as deadline.
    async fn call_within<T, F>(
        &self,
        method: &'static str,
        timeout: Duration,
        rpc: impl FnOnce(EntryClient<Channel>) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<Response<T>, Status>>,
    {
        let result = match tokio::time::timeout(timeout, rpc(self.rpc())).await {
            Err(_) => Err(Error::Timeout { method, timeout }),
            // tonic's own enforcement of the deadline sent with the request, which may
            // fire a moment before ours.
            Ok(Err(status)) if status.code() == Code::Cancelled => {
                Err(Error::Timeout { method, timeout })
            }
            Ok(Err(status)) => Err(Error::from_status(method, status)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        };
        if let Some(observe) = &self.observer {
            observe(method, result.as_ref().err().and_then(Error::code));
        }
        // A call that timed out may only have met a busy server: with keepalives on, a
        // dead connection shows as UNAVAILABLE once a ping goes unanswered, so only that
        // counts; without them, timeouts are all there is to go by.
        let keepalive = self.shared.config.keepalive.is_some();
        match &result {
            Err(Error::Unavailable { .. }) => self.failed().await,
            Err(Error::Timeout { .. }) if !keepalive => self.failed().await,
            Err(Error::Timeout { .. }) => {}
            _ => self.shared.failures.store(0, Ordering::Relaxed),
        }
        result
    }

    /// Counts a failure that a new connection might cure, and rebuilds the channel after
    /// [`ClientConfig::reconnect_after`] of them in a row. A failed rebuild keeps the old
    /// channel, which keeps reconnecting by itself.
    async fn failed(&self) {
        let limit = self.shared.config.reconnect_after;
        let failures = self.shared.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if limit == 0 || failures < limit {
            return;
        }
        let Ok(_guard) = self.shared.rebuilding.try_lock() else {
            return; // another call is rebuilding it
        };
        let shared = &self.shared;
        match connect(&shared.endpoint, &shared.config, shared.source.clone()).await {
            Ok(connection) => {
                let fresh = EntryClient::new(connection.channel);
                match shared.rpc.write() {
                    Ok(mut rpc) => *rpc = fresh,
                    Err(poisoned) => *poisoned.into_inner() = fresh,
                }
                shared.failures.store(0, Ordering::Relaxed);
                tracing::warn!(endpoint = %shared.endpoint, failures, "rebuilt the SPIRE server connection after repeated failures");
            }
            Err(error) => {
                tracing::debug!(endpoint = %shared.endpoint, error = %crate::telemetry::error_chain(&error), "could not rebuild the SPIRE server connection");
            }
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        request_within(message, self.shared.config.call_timeout)
    }

    /// The deadline of a batch that writes `items` entries: the call timeout plus
    /// [`WRITE_TIME_PER_ENTRY`] for each. SPIRE writes the entries of a batch one at a
    /// time behind a single lock, and a create first searches for a similar entry, at a
    /// cost that grows with the entries stored; a slow server must not be taken for a
    /// dead one (keepalives tell those apart) and the work it did be thrown away.
    fn write_timeout(&self, items: usize) -> Duration {
        self.shared.config.call_timeout
            + WRITE_TIME_PER_ENTRY.saturating_mul(u32::try_from(items).unwrap_or(u32::MAX))
    }

    /// Every entry that `filter` selects, fetched [`LIST_PAGE_SIZE`] at a time.
    ///
    /// # Guarantees
    /// Either every page was read or an error is returned: never a partial list. Entries
    /// created while paging may be missed and deleted ones may still appear (pages are
    /// not a snapshot), but none appears twice, since the server pages in creation order.
    ///
    /// # Errors
    /// As [`Client::for_each_entry`].
    pub async fn list_entries(&self, filter: &ListFilter) -> Result<Vec<Entry>, Error> {
        let mut entries = Vec::new();
        self.for_each_entry(filter, |entry| entries.push(entry))
            .await?;
        Ok(entries)
    }

    /// Hands every entry that `filter` selects to `each`, a page at a time, so that a
    /// caller who keeps less than the whole entry never holds them all (10,000 entries
    /// are about 8 MB as [`Entry`] values). Returns how many there were.
    ///
    /// # Guarantees
    /// As [`Client::list_entries`], except that on an error `each` has seen the entries of
    /// the pages before it: the caller must then discard what it gathered.
    ///
    /// # Errors
    /// The call's error ([`Error::InvalidArgument`] for a filter the server refuses);
    /// [`Error::InvalidEntry`] if an entry cannot be mapped.
    pub async fn for_each_entry(
        &self,
        filter: &ListFilter,
        mut each: impl FnMut(Entry),
    ) -> Result<usize, Error> {
        const METHOD: &str = "ListEntries";
        let filter = filter.to_proto();
        let mut count = 0;
        let mut page_token = String::new();
        loop {
            let request = self.request(api::ListEntriesRequest {
                filter: Some(filter.clone()),
                output_mask: None,
                page_size: LIST_PAGE_SIZE as i32,
                page_token: page_token.clone(),
            });
            let page = self
                .call(
                    METHOD,
                    |mut rpc| async move { rpc.list_entries(request).await },
                )
                .await?;
            if page.entries.len() > LIST_PAGE_SIZE {
                return Err(Error::UnexpectedResponse {
                    method: METHOD,
                    problem: "a page larger than requested",
                });
            }
            tracing::debug!(
                entries = page.entries.len(),
                more = !page.next_page_token.is_empty(),
                "ListEntries page"
            );
            count += page.entries.len();
            for entry in page.entries {
                each(Entry::from_proto(entry)?);
            }
            if page.next_page_token.is_empty() {
                return Ok(count);
            }
            if page.next_page_token == page_token {
                return Err(Error::UnexpectedResponse {
                    method: METHOD,
                    problem: "the same page token twice",
                });
            }
            page_token = page.next_page_token;
        }
    }

    /// The number of entries `filter` selects.
    ///
    /// # Errors
    /// The call's error.
    pub async fn count_entries(&self, filter: &ListFilter) -> Result<u64, Error> {
        let f = filter.to_proto();
        let request = self.request(api::CountEntriesRequest {
            filter: Some(api::count_entries_request::Filter {
                by_spiffe_id: f.by_spiffe_id,
                by_parent_id: f.by_parent_id,
                by_selectors: f.by_selectors,
                by_federates_with: f.by_federates_with,
                by_hint: f.by_hint,
                by_downstream: f.by_downstream,
            }),
        });
        let response = self
            .call("CountEntries", |mut rpc| async move {
                rpc.count_entries(request).await
            })
            .await?;
        Ok(u64::try_from(response.count).unwrap_or(0))
    }

    /// The entry with this ID, or `None`.
    ///
    /// # Errors
    /// The call's error; [`Error::InvalidEntry`] if the entry cannot be mapped.
    pub async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, Error> {
        let request = self.request(api::GetEntryRequest {
            id: id.as_str().to_owned(),
            output_mask: None,
        });
        match self
            .call(
                "GetEntry",
                |mut rpc| async move { rpc.get_entry(request).await },
            )
            .await
        {
            Ok(entry) => Entry::from_proto(entry).map(Some),
            Err(Error::Rpc {
                code: Code::NotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates entries with their caller-chosen IDs, [`CREATE_BATCH_SIZE`] per call.
    /// Returns one outcome per entry, in order.
    ///
    /// # Guarantees
    /// Repeating a create is harmless: an entry that is already there (same SPIFFE ID,
    /// parent and selectors) is reported as [`CreateOutcome::AlreadyExists`].
    ///
    /// # Errors
    /// The outer error is a failed call; batches before it were applied. Per entry:
    /// [`Error::EntryIdTaken`] when the ID belongs to an entry with another SPIFFE ID,
    /// parent or selectors, [`Error::EntryRejected`] when the server refused it (for
    /// example a SPIFFE ID outside its trust domain).
    pub async fn batch_create<S: Borrow<EntrySpec>>(
        &self,
        entries: &[S],
    ) -> Result<Vec<Result<CreateOutcome, Error>>, Error> {
        const METHOD: &str = "BatchCreateEntry";
        let mut outcomes = Vec::with_capacity(entries.len());
        for batch in entries.chunks(CREATE_BATCH_SIZE) {
            let timeout = self.write_timeout(batch.len());
            let request = request_within(
                api::BatchCreateEntryRequest {
                    entries: batch.iter().map(|e| e.borrow().to_proto()).collect(),
                    output_mask: None,
                },
                timeout,
            );
            let response = self
                .call_within(METHOD, timeout, |mut rpc| async move {
                    rpc.batch_create_entry(request).await
                })
                .await?;
            check_count(METHOD, batch.len(), response.results.len())?;
            for (spec, result) in batch.iter().zip(response.results) {
                outcomes.push(create_outcome(spec.borrow(), result.status, result.entry));
            }
        }
        Ok(outcomes)
    }

    /// Overwrites the fields [`EntrySpec`] models (selected by ID), [`CREATE_BATCH_SIZE`]
    /// per call, leaving the others as they are. Returns one updated entry per entry, in
    /// order.
    ///
    /// # Errors
    /// The outer error is a failed call; batches before it were applied. Per entry:
    /// [`Error::EntryRejected`] (`NOT_FOUND` for a missing entry, `INVALID_ARGUMENT` for an
    /// invalid one).
    pub async fn batch_update<S: Borrow<EntrySpec>>(
        &self,
        entries: &[S],
    ) -> Result<Vec<Result<Entry, Error>>, Error> {
        const METHOD: &str = "BatchUpdateEntry";
        let mut outcomes = Vec::with_capacity(entries.len());
        for batch in entries.chunks(CREATE_BATCH_SIZE) {
            let timeout = self.write_timeout(batch.len());
            let request = request_within(
                api::BatchUpdateEntryRequest {
                    entries: batch.iter().map(|e| e.borrow().to_proto()).collect(),
                    input_mask: Some(spec_mask()),
                    output_mask: None,
                },
                timeout,
            );
            let response = self
                .call_within(METHOD, timeout, |mut rpc| async move {
                    rpc.batch_update_entry(request).await
                })
                .await?;
            check_count(METHOD, batch.len(), response.results.len())?;
            for (spec, result) in batch.iter().zip(response.results) {
                outcomes.push(match (status_of(result.status), result.entry) {
                    ((Code::Ok, _), Some(entry)) => Entry::from_proto(entry),
                    ((Code::Ok, _), None) => Err(Error::UnexpectedResponse {
                        method: METHOD,
                        problem: "a successful result without its entry",
                    }),
                    ((code, message), _) => Err(Error::EntryRejected {
                        id: spec.borrow().id.to_string(),
                        code,
                        message,
                    }),
                });
            }
        }
        Ok(outcomes)
    }

    /// Deletes entries by ID, [`DELETE_BATCH_SIZE`] per call. Returns one outcome per ID,
    /// in order.
    ///
    /// # Guarantees
    /// Deleting an entry that is not there is success ([`DeleteOutcome::NotFound`]).
    ///
    /// # Errors
    /// The outer error is a failed call; batches before it were applied. Per ID:
    /// [`Error::EntryRejected`].
    pub async fn batch_delete(
        &self,
        ids: &[EntryId],
    ) -> Result<Vec<Result<DeleteOutcome, Error>>, Error> {
        const METHOD: &str = "BatchDeleteEntry";
        let mut outcomes = Vec::with_capacity(ids.len());
        for batch in ids.chunks(DELETE_BATCH_SIZE) {
            let timeout = self.write_timeout(batch.len());
            let request = request_within(
                api::BatchDeleteEntryRequest {
                    ids: batch.iter().map(|id| id.as_str().to_owned()).collect(),
                },
                timeout,
            );
            let response = self
                .call_within(METHOD, timeout, |mut rpc| async move {
                    rpc.batch_delete_entry(request).await
                })
                .await?;
            check_count(METHOD, batch.len(), response.results.len())?;
            for (id, result) in batch.iter().zip(response.results) {
                outcomes.push(match status_of(result.status) {
                    (Code::Ok, _) => Ok(DeleteOutcome::Deleted),
                    (Code::NotFound, _) => Ok(DeleteOutcome::NotFound),
                    (code, message) => Err(Error::EntryRejected {
                        id: id.to_string(),
                        code,
                        message,
                    }),
                });
            }
        }
        Ok(outcomes)
    }
}

/// A request whose deadline the server is told of.
fn request_within<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Batch results come one per item, in order; anything else cannot be matched up.
fn check_count(method: &'static str, sent: usize, received: usize) -> Result<(), Error> {
    if sent == received {
        Ok(())
    } else {
        Err(Error::UnexpectedResponse {
            method,
            problem: "a different number of results than items sent",
        })
    }
}

/// A per-item status; a missing one is read as OK, its proto3 default.
fn status_of(status: Option<pb::Status>) -> (Code, String) {
    status.map_or((Code::Ok, String::new()), |s| {
        (Code::from_i32(s.code), s.message)
    })
}

fn create_outcome(
    spec: &EntrySpec,
    status: Option<pb::Status>,
    entry: Option<pb::Entry>,
) -> Result<CreateOutcome, Error> {
    match (status_of(status), entry) {
        ((Code::Ok, _), Some(entry)) => Entry::from_proto(entry).map(CreateOutcome::Created),
        ((Code::AlreadyExists, _), Some(entry)) => {
            Entry::from_proto(entry).map(CreateOutcome::AlreadyExists)
        }
        // SPIRE looks for a similar entry first; ALREADY_EXISTS without one is the unique
        // index on the entry ID (selectors and DNS names are sent without duplicates, so
        // their indexes cannot be the cause).
        ((Code::AlreadyExists, message), None) => Err(Error::EntryIdTaken {
            id: spec.id.clone(),
            message,
        }),
        ((Code::Ok, _), None) => Err(Error::UnexpectedResponse {
            method: "BatchCreateEntry",
            problem: "a successful result without its entry",
        }),
        ((code, message), _) => Err(Error::EntryRejected {
            id: spec.id.to_string(),
            code,
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spiffe::SpiffeId;

    fn spec(id: &str) -> EntrySpec {
        EntrySpec::new(
            EntryId::new(id).unwrap(),
            SpiffeId::new("spiffe://example.org/w").unwrap(),
            SpiffeId::new("spiffe://example.org/agent").unwrap(),
            ["unix:uid:0".parse().unwrap()],
        )
    }

    fn status(code: Code) -> Option<pb::Status> {
        Some(pb::Status {
            code: code as i32,
            message: "m".into(),
        })
    }

    #[test]
    fn already_exists_with_the_entry_is_success() {
        let mine = spec("mine");
        let outcome = create_outcome(&mine, status(Code::AlreadyExists), Some(mine.to_proto()));
        assert!(matches!(outcome, Ok(CreateOutcome::AlreadyExists(e)) if e.spec == mine));
        let theirs = spec("theirs");
        let outcome = create_outcome(&mine, status(Code::AlreadyExists), Some(theirs.to_proto()));
        assert_eq!(outcome.unwrap().entry().spec.id.as_str(), "theirs");
    }

    #[test]
    fn already_exists_without_an_entry_means_the_id_is_taken() {
        let outcome = create_outcome(&spec("mine"), status(Code::AlreadyExists), None);
        assert!(matches!(outcome, Err(Error::EntryIdTaken { id, .. }) if id.as_str() == "mine"));
    }

    #[test]
    fn other_codes_reject_the_entry() {
        let outcome = create_outcome(&spec("mine"), status(Code::InvalidArgument), None);
        let err = outcome.unwrap_err();
        assert!(matches!(
            err,
            Error::EntryRejected {
                code: Code::InvalidArgument,
                ..
            }
        ));
        assert!(!err.is_retryable());
        assert!(create_outcome(&spec("mine"), status(Code::Ok), None).is_err());
    }

    #[test]
    fn result_counts_must_match() {
        assert!(check_count("X", 2, 2).is_ok());
        assert!(matches!(
            check_count("X", 2, 1),
            Err(Error::UnexpectedResponse { .. })
        ));
    }
}
