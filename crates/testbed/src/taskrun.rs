//! TaskRun documents as Tekton's controller writes them, from a step results directory.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};
use tekton_spire_verify::ResultValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The identity and run of a TaskRun.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `status.startTime`.
    pub start: OffsetDateTime,
    /// `status.completionTime`.
    pub completion: OffsetDateTime,
}

impl Meta {
    /// A TaskRun that started a minute ago and completes a second from now: a seal made
    /// now lies within its run.
    pub fn just_completed(namespace: &str, name: &str, uid: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            start: now - time::Duration::minutes(1),
            completion: now + time::Duration::seconds(1),
        }
    }
}

/// A `tekton.dev/v1` TaskRun whose `status.results` holds every file of `results_dir`,
/// typed as Tekton types a result the Task declares with the type its text suggests
/// (a JSON array of strings as `array`, an object of strings as `object`, else `string`).
///
/// # Errors
/// When the directory or a file cannot be read as UTF-8.
pub fn from_results_dir(results_dir: &Path, meta: &Meta) -> anyhow::Result<Value> {
    let mut names: Vec<String> = std::fs::read_dir(results_dir)
        .with_context(|| format!("reading {}", results_dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    // Tekton's termination message is sorted by key.
    names.sort();
    let mut results = Vec::new();
    for name in names {
        let text = std::fs::read_to_string(results_dir.join(&name))
            .with_context(|| format!("reading result {name}"))?;
        let value = ResultValue::from_result_file(&text);
        let json_value = match &value {
            ResultValue::String(s) => json!(s),
            ResultValue::Array(items) => json!(items),
            ResultValue::Object(map) => json!(map),
        };
        results.push(json!({"name": name, "type": value.type_name(), "value": json_value}));
    }
    Ok(json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
        "spec": {"taskRef": {"name": "build"}},
        "status": {
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
            "startTime": rfc3339(meta.start),
            "completionTime": rfc3339(meta.completion),
            "results": results,
        },
    }))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}
