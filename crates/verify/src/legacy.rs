//! Tekton's TEP-0089 format, as Tekton Pipelines' entrypointer writes it under
//! `enforce-nonfalsifiability: spire`: the leaf SVID as a result, a manifest of result
//! names, and one signature result per result. Its weaknesses are in docs/.

use crate::taskrun::ResultValue;

/// The result holding the signing certificate, PEM.
pub const SVID: &str = "SVID";
/// The result listing the signed result names, comma-joined.
pub const MANIFEST: &str = "RESULT_MANIFEST";
/// The suffix of a signature result: `<name>.sig` signs result `<name>`.
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// Whether a result name belongs to the format's signature material rather than to the
/// Task's own results.
pub fn is_material(name: &str) -> bool {
    name == SVID || name == MANIFEST || name.ends_with(SIGNATURE_SUFFIX)
}

/// The string Tekton signs for a result value as the status shows it. A string is first
/// read as Tekton reads result text ([`ResultValue::parse_like_tekton`]): a status keeps
/// a `string` result's raw text, and Tekton signed what that text parses to. Then an
/// array's elements are comma-joined, and an object's keys in sorted order, each
/// followed by its value, are comma-joined. (Ambiguous by the format's design:
/// `["a,b"]` and `["a","b"]` sign the same string.)
pub fn signed_string(value: &ResultValue) -> String {
    match value {
        ResultValue::String(raw) => match ResultValue::parse_like_tekton(raw) {
            ResultValue::String(s) => s,
            parsed => signed_string(&parsed),
        },
        ResultValue::Array(items) => items.join(","),
        ResultValue::Object(map) => map
            .iter()
            .flat_map(|(k, v)| [k.as_str(), v.as_str()])
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn values_are_flattened_as_tekton_signs_them() {
        assert_eq!(signed_string(&ResultValue::String("a,b".into())), "a,b");
        assert_eq!(signed_string(&ResultValue::String("\"q\"".into())), "q");
        assert_eq!(
            signed_string(&ResultValue::String("[\"x\",\"y\"]".into())),
            "x,y"
        );
        assert_eq!(
            signed_string(&ResultValue::Array(vec!["a".into(), "b".into()])),
            "a,b"
        );
        let object = BTreeMap::from([
            ("z".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ]);
        assert_eq!(signed_string(&ResultValue::Object(object)), "a,2,z,1");
    }

    #[test]
    fn signature_material_is_told_apart_from_results() {
        for name in [SVID, MANIFEST, "RESULT_MANIFEST.sig", "IMAGE_DIGEST.sig"] {
            assert!(is_material(name), "{name}");
        }
        for name in ["IMAGE_DIGEST", "SVIDS", "sig"] {
            assert!(!is_material(name), "{name}");
        }
    }
}
