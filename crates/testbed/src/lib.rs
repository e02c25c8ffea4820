//! Test support shared by the integration tests and the demo: a local SPIRE server and
//! agent (real binaries, through scripts/spire-local.sh) and TaskRuns shaped as Tekton
//! reports them.

mod instance;
pub mod kube;
pub mod node;
pub mod spire;
pub mod taskrun;
