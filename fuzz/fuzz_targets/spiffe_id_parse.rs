//! SPIFFE IDs and trust domain names: parsing never panics, and what parses displays as
//! the input (a trust domain given as `spiffe://name` as its name) and parses back to the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::{SpiffeId, TrustDomain};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = SpiffeId::parse(text) {
        let shown = id.to_string();
        assert_eq!(
            shown, text,
            "an ID displays as other text than it was parsed from"
        );
        assert_eq!(
            SpiffeId::parse(&shown),
            Ok(id.clone()),
            "{shown:?} does not round-trip"
        );
        let td = id.trust_domain();
        assert_eq!(TrustDomain::new(td.as_str()).as_ref(), Ok(td));
    }
    if let Ok(td) = TrustDomain::new(text) {
        // A trust domain may be given as its SPIFFE ID (spiffe://name); it displays as the
        // name alone.
        assert_eq!(
            td.to_string(),
            text.strip_prefix("spiffe://").unwrap_or(text)
        );
        let root = format!("spiffe://{td}");
        if root.len() <= 2048 {
            let id = SpiffeId::parse(&root);
            assert!(
                matches!(&id, Ok(id) if id.trust_domain() == &td && id.path().is_empty()),
                "trust domain {text:?} parsed, but {root:?} gives {id:?}"
            );
        }
    }
});
