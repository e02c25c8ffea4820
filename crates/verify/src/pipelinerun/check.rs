//! The end-to-end verdict on a PipelineRun and its TaskRuns.

use std::collections::{BTreeMap, BTreeSet};

use crate::list::{Item, Membership, PIPELINE_RUN_LABEL, PIPELINE_TASK_LABEL};
use crate::pipelinerun::results::{self, Lookup, Made, Reference};
use crate::pipelinerun::{PipelineRun, PipelineSpec, RunResult, Status};
use crate::taskrun::{ResultValue, TaskRun};
use crate::verify::{Policy, Rejection, Verified, verify};

/// What to do with a PipelineRun result that cannot be traced to verified TaskRun
/// results (one made from a CustomRun's results, or from no task result at all).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unverifiable {
    /// Reject the PipelineRun (the default).
    #[default]
    Reject,
    /// Report the result as unverifiable and judge the rest.
    Allow,
}

/// Why a PipelineRun was rejected. Each variant is one rule; [`PipelineRejection::code`]
/// names it for scripts. Not worth retrying, except [`PipelineRejection::NotComplete`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineRejection {
    /// The status cannot be read.
    #[error("the PipelineRun's status is malformed: {problem}")]
    MalformedStatus {
        /// What is wrong with it.
        problem: String,
    },
    /// The PipelineRun has no UID, which binds its TaskRuns to it.
    #[error(
        "the PipelineRun has no metadata.uid; its TaskRuns are bound to it by its UID, so verify it as the API server returns it"
    )]
    MissingUid,
    /// The PipelineRun has not completed.
    #[error(
        "the PipelineRun has no status.completionTime; its results are verified once it has completed"
    )]
    NotComplete,
    /// The status holds no pipeline spec, so its results cannot be traced.
    #[error("the PipelineRun's status holds no pipelineSpec, so its results cannot be traced")]
    SpecMissing,
    /// The spec in the status differs from the one written inline in the PipelineRun.
    #[error("status.pipelineSpec differs from spec.pipelineSpec in {part}; the status was edited")]
    SpecMismatch {
        /// What differs.
        part: String,
    },
    /// Two child references, or two TaskRuns given, have one name.
    #[error("TaskRun {name:?} appears twice")]
    ChildDuplicated {
        /// The TaskRun's name.
        name: String,
    },
    /// A child the status names is not among the TaskRuns given.
    #[error(
        "child TaskRun {name:?} of the PipelineRun is missing from the TaskRuns given; pass every TaskRun with label tekton.dev/pipelineRun={pipelinerun}"
    )]
    ChildMissing {
        /// The TaskRun's name.
        name: String,
        /// The PipelineRun's name.
        pipelinerun: String,
    },
    /// A TaskRun given (or named by the status) belongs to another PipelineRun, or to none.
    #[error("TaskRun {name:?} does not belong to this PipelineRun: {owner}")]
    ChildForeign {
        /// The TaskRun's name.
        name: String,
        /// Whom it belongs to.
        owner: String,
    },
    /// A TaskRun of this PipelineRun is not among the status's children.
    #[error(
        "TaskRun {name:?} belongs to this PipelineRun but status.childReferences does not name it"
    )]
    ChildUnreferenced {
        /// The TaskRun's name.
        name: String,
    },
    /// The pipeline task a child reference names differs from the TaskRun's label.
    #[error(
        "status.childReferences says TaskRun {name:?} ran pipeline task {referenced:?}, its label tekton.dev/pipelineTask says {labelled:?}"
    )]
    ChildTaskMismatch {
        /// The TaskRun's name.
        name: String,
        /// `pipelineTaskName` in the child reference.
        referenced: String,
        /// The TaskRun's label, if any.
        labelled: Option<String>,
    },
    /// A child runs a task the pipeline does not have.
    #[error("child {name:?} runs pipeline task {task:?}, which the pipeline spec does not have")]
    UnknownTask {
        /// The child's name.
        name: String,
        /// The pipeline task.
        task: String,
    },
    /// A task the status says was skipped has a child.
    #[error("pipeline task {task:?} is listed as skipped but ran as {name:?}")]
    SkippedTaskRan {
        /// The pipeline task.
        task: String,
        /// The child's name.
        name: String,
    },
    /// A task without a matrix has several children.
    #[error("pipeline task {task:?} has no matrix but {count} children")]
    TaskFannedOut {
        /// The pipeline task.
        task: String,
        /// How many children it has.
        count: usize,
    },
    /// A child TaskRun's own results were rejected.
    #[error("child TaskRun {name:?} was rejected [{}]", .rejection.code())]
    ChildRejected {
        /// The TaskRun's name.
        name: String,
        /// Why.
        #[source]
        rejection: Rejection,
    },
    /// A result the status reports is not one the pipeline declares.
    #[error("result {result:?} is not declared by the pipeline spec")]
    ResultUndeclared {
        /// The result.
        result: String,
    },
    /// A result's value differs from the one made from the verified TaskRun results.
    #[error("result {result:?} is not the value made from its verified sources ({sources})")]
    ResultMismatch {
        /// The result.
        result: String,
        /// Where it must come from.
        sources: String,
    },
    /// A result the status reports could not have been made: its source does not exist.
    #[error("result {result:?} has no verified source: {why}")]
    ResultUnsourced {
        /// The result.
        result: String,
        /// Why.
        why: String,
    },
    /// A result that verified TaskRun results make is missing from the status.
    #[error("result {result:?} is made from verified TaskRun results but missing from the status")]
    ResultMissing {
        /// The result.
        result: String,
    },
    /// A result cannot be traced to verified TaskRun results, and the policy rejects that.
    #[error("result {result:?} cannot be verified: {why}")]
    ResultUnverifiable {
        /// The result.
        result: String,
        /// Why.
        why: String,
    },
}

impl PipelineRejection {
    /// A stable code naming the rule, such as `pipeline.child-missing`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedStatus { .. } => "pipeline.status-malformed",
            Self::MissingUid => "pipeline.no-uid",
            Self::NotComplete => "pipeline.not-complete",
            Self::SpecMissing => "pipeline.spec-missing",
            Self::SpecMismatch { .. } => "pipeline.spec-mismatch",
            Self::ChildDuplicated { .. } => "pipeline.child-duplicated",
            Self::ChildMissing { .. } => "pipeline.child-missing",
            Self::ChildForeign { .. } => "pipeline.child-foreign",
            Self::ChildUnreferenced { .. } => "pipeline.child-unreferenced",
            Self::ChildTaskMismatch { .. } => "pipeline.child-task-mismatch",
            Self::UnknownTask { .. } => "pipeline.unknown-task",
            Self::SkippedTaskRan { .. } => "pipeline.skipped-task-ran",
            Self::TaskFannedOut { .. } => "pipeline.task-fanned-out",
            Self::ChildRejected { .. } => "pipeline.child-rejected",
            Self::ResultUndeclared { .. } => "pipeline.result-undeclared",
            Self::ResultMismatch { .. } => "pipeline.result-mismatch",
            Self::ResultUnsourced { .. } => "pipeline.result-unsourced",
            Self::ResultMissing { .. } => "pipeline.result-missing",
            Self::ResultUnverifiable { .. } => "pipeline.result-unverifiable",
        }
    }
}

/// A TaskRun given, with its own verdict and its place in the PipelineRun.
#[derive(Debug, Clone)]
pub struct ChildVerdict {
    /// The TaskRun's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its UID.
    pub uid: Option<String>,
    /// The pipeline task it ran, per `status.childReferences`, if they name it.
    pub pipeline_task: Option<String>,
    /// Its own verdict.
    pub verdict: Result<Verified, Rejection>,
}

/// Where a verified result came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The pipeline task.
    pub pipeline_task: String,
    /// Its result.
    pub result: String,
    /// The TaskRuns whose verified results made it (several for a matrix).
    pub taskruns: Vec<String>,
}

/// How one result of the PipelineRun's status came out.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum ResultOutcome {
    /// Equal to the value made from these verified TaskRun results.
    Verified {
        /// Where it came from.
        sources: Vec<Source>,
    },
    /// Not traceable to verified TaskRun results.
    Unverifiable {
        /// Why.
        why: String,
    },
    /// Rejected.
    Rejected(PipelineRejection),
}

/// A result of the PipelineRun's status and its outcome.
#[derive(Debug, Clone)]
pub struct ResultVerdict {
    /// The result's name.
    pub name: String,
    /// Its outcome.
    pub outcome: ResultOutcome,
}

/// Proof that a PipelineRun verified end to end. Only [`verify_pipelinerun`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPipelineRun {
    children: usize,
    verified: Vec<String>,
    unverifiable: Vec<String>,
}

impl VerifiedPipelineRun {
    /// How many child TaskRuns verified.
    pub fn children(&self) -> usize {
        self.children
    }

    /// The results traced to verified TaskRun results.
    pub fn verified_results(&self) -> &[String] {
        &self.verified
    }

    /// The results reported although unverifiable (only under [`Unverifiable::Allow`]).
    pub fn unverifiable_results(&self) -> &[String] {
        &self.unverifiable
    }
}

/// The verdict on a PipelineRun, with what was found along the way.
#[derive(Debug, Clone)]
pub struct PipelineVerdict {
    /// Every TaskRun given, in order, with its own verdict.
    pub taskruns: Vec<ChildVerdict>,
    /// Every result of the PipelineRun's status, once its children were judged (empty if
    /// a check before the results failed).
    pub results: Vec<ResultVerdict>,
    /// The verdict.
    pub outcome: Result<VerifiedPipelineRun, PipelineRejection>,
}

/// Verifies a PipelineRun end to end against its TaskRuns (`items` whose `taskrun` is an
/// error are ignored: the caller reports them as bad input).
///
/// Checks, in order:
/// 1. the PipelineRun's status is well-formed, it has a UID and has completed, and it
///    holds a pipeline spec (equal, where it matters, to `spec.pipelineSpec` if the
///    pipeline is written inline);
/// 2. no child reference and no TaskRun given appears twice;
/// 3. every TaskRun given is owned by this PipelineRun alone (owner reference with its
///    UID, same namespace) and named by a child reference, whose pipeline task equals
///    the TaskRun's `tekton.dev/pipelineTask` label; every TaskRun child reference is
///    among the TaskRuns given;
/// 4. every child runs a task of the spec, not one listed as skipped, and a task
///    without a matrix has at most one child;
/// 5. every child TaskRun verifies under `policy`;
/// 6. every result of the status is declared, and equals the value Tekton makes from
///    the verified results; one that cannot be traced is rejected unless `unverifiable`
///    allows it; one that verified results make is not missing.
pub fn verify_pipelinerun<'a>(
    pipelinerun: &PipelineRun,
    items: impl IntoIterator<Item = &'a Item>,
    policy: &Policy,
    unverifiable: Unverifiable,
) -> PipelineVerdict {
    let given: Vec<(&TaskRun, &Membership)> = items
        .into_iter()
        .filter_map(|i| i.taskrun.as_ref().ok().map(|t| (t, &i.membership)))
        .collect();
    let references: BTreeMap<&str, &str> = match &pipelinerun.status {
        Ok(status) => status
            .children
            .iter()
            .filter(|c| c.kind == "TaskRun")
            .map(|c| (c.name.as_str(), c.pipeline_task.as_str()))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let taskruns: Vec<ChildVerdict> = given
        .iter()
        .map(|(t, _)| ChildVerdict {
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            uid: t.uid.clone(),
            pipeline_task: references.get(t.name.as_str()).map(|s| (*s).to_owned()),
            verdict: verify(t, policy),
        })
        .collect();
    let mut results = Vec::new();
    let outcome = judge(pipelinerun, &given, &taskruns, unverifiable, &mut results);
    PipelineVerdict {
        taskruns,
        results,
        outcome,
    }
}

fn judge(
    pr: &PipelineRun,
    given: &[(&TaskRun, &Membership)],
    verdicts: &[ChildVerdict],
    unverifiable: Unverifiable,
    results_out: &mut Vec<ResultVerdict>,
) -> Result<VerifiedPipelineRun, PipelineRejection> {
    // 1. The PipelineRun.
    let status = pr
        .status
        .as_ref()
        .map_err(|problem| PipelineRejection::MalformedStatus {
            problem: problem.clone(),
        })?;
    let uid = pr
        .uid
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or(PipelineRejection::MissingUid)?;
    status
        .completion_time
        .ok_or(PipelineRejection::NotComplete)?;
    let spec = status.spec.as_ref().ok_or(PipelineRejection::SpecMissing)?;
    if let Some(inline) = &pr.inline_spec {
        compare_specs(inline, spec)?;
    }

    // 2. Nothing twice.
    let mut referenced: BTreeMap<&str, &str> = BTreeMap::new();
    for child in &status.children {
        if referenced
            .insert(child.name.as_str(), child.pipeline_task.as_str())
            .is_some()
        {
            return Err(PipelineRejection::ChildDuplicated {
                name: child.name.clone(),
            });
        }
    }
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (t, _)) in given.iter().enumerate() {
        if by_name.insert(t.name.as_str(), i).is_some() {
            return Err(PipelineRejection::ChildDuplicated {
                name: t.name.clone(),
            });
        }
    }

    // 3. Membership, both ways.
    for (t, membership) in given {
        if let Some(owner) = foreign(t, membership, pr, uid) {
            return Err(PipelineRejection::ChildForeign {
                name: t.name.clone(),
                owner,
            });
        }
        let Some(task) = referenced.get(t.name.as_str()) else {
            return Err(PipelineRejection::ChildUnreferenced {
                name: t.name.clone(),
            });
        };
        let labelled = membership.labels.get(PIPELINE_TASK_LABEL);
        if labelled.map(String::as_str) != Some(*task) {
            return Err(PipelineRejection::ChildTaskMismatch {
                name: t.name.clone(),
                referenced: (*task).to_owned(),
                labelled: labelled.cloned(),
            });
        }
    }
    for child in status.children.iter().filter(|c| c.kind == "TaskRun") {
        if !by_name.contains_key(child.name.as_str()) {
            return Err(PipelineRejection::ChildMissing {
                name: child.name.clone(),
                pipelinerun: pr.name.clone(),
            });
        }
    }

    // 4. Tasks.
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for child in &status.children {
        if spec.task(&child.pipeline_task).is_none() {
            return Err(PipelineRejection::UnknownTask {
                name: child.name.clone(),
                task: child.pipeline_task.clone(),
            });
        }
        if status.skipped.contains(&child.pipeline_task) {
            return Err(PipelineRejection::SkippedTaskRan {
                task: child.pipeline_task.clone(),
                name: child.name.clone(),
            });
        }
        *per_task.entry(child.pipeline_task.as_str()).or_default() += 1;
    }
    for (task, count) in &per_task {
        if *count > 1 && !spec.task(task).is_some_and(|t| t.matrixed) {
            return Err(PipelineRejection::TaskFannedOut {
                task: (*task).to_owned(),
                count: *count,
            });
        }
    }

    // 5. Every child verifies.
    for v in verdicts {
        if let Err(rejection) = &v.verdict {
            return Err(PipelineRejection::ChildRejected {
                name: v.name.clone(),
                rejection: rejection.clone(),
            });
        }
    }

    // 6. Results.
    let children = Children::new(status, given);
    *results_out = judge_results(status, spec, &children);
    let mut verified = Vec::new();
    let mut allowed = Vec::new();
    for r in results_out.iter() {
        match &r.outcome {
            ResultOutcome::Verified { .. } => verified.push(r.name.clone()),
            ResultOutcome::Unverifiable { why } => match unverifiable {
                Unverifiable::Allow => allowed.push(r.name.clone()),
                Unverifiable::Reject => {
                    return Err(PipelineRejection::ResultUnverifiable {
                        result: r.name.clone(),
                        why: why.clone(),
                    });
                }
            },
            ResultOutcome::Rejected(rejection) => return Err(rejection.clone()),
        }
    }
    for declared in &spec.results {
        if status.results.iter().any(|r| r.name == declared.name) {
            continue;
        }
        if let Made::Value(..) = results::make(&declared.value, |t, r| children.lookup(t, r)) {
            return Err(PipelineRejection::ResultMissing {
                result: declared.name.clone(),
            });
        }
    }
    Ok(VerifiedPipelineRun {
        children: given.len(),
        verified,
        unverifiable: allowed,
    })
}

/// Whom a TaskRun belongs to, if not to this PipelineRun.
fn foreign(t: &TaskRun, membership: &Membership, pr: &PipelineRun, uid: &str) -> Option<String> {
    if t.namespace != pr.namespace {
        return Some(format!("it is in namespace {:?}", t.namespace));
    }
    match membership.owners.as_slice() {
        [] => Some("no PipelineRun owns it".into()),
        [(name, owner_uid)] if name == &pr.name && owner_uid == uid => {
            if membership.labels.get(PIPELINE_RUN_LABEL) == Some(&pr.name) {
                None
            } else {
                Some(format!("its label {PIPELINE_RUN_LABEL} does not name it"))
            }
        }
        [(name, owner_uid)] => Some(format!(
            "it is owned by PipelineRun {name:?} (UID {owner_uid})"
        )),
        _ => Some("several PipelineRuns own it".into()),
    }
}

/// What differs between the inline spec and the one in the status, where it matters:
/// the tasks (and which fan out) and the results.
fn compare_specs(inline: &PipelineSpec, status: &PipelineSpec) -> Result<(), PipelineRejection> {
    let part = if inline.tasks != status.tasks {
        "its tasks"
    } else if inline.results != status.results {
        "its results"
    } else {
        return Ok(());
    };
    Err(PipelineRejection::SpecMismatch { part: part.into() })
}

/// The verified children of each pipeline task.
struct Children<'a> {
    /// Pipeline task -> its TaskRuns, sorted by name (as Tekton gathers a matrix).
    taskruns: BTreeMap<&'a str, Vec<&'a TaskRun>>,
    /// Pipeline tasks run as something else (CustomRun, PipelineRun).
    other: BTreeSet<&'a str>,
    matrixed: BTreeSet<&'a str>,
}

impl<'a> Children<'a> {
    fn new(status: &'a Status, given: &[(&'a TaskRun, &Membership)]) -> Self {
        let mut taskruns: BTreeMap<&str, Vec<&TaskRun>> = BTreeMap::new();
        let mut other = BTreeSet::new();
        for child in &status.children {
            if child.kind == "TaskRun" {
                if let Some((t, _)) = given.iter().find(|(t, _)| t.name == child.name) {
                    taskruns.entry(&child.pipeline_task).or_default().push(t);
                }
            } else {
                other.insert(child.pipeline_task.as_str());
            }
        }
        for runs in taskruns.values_mut() {
            runs.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let matrixed = status
            .spec
            .iter()
            .flat_map(|s| &s.tasks)
            .filter(|t| t.matrixed)
            .map(|t| t.name.as_str())
            .collect();
        Self {
            taskruns,
            other,
            matrixed,
        }
    }

    /// Tekton's `GetTaskRunsResults`: a task's TaskRun's result, or for a matrix the
    /// string values of every TaskRun's result gathered in the order of their names
    /// (a non-string result counts as its empty `StringVal`).
    fn lookup(&self, task: &str, result: &str) -> Lookup {
        if let Some(runs) = self.taskruns.get(task) {
            if self.matrixed.contains(task) {
                let gathered: Vec<String> = runs
                    .iter()
                    .filter_map(|t| t.result(result))
                    .map(|r| r.value.as_str().unwrap_or_default().to_owned())
                    .collect();
                if gathered.is_empty() {
                    return Lookup::Absent;
                }
                return Lookup::Found(ResultValue::Array(gathered));
            }
            return match runs.first().and_then(|t| t.result(result)) {
                Some(r) => Lookup::Found(r.value.clone()),
                None => Lookup::Absent,
            };
        }
        if self.other.contains(task) {
            return Lookup::Unverifiable;
        }
        Lookup::Absent
    }

    fn names(&self, task: &str) -> Vec<String> {
        self.taskruns
            .get(task)
            .map(|runs| runs.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default()
    }
}

fn judge_results(status: &Status, spec: &PipelineSpec, children: &Children) -> Vec<ResultVerdict> {
    status
        .results
        .iter()
        .map(|r| ResultVerdict {
            name: r.name.clone(),
            outcome: judge_result(r, spec, children),
        })
        .collect()
}

fn judge_result(r: &RunResult, spec: &PipelineSpec, children: &Children) -> ResultOutcome {
    let Some(declared) = spec.results.iter().find(|d| d.name == r.name) else {
        return ResultOutcome::Rejected(PipelineRejection::ResultUndeclared {
            result: r.name.clone(),
        });
    };
    match results::make(&declared.value, |t, n| children.lookup(t, n)) {
        Made::Unverifiable(why) => ResultOutcome::Unverifiable { why },
        Made::Unmade(why) => ResultOutcome::Rejected(PipelineRejection::ResultUnsourced {
            result: r.name.clone(),
            why,
        }),
        Made::Value(value, references) => {
            let sources: Vec<Source> = references
                .into_iter()
                .map(|Reference { task, result }| Source {
                    taskruns: children.names(&task),
                    pipeline_task: task,
                    result,
                })
                .collect();
            if value == r.value {
                ResultOutcome::Verified { sources }
            } else {
                ResultOutcome::Rejected(PipelineRejection::ResultMismatch {
                    result: r.name.clone(),
                    sources: sources
                        .iter()
                        .map(|s| format!("tasks.{}.results.{}", s.pipeline_task, s.result))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
}
