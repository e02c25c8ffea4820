//! Verifies SPIRE-signed Tekton TaskRun results, in Tekton's TEP-0089 format and in the
//! tekton-spire seal format, offline: no network, no Kubernetes client, no async runtime.
//!
//! The public interface is:
//! - [`TaskRun`], read from JSON or YAML with [`TaskRun::from_reader`], or several from a
//!   `List` as kubectl prints them with [`list::read_taskruns`];
//! - [`TrustBundle`], the roots of a trust domain, from PEM or a SPIFFE bundle;
//! - [`Policy`], what to trust and require, and [`verify`], which returns [`Verified`]
//!   or a [`Rejection`] naming the rule that failed;
//! - [`PipelineRun`] and [`verify_pipelinerun`], which verifies a PipelineRun end to end:
//!   its child TaskRuns, and its results from theirs;
//! - [`seal`], the seal format (the signing helper encodes with it), and [`legacy`],
//!   the signed strings of Tekton's format.
#![forbid(unsafe_code)]

pub mod bundle;
mod crypto;
mod document;
pub mod legacy;
pub mod list;
pub mod pipelinerun;
pub mod seal;
mod spiffe_id;
pub mod taskrun;
mod verify;

pub use bundle::TrustBundle;
pub use pipelinerun::{PipelineRun, verify_pipelinerun};
pub use spiffe_id::{IdError, SpiffeId, TrustDomain};
pub use taskrun::{ResultValue, TaskResult, TaskRun};
pub use verify::{DEFAULT_CLOCK_SKEW, Format, Policy, Rejection, Verified, verify};
