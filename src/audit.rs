//! The `tekton-spire verify` command: read TaskRuns (one, a List, several files), or a
//! PipelineRun and its TaskRuns, and trust bundles; verify; report each verdict as text
//! or JSON (docs/verify-output.md is the JSON contract); return the worst exit code.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use tekton_spire_verify::list::{self, Item, TaskRuns};
use tekton_spire_verify::pipelinerun::{
    self, PipelineVerdict, ResultOutcome, Unverifiable, verify_pipelinerun,
};
use tekton_spire_verify::{
    Format, PipelineRun, Policy, Rejection, TaskRun, TrustBundle, TrustDomain, Verified, bundle,
    taskrun,
};
use time::format_description::well_known::Rfc3339;

use crate::telemetry::error_chain;

/// Exit code: the results verified.
pub const EXIT_VERIFIED: u8 = 0;
/// Exit code: the TaskRun was read and its results rejected.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code: an input could not be read or understood.
pub const EXIT_INVALID: u8 = 2;

/// The version of the JSON output's shape (docs/verify-output.md). It changes only when
/// a member is removed or changes meaning; members may be added within a version.
pub const SCHEMA_VERSION: u32 = 1;

/// How the verdict is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Lines for people: verdicts on stdout, rejections and errors on stderr.
    Text,
    /// JSON objects, one a line, on stdout, whatever the verdict.
    Json,
}

/// What the `verify` command was asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The TaskRun files (each one TaskRun or a List); `-` reads standard input.
    pub taskruns: Vec<PathBuf>,
    /// The PipelineRun whose TaskRuns `taskruns` are, to verify end to end.
    pub pipelinerun: Option<PathBuf>,
    /// Bundle files, all of the trust domain.
    pub bundles: Vec<PathBuf>,
    /// The trust domain the SVID must belong to.
    pub trust_domain: String,
    /// Only this format is accepted, if set; `None` accepts Tekton's format too, whose
    /// weaknesses are then printed on stderr.
    pub require_format: Option<Format>,
    /// Clock skew allowed around the run, in seconds.
    pub clock_skew_seconds: u32,
    /// What a PipelineRun result that cannot be traced to verified results does.
    pub unverifiable: Unverifiable,
    /// How to print the verdict.
    pub output: Output,
}

/// An input that could not be read or understood (exit 2).
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("--trust-domain {name:?} is not a trust domain name")]
    TrustDomain {
        name: String,
        #[source]
        source: tekton_spire_verify::IdError,
    },
    #[error("cannot read the TaskRuns in {path}")]
    TaskRuns {
        path: String,
        #[source]
        source: taskrun::Error,
    },
    #[error("item {index} of {path} is not a TaskRun")]
    Item {
        path: String,
        index: usize,
        #[source]
        source: taskrun::Error,
    },
    #[error("cannot read the PipelineRun {path}")]
    PipelineRun {
        path: String,
        #[source]
        source: pipelinerun::Error,
    },
    #[error("cannot use the bundle {path}")]
    Bundle {
        path: String,
        #[source]
        source: bundle::Error,
    },
}

impl InputError {
    fn code(&self) -> &'static str {
        match self {
            Self::TrustDomain { .. } => "input.trust-domain",
            Self::TaskRuns { source, .. } | Self::Item { source, .. } => source.code(),
            Self::PipelineRun { source, .. } => source.code(),
            Self::Bundle { .. } => "bundle.invalid",
        }
    }

    /// The file (and List item) it is about, for the JSON `source` member.
    fn source(&self) -> Value {
        match self {
            Self::TrustDomain { .. } => Value::Null,
            Self::TaskRuns { path, .. }
            | Self::PipelineRun { path, .. }
            | Self::Bundle { path, .. } => json!({"file": path, "item": null}),
            Self::Item { path, index, .. } => json!({"file": path, "item": index}),
        }
    }
}

/// Where a TaskRun was read from.
struct Origin<'a> {
    file: &'a str,
    item: Option<usize>,
}

impl Origin<'_> {
    fn json(&self) -> Value {
        json!({"file": self.file, "item": self.item})
    }
}

/// Runs the command and prints the verdicts; returns the worst exit code
/// (2 over 1 over 0).
pub fn run(request: &Request) -> ExitCode {
    let printer = Printer {
        output: request.output,
        warned: Cell::new(false),
    };
    let policy = match load_policy(request) {
        Ok(policy) => policy,
        Err(e) => return ExitCode::from(printer.invalid(&e)),
    };
    let worst = match &request.pipelinerun {
        None => verify_taskruns(request, &policy, &printer),
        Some(path) => verify_pipeline(request, path, &policy, &printer),
    };
    ExitCode::from(worst)
}

fn verify_taskruns(request: &Request, policy: &Policy, printer: &Printer) -> u8 {
    let mut worst = EXIT_VERIFIED;
    for path in &request.taskruns {
        let shown = path.display().to_string();
        let code = match read_taskruns(path) {
            Err(source) => printer.invalid(&InputError::TaskRuns {
                path: shown,
                source,
            }),
            Ok(read) => {
                let mut worst_here = EXIT_VERIFIED;
                for item in read.items {
                    let code = match item.taskrun {
                        Err(source) => printer.invalid(&InputError::Item {
                            path: shown.clone(),
                            index: item.index,
                            source,
                        }),
                        Ok(taskrun) => {
                            let origin = Origin {
                                file: &shown,
                                item: read.list.then_some(item.index),
                            };
                            let verdict = tekton_spire_verify::verify(&taskrun, policy);
                            printer.taskrun(&taskrun, &origin, &verdict)
                        }
                    };
                    worst_here = worst_here.max(code);
                }
                worst_here
            }
        };
        worst = worst.max(code);
    }
    worst
}

fn verify_pipeline(request: &Request, path: &Path, policy: &Policy, printer: &Printer) -> u8 {
    let shown = path.display().to_string();
    let pipelinerun = match read_pipelinerun(path) {
        Ok(pr) => pr,
        Err(source) => {
            return printer.invalid(&InputError::PipelineRun {
                path: shown,
                source,
            });
        }
    };
    // Every TaskRun file must be readable, and every item a TaskRun: a PipelineRun is
    // judged on all of its TaskRuns or not at all.
    let mut items: Vec<(String, bool, Item)> = Vec::new();
    for file in &request.taskruns {
        let file_shown = file.display().to_string();
        match read_taskruns(file) {
            Err(source) => {
                return printer.invalid(&InputError::TaskRuns {
                    path: file_shown,
                    source,
                });
            }
            Ok(TaskRuns { list, items: read }) => {
                for item in read {
                    if let Err(source) = item.taskrun {
                        return printer.invalid(&InputError::Item {
                            path: file_shown,
                            index: item.index,
                            source,
                        });
                    }
                    items.push((file_shown.clone(), list, item));
                }
            }
        }
    }
    let verdict = verify_pipelinerun(
        &pipelinerun,
        items.iter().map(|(_, _, item)| item),
        policy,
        request.unverifiable,
    );
    let origins: Vec<Origin> = items
        .iter()
        .map(|(file, list, item)| Origin {
            file,
            item: list.then_some(item.index),
        })
        .collect();
    printer.pipeline(&pipelinerun, &shown, &verdict, &origins)
}

fn load_policy(request: &Request) -> Result<Policy, InputError> {
    let trust_domain =
        TrustDomain::new(&request.trust_domain).map_err(|source| InputError::TrustDomain {
            name: request.trust_domain.clone(),
            source,
        })?;
    let mut trusted = TrustBundle::default();
    for path in &request.bundles {
        trusted.extend(read_bundle(path)?);
    }
    let mut policy = Policy::new(trust_domain, trusted)
        .clock_skew(time::Duration::seconds(request.clock_skew_seconds.into()));
    if let Some(format) = request.require_format {
        policy = policy.require_format(format);
    }
    Ok(policy)
}

fn read_taskruns(path: &Path) -> Result<TaskRuns, taskrun::Error> {
    if path.as_os_str() == "-" {
        return list::read_taskruns(io::stdin().lock());
    }
    list::read_taskruns(File::open(path).map_err(taskrun::Error::Read)?)
}

fn read_pipelinerun(path: &Path) -> Result<PipelineRun, pipelinerun::Error> {
    if path.as_os_str() == "-" {
        return PipelineRun::from_reader(io::stdin().lock());
    }
    let file =
        File::open(path).map_err(|e| pipelinerun::Error::Document(taskrun::Error::Read(e)))?;
    PipelineRun::from_reader(file)
}

fn read_bundle(path: &Path) -> Result<TrustBundle, InputError> {
    // A file, or a directory of them (a mounted ConfigMap, `spire-agent api fetch -write`).
    TrustBundle::read(path).map_err(|source| InputError::Bundle {
        path: path.display().to_string(),
        source,
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn identity(namespace: &str, name: &str, uid: Option<&str>) -> Value {
    json!({"namespace": namespace, "name": name, "uid": uid})
}

fn reason(code: &str, error: &dyn std::error::Error) -> Value {
    json!({"code": code, "message": error_chain(error)})
}

/// Adds the members of `more` (an object) to `object`.
fn merge(object: &mut Value, more: Value) {
    if let (Value::Object(o), Value::Object(m)) = (object, more) {
        o.extend(m);
    }
}

/// Prints verdicts in the requested form; each method returns the verdict's exit code.
struct Printer {
    output: Output,
    /// Whether the weaknesses of Tekton's format were named already (once a run).
    warned: Cell<bool>,
}

impl Printer {
    fn emit(&self, value: &Value) {
        println!("{value}");
    }

    /// Names the weaknesses of Tekton's format on stderr, once a run, when a TaskRun was
    /// accepted in it (only with --accept-tekton-format or --require-format tekton).
    fn warn_if_tekton_format(&self, verdict: &Result<Verified, Rejection>) {
        if let Ok(v) = verdict
            && v.format() == Format::Tekton
            && !self.warned.replace(true)
        {
            eprintln!(
                "warning: accepted in Tekton's TEP-0089 format, which signs no result names (two \
                 results can swap values and signatures), binds no TaskRun UID (a later TaskRun \
                 of the same name can replay), joins array values with an ambiguous comma and \
                 carries the leaf certificate alone (docs/tekton-format.md)"
            );
        }
    }

    fn invalid(&self, e: &InputError) -> u8 {
        match self.output {
            Output::Json => self.emit(&json!({
                "schemaVersion": SCHEMA_VERSION,
                "verdict": "invalid",
                "taskRun": null,
                "source": e.source(),
                "reason": reason(e.code(), e),
            })),
            Output::Text => eprintln!("error [{}]: {}", e.code(), error_chain(e)),
        }
        EXIT_INVALID
    }

    fn taskrun_json(
        (namespace, name, uid): (&str, &str, Option<&str>),
        origin: &Origin,
        verdict: &Result<Verified, Rejection>,
    ) -> Value {
        let mut object = json!({
            "schemaVersion": SCHEMA_VERSION,
            "taskRun": identity(namespace, name, uid),
            "source": origin.json(),
        });
        let rest = match verdict {
            Ok(v) => json!({
                "verdict": "verified",
                "format": v.format().to_string(),
                "spiffeId": v.spiffe_id().to_string(),
                "signedAt": rfc3339(v.signed_at()),
                "results": v.results(),
            }),
            Err(r) => json!({"verdict": "rejected", "reason": reason(r.code(), r)}),
        };
        merge(&mut object, rest);
        object
    }

    fn taskrun_line(taskrun: &TaskRun, verdict: &Result<Verified, Rejection>) -> String {
        let who = format!("{}/{}", taskrun.namespace, taskrun.name);
        match verdict {
            Ok(v) => format!(
                "verified {who}: {} result(s) signed by {} at {} ({} format)",
                v.results().len(),
                v.spiffe_id(),
                rfc3339(v.signed_at()),
                v.format()
            ),
            Err(r) => format!("rejected {who} [{}]: {}", r.code(), error_chain(r)),
        }
    }

    fn taskrun(
        &self,
        taskrun: &TaskRun,
        origin: &Origin,
        verdict: &Result<Verified, Rejection>,
    ) -> u8 {
        match self.output {
            Output::Json => {
                let who = (
                    taskrun.namespace.as_str(),
                    taskrun.name.as_str(),
                    taskrun.uid.as_deref(),
                );
                self.emit(&Self::taskrun_json(who, origin, verdict));
            }
            Output::Text => match verdict {
                Ok(_) => println!("{}", Self::taskrun_line(taskrun, verdict)),
                Err(_) => eprintln!("{}", Self::taskrun_line(taskrun, verdict)),
            },
        }
        self.warn_if_tekton_format(verdict);
        if verdict.is_ok() {
            EXIT_VERIFIED
        } else {
            EXIT_REJECTED
        }
    }

    fn pipeline(
        &self,
        pr: &PipelineRun,
        file: &str,
        verdict: &PipelineVerdict,
        origins: &[Origin],
    ) -> u8 {
        let who = format!("{}/{}", pr.namespace, pr.name);
        for child in &verdict.taskruns {
            self.warn_if_tekton_format(&child.verdict);
        }
        let code = if verdict.outcome.is_ok() {
            EXIT_VERIFIED
        } else {
            EXIT_REJECTED
        };
        match self.output {
            Output::Json => {
                let taskruns: Vec<Value> = verdict
                    .taskruns
                    .iter()
                    .zip(origins)
                    .map(|(child, origin)| {
                        let who = (
                            child.namespace.as_str(),
                            child.name.as_str(),
                            child.uid.as_deref(),
                        );
                        let mut object = Self::taskrun_json(who, origin, &child.verdict);
                        merge(&mut object, json!({"pipelineTask": child.pipeline_task}));
                        object
                    })
                    .collect();
                let results: Vec<Value> = verdict
                    .results
                    .iter()
                    .map(|r| match &r.outcome {
                        ResultOutcome::Verified { sources } => json!({
                            "name": r.name,
                            "outcome": "verified",
                            "sources": sources.iter().map(|s| json!({
                                "pipelineTask": s.pipeline_task,
                                "result": s.result,
                                "taskRuns": s.taskruns,
                            })).collect::<Vec<_>>(),
                        }),
                        ResultOutcome::Unverifiable { why } => {
                            json!({"name": r.name, "outcome": "unverifiable", "why": why})
                        }
                        ResultOutcome::Rejected(rejection) => json!({
                            "name": r.name,
                            "outcome": "rejected",
                            "reason": reason(rejection.code(), rejection),
                        }),
                        _ => json!({"name": r.name, "outcome": "unknown"}),
                    })
                    .collect();
                let mut object = json!({
                    "schemaVersion": SCHEMA_VERSION,
                    "pipelineRun": identity(&pr.namespace, &pr.name, pr.uid.as_deref()),
                    "source": {"file": file, "item": null},
                    "taskRuns": taskruns,
                    "results": results,
                });
                merge(
                    &mut object,
                    match &verdict.outcome {
                        Ok(_) => json!({"verdict": "verified"}),
                        Err(r) => json!({"verdict": "rejected", "reason": reason(r.code(), r)}),
                    },
                );
                self.emit(&object);
            }
            Output::Text => {
                for (child, _) in verdict.taskruns.iter().zip(origins) {
                    let task = child
                        .pipeline_task
                        .as_deref()
                        .map(|t| format!(" (task {t})"))
                        .unwrap_or_default();
                    match &child.verdict {
                        Ok(v) => println!(
                            "  taskrun {}/{}{task}: verified, {} result(s) ({} format)",
                            child.namespace,
                            child.name,
                            v.results().len(),
                            v.format()
                        ),
                        Err(r) => println!(
                            "  taskrun {}/{}{task}: rejected [{}]",
                            child.namespace,
                            child.name,
                            r.code()
                        ),
                    }
                }
                for r in &verdict.results {
                    match &r.outcome {
                        ResultOutcome::Verified { sources } => println!(
                            "  result {}: verified, from {}",
                            r.name,
                            sources
                                .iter()
                                .map(|s| format!("{}.{}", s.pipeline_task, s.result))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        ResultOutcome::Unverifiable { why } => {
                            println!("  result {}: unverifiable ({why})", r.name);
                        }
                        ResultOutcome::Rejected(rejection) => {
                            println!("  result {}: rejected [{}]", r.name, rejection.code());
                        }
                        _ => println!("  result {}: unknown", r.name),
                    }
                }
                match &verdict.outcome {
                    Ok(v) => println!(
                        "verified pipelinerun {who}: {} TaskRun(s), {} result(s) verified, {} unverifiable",
                        v.children(),
                        v.verified_results().len(),
                        v.unverifiable_results().len()
                    ),
                    Err(r) => {
                        eprintln!(
                            "rejected pipelinerun {who} [{}]: {}",
                            r.code(),
                            error_chain(r)
                        );
                    }
                }
            }
        }
        code
    }
}
