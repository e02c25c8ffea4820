//! A TaskRun as its status reports it: identity, run times and typed results.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

pub use crate::document::SyntaxError;
use crate::document::{self, Node, Select};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Largest TaskRun document read, in bytes. A Kubernetes object is at most about 1.5 MB
/// in etcd; kubectl's indented rendering is larger, so 3 MiB leaves room and still
/// bounds memory; YAML has a smaller limit, [`MAX_YAML_BYTES`]. Larger input is refused
/// before it is read whole.
pub const MAX_TASKRUN_BYTES: u64 = 3 * 1024 * 1024;

/// Largest TaskRun document read when it is YAML (docs/seal-format.md, 9.1.2), in bytes.
/// libyaml's scanner, which the YAML reader is a port of, spends several times more time
/// per byte than the JSON reader: 512 KiB keeps every YAML document within the 100 ms
/// goal (docs/measurements.md). kubectl prints the same object as JSON, read up to
/// [`MAX_TASKRUN_BYTES`].
pub const MAX_YAML_BYTES: u64 = 512 * 1024;

/// Why a document could not be read as a TaskRun. Not worth retrying: the input is wrong.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the input failed.
    #[error("could not read the TaskRun")]
    Read(#[source] std::io::Error),
    /// The input was empty or only white space.
    #[error("the TaskRun document is empty")]
    Empty,
    /// The input was larger than [`MAX_TASKRUN_BYTES`].
    #[error(
        "the TaskRun document is larger than {MAX_TASKRUN_BYTES} bytes (Kubernetes objects are at most about 1.5 MB)"
    )]
    TooLarge,
    /// The input is YAML larger than [`MAX_YAML_BYTES`].
    #[error(
        "the TaskRun document is YAML larger than {MAX_YAML_BYTES} bytes (give it as JSON, kubectl get -o json, which is read up to {MAX_TASKRUN_BYTES} bytes)"
    )]
    YamlTooLarge,
    /// The input is neither JSON nor YAML as the verifier reads them: a syntax error,
    /// a duplicate key, nesting deeper than 128, a YAML alias or merge key, ...
    #[error("the document is neither JSON nor YAML")]
    Syntax(#[source] SyntaxError),
    /// The input is JSON or YAML but not a TaskRun of a supported version.
    #[error("the document is not a tekton.dev/v1 or tekton.dev/v1beta1 TaskRun: {problem}")]
    NotTaskRun {
        /// What is wrong with it.
        problem: String,
    },
}

impl Error {
    /// A stable code for scripts: `input.read`, `input.empty`, `input.too-large`,
    /// `input.syntax` or `input.not-taskrun`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read(_) => "input.read",
            Self::Empty => "input.empty",
            Self::TooLarge | Self::YamlTooLarge => "input.too-large",
            Self::Syntax(_) => "input.syntax",
            Self::NotTaskRun { .. } => "input.not-taskrun",
        }
    }
}

/// The API version a TaskRun was written in; it decides where the results are.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `tekton.dev/v1`: results in `status.results`.
    V1,
    /// `tekton.dev/v1beta1`: results in `status.taskResults`.
    V1Beta1,
}

/// A result's value as the TaskRun status holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultValue {
    /// `type: string`.
    String(String),
    /// `type: array`, of strings.
    Array(Vec<String>),
    /// `type: object`, string keys to string values.
    Object(BTreeMap<String, String>),
}

impl ResultValue {
    /// The value Tekton's status will show for the text a step wrote to a result file:
    /// text starting with `[` that parses as a JSON array of strings is an array, text
    /// starting with `{` that parses as an object of strings is an object (JSON `null`
    /// items read as empty strings, as Go reads them), anything else is the string as
    /// written. A result a Task declares as `string` whose text is such JSON is the one
    /// case this cannot predict: the status keeps it as a string.
    pub fn from_result_file(text: &str) -> Self {
        Self::json_container(text).unwrap_or_else(|| Self::String(text.to_owned()))
    }

    /// How Tekton reads result text when it signs and verifies its own format (Go's
    /// `ParamValue.UnmarshalJSON`): as [`ResultValue::from_result_file`], except that text
    /// that parses as a JSON string (or `null`) is unquoted.
    pub fn parse_like_tekton(text: &str) -> Self {
        if let Some(container) = Self::json_container(text) {
            return container;
        }
        match serde_json::from_str::<Option<String>>(text) {
            Ok(unquoted) => Self::String(unquoted.unwrap_or_default()),
            Err(_) => Self::String(text.to_owned()),
        }
    }

    fn json_container(text: &str) -> Option<Self> {
        if text.starts_with('[')
            && let Ok(items) = serde_json::from_str::<Vec<Option<String>>>(text)
        {
            return Some(Self::Array(
                items.into_iter().map(Option::unwrap_or_default).collect(),
            ));
        }
        if text.starts_with('{')
            && let Ok(map) = serde_json::from_str::<BTreeMap<String, Option<String>>>(text)
        {
            return Some(Self::Object(
                map.into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect(),
            ));
        }
        None
    }

    /// The Tekton type name: `string`, `array` or `object`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One named result of a TaskRun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    /// The result's name.
    pub name: String,
    /// The `type` field the status declares, if any; checked against the value's shape.
    pub declared_type: Option<String>,
    /// The value.
    pub value: ResultValue,
}

/// The parts of a TaskRun that verification reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRun {
    /// The API version it was written in.
    pub api_version: ApiVersion,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`, if present.
    pub uid: Option<String>,
    /// `status.startTime`.
    pub start_time: Option<OffsetDateTime>,
    /// `status.completionTime`.
    pub completion_time: Option<OffsetDateTime>,
    /// The results, in status order.
    pub results: Vec<TaskResult>,
    /// The attempts before this one: the entries of `status.retriesStatus`, where Tekton
    /// moves the status of each attempt it retries. This attempt is numbered so.
    pub earlier_attempts: usize,
    /// Why the status could not be read, if it could not. Whoever writes the status
    /// controls it, so a malformed status is a rejection ([`crate::verify`]), not bad
    /// input: the TaskRun is still identified by its metadata.
    pub(crate) malformed_status: Option<String>,
}

impl TaskRun {
    /// Reads a TaskRun document (JSON or YAML) of at most [`MAX_TASKRUN_BYTES`] bytes.
    ///
    /// # Errors
    /// When the input cannot be read, is too large (refused before it is read whole),
    /// is empty, is neither JSON nor YAML, or is not a TaskRun.
    pub fn from_reader(reader: impl Read) -> Result<Self, Error> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_TASKRUN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::Read)?;
        if bytes.len() as u64 > MAX_TASKRUN_BYTES {
            return Err(Error::TooLarge);
        }
        Self::parse(&bytes)
    }

    /// Parses a TaskRun document (JSON or YAML). Time is linear in the size of the
    /// document, and memory bounded by what is kept from it (see [`crate::document`]).
    ///
    /// # Errors
    /// As [`TaskRun::from_reader`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() as u64 > MAX_TASKRUN_BYTES {
            return Err(Error::TooLarge);
        }
        let text = document_text(bytes)?;
        refuse_large_yaml(text)?;
        let document = document::read(text, &TASKRUN)
            .map_err(Error::Syntax)?
            .unwrap_or(Node::Null);
        from_document(document)
    }

    /// The result with this name, if any.
    pub fn result(&self, name: &str) -> Option<&TaskResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// The parts of a TaskRun document that verification reads; the rest is checked for
/// syntax and dropped.
pub(crate) static TASKRUN: Select = Select::Fields(&[
    ("apiVersion", Select::All),
    ("kind", Select::All),
    ("metadata", METADATA),
    ("status", STATUS),
]);

/// A TaskRun's metadata: its identity, and its owners and labels, which bind it to a
/// PipelineRun (crate::pipelinerun).
pub(crate) const METADATA: Select = Select::Fields(&[
    ("name", Select::All),
    ("namespace", Select::All),
    ("uid", Select::All),
    ("labels", Select::All),
    ("ownerReferences", Select::All),
]);

/// The parts of a TaskRun's status that verification reads.
pub(crate) const STATUS: Select = Select::Fields(&[
    ("startTime", Select::All),
    ("completionTime", Select::All),
    ("results", Select::Items(&RESULT_ENTRY)),
    ("taskResults", Select::Items(&RESULT_ENTRY)),
    // Only how many, and that each is an object: an earlier attempt's own status is not
    // verified, so none of it is kept.
    ("retriesStatus", Select::Items(&Select::Fields(&[]))),
]);

pub(crate) static RESULT_ENTRY: Select = Select::Fields(&[
    ("name", Select::All),
    ("type", Select::All),
    ("value", Select::Value),
]);

/// A document's text: UTF-8, not empty.
pub(crate) fn document_text(bytes: &[u8]) -> Result<&str, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::NotTaskRun {
        problem: "the document is not UTF-8".into(),
    })?;
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    Ok(text)
}

/// Refuses a YAML text larger than [`MAX_YAML_BYTES`] (section 9.1.1 of the seal format).
pub(crate) fn refuse_large_yaml(text: &str) -> Result<(), Error> {
    if text.len() as u64 > MAX_YAML_BYTES && document::syntax(text) == document::Syntax::Yaml {
        return Err(Error::YamlTooLarge);
    }
    Ok(())
}

fn not_taskrun(problem: impl Into<String>) -> Error {
    Error::NotTaskRun {
        problem: problem.into(),
    }
}

/// A member that may be absent; null counts as absent (section 4).
pub(crate) fn present<'n>(object: &'n Node, key: &str) -> Option<&'n Node> {
    object.get(key).filter(|node| **node != Node::Null)
}

/// A member that must be a string when present.
pub(crate) fn optional_string(
    object: &Node,
    key: &str,
    shown: &str,
) -> Result<Option<String>, Error> {
    match present(object, key) {
        None => Ok(None),
        Some(Node::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(not_taskrun(format!("{shown} is not a string"))),
    }
}

/// Section 4 of docs/seal-format.md: the document as a TaskRun.
pub(crate) fn from_document(mut document: Node) -> Result<TaskRun, Error> {
    let doc = &document;
    let Node::Object(_) = doc else {
        return Err(not_taskrun("the document is not an object"));
    };
    if present(doc, "kind") != Some(&Node::String("TaskRun".into())) {
        return Err(not_taskrun("kind is not TaskRun"));
    }
    let api_version = match present(doc, "apiVersion") {
        Some(Node::String(v)) if v == "tekton.dev/v1" => ApiVersion::V1,
        Some(Node::String(v)) if v == "tekton.dev/v1beta1" => ApiVersion::V1Beta1,
        Some(Node::String(other)) => {
            return Err(not_taskrun(format!(
                "apiVersion {other:?} is not supported"
            )));
        }
        _ => return Err(not_taskrun("apiVersion is not a string")),
    };
    let metadata = match present(doc, "metadata") {
        Some(m @ Node::Object(_)) => m,
        _ => return Err(not_taskrun("metadata is not an object")),
    };
    let Some(name) = optional_string(metadata, "name", "metadata.name")? else {
        return Err(not_taskrun("metadata.name is absent"));
    };
    let namespace = optional_string(metadata, "namespace", "metadata.namespace")?;
    let uid = optional_string(metadata, "uid", "metadata.uid")?;
    // What is wrong in the status is the status writer's doing: a rejection, not bad
    // input (docs/seal-format.md, section 4).
    let (status, malformed_status) = match read_status(&mut document, api_version) {
        Ok(status) => (status, None),
        Err(Error::NotTaskRun { problem }) => (Status::default(), Some(problem)),
        Err(other) => return Err(other),
    };
    Ok(TaskRun {
        api_version,
        namespace: namespace.unwrap_or_else(|| "default".into()),
        name,
        uid,
        start_time: status.start_time,
        completion_time: status.completion_time,
        results: status.results,
        earlier_attempts: status.earlier_attempts,
        malformed_status,
    })
}

/// A status as read: run times and results, all well-formed.
#[derive(Default)]
struct Status {
    start_time: Option<OffsetDateTime>,
    completion_time: Option<OffsetDateTime>,
    results: Vec<TaskResult>,
    earlier_attempts: usize,
}

/// Reads the status (absent: empty). Its errors are `NotTaskRun`, with the problem.
fn read_status(document: &mut Node, api_version: ApiVersion) -> Result<Status, Error> {
    let empty = Node::Object(Vec::new());
    let status = match present(&*document, "status") {
        None => &empty,
        Some(s @ Node::Object(_)) => s,
        Some(_) => return Err(not_taskrun("status is not an object")),
    };
    let (list, other) = match api_version {
        ApiVersion::V1 => ("results", "taskResults"),
        ApiVersion::V1Beta1 => ("taskResults", "results"),
    };
    // The other list is not read for results, but must have their shape.
    for entry in entries(status, other)? {
        if entry_parts(other, entry)?.2.is_none() {
            return Err(not_taskrun(format!(
                "status.{other} holds an entry without a value"
            )));
        }
    }
    entries(status, list)?;
    let earlier_attempts = match present(status, "retriesStatus") {
        None => 0,
        Some(Node::Array(items)) if items.iter().all(|i| matches!(i, Node::Object(_))) => {
            items.len()
        }
        Some(Node::Array(_)) => {
            return Err(not_taskrun(
                "status.retriesStatus holds an entry that is not an object",
            ));
        }
        Some(_) => return Err(not_taskrun("status.retriesStatus is not an array")),
    };
    let start_time = parse_time(
        "startTime",
        optional_string(status, "startTime", "status.startTime")?,
    )?;
    let completion_time = parse_time(
        "completionTime",
        optional_string(status, "completionTime", "status.completionTime")?,
    )?;
    // The values are moved out, not copied: a result may be most of the document.
    let entries = match member_mut(document, "status").and_then(|s| member_mut(s, list)) {
        Some(Node::Array(items)) => std::mem::take(items),
        _ => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut results = Vec::new();
    for mut entry in entries {
        let (name, declared_type, value) = entry_parts(list, &entry)?;
        if value.is_none() {
            return Err(not_taskrun(format!("result {name:?} has no value")));
        }
        if !seen.insert(name.clone()) {
            return Err(not_taskrun(format!("result {name:?} appears twice")));
        }
        let value = member_mut(&mut entry, "value").map_or(Node::Null, std::mem::take);
        results.push(TaskResult {
            value: typed_value(&name, value)?,
            name,
            declared_type,
        });
    }
    Ok(Status {
        start_time,
        completion_time,
        results,
        earlier_attempts,
    })
}

fn member_mut<'n>(object: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match object {
        Node::Object(members) => members.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn entries<'n>(status: &'n Node, list: &str) -> Result<&'n [Node], Error> {
    match present(status, list) {
        None => Ok(&[]),
        Some(Node::Array(items)) => Ok(items),
        Some(_) => Err(not_taskrun(format!("status.{list} is not an array"))),
    }
}

/// An entry's name, declared type and value (present, possibly null).
fn entry_parts<'n>(
    list: &str,
    entry: &'n Node,
) -> Result<(String, Option<String>, Option<&'n Node>), Error> {
    let Node::Object(_) = entry else {
        return Err(not_taskrun(format!(
            "status.{list} holds an entry that is not an object"
        )));
    };
    let Some(name) = optional_string(entry, "name", "a result's name")? else {
        return Err(not_taskrun(format!(
            "status.{list} holds an entry without a name"
        )));
    };
    let declared_type = optional_string(entry, "type", &format!("result {name:?}'s type"))?;
    Ok((name, declared_type, entry.get("value")))
}

pub(crate) fn typed_value(name: &str, value: Node) -> Result<ResultValue, Error> {
    let bad = || {
        not_taskrun(format!(
            "result {name:?} is not a string, an array of strings or an object of strings"
        ))
    };
    match value {
        Node::String(s) => Ok(ResultValue::String(s)),
        Node::Strings(items) => Ok(ResultValue::Array(items)),
        Node::Object(members) => members
            .into_iter()
            .map(|(k, v)| match v {
                Node::String(s) => Ok((k, s)),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()
            .map(ResultValue::Object),
        _ => Err(bad()),
    }
}

fn parse_time(field: &str, value: Option<String>) -> Result<Option<OffsetDateTime>, Error> {
    value
        .map(|v| {
            OffsetDateTime::parse(&v, &Rfc3339)
                .map_err(|_| not_taskrun(format!("status.{field} {v:?} is not an RFC 3339 time")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"apiVersion":"tekton.dev/v1","kind":"TaskRun",
        "metadata":{"name":"b","namespace":"ns","uid":"u-1"},
        "status":{"startTime":"2025-06-01T12:00:00Z","completionTime":"2025-06-01T12:05:00Z",
          "results":[{"name":"s","type":"string","value":"x"},
                     {"name":"a","type":"array","value":["1","2"]},
                     {"name":"o","type":"object","value":{"k":"v"}}]}}"#;

    #[test]
    fn a_v1_taskrun_reads_identity_times_and_typed_results() {
        let tr = TaskRun::parse(V1.as_bytes()).unwrap();
        assert_eq!((tr.namespace.as_str(), tr.name.as_str()), ("ns", "b"));
        assert_eq!(tr.uid.as_deref(), Some("u-1"));
        assert_eq!(tr.results.len(), 3);
        assert_eq!(
            tr.results[1].value,
            ResultValue::Array(vec!["1".into(), "2".into()])
        );
        assert_eq!(
            tr.completion_time.unwrap() - tr.start_time.unwrap(),
            time::Duration::minutes(5)
        );
    }

    #[test]
    fn v1beta1_results_are_read_from_task_results() {
        let doc = V1
            .replace("tekton.dev/v1\"", "tekton.dev/v1beta1\"")
            .replace("\"results\"", "\"taskResults\"");
        let tr = TaskRun::parse(doc.as_bytes()).unwrap();
        assert_eq!(tr.api_version, ApiVersion::V1Beta1);
        assert_eq!(tr.results.len(), 3);
    }

    #[test]
    fn yaml_is_read_like_json() {
        let yaml = "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: b}\nstatus:\n  results:\n  - {name: s, value: x}\n";
        let tr = TaskRun::parse(yaml.as_bytes()).unwrap();
        assert_eq!(tr.namespace, "default");
        assert_eq!(tr.results[0].value.as_str(), Some("x"));
    }

    #[test]
    fn each_kind_of_bad_input_gets_its_own_code() {
        let cases: [(&[u8], &str); 9] = [
            (b"  \n", "input.empty"),
            (b"{\"a\":", "input.syntax"),
            (br#"{"kind":"TaskRun","kind":"TaskRun"}"#, "input.syntax"),
            (b"kind: TaskRun\nkind: TaskRun\n", "input.syntax"),
            (br#"["tekton.dev/v1","TaskRun",{"name":"p"}]"#, "input.not-taskrun"),
            (b"apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: a, <<: {namespace: prod}}\n", "input.syntax"),
            (b"apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: a, namespace: .nan}\n", "input.syntax"),
            (b"[1,2]", "input.not-taskrun"),
            (br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#, "input.not-taskrun"),
        ];
        for (input, code) in cases {
            let err = TaskRun::parse(input).unwrap_err();
            assert_eq!(
                err.code(),
                code,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn text_that_starts_like_json_but_is_not_json_is_refused_not_read_as_yaml() {
        // A YAML reader takes each of these; a JSON reader refuses them, or reads the
        // first value as "a\nb" where YAML reads "a b".
        let raw_line_break = V1.replace("\"value\":\"x\"", "\"value\":\"a\nb\"");
        let huge_number = V1.replace("\"uid\":\"u-1\"", "\"uid\":\"u-1\",\"generation\":1e400");
        let single_quotes = V1.replace("\"kind\":\"TaskRun\"", "\"kind\":'TaskRun'");
        for doc in [raw_line_break, huge_number, single_quotes] {
            let err = TaskRun::parse(doc.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "input.syntax", "{doc}");
        }
    }

    #[test]
    fn a_byte_order_mark_may_start_block_yaml_a_directive_or_json() {
        let yaml = "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: b}\n";
        for doc in [
            format!("\u{feff}{yaml}"),
            format!("\u{feff}%YAML 1.1\n---\n{yaml}"),
            format!("\u{feff}{V1}"),
        ] {
            let tr = TaskRun::parse(doc.as_bytes()).unwrap();
            assert_eq!(tr.name, "b", "{doc:?}");
        }
    }

    #[test]
    fn duplicate_keys_in_members_the_verifier_ignores_are_refused_too() {
        let doc = V1.replace(
            "\"uid\":\"u-1\"",
            "\"uid\":\"u-1\",\"labels\":{\"a\":\"1\",\"a\":\"2\"}",
        );
        assert_eq!(
            TaskRun::parse(doc.as_bytes()).unwrap_err().code(),
            "input.syntax"
        );
    }

    #[test]
    fn a_malformed_status_still_reads_as_a_taskrun_that_names_the_problem() {
        let head = r#"{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"p","namespace":"ns"},"status":"#;
        let cases = [
            (
                r#"{"results":[{"name":"a","value":1}]}"#,
                "result \"a\" is not a string",
            ),
            (
                r#"{"results":[{"name":"a","value":"1"},{"name":"a","value":"2"}]}"#,
                "appears twice",
            ),
            (r#"{"results":[{"value":"1"}]}"#, "without a name"),
            (r#"{"results":[["a","1"]]}"#, "not an object"),
            (r#"{"results":{"a":"1"}}"#, "not an array"),
            (
                r#"{"startTime":"2025-06-01T12:00:00"}"#,
                "not an RFC 3339 time",
            ),
            (r#"{"completionTime":5}"#, "not a string"),
            (r#"{"taskResults":[{"name":"a"}]}"#, "without a value"),
            (
                r#"{"retriesStatus":{"0":{}}}"#,
                "retriesStatus is not an array",
            ),
            (r#"{"retriesStatus":[{},"x"]}"#, "not an object"),
            (r#"[]"#, "status is not an object"),
        ];
        for (status, problem) in cases {
            let tr = TaskRun::parse(format!("{head}{status}}}").as_bytes()).unwrap();
            assert_eq!((tr.namespace.as_str(), tr.name.as_str()), ("ns", "p"));
            let found = tr.malformed_status.as_deref().unwrap_or_default();
            assert!(found.contains(problem), "status {status}: {found}");
            assert!(tr.results.is_empty() && tr.start_time.is_none());
        }
    }

    #[test]
    fn earlier_attempts_are_counted_from_retries_status_in_json_and_yaml() {
        let retried = V1.replace(
            r#""startTime""#,
            r#""retriesStatus":[{"podName":"b-pod","results":[{"name":"s","value":"old"}]},{}],"startTime""#,
        );
        let null = V1.replace(r#""startTime""#, r#""retriesStatus":null,"startTime""#);
        let yaml = "apiVersion: tekton.dev/v1beta1\nkind: TaskRun\nmetadata: {name: b}\nstatus:\n  retriesStatus:\n  - {podName: b-pod}\n";
        for (doc, expected) in [
            (V1, 0),
            (null.as_str(), 0),
            (retried.as_str(), 2),
            (yaml, 1),
        ] {
            let tr = TaskRun::parse(doc.as_bytes()).unwrap();
            assert_eq!(tr.malformed_status, None, "{doc}");
            assert_eq!(tr.earlier_attempts, expected, "{doc}");
        }
    }

    #[test]
    fn oversized_input_is_refused_after_reading_only_the_limit() {
        let mut source = std::io::repeat(b' ').take(MAX_TASKRUN_BYTES * 4);
        let err = TaskRun::from_reader(&mut source).unwrap_err();
        assert_eq!(err.code(), "input.too-large");
        assert_eq!(
            source.limit(),
            MAX_TASKRUN_BYTES * 4 - (MAX_TASKRUN_BYTES + 1)
        );
    }

    #[test]
    fn yaml_over_its_limit_is_too_large_before_its_syntax_is_read() {
        let limit = usize::try_from(MAX_YAML_BYTES).unwrap();
        // Not YAML at all (an unclosed flow sequence), but too large first.
        let yaml = format!("a: [{}", "b".repeat(limit - 4));
        assert_eq!(
            TaskRun::parse(yaml.as_bytes()).unwrap_err().code(),
            "input.syntax"
        );
        let yaml = format!("{yaml}b");
        let err = TaskRun::parse(yaml.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "input.too-large");
        assert!(err.to_string().contains("-o json"), "{err}");
        // A byte order mark before JSON keeps it JSON, read up to 3 MiB.
        let json = format!("\u{feff} [{}", "b".repeat(limit));
        assert_eq!(
            TaskRun::parse(json.as_bytes()).unwrap_err().code(),
            "input.syntax"
        );
    }

    #[test]
    fn result_files_are_typed_as_the_status_will_show_them() {
        use ResultValue::*;
        let s = |v: &str| String(v.to_owned());
        let cases = [
            ("plain", s("plain")),
            ("\"quoted\"", s("\"quoted\"")),
            ("[\"a\",\"b\"]\n", Array(vec!["a".into(), "b".into()])),
            ("[\"a\",null]", Array(vec!["a".into(), "".into()])),
            ("[1,2]", s("[1,2]")),
            (
                "{\"k\":\"v\"}",
                Object(BTreeMap::from([("k".into(), "v".into())])),
            ),
            ("{\"k\":1}", s("{\"k\":1}")),
            (" [\"a\"]", s(" [\"a\"]")),
            ("", s("")),
        ];
        for (text, expected) in cases {
            assert_eq!(
                ResultValue::from_result_file(text),
                expected,
                "text {text:?}"
            );
        }
    }

    #[test]
    fn tekton_unquotes_json_strings_when_it_signs() {
        let s = |v: &str| ResultValue::String(v.to_owned());
        assert_eq!(ResultValue::parse_like_tekton("\"quoted\""), s("quoted"));
        assert_eq!(ResultValue::parse_like_tekton(" \"x\" "), s("x"));
        assert_eq!(ResultValue::parse_like_tekton("null"), s(""));
        assert_eq!(ResultValue::parse_like_tekton("plain"), s("plain"));
        assert_eq!(
            ResultValue::parse_like_tekton("[\"a\"]"),
            ResultValue::Array(vec!["a".into()])
        );
    }
}
