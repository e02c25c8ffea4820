//! Arbitrary bytes as a PipelineRun document: parsing never panics, and reading the same
//! bytes through `from_reader` gives the same answer.
#![no_main]

#[path = "yaml_panics.rs"]
mod yaml_panics;

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::PipelineRun;

fuzz_target!(|data: &[u8]| {
    yaml_panics::let_the_verifier_catch_yaml_panics();
    match (PipelineRun::parse(data), PipelineRun::from_reader(data)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "parse and from_reader disagree"),
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "parse and from_reader disagree"),
        (a, b) => panic!("parse and from_reader disagree: {a:?} vs {b:?}"),
    }
});
