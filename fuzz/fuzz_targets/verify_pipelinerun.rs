//! Arbitrary bytes as a PipelineRun, verified end to end against its pristine TaskRuns
//! (tests/vectors/pipeline), or, when the input holds the separator line `---8<---`, as a
//! PipelineRun and the List of TaskRuns after it: verification never panics, and a
//! verified PipelineRun has no result rejected.
#![no_main]

#[path = "yaml_panics.rs"]
mod yaml_panics;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::list::{TaskRuns, parse_taskruns};
use tekton_spire_verify::pipelinerun::{ResultOutcome, Unverifiable};
use tekton_spire_verify::{PipelineRun, Policy, TrustBundle, TrustDomain, verify_pipelinerun};

static ROOT_PEM: &[u8] = include_bytes!("../../tests/vectors/pipeline/pki/root.pem");
static TASKRUNS: &[u8] = include_bytes!("../../tests/vectors/pipeline/pristine.taskruns.json");
const SEPARATOR: &[u8] = b"\n---8<---\n";

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let bundle = TrustBundle::load(ROOT_PEM).expect("the vectors' root.pem loads");
    let trust_domain = TrustDomain::new("example.org").expect("example.org is a trust domain");
    Policy::new(trust_domain, bundle)
});

static PRISTINE: LazyLock<TaskRuns> =
    LazyLock::new(|| parse_taskruns(TASKRUNS).expect("the pristine List reads"));

fuzz_target!(|data: &[u8]| {
    yaml_panics::let_the_verifier_catch_yaml_panics();
    let (pipelinerun, own) = match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(at) => (
            &data[..at],
            parse_taskruns(&data[at + SEPARATOR.len()..]).ok(),
        ),
        None => (data, None),
    };
    let Ok(pipelinerun) = PipelineRun::parse(pipelinerun) else {
        return;
    };
    let taskruns = own.as_ref().unwrap_or(&PRISTINE);
    for unverifiable in [Unverifiable::Reject, Unverifiable::Allow] {
        let verdict = verify_pipelinerun(&pipelinerun, &taskruns.items, &POLICY, unverifiable);
        if verdict.outcome.is_ok() {
            assert!(
                !verdict
                    .results
                    .iter()
                    .any(|r| matches!(r.outcome, ResultOutcome::Rejected(_))),
                "a verified PipelineRun holds a rejected result"
            );
        }
    }
});
