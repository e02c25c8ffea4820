//! Arbitrary bytes as a document of TaskRuns (one TaskRun, or a List as kubectl prints
//! it): reading never panics, `parse_taskruns` and `read_taskruns` agree, and a document
//! holding one TaskRun reads as `TaskRun::parse` reads it.
#![no_main]

#[path = "yaml_panics.rs"]
mod yaml_panics;

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::TaskRun;
use tekton_spire_verify::list::{parse_taskruns, read_taskruns};

fuzz_target!(|data: &[u8]| {
    yaml_panics::let_the_verifier_catch_yaml_panics();
    let parsed = parse_taskruns(data);
    let read = read_taskruns(data);
    match (&parsed, &read) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.items.len(), b.items.len(), "parse and read disagree");
            assert!(!a.items.is_empty(), "a List without items was accepted");
            if !a.list {
                let single = TaskRun::parse(data).expect("a single TaskRun reads alone too");
                assert_eq!(a.items[0].taskrun.as_ref().ok(), Some(&single));
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "parse and read disagree"),
        (a, b) => panic!(
            "parse and read disagree: {:?} vs {:?}",
            a.is_ok(),
            b.is_ok()
        ),
    }
});
