//! A TaskRun as its status reports it: identity, run times and typed results.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Largest TaskRun document read, in bytes. A Kubernetes object is at most about 1.5 MB
/// in etcd; YAML renderings are larger than JSON, so 3 MiB leaves room and still bounds
/// memory. Larger input is refused before it is read whole.
pub const MAX_TASKRUN_BYTES: u64 = 3 * 1024 * 1024;

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
    /// The input is neither JSON nor YAML.
    #[error("the document is neither JSON nor YAML")]
    Syntax(#[source] serde_yaml_ng::Error),
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
            Self::TooLarge => "input.too-large",
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

    /// Parses a TaskRun document (JSON or YAML).
    ///
    /// # Errors
    /// As [`TaskRun::from_reader`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() as u64 > MAX_TASKRUN_BYTES {
            return Err(Error::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| Error::NotTaskRun {
            problem: "the document is not UTF-8".into(),
        })?;
        if text.trim().is_empty() {
            return Err(Error::Empty);
        }
        // JSON is YAML 1.2, but parse it as JSON first: the JSON parser is stricter and
        // faster. Both refuse duplicate keys (see `StrictValue`).
        let StrictValue(raw) = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(_) => {
                let StrictValue(value) = serde_yaml_ng::from_str(text).map_err(Error::Syntax)?;
                // YAML readers that apply merge keys would see other values than we do.
                if has_merge_key(&value) {
                    return Err(not_taskrun("YAML merge keys (<<) are not accepted"));
                }
                StrictValue(value)
            }
        };
        require_objects(&raw)?;
        let raw: RawTaskRun = serde_json::from_value(raw).map_err(|e| Error::NotTaskRun {
            problem: e.to_string(),
        })?;
        raw.into_taskrun()
    }

    /// The result with this name, if any.
    pub fn result(&self, name: &str) -> Option<&TaskResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// A JSON value read with duplicate object keys refused. Parsers disagree on which of
/// two equal keys wins (serde_json and Go take the last, others the first), so a
/// document with two `value`s could show Chains one value and the verifier another.
struct StrictValue(serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StrictValue, E> {
        // JSON has no infinities or NaN; YAML's would silently become null.
        if !v.is_finite() {
            return Err(E::custom("non-finite numbers are not accepted"));
        }
        Ok(StrictValue(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(serde_json::Value::Null))
    }

    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(serde_json::Value::Null))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<StrictValue, D::Error> {
        StrictValue::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(items.into()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(StrictValue(object.into()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTaskRun {
    api_version: String,
    kind: String,
    metadata: RawMetadata,
    #[serde(default)]
    status: Option<RawStatus>,
}

#[derive(Deserialize)]
struct RawMetadata {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    completion_time: Option<String>,
    #[serde(default)]
    results: Option<Vec<RawResult>>,
    #[serde(default)]
    task_results: Option<Vec<RawResult>>,
}

#[derive(Deserialize)]
struct RawResult {
    name: String,
    #[serde(rename = "type", default)]
    declared_type: Option<String>,
    value: serde_json::Value,
}

/// serde reads a struct from an array too (positionally); a TaskRun's parts must be
/// objects, as Kubernetes writes them.
fn require_objects(doc: &serde_json::Value) -> Result<(), Error> {
    use serde_json::Value;
    let object_or_absent =
        |v: Option<&Value>| matches!(v, None | Some(Value::Object(_) | Value::Null));
    let Value::Object(top) = doc else {
        return Err(not_taskrun("the document is not an object"));
    };
    if !matches!(top.get("metadata"), Some(Value::Object(_))) {
        return Err(not_taskrun("metadata is not an object"));
    }
    let status = top.get("status");
    if !object_or_absent(status) {
        return Err(not_taskrun("status is not an object"));
    }
    for list in ["results", "taskResults"] {
        if let Some(Value::Array(items)) = status.and_then(|s| s.get(list))
            && !items.iter().all(Value::is_object)
        {
            return Err(not_taskrun(format!(
                "status.{list} holds an entry that is not an object"
            )));
        }
    }
    Ok(())
}

fn has_merge_key(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map.contains_key("<<") || map.values().any(has_merge_key),
        serde_json::Value::Array(items) => items.iter().any(has_merge_key),
        _ => false,
    }
}

fn not_taskrun(problem: impl Into<String>) -> Error {
    Error::NotTaskRun {
        problem: problem.into(),
    }
}

impl RawTaskRun {
    fn into_taskrun(self) -> Result<TaskRun, Error> {
        if self.kind != "TaskRun" {
            return Err(not_taskrun(format!("kind is {:?}", self.kind)));
        }
        let api_version = match self.api_version.as_str() {
            "tekton.dev/v1" => ApiVersion::V1,
            "tekton.dev/v1beta1" => ApiVersion::V1Beta1,
            other => {
                return Err(not_taskrun(format!(
                    "apiVersion {other:?} is not supported"
                )));
            }
        };
        let status = self.status.unwrap_or(RawStatus {
            start_time: None,
            completion_time: None,
            results: None,
            task_results: None,
        });
        let raw_results = match api_version {
            ApiVersion::V1 => status.results,
            ApiVersion::V1Beta1 => status.task_results,
        };
        let mut seen = BTreeSet::new();
        let mut results = Vec::new();
        for raw in raw_results.unwrap_or_default() {
            if !seen.insert(raw.name.clone()) {
                return Err(not_taskrun(format!("result {:?} appears twice", raw.name)));
            }
            results.push(TaskResult {
                value: typed_value(&raw.name, raw.value)?,
                name: raw.name,
                declared_type: raw.declared_type,
            });
        }
        Ok(TaskRun {
            api_version,
            namespace: self.metadata.namespace.unwrap_or_else(|| "default".into()),
            name: self.metadata.name,
            uid: self.metadata.uid,
            start_time: parse_time("startTime", status.start_time)?,
            completion_time: parse_time("completionTime", status.completion_time)?,
            results,
        })
    }
}

fn typed_value(name: &str, value: serde_json::Value) -> Result<ResultValue, Error> {
    use serde_json::Value;
    let bad = || {
        not_taskrun(format!(
            "result {name:?} is not a string, an array of strings or an object of strings"
        ))
    };
    match value {
        Value::String(s) => Ok(ResultValue::String(s)),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()
            .map(ResultValue::Array),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
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
        let cases: [(&[u8], &str); 11] = [
            (b"  \n", "input.empty"),
            (b"{\"a\":", "input.syntax"),
            (br#"{"kind":"TaskRun","kind":"TaskRun"}"#, "input.syntax"),
            (b"kind: TaskRun\nkind: TaskRun\n", "input.syntax"),
            (br#"["tekton.dev/v1","TaskRun",{"name":"p"}]"#, "input.not-taskrun"),
            (b"apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: a, <<: {namespace: prod}}\n", "input.not-taskrun"),
            (b"apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: a, namespace: .nan}\n", "input.syntax"),
            (b"[1,2]", "input.not-taskrun"),
            (br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#, "input.not-taskrun"),
            (br#"{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"p"},"status":{"results":[{"name":"a","value":1}]}}"#, "input.not-taskrun"),
            (br#"{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"p"},"status":{"results":[{"name":"a","value":"1"},{"name":"a","value":"2"}]}}"#, "input.not-taskrun"),
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
