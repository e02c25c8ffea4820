//! Benchmark: verifying a List of 50 sealed TaskRuns, as `kubectl get taskruns -o json`
//! prints it, read and verified whole, beside the reference of the same 50 TaskRuns read
//! and verified one document each (what a loop over files does, in one process). Run with
//! `cargo bench -p tekton-spire-verify --bench list`; prints one table.
//!
//! The List comes from `tests/python/gen_bench_data.py` (each TaskRun sealed by an SVID of
//! its own, with the Python signer).
#![expect(
    clippy::expect_used,
    reason = "a benchmark whose setup fails has nothing to measure"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use tekton_spire_verify::list::parse_taskruns;
use tekton_spire_verify::{Policy, TaskRun, TrustBundle, TrustDomain, verify};

const LIST: &[u8] = include_bytes!("data/taskruns-50-list.json");
const ROOT_PEM: &[u8] = include_bytes!("data/root.pem");
const TASKRUNS: usize = 50;
/// Interleaved rounds per case.
const ROUNDS: usize = 21;

fn policy() -> Policy {
    let bundle = TrustBundle::load(ROOT_PEM).expect("benches/data/root.pem loads");
    let trust_domain = TrustDomain::new("example.org").expect("a valid trust domain");
    Policy::new(trust_domain, bundle)
}

/// Reads the List and verifies every TaskRun; returns how many verified.
fn verify_list(policy: &Policy) -> usize {
    let read = parse_taskruns(black_box(LIST)).expect("the List reads");
    read.taskruns()
        .filter(|t| verify(t, policy).is_ok())
        .count()
}

/// Reads and verifies each TaskRun from a document of its own.
fn verify_each(documents: &[Vec<u8>], policy: &Policy) -> usize {
    documents
        .iter()
        .filter(|d| {
            let taskrun = TaskRun::parse(black_box(d)).expect("a TaskRun reads");
            verify(&taskrun, policy).is_ok()
        })
        .count()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let policy = policy();
    let whole: serde_json::Value = serde_json::from_slice(LIST).expect("the List is JSON");
    let documents: Vec<Vec<u8>> = whole["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| serde_json::to_vec_pretty(item).expect("serializes"))
        .collect();
    assert_eq!(
        verify_list(&policy),
        TASKRUNS,
        "every TaskRun of the List verifies"
    );
    assert_eq!(verify_each(&documents, &policy), TASKRUNS);
    // `cargo test --benches` runs this once, without --bench: the checks above are the test.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut list_times = Vec::with_capacity(ROUNDS);
    let mut each_times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        black_box(verify_list(&policy));
        list_times.push(start.elapsed());
        let start = Instant::now();
        black_box(verify_each(&documents, &policy));
        each_times.push(start.elapsed());
    }
    let list = median(&mut list_times);
    let each = median(&mut each_times);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "verify a List of {TASKRUNS} sealed TaskRuns ({} KiB), median of {ROUNDS} interleaved rounds:",
        LIST.len() / 1024
    );
    println!(
        "  List, read and verified whole            {:>8.2} ms  {:>7.1} us per TaskRun",
        ms(list),
        ms(list) * 1e3 / TASKRUNS as f64
    );
    println!(
        "  reference: {TASKRUNS} documents, one at a time   {:>8.2} ms  {:>7.1} us per TaskRun  (List: {:.2}x its time)",
        ms(each),
        ms(each) * 1e3 / TASKRUNS as f64,
        list.as_secs_f64() / each.as_secs_f64()
    );
}
