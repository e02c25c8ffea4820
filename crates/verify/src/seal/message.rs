//! The message a seal signs: DSSE's pre-authentication encoding of a payload type and a
//! canonical JSON (RFC 8785) body naming the TaskRun and its attempt, the signing time
//! and every result.

use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

use super::Version;
use crate::taskrun::ResultValue;

/// The DSSE payload type of a `sealv2` body; it names the format and its version, so a
/// signature made for anything else (a `sealv1` body included) cannot be taken for one.
pub const PAYLOAD_TYPE: &str = "application/vnd.tekton-spire.seal.v2+json";
/// The DSSE payload type of a `sealv1` body.
pub const PAYLOAD_TYPE_V1: &str = "application/vnd.tekton-spire.seal.v1+json";

/// The TaskRun a seal is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRunIdentity<'a> {
    /// `metadata.namespace`.
    pub namespace: &'a str,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.uid`: binds the seal to this run, not to a later one of the same name.
    pub uid: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    results: Vec<ResultEntry<'a>>,
    signed_at: String,
    task_run: TaskRunMember<'a>,
}

/// The body's `taskRun` object. The attempt is a decimal string, not a number, so that
/// the body holds only strings and JCS stays the few rules docs/seal-format.md lists.
#[derive(Serialize)]
struct TaskRunMember<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<String>,
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
}

#[derive(Serialize)]
struct ResultEntry<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    value: Value<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Value<'a> {
    String(&'a str),
    Array(&'a [String]),
    Object(&'a BTreeMap<String, String>),
}

/// Builds the signed message of a seal of `version` for `results` (every result of the
/// status but the seal). Results are sorted by name, so the order a status lists them in
/// does not matter.
///
/// # Guarantees
/// Two inputs give the same message only if they have the same version, attempt,
/// identity, signing time (to the second) and the same set of (name, type, value)
/// results: the payload type names the version, the body is canonical JSON, which quotes
/// every string, and the DSSE envelope prefixes lengths.
pub fn message<'a>(
    identity: TaskRunIdentity<'_>,
    version: Version,
    signed_at: OffsetDateTime,
    results: impl IntoIterator<Item = (&'a str, &'a ResultValue)>,
) -> Vec<u8> {
    let mut results: Vec<ResultEntry<'_>> = results
        .into_iter()
        .map(|(name, value)| ResultEntry {
            name,
            kind: value.type_name(),
            value: match value {
                ResultValue::String(s) => Value::String(s),
                ResultValue::Array(items) => Value::Array(items),
                ResultValue::Object(map) => Value::Object(map),
            },
        })
        .collect();
    results.sort_by(|a, b| a.name.cmp(b.name));
    let (payload_type, attempt) = match version {
        Version::V1 => (PAYLOAD_TYPE_V1, None),
        Version::V2 { attempt } => (PAYLOAD_TYPE, Some(attempt.to_string())),
    };
    let body = Body {
        results,
        signed_at: super::format_time(signed_at),
        task_run: TaskRunMember {
            attempt,
            name: identity.name,
            namespace: identity.namespace,
            uid: identity.uid,
        },
    };
    // Serializing strings, arrays and maps of strings cannot fail.
    let body = serde_jcs::to_vec(&body).unwrap_or_default();
    pae(payload_type.as_bytes(), &body)
}

/// DSSE v1 pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`, lengths in
/// ASCII decimal. Five lines do not warrant a dependency: the crates that offer it
/// publicly are young single-maintainer projects.
fn pae(payload_type: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + body.len() + 32);
    out.extend_from_slice(format!("DSSEv1 {} ", payload_type.len()).as_bytes());
    out.extend_from_slice(payload_type);
    out.extend_from_slice(format!(" {} ", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const ID: TaskRunIdentity<'static> = TaskRunIdentity {
        namespace: "default",
        name: "build",
        uid: "0b7c-uid",
    };

    fn text(results: &[(&str, ResultValue)]) -> String {
        text_of(Version::V2 { attempt: 0 }, results)
    }

    fn text_of(version: Version, results: &[(&str, ResultValue)]) -> String {
        let msg = message(
            ID,
            version,
            datetime!(2025-06-01 12:03:04 UTC),
            results.iter().map(|(n, v)| (*n, v)),
        );
        String::from_utf8(msg).unwrap()
    }

    #[test]
    fn the_message_is_the_documented_bytes() {
        let got = text(&[
            ("b", ResultValue::Array(vec!["x".into(), "y\"".into()])),
            ("a", ResultValue::String("é\n".into())),
        ]);
        let body = r#"{"results":[{"name":"a","type":"string","value":"é\n"},{"name":"b","type":"array","value":["x","y\""]}],"signedAt":"2025-06-01T12:03:04Z","taskRun":{"attempt":"0","name":"build","namespace":"default","uid":"0b7c-uid"}}"#;
        assert_eq!(
            got,
            format!("DSSEv1 41 {PAYLOAD_TYPE} {} {body}", body.len())
        );
    }

    #[test]
    fn a_version_1_message_has_its_own_payload_type_and_no_attempt() {
        let got = text_of(Version::V1, &[("a", ResultValue::String("x".into()))]);
        let body = r#"{"results":[{"name":"a","type":"string","value":"x"}],"signedAt":"2025-06-01T12:03:04Z","taskRun":{"name":"build","namespace":"default","uid":"0b7c-uid"}}"#;
        assert_eq!(
            got,
            format!("DSSEv1 41 {PAYLOAD_TYPE_V1} {} {body}", body.len())
        );
    }

    #[test]
    fn each_attempt_signs_its_own_message() {
        let results = [("a", ResultValue::String("x".into()))];
        let first = text_of(Version::V2 { attempt: 0 }, &results);
        let second = text_of(Version::V2 { attempt: 1 }, &results);
        let tenth = text_of(Version::V2 { attempt: 10 }, &results);
        assert!(
            second.contains(r#""taskRun":{"attempt":"1","name""#),
            "{second}"
        );
        assert!(tenth.contains(r#""attempt":"10""#), "{tenth}");
        assert_ne!(first, second);
        assert_ne!(first, text_of(Version::V1, &results));
    }

    #[test]
    fn the_comma_join_ambiguity_of_tekton_does_not_exist_here() {
        let joined = text(&[("r", ResultValue::Array(vec!["a,b".into()]))]);
        let split = text(&[("r", ResultValue::Array(vec!["a".into(), "b".into()]))]);
        let string = text(&[("r", ResultValue::String("a,b".into()))]);
        assert_ne!(joined, split);
        assert_ne!(joined, string);
        assert_ne!(split, string);
    }

    #[test]
    fn swapping_two_values_changes_the_message() {
        let a = text(&[
            ("x", ResultValue::String("1".into())),
            ("y", ResultValue::String("2".into())),
        ]);
        let b = text(&[
            ("x", ResultValue::String("2".into())),
            ("y", ResultValue::String("1".into())),
        ]);
        assert_ne!(a, b);
    }
}
