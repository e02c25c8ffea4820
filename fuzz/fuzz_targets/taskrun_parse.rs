//! Arbitrary bytes as a TaskRun document (JSON or YAML): parsing never panics, and
//! reading the same bytes through `from_reader` gives the same answer.
#![no_main]

#[path = "yaml_panics.rs"]
mod yaml_panics;

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::TaskRun;

fuzz_target!(|data: &[u8]| {
    yaml_panics::let_the_verifier_catch_yaml_panics();
    let parsed = TaskRun::parse(data);
    let read = TaskRun::from_reader(data);
    match (parsed, read) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "parse and from_reader disagree"),
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "parse and from_reader disagree"),
        (a, b) => panic!("parse and from_reader disagree: {a:?} vs {b:?}"),
    }
});
