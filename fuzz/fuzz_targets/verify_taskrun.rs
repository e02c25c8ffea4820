//! Arbitrary bytes as a TaskRun, verified under a fixed policy (the legacy fixtures'
//! root, trust domain example.org): verification never panics.
#![no_main]

use std::sync::LazyLock;

#[path = "yaml_panics.rs"]
mod yaml_panics;

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::{Policy, TaskRun, TrustBundle, TrustDomain, verify};

static ROOT_PEM: &[u8] = include_bytes!("../../tests/fixtures/legacy/pki/root.pem");

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let bundle = TrustBundle::load(ROOT_PEM).expect("the fixtures' root.pem loads");
    let trust_domain = TrustDomain::new("example.org").expect("example.org is a trust domain");
    Policy::new(trust_domain, bundle)
});

fuzz_target!(|data: &[u8]| {
    yaml_panics::let_the_verifier_catch_yaml_panics();
    if let Ok(taskrun) = TaskRun::parse(data) {
        let _ = verify(&taskrun, &POLICY);
    }
});
