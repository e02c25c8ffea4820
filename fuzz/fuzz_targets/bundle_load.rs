//! Arbitrary bytes as a trust bundle (PEM or SPIFFE bundle JSON): loading never panics,
//! and a bundle that loads holds at least one root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::TrustBundle;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = TrustBundle::load(data) {
        assert!(
            bundle.roots().next().is_some(),
            "a loaded bundle holds no root"
        );
    }
});
