//! Documents that hold TaskRuns as people have them in hand: one TaskRun, or a `List` of
//! them as `kubectl get taskruns -o json` (or `-o yaml`) prints it.

use std::collections::BTreeMap;
use std::io::Read;

use crate::document::{self, Node, Select};
use crate::taskrun::{
    self, Error, MAX_TASKRUN_BYTES, METADATA, STATUS, TASKRUN, TaskRun, document_text, present,
};

/// Largest document of TaskRuns read, in bytes. One TaskRun is bounded by
/// [`MAX_TASKRUN_BYTES`] (and [`taskrun::MAX_YAML_BYTES`] as YAML); a List of many may be
/// larger. 64 MiB holds a List of thousands of TaskRuns and bounds memory: the text is
/// held whole while it is read, and a List keeps its items' TaskRuns (about 5 times the
/// text for ordinary TaskRuns: 326 MiB for a List of 64 MiB, docs/measurements.md); a
/// document too large for one TaskRun that is not a List is refused holding its text
/// alone.
pub const MAX_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// What a document held.
#[derive(Debug)]
pub struct TaskRuns {
    /// Whether the document was a List (rather than one TaskRun).
    pub list: bool,
    /// Its items, in order: one for a document holding a single TaskRun.
    pub items: Vec<Item>,
}

/// One item of a document: a TaskRun with its owner, or why the item is not a TaskRun.
#[derive(Debug)]
pub struct Item {
    /// The item's position in the List (0 for a single TaskRun).
    pub index: usize,
    /// The TaskRun, or why the item is not one (an item of a List can be anything).
    pub taskrun: Result<TaskRun, Error>,
    /// Who the TaskRun belongs to, from its metadata.
    pub(crate) membership: Membership,
}

/// The owner and Tekton labels of a TaskRun. The status subresource cannot change them,
/// so whoever can write only the status cannot move a TaskRun into another PipelineRun.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    /// The owner references of kind PipelineRun: (name, UID). (Tekton's is also the
    /// controller; the document reader keeps no booleans, and the status writer cannot
    /// add owners, so the kind is enough.)
    pub(crate) owners: Vec<(String, String)>,
    /// `metadata.labels`.
    pub(crate) labels: BTreeMap<String, String>,
}

/// The label Tekton puts on a PipelineRun's TaskRuns naming the PipelineRun.
pub(crate) const PIPELINE_RUN_LABEL: &str = "tekton.dev/pipelineRun";
/// The label naming the pipeline task a TaskRun runs.
pub(crate) const PIPELINE_TASK_LABEL: &str = "tekton.dev/pipelineTask";

/// Reads a document of TaskRuns (JSON or YAML) of at most [`MAX_LIST_BYTES`] bytes; a
/// document holding one TaskRun is bounded by [`MAX_TASKRUN_BYTES`] as
/// [`TaskRun::from_reader`] bounds it.
///
/// A List is `apiVersion: v1`, `kind: List`, as kubectl prints several objects, or
/// `kind: TaskRunList` (`tekton.dev/v1` or `v1beta1`) as the API server lists them. Each
/// item is read on its own: an item that is not a TaskRun is reported in its [`Item`]
/// and does not stop the others.
///
/// # Errors
/// When the input cannot be read, is too large, is empty, is neither JSON nor YAML, is
/// neither a TaskRun nor a List, or is a List without items.
pub fn read_taskruns(reader: impl Read) -> Result<TaskRuns, Error> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::Read)?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(Error::TooLarge);
    }
    parse_taskruns(&bytes)
}

/// Parses a document of TaskRuns; see [`read_taskruns`].
///
/// # Errors
/// As [`read_taskruns`].
pub fn parse_taskruns(bytes: &[u8]) -> Result<TaskRuns, Error> {
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(Error::TooLarge);
    }
    let text = document_text(bytes)?;
    // A document too large to be one TaskRun can still be a List, which only its end may
    // say (kubectl prints `kind` after `items`), so it is read whole; but only what a
    // List is read for is kept, and one that is not a List is refused having kept none
    // of its own metadata and status (a 64 MiB TaskRun with a result value of 22 million
    // strings once took 579 MiB before it was refused).
    let too_large = too_large_for_one(text);
    let select = if too_large.is_some() {
        &LIST
    } else {
        &DOCUMENT
    };
    let mut document = document::read(text, select)
        .map_err(Error::Syntax)?
        .unwrap_or(Node::Null);
    let Some(kind) = list_kind(&document) else {
        if let Some(too_large) = too_large {
            return Err(too_large);
        }
        let membership = membership(&document)?;
        let taskrun = taskrun::from_document(document)?;
        return Ok(TaskRuns {
            list: false,
            items: vec![Item {
                index: 0,
                taskrun: Ok(taskrun),
                membership,
            }],
        });
    };
    let items = match take_member(&mut document, "items") {
        Node::Array(items) => items,
        Node::Null => Vec::new(),
        _ => return Err(not_list(format!("the {kind}'s items is not an array"))),
    };
    if items.is_empty() {
        return Err(not_list(format!("the {kind} holds no items")));
    }
    let items = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let read = membership(&item)
                .and_then(|membership| Ok((taskrun::from_document(item)?, membership)));
            match read {
                Ok((taskrun, membership)) => Item {
                    index,
                    taskrun: Ok(taskrun),
                    membership,
                },
                Err(e) => Item {
                    index,
                    taskrun: Err(e),
                    membership: Membership::default(),
                },
            }
        })
        .collect();
    Ok(TaskRuns { list: true, items })
}

/// A TaskRun, or a List of them: what is kept of either.
static DOCUMENT: Select = Select::Fields(&[
    ("apiVersion", Select::All),
    ("kind", Select::All),
    ("metadata", METADATA),
    ("status", STATUS),
    ("items", Select::Items(&TASKRUN)),
]);

/// What is kept of a document too large to be one TaskRun: what makes it a List.
static LIST: Select = Select::Fields(&[
    ("apiVersion", Select::All),
    ("kind", Select::All),
    ("items", Select::Items(&TASKRUN)),
]);

/// Why `text` cannot be one TaskRun, by its size alone, if it cannot.
fn too_large_for_one(text: &str) -> Option<Error> {
    if text.len() as u64 > MAX_TASKRUN_BYTES {
        return Some(Error::TooLarge);
    }
    taskrun::refuse_large_yaml(text).err()
}

/// `Some(kind)` if the document is a List of the kinds read.
fn list_kind(document: &Node) -> Option<String> {
    let (Some(Node::String(api_version)), Some(Node::String(kind))) =
        (present(document, "apiVersion"), present(document, "kind"))
    else {
        return None;
    };
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "List") | ("tekton.dev/v1" | "tekton.dev/v1beta1", "TaskRunList") => {
            Some(kind.clone())
        }
        _ => None,
    }
}

fn take_member(object: &mut Node, key: &str) -> Node {
    match object {
        Node::Object(members) => members
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| std::mem::take(v))
            .unwrap_or_default(),
        _ => Node::Null,
    }
}

fn not_list(problem: impl Into<String>) -> Error {
    Error::NotTaskRun {
        problem: problem.into(),
    }
}

/// Reads the PipelineRun owners and the labels from an object's metadata (absent ones
/// are empty).
pub(crate) fn membership(object: &Node) -> Result<Membership, Error> {
    let Some(metadata) = present(object, "metadata") else {
        return Ok(Membership::default());
    };
    let mut labels = BTreeMap::new();
    match present(metadata, "labels") {
        None => {}
        Some(Node::Object(members)) => {
            for (k, v) in members {
                let Node::String(v) = v else {
                    return Err(not_list(format!("metadata.labels.{k} is not a string")));
                };
                labels.insert(k.clone(), v.clone());
            }
        }
        Some(_) => return Err(not_list("metadata.labels is not an object")),
    }
    let mut owners = Vec::new();
    match present(metadata, "ownerReferences") {
        None => {}
        Some(Node::Array(references)) => {
            for reference in references {
                let field = |key: &str| match present(reference, key) {
                    Some(Node::String(s)) => Ok(s.clone()),
                    _ => Err(not_list(format!(
                        "metadata.ownerReferences holds an entry without a string {key}"
                    ))),
                };
                let (kind, name, uid) = (field("kind")?, field("name")?, field("uid")?);
                if kind == "PipelineRun" {
                    owners.push((name, uid));
                }
            }
        }
        Some(_) => return Err(not_list("metadata.ownerReferences is not an array")),
    }
    Ok(Membership { owners, labels })
}

impl TaskRuns {
    /// The TaskRuns read, leaving out items that are not TaskRuns.
    pub fn taskruns(&self) -> impl Iterator<Item = &TaskRun> {
        self.items.iter().filter_map(|i| i.taskrun.as_ref().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taskrun(name: &str) -> serde_json::Value {
        serde_json::json!({"apiVersion":"tekton.dev/v1","kind":"TaskRun",
            "metadata":{"name":name,"namespace":"ns","uid":format!("uid-{name}"),
                "labels":{"tekton.dev/pipelineRun":"pr","tekton.dev/pipelineTask":"build"},
                "ownerReferences":[{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","name":"pr","uid":"pr-uid","controller":true,"blockOwnerDeletion":true}]},
            "status":{"results":[{"name":"a","value":"1"}]}})
    }

    #[test]
    fn a_kubectl_list_reads_every_item_with_its_owner() {
        let list = serde_json::json!({"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},
            "items":[taskrun("a"), taskrun("b")]});
        let read = parse_taskruns(list.to_string().as_bytes()).unwrap();
        assert!(read.list);
        let names: Vec<&str> = read.taskruns().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let m = &read.items[1].membership;
        assert_eq!(m.owners, [("pr".to_owned(), "pr-uid".to_owned())]);
        assert_eq!(m.labels[PIPELINE_TASK_LABEL], "build");
    }

    #[test]
    fn a_yaml_list_and_a_taskrun_list_read_like_the_json_list() {
        let yaml = "apiVersion: tekton.dev/v1\nkind: TaskRunList\nitems:\n- apiVersion: tekton.dev/v1\n  kind: TaskRun\n  metadata:\n    name: a\n    labels: {tekton.dev/pipelineTask: build}\n  status:\n    results:\n    - {name: a, value: '1'}\n";
        let read = parse_taskruns(yaml.as_bytes()).unwrap();
        assert_eq!(read.items.len(), 1);
        assert_eq!(read.items[0].taskrun.as_ref().unwrap().name, "a");
    }

    #[test]
    fn one_taskrun_is_a_document_of_one_item() {
        let read = parse_taskruns(taskrun("a").to_string().as_bytes()).unwrap();
        assert!(!read.list);
        assert_eq!(read.items.len(), 1);
    }

    #[test]
    fn an_item_that_is_not_a_taskrun_is_reported_alone() {
        let list = serde_json::json!({"apiVersion":"v1","kind":"List",
            "items":[taskrun("a"), {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}, 5]});
        let read = parse_taskruns(list.to_string().as_bytes()).unwrap();
        assert!(read.items[0].taskrun.is_ok());
        assert_eq!(
            read.items[1].taskrun.as_ref().unwrap_err().code(),
            "input.not-taskrun"
        );
        assert_eq!(read.items[2].index, 2);
        assert!(read.items[2].taskrun.is_err());
    }

    #[test]
    fn an_empty_list_or_a_list_of_other_kinds_is_not_input_to_verify() {
        for doc in [
            r#"{"apiVersion":"v1","kind":"List","items":[]}"#,
            r#"{"apiVersion":"v1","kind":"List"}"#,
            r#"{"apiVersion":"v1","kind":"List","items":{}}"#,
            r#"{"apiVersion":"v1","kind":"PodList","items":[]}"#,
        ] {
            let err = parse_taskruns(doc.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "input.not-taskrun", "{doc}");
        }
    }

    #[test]
    fn a_single_taskrun_keeps_the_taskrun_size_limit() {
        let mut doc = taskrun("a");
        doc["metadata"]["annotations"] =
            serde_json::json!({"pad": "x".repeat(MAX_TASKRUN_BYTES as usize)});
        let err = parse_taskruns(doc.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.code(), "input.too-large");
    }

    #[test]
    fn a_list_larger_than_one_taskrun_may_be_is_read_as_json_and_as_yaml() {
        let item = taskrun("a").to_string();
        let count = usize::try_from(MAX_TASKRUN_BYTES).unwrap() / item.len() + 1;
        let json = format!(
            r#"{{"apiVersion":"v1","items":[{}],"kind":"List","metadata":{{}}}}"#,
            vec![item; count].join(",")
        );
        assert!(json.len() as u64 > MAX_TASKRUN_BYTES);
        let read = parse_taskruns(json.as_bytes()).unwrap();
        assert_eq!((read.list, read.items.len()), (true, count));
        assert!(read.items.iter().all(|i| i.taskrun.is_ok()));
        let yaml_item = "- apiVersion: tekton.dev/v1\n  kind: TaskRun\n  metadata:\n    name: a\n  status:\n    results:\n    - {name: a, value: '1'}\n";
        let count = usize::try_from(taskrun::MAX_YAML_BYTES).unwrap() / yaml_item.len() + 1;
        let yaml = format!(
            "apiVersion: v1\nitems:\n{}kind: List\n",
            yaml_item.repeat(count)
        );
        let read = parse_taskruns(yaml.as_bytes()).unwrap();
        assert_eq!((read.list, read.items.len()), (true, count));
        assert_eq!(read.items[count - 1].taskrun.as_ref().unwrap().name, "a");
    }

    #[test]
    fn a_taskrun_beyond_its_limits_is_too_large_and_its_syntax_still_checked() {
        // Read as a possible List, keeping nothing of its own: refused once it is not one.
        let mut doc = taskrun("a");
        doc["status"]["results"][0]["value"] = serde_json::json!(vec![""; 1_100_000]);
        let json = doc.to_string();
        assert!(json.len() as u64 > MAX_TASKRUN_BYTES);
        assert_eq!(
            parse_taskruns(json.as_bytes()).unwrap_err().code(),
            "input.too-large"
        );
        let yaml = format!(
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {{name: a}}\nstatus:\n  results:\n  - name: a\n    value:\n{}",
            "    - ''\n".repeat(60_000)
        );
        assert!(yaml.len() as u64 > taskrun::MAX_YAML_BYTES);
        let err = parse_taskruns(yaml.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::YamlTooLarge), "{err:?}");
        // A syntax error is still one, whatever the size.
        let broken = format!("{yaml}x: [\n");
        assert_eq!(
            parse_taskruns(broken.as_bytes()).unwrap_err().code(),
            "input.syntax"
        );
        let broken = format!("{}x", &json[..json.len() - 1]);
        assert_eq!(
            parse_taskruns(broken.as_bytes()).unwrap_err().code(),
            "input.syntax"
        );
    }

    #[test]
    fn malformed_owners_or_labels_make_the_item_unreadable() {
        for (path, value) in [
            ("labels", serde_json::json!({"a": 1})),
            ("labels", serde_json::json!(["a"])),
            (
                "ownerReferences",
                serde_json::json!([{"kind": "PipelineRun", "name": "pr"}]),
            ),
            (
                "ownerReferences",
                serde_json::json!({"kind": "PipelineRun"}),
            ),
        ] {
            let mut doc = taskrun("a");
            doc["metadata"][path] = value.clone();
            let err = parse_taskruns(doc.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.code(), "input.not-taskrun", "{path}: {value}");
        }
    }
}
