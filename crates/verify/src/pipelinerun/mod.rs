//! A PipelineRun verified end to end (TEP-0084): its child TaskRuns are present, belong to
//! it and verify, and its results equal what Tekton computes from their verified results.
//! docs/pipelinerun.md states the rules.

mod check;
mod results;

use std::collections::BTreeSet;
use std::io::Read;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::document::{self, Node, Select};
use crate::taskrun::{
    self, MAX_TASKRUN_BYTES, RESULT_ENTRY, ResultValue, document_text, optional_string, present,
    typed_value,
};

pub use check::{
    ChildVerdict, PipelineRejection, PipelineVerdict, ResultOutcome, ResultVerdict, Source,
    Unverifiable, VerifiedPipelineRun, verify_pipelinerun,
};

/// Why a document could not be read as a PipelineRun. Not worth retrying.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document could not be read, or is not JSON or YAML.
    #[error("could not read the PipelineRun document")]
    Document(#[source] taskrun::Error),
    /// The document is JSON or YAML but not a PipelineRun of a supported version.
    #[error("the document is not a tekton.dev/v1 or tekton.dev/v1beta1 PipelineRun: {problem}")]
    NotPipelineRun {
        /// What is wrong with it.
        problem: String,
    },
}

impl Error {
    /// A stable code for scripts: those of a TaskRun document (`input.read`,
    /// `input.empty`, `input.too-large`, `input.syntax`), or `input.not-pipelinerun`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Document(taskrun::Error::NotTaskRun { .. }) | Self::NotPipelineRun { .. } => {
                "input.not-pipelinerun"
            }
            Self::Document(e) => e.code(),
        }
    }
}

fn not_pipelinerun(problem: impl Into<String>) -> Error {
    Error::NotPipelineRun {
        problem: problem.into(),
    }
}

/// A child the PipelineRun's `status.childReferences` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildReference {
    /// `kind`: `TaskRun`, or `CustomRun` and others, which cannot be verified here.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `pipelineTaskName`.
    pub pipeline_task: String,
}

/// A task of the pipeline (under `tasks` or `finally`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineTask {
    /// Its name.
    pub name: String,
    /// Whether it fans out with a `matrix` (params or include): its string results are
    /// then gathered into arrays, in the order of its TaskRuns' names.
    pub matrixed: bool,
}

/// A result the pipeline declares, and the value it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredResult {
    /// Its name.
    pub name: String,
    /// Its value, with `$(tasks.<t>.results.<r>)` references in it.
    pub value: ResultValue,
}

/// The parts of a pipeline spec that decide a PipelineRun's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSpec {
    /// `tasks`, then `finally`.
    pub tasks: Vec<PipelineTask>,
    /// `results`.
    pub results: Vec<DeclaredResult>,
}

impl PipelineSpec {
    fn task(&self, name: &str) -> Option<&PipelineTask> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

/// A named result of the PipelineRun, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: ResultValue,
}

/// What the PipelineRun's status says: all of it written by whoever writes the status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    completion_time: Option<OffsetDateTime>,
    children: Vec<ChildReference>,
    skipped: BTreeSet<String>,
    spec: Option<PipelineSpec>,
    results: Vec<RunResult>,
}

/// The parts of a PipelineRun that end-to-end verification reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRun {
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`, if present.
    pub uid: Option<String>,
    /// `spec.pipelineSpec`, when the pipeline is written inline: the status writer
    /// cannot change it, so it pins how results are made.
    pub inline_spec: Option<PipelineSpec>,
    /// The status, or what is malformed in it (a rejection, not bad input).
    status: Result<Status, String>,
}

impl PipelineRun {
    /// Reads a PipelineRun document (JSON or YAML) of at most 3 MiB, as
    /// `kubectl get pipelinerun NAME -o json` prints it.
    ///
    /// # Errors
    /// When the input cannot be read, is too large, is empty, is neither JSON nor YAML,
    /// or is not a PipelineRun. A malformed status is not an error here: verification
    /// rejects it.
    pub fn from_reader(reader: impl Read) -> Result<Self, Error> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_TASKRUN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Document(taskrun::Error::Read(e)))?;
        Self::parse(&bytes)
    }

    /// Parses a PipelineRun document; see [`PipelineRun::from_reader`].
    ///
    /// # Errors
    /// As [`PipelineRun::from_reader`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() as u64 > MAX_TASKRUN_BYTES {
            return Err(Error::Document(taskrun::Error::TooLarge));
        }
        let text = document_text(bytes).map_err(Error::Document)?;
        taskrun::refuse_large_yaml(text).map_err(Error::Document)?;
        let document = document::read(text, &PIPELINERUN)
            .map_err(|e| Error::Document(taskrun::Error::Syntax(e)))?
            .unwrap_or(Node::Null);
        let Node::Object(_) = document else {
            return Err(not_pipelinerun("the document is not an object"));
        };
        if present(&document, "kind") != Some(&Node::String("PipelineRun".into())) {
            return Err(not_pipelinerun("kind is not PipelineRun"));
        }
        let results_field = match present(&document, "apiVersion") {
            Some(Node::String(v)) if v == "tekton.dev/v1" => "results",
            Some(Node::String(v)) if v == "tekton.dev/v1beta1" => "pipelineResults",
            Some(Node::String(other)) => {
                return Err(not_pipelinerun(format!(
                    "apiVersion {other:?} is not supported"
                )));
            }
            _ => return Err(not_pipelinerun("apiVersion is not a string")),
        };
        let metadata = match present(&document, "metadata") {
            Some(m @ Node::Object(_)) => m,
            _ => return Err(not_pipelinerun("metadata is not an object")),
        };
        let string = |key: &str| {
            optional_string(metadata, key, &format!("metadata.{key}"))
                .map_err(|e| not_pipelinerun(e.to_string()))
        };
        let name = string("name")?.ok_or_else(|| not_pipelinerun("metadata.name is absent"))?;
        let (namespace, uid) = (string("namespace")?, string("uid")?);
        let inline_spec = match present(&document, "spec").and_then(|s| present(s, "pipelineSpec"))
        {
            None => None,
            Some(spec) => Some(
                read_spec(spec).map_err(|p| not_pipelinerun(format!("spec.pipelineSpec: {p}")))?,
            ),
        };
        let status = read_status(present(&document, "status"), results_field);
        Ok(Self {
            namespace: namespace.unwrap_or_else(|| "default".into()),
            name,
            uid,
            inline_spec,
            status,
        })
    }
}

/// What is kept of a PipelineRun document.
static PIPELINERUN: Select = Select::Fields(&[
    ("apiVersion", Select::All),
    ("kind", Select::All),
    (
        "metadata",
        Select::Fields(&[
            ("name", Select::All),
            ("namespace", Select::All),
            ("uid", Select::All),
        ]),
    ),
    ("spec", Select::Fields(&[("pipelineSpec", SPEC)])),
    (
        "status",
        Select::Fields(&[
            ("completionTime", Select::All),
            ("childReferences", Select::All),
            ("skippedTasks", Select::All),
            ("pipelineSpec", SPEC),
            ("results", Select::Items(&RESULT_ENTRY)),
            ("pipelineResults", Select::Items(&RESULT_ENTRY)),
        ]),
    ),
]);

/// What is kept of a pipeline spec.
const SPEC: Select = Select::Fields(&[
    ("tasks", Select::Items(&TASK)),
    ("finally", Select::Items(&TASK)),
    ("results", Select::Items(&RESULT_ENTRY)),
]);

static TASK: Select = Select::Fields(&[
    ("name", Select::All),
    (
        "matrix",
        Select::Fields(&[("params", Select::All), ("include", Select::All)]),
    ),
]);

/// A list member: absent (or null) is empty; anything but an array is not a list.
fn list<'n>(object: &'n Node, key: &str, shown: &str) -> Result<&'n [Node], String> {
    match present(object, key) {
        None => Ok(&[]),
        Some(Node::Array(items)) => Ok(items),
        Some(_) => Err(format!("{shown} is not a list")),
    }
}

/// A string member of an object item of a list.
fn item_string(item: &Node, key: &str, shown: &str) -> Result<String, String> {
    match present(item, key) {
        Some(Node::String(s)) => Ok(s.clone()),
        _ => Err(format!("{shown} holds an entry without a string {key}")),
    }
}

fn read_status(status: Option<&Node>, results_field: &str) -> Result<Status, String> {
    let empty = Node::Object(Vec::new());
    let status = match status {
        None => &empty,
        Some(s @ Node::Object(_)) => s,
        Some(_) => return Err("status is not an object".into()),
    };
    let completion_time = match present(status, "completionTime") {
        None => None,
        Some(Node::String(t)) => Some(
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|_| format!("status.completionTime {t:?} is not an RFC 3339 time"))?,
        ),
        Some(_) => return Err("status.completionTime is not a string".into()),
    };
    let mut children = Vec::new();
    for c in list(status, "childReferences", "status.childReferences")? {
        let field = |key| item_string(c, key, "status.childReferences");
        children.push(ChildReference {
            kind: field("kind")?,
            name: field("name")?,
            pipeline_task: field("pipelineTaskName")?,
        });
    }
    let mut skipped = BTreeSet::new();
    for s in list(status, "skippedTasks", "status.skippedTasks")? {
        skipped.insert(item_string(s, "name", "status.skippedTasks")?);
    }
    let spec = present(status, "pipelineSpec")
        .map(|s| read_spec(s).map_err(|p| format!("status.pipelineSpec: {p}")))
        .transpose()?;
    let field = format!("status.{results_field}");
    let results = named_values(list(status, results_field, &field)?, &field)?;
    Ok(Status {
        completion_time,
        children,
        skipped,
        spec,
        results,
    })
}

/// Named values (`{name, value}` objects), each value typed by its shape, no name twice.
fn named_values(items: &[Node], field: &str) -> Result<Vec<RunResult>, String> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .map(|item| {
            let name = item_string(item, "name", field)?;
            if !seen.insert(name.clone()) {
                return Err(format!("{field}: {name:?} appears twice"));
            }
            let value = item.get("value").cloned().unwrap_or_default();
            let value = typed_value(&name, value).map_err(|e| match e {
                taskrun::Error::NotTaskRun { problem } => format!("{field}: {problem}"),
                other => other.to_string(),
            })?;
            Ok(RunResult { name, value })
        })
        .collect()
}

fn read_spec(spec: &Node) -> Result<PipelineSpec, String> {
    let Node::Object(_) = spec else {
        return Err("not an object".into());
    };
    let mut tasks = Vec::new();
    let mut names = BTreeSet::new();
    for t in list(spec, "tasks", "tasks")?
        .iter()
        .chain(list(spec, "finally", "finally")?)
    {
        let name = item_string(t, "name", "tasks")?;
        if !names.insert(name.clone()) {
            return Err(format!("task {name:?} appears twice"));
        }
        // Tekton's IsMatrixed: a matrix with params or an include.
        let matrixed = present(t, "matrix").is_some_and(|m| {
            ["params", "include"]
                .iter()
                .any(|k| matches!(present(m, k), Some(Node::Array(items)) if !items.is_empty()))
        });
        tasks.push(PipelineTask { name, matrixed });
    }
    let results = named_values(list(spec, "results", "results")?, "results")?;
    Ok(PipelineSpec {
        tasks,
        results: results
            .into_iter()
            .map(|r| DeclaredResult {
                name: r.name,
                value: r.value,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PR: &str = r#"{"apiVersion":"tekton.dev/v1","kind":"PipelineRun",
      "metadata":{"name":"pr","namespace":"ns","uid":"pr-uid"},
      "spec":{"pipelineRef":{"name":"p"}},
      "status":{"completionTime":"2025-06-01T12:10:00Z",
        "childReferences":[{"apiVersion":"tekton.dev/v1","kind":"TaskRun","name":"pr-build","pipelineTaskName":"build"}],
        "skippedTasks":[{"name":"deploy","reason":"When Expressions evaluated to false"}],
        "pipelineSpec":{"tasks":[{"name":"build","taskRef":{"name":"b"}},
                                 {"name":"scan","matrix":{"params":[{"name":"x","value":["1","2"]}]}},
                                 {"name":"deploy"}],
                        "finally":[{"name":"notify"}],
                        "results":[{"name":"IMAGE","type":"string","value":"$(tasks.build.results.IMAGE)"}]},
        "results":[{"name":"IMAGE","value":"sha256:1"}]}}"#;

    #[test]
    fn a_pipelinerun_reads_identity_children_spec_and_results() {
        let pr = PipelineRun::parse(PR.as_bytes()).unwrap();
        assert_eq!(
            (pr.namespace.as_str(), pr.name.as_str(), pr.uid.as_deref()),
            ("ns", "pr", Some("pr-uid"))
        );
        let status = pr.status.unwrap();
        assert_eq!(status.children[0].pipeline_task, "build");
        assert!(status.skipped.contains("deploy"));
        let spec = status.spec.unwrap();
        let names: Vec<(&str, bool)> = spec
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.matrixed))
            .collect();
        assert_eq!(
            names,
            [
                ("build", false),
                ("scan", true),
                ("deploy", false),
                ("notify", false)
            ]
        );
        assert_eq!(
            status.results[0].value,
            ResultValue::String("sha256:1".into())
        );
    }

    #[test]
    fn v1beta1_results_are_read_from_pipeline_results() {
        let doc = PR
            .replace(
                "tekton.dev/v1\",\"kind\":\"PipelineRun",
                "tekton.dev/v1beta1\",\"kind\":\"PipelineRun",
            )
            .replace(
                "\"results\":[{\"name\":\"IMAGE\",\"value\"",
                "\"pipelineResults\":[{\"name\":\"IMAGE\",\"value\"",
            );
        let pr = PipelineRun::parse(doc.as_bytes()).unwrap();
        assert_eq!(pr.status.unwrap().results.len(), 1);
    }

    #[test]
    fn a_malformed_status_is_kept_for_the_verdict() {
        for (from, to) in [
            (
                "\"results\":[{\"name\":\"IMAGE\",\"value\":\"sha256:1\"}]",
                "\"results\":[{\"name\":\"IMAGE\",\"value\":1}]",
            ),
            ("\"childReferences\":[{", "\"childReferences\":[{\"x\":1},{"),
            (
                "\"completionTime\":\"2025-06-01T12:10:00Z\"",
                "\"completionTime\":\"yesterday\"",
            ),
            (
                "\"results\":[{\"name\":\"IMAGE\",\"value\":\"sha256:1\"}]",
                "\"results\":[{\"name\":\"I\",\"value\":\"1\"},{\"name\":\"I\",\"value\":\"1\"}]",
            ),
            ("{\"name\":\"deploy\"}", "{\"name\":\"build\"}"),
        ] {
            assert!(PR.contains(from), "{from}");
            let pr = PipelineRun::parse(PR.replacen(from, to, 1).as_bytes()).unwrap();
            assert!(pr.status.is_err(), "{to}");
        }
    }

    #[test]
    fn what_is_not_a_pipelinerun_is_bad_input() {
        for doc in [
            "[]",
            r#"{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"a"}}"#,
            r#"{"apiVersion":"tekton.dev/v2","kind":"PipelineRun","metadata":{"name":"a"}}"#,
            r#"{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{}}"#,
            r#"{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{"name":"a"},"spec":{"pipelineSpec":{"results":[{"name":"r","value":5}]}}}"#,
        ] {
            let err = PipelineRun::parse(doc.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "input.not-pipelinerun", "{doc}");
        }
        assert_eq!(PipelineRun::parse(b"").unwrap_err().code(), "input.empty");
        assert_eq!(PipelineRun::parse(b"{").unwrap_err().code(), "input.syntax");
    }
}
