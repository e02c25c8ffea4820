//! A seal value: parsing never panics, and a seal that parses encodes to a value that
//! parses back to the same seal. The grammar (docs/seal-format.md) allows one text per
//! seal, so that encoding is also the input itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tekton_spire_verify::seal::Seal;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(seal) = Seal::parse(text) else {
        return;
    };
    let encoded = seal.encode();
    match Seal::parse(&encoded) {
        Ok(again) => assert_eq!(again, seal, "{text:?} re-encoded as {encoded:?}"),
        Err(e) => panic!("{text:?} parsed, but its encoding {encoded:?} does not: {e}"),
    }
    assert_eq!(encoded, text, "a seal parsed from a non-canonical text");
});
