//! A typed client for the SPIRE Server Entry API (registration entries).
//!
//! The controller registers one entry per TaskRun pod under an ID it derives itself, and
//! reconciles the whole set: [`Client::list_entries`] pages through the entries a
//! [`ListFilter`] selects, and [`Client::batch_create`], [`Client::batch_update`] and
//! [`Client::batch_delete`] work in batches and report one outcome per entry. Creating an
//! entry that is already there, or deleting one that is gone, is success, so a pass can
//! be repeated after any failure.
//!
//! The server is reached over its admin Unix socket or over TCP with mutual TLS under
//! this workload's X509-SVID ([`Endpoint`]). Generated protobuf types stay inside this
//! module; callers see [`EntrySpec`], [`Entry`], [`Selector`] and [`EntryId`].
//!
//! What SPIRE (v1.13) does with caller-chosen IDs, which the outcomes reflect:
//! - an ID is 1 to 255 bytes of `[A-Za-z0-9._-]` ([`EntryId`]); anything else is refused
//!   with `INVALID_ARGUMENT`;
//! - the server first looks for an entry with the same SPIFFE ID, parent and selectors;
//!   if there is one it answers `ALREADY_EXISTS` with that entry, whatever its ID
//!   ([`CreateOutcome::AlreadyExists`]), and creates nothing;
//! - otherwise an ID that is already taken gives `ALREADY_EXISTS` without an entry
//!   ([`Error::EntryIdTaken`]).
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), tekton_spire::spire::Error> {
//! use tekton_spire::spire::{Client, ClientConfig, Endpoint, ListFilter};
//!
//! let client = Client::connect(
//!     Endpoint::AdminSocket("/run/spire/server/private/api.sock".into()),
//!     ClientConfig::default(),
//! )
//! .await?;
//! let ours = client.list_entries(&ListFilter::default().by_hint("tekton-spire")).await?;
//! # let _ = ours;
//! # Ok(())
//! # }
//! ```

mod client;
mod connect;
mod entry;
mod error;
mod filter;
mod proto;

pub use client::{
    CREATE_BATCH_SIZE, Client, CreateOutcome, DELETE_BATCH_SIZE, DeleteOutcome, LIST_PAGE_SIZE,
};
pub use connect::{ClientConfig, Endpoint, server_id};
pub use entry::{Entry, EntryId, EntrySpec, Selector};
pub use error::Error;
pub use filter::{ListFilter, SelectorMatch};
