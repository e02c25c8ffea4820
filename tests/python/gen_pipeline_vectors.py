#!/usr/bin/env python3
"""Write the PipelineRun test vectors into tests/vectors/pipeline/.

Each case is a PipelineRun as `kubectl get pipelinerun NAME -o json` prints it, its
TaskRuns as `kubectl get taskruns -l tekton.dev/pipelineRun=NAME -o json` prints them
(a v1 List), each TaskRun sealed by tsfixtures.seal with an SVID naming it (the Python
signer, which shares no code with the Rust one), the trust bundle, and the outcome
docs/pipelinerun.md requires. The PipelineRun's results are written here by hand, as
Tekton v1.15 makes them (pkg/reconciler/pipelinerun/resources/apply.go), not computed by
either verifier. Every bad case differs from the pristine one in one property, which its
note names. Output is deterministic; no private key is written.

Usage: python3 tests/python/gen_pipeline_vectors.py [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_fixtures  # noqa: E402
import gen_seal_vectors  # noqa: E402
from gen_seal_vectors import SIGN_STEP, SealPki  # noqa: E402
from tsfixtures import pki  # noqa: E402
from tsfixtures import seal as sl  # noqa: E402
from tsfixtures.legacy import Result, TaskRunMeta, taskrun_document  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "vectors" / "pipeline"
V1 = "tekton.dev/v1"
NS = "default"
PR_NAME = "release"
PR_UID = "3f0b9d4e-7a21-4c6e-9b58-1e2d3c4b5a69"
OTHER_PR_UID = "a7c2e9f1-0b3d-4e85-8f6a-2d1c0b9e8f77"  # an earlier PipelineRun named release
ROOT_BUNDLE = "pki/root.pem"

DIGEST = "sha256:" + "4e" * 32
COMMIT = "9c1a4e2f0b7d3c6e8a5f1b2d4c6e8a0f1b3d5c7e"


# ---------------------------------------------------------------- the pipeline

PIPELINE_SPEC = {
    "params": [{"name": "platforms", "type": "array", "default": ["linux/amd64", "linux/arm64"]}],
    "tasks": [
        {"name": "fetch", "taskRef": {"name": "git-clone"}},
        {"name": "build", "runAfter": ["fetch"], "taskRef": {"name": "kaniko"}},
        {"name": "test", "runAfter": ["build"], "taskRef": {"name": "smoke-test"},
         "matrix": {"params": [{"name": "platform", "value": ["$(params.platforms[*])"]}]}},
        {"name": "deploy", "runAfter": ["test"], "taskRef": {"name": "deploy"},
         "when": [{"input": "$(params.env)", "operator": "in", "values": ["prod"]}]},
    ],
    "finally": [{"name": "notify", "taskRef": {"name": "notify"}, "retries": 1}],
    "results": [
        {"name": "IMAGE_DIGEST", "type": "string", "value": "$(tasks.build.results.IMAGE_DIGEST)"},
        {"name": "IMAGE_URL", "type": "string",
         "value": "$(tasks.build.results.info.registry)/$(tasks.build.results.info.repo)"},
        {"name": "TAGS", "type": "array", "value": "$(tasks.build.results.tags[*])"},
        {"name": "FIRST_TAG", "type": "string", "value": "$(tasks.build.results.tags[0])"},
        {"name": "INFO", "type": "object", "value": "$(tasks.build.results.info[*])"},
        {"name": "REPORTS", "type": "array", "value": "$(tasks.test.results.report[*])"},
        {"name": "RECEIPT", "type": "string", "value": "$(finally.notify.results.receipt)"},
        {"name": "SOURCE", "type": "object",
         "value": {"commit": "$(tasks.fetch.results.commit)",
                   "image": "$(tasks.build.results.IMAGE_DIGEST)"}},
        {"name": "BUNDLE", "type": "array",
         "value": ["$(tasks.fetch.results.commit)", "$(tasks.build.results.tags[*])"]},
        {"name": "DEPLOYED_URL", "type": "string", "value": "$(tasks.deploy.results.url)"},
    ],
}

INFO = {"registry": "registry.example.org", "repo": "team/app"}
TAGS = ["v1.4.0", "latest"]

# The pipeline's results as Tekton v1.15 writes them for the pristine run, by hand:
# DEPLOYED_URL is absent (deploy was skipped, so Tekton leaves the result out), REPORTS
# gathers the matrix's reports in the order of the TaskRuns' names.
PIPELINE_RESULTS = [
    {"name": "IMAGE_DIGEST", "value": DIGEST},
    {"name": "IMAGE_URL", "value": "registry.example.org/team/app"},
    {"name": "TAGS", "value": TAGS},
    {"name": "FIRST_TAG", "value": "v1.4.0"},
    {"name": "INFO", "value": INFO},
    {"name": "REPORTS", "value": ["amd64: 12 passed", "arm64: 12 passed"]},
    {"name": "RECEIPT", "value": "notified #41"},
    {"name": "SOURCE", "value": {"commit": COMMIT, "image": DIGEST}},
    {"name": "BUNDLE", "value": [COMMIT, "v1.4.0", "latest"]},
]


@dataclass
class Child:
    """A TaskRun of the PipelineRun: its pipeline task, results and run."""
    name: str
    task: str
    results: dict
    start: str
    completion: str
    uid: str
    owner_uid: str = PR_UID
    owner_name: str = PR_NAME
    retries_status: list = field(default_factory=list)

    def document(self, p: SealPki, results: dict | None = None) -> dict:
        """The TaskRun sealed over `self.results`; `results` replaces what its status shows."""
        meta = TaskRunMeta(name=self.name, namespace=NS, uid=self.uid, start=self.start,
                           completion=self.completion)
        leaf = p.leaf(f"leaf-{self.name}", spiffe_id=pki.taskrun_spiffe_id(NS, self.name))
        sealed = sl.seal(sl.Identity(NS, self.name, self.uid, len(self.retries_status)),
                         self.completion, self.results, leaf)
        shown = self.results if results is None else results
        entries = [{"name": n, "type": sl.type_of(v), "value": copy.deepcopy(v)}
                   for n, v in shown.items()]
        entries.append({"name": sl.RESULT_NAME, "type": "string", "value": sealed.value})
        entries.sort(key=lambda e: e["name"].encode())
        declared = [Result(n, sl.type_of(v), "") for n, v in self.results.items()]
        declared.append(Result(sl.RESULT_NAME, "string", ""))
        doc = taskrun_document(V1, meta, declared, entries)
        doc["status"]["taskSpec"]["steps"].append(copy.deepcopy(SIGN_STEP))
        doc["metadata"]["labels"].update({
            "tekton.dev/pipeline": "release-pipeline",
            "tekton.dev/pipelineRun": self.owner_name,
            "tekton.dev/pipelineTask": self.task,
        })
        doc["metadata"]["ownerReferences"] = [{
            "apiVersion": V1, "kind": "PipelineRun", "name": self.owner_name,
            "uid": self.owner_uid, "controller": True, "blockOwnerDeletion": True}]
        if self.retries_status:
            doc["status"]["retriesStatus"] = copy.deepcopy(self.retries_status)
        return doc


def children() -> list[Child]:
    earlier = {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}],
               "podName": "release-notify-pod", "startTime": "2025-06-01T12:05:10Z",
               "completionTime": "2025-06-01T12:05:20Z",
               "results": [{"name": "receipt", "type": "string", "value": "notified #40"}]}
    return [
        Child("release-fetch", "fetch", {"commit": COMMIT}, "2025-06-01T12:00:00Z",
              "2025-06-01T12:01:00Z", "0b6e2f1c-5a3d-4c7b-9e8f-1a2b3c4d5e01"),
        Child("release-build", "build", {"IMAGE_DIGEST": DIGEST, "tags": TAGS, "info": INFO},
              "2025-06-01T12:01:05Z", "2025-06-01T12:04:00Z",
              "0b6e2f1c-5a3d-4c7b-9e8f-1a2b3c4d5e02"),
        Child("release-test-0", "test", {"report": "amd64: 12 passed"},
              "2025-06-01T12:04:05Z", "2025-06-01T12:05:00Z",
              "0b6e2f1c-5a3d-4c7b-9e8f-1a2b3c4d5e03"),
        Child("release-test-1", "test", {"report": "arm64: 12 passed"},
              "2025-06-01T12:04:05Z", "2025-06-01T12:05:02Z",
              "0b6e2f1c-5a3d-4c7b-9e8f-1a2b3c4d5e04"),
        # Retried once: the first attempt is in status.retriesStatus, with its own receipt.
        Child("release-notify", "notify", {"receipt": "notified #41"},
              "2025-06-01T12:05:30Z", "2025-06-01T12:05:40Z",
              "0b6e2f1c-5a3d-4c7b-9e8f-1a2b3c4d5e05", retries_status=[earlier]),
    ]


def child_reference(c: Child) -> dict:
    return {"apiVersion": V1, "kind": "TaskRun", "name": c.name, "pipelineTaskName": c.task}


def pipelinerun(kids: list[Child], results=None, spec=None, inline=False) -> dict:
    """The PipelineRun as the API server returns it once it has completed."""
    spec = copy.deepcopy(PIPELINE_SPEC if spec is None else spec)
    return {
        "apiVersion": V1,
        "kind": "PipelineRun",
        "metadata": {"name": PR_NAME, "namespace": NS, "uid": PR_UID,
                     "labels": {"tekton.dev/pipeline": "release-pipeline"}},
        "spec": ({"pipelineSpec": copy.deepcopy(PIPELINE_SPEC)} if inline
                 else {"pipelineRef": {"name": "release-pipeline"}}) | {
            "params": [{"name": "env", "value": "staging"}],
            "taskRunTemplate": {"serviceAccountName": "default"}},
        "status": {
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded",
                            "message": "Tasks Completed: 5 (Failed: 0, Cancelled 0), Skipped: 1",
                            "lastTransitionTime": "2025-06-01T12:05:41Z"}],
            "startTime": "2025-06-01T11:59:58Z",
            "completionTime": "2025-06-01T12:05:41Z",
            "pipelineSpec": spec,
            "childReferences": [child_reference(c) for c in kids],
            "skippedTasks": [{"name": "deploy", "reason": "When Expressions evaluated to false",
                              "whenExpressions": copy.deepcopy(spec["tasks"][3].get("when", []))
                              if len(spec["tasks"]) > 3 else []}],
            "results": copy.deepcopy(PIPELINE_RESULTS if results is None else results),
        },
    }


def taskrun_list(docs: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": docs}


# ---------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    expect: str  # accept | reject | invalid
    reason: str | None
    note: str
    pipelinerun: dict | str
    taskruns: list  # documents (each a List or a TaskRun), or raw text
    ext: str = "json"
    args: list[str] = field(default_factory=list)


def render(content, ext: str) -> str:
    if isinstance(content, str):
        return content
    if ext == "yaml":
        return yaml.dump(content, Dumper=gen_fixtures._BlockDumper, sort_keys=False,
                         default_flow_style=False, width=1000, allow_unicode=False)
    return json.dumps(content, indent=2) + "\n"


def with_result(results, name, value):
    out = copy.deepcopy(results)
    for r in out:
        if r["name"] == name:
            r["value"] = value
            return out
    raise KeyError(name)


def all_cases(p: SealPki) -> list[Case]:
    kids = children()
    docs = [c.document(p) for c in kids]
    pristine_list = taskrun_list(docs)
    pr = pipelinerun(kids)

    def edited_pr(edit) -> dict:
        out = copy.deepcopy(pr)
        edit(out)
        return out

    def edited_list(edit) -> dict:
        out = copy.deepcopy(docs)
        edit(out)
        return taskrun_list(out)

    by_name = {c.name: c for c in kids}

    # Another PipelineRun's verified TaskRun, standing in for release-build: a run named
    # release-build of an earlier PipelineRun also named release (another UID), with
    # another digest, sealed by its own SVID.
    other_digest = "sha256:" + "7a" * 32
    other = Child("release-build", "build",
                  {"IMAGE_DIGEST": other_digest, "tags": TAGS, "info": INFO},
                  "2025-06-01T11:41:05Z", "2025-06-01T11:44:00Z",
                  "55e1c0a2-9d3b-4f7e-8c6a-0f1e2d3c4b5a", owner_uid=OTHER_PR_UID)
    other_leaf_child = Child("nightly-build", "build",
                             {"IMAGE_DIGEST": other_digest, "tags": TAGS, "info": INFO},
                             "2025-06-01T12:01:05Z", "2025-06-01T12:04:00Z",
                             "55e1c0a2-9d3b-4f7e-8c6a-0f1e2d3c4b5b", owner_name="nightly",
                             owner_uid=OTHER_PR_UID)

    def swap_child(kid: Child) -> tuple[dict, dict]:
        new_docs = [kid.document(p) if d["metadata"]["name"] == "release-build" else d
                    for d in docs]
        refs_pr = edited_pr(lambda o: [r.update(name=kid.name)
                                       for r in o["status"]["childReferences"]
                                       if r["pipelineTaskName"] == "build"])
        return (with_result_pr(refs_pr, "IMAGE_DIGEST", other_digest),
                taskrun_list(new_docs))

    def with_result_pr(doc, name, value):
        out = copy.deepcopy(doc)
        out["status"]["results"] = with_result(out["status"]["results"], name, value)
        for r in out["status"]["results"]:
            if r["name"] == "SOURCE":
                r["value"]["image"] = value if name == "IMAGE_DIGEST" else r["value"]["image"]
        return out

    swapped_pr, swapped_list = swap_child(other)
    foreign_pr, foreign_list = swap_child(other_leaf_child)

    # A forged child: release-build's status shows another digest than it sealed, and the
    # PipelineRun's results follow it.
    forged_list = edited_list(lambda ds: ds.__setitem__(1, by_name["release-build"].document(
        p, results={**by_name["release-build"].results, "IMAGE_DIGEST": other_digest})))
    forged_pr = with_result_pr(pr, "IMAGE_DIGEST", other_digest)

    custom_spec = copy.deepcopy(PIPELINE_SPEC)
    custom_spec["tasks"].append({"name": "approve", "taskRef": {"apiVersion": "example.dev/v1",
                                                                "kind": "Approval"}})
    custom_spec["results"].append({"name": "APPROVER", "type": "string",
                                   "value": "$(tasks.approve.results.approver)"})
    custom_pr = pipelinerun(kids, spec=custom_spec,
                            results=PIPELINE_RESULTS + [{"name": "APPROVER", "value": "alice"}])
    custom_pr["status"]["childReferences"].append({
        "apiVersion": "tekton.dev/v1beta1", "kind": "CustomRun", "name": "release-approve",
        "pipelineTaskName": "approve"})

    literal_spec = copy.deepcopy(PIPELINE_SPEC)
    literal_spec["results"].append({"name": "CHANNEL", "type": "string", "value": "stable"})
    literal_pr = pipelinerun(kids, spec=literal_spec,
                             results=PIPELINE_RESULTS + [{"name": "CHANNEL", "value": "stable"}])

    remapped_spec = copy.deepcopy(PIPELINE_SPEC)
    remapped_spec["results"][0]["value"] = "$(tasks.fetch.results.commit)"
    remapped = pipelinerun(kids, spec=remapped_spec,
                           results=with_result(PIPELINE_RESULTS, "IMAGE_DIGEST", COMMIT))
    remapped_inline = copy.deepcopy(remapped)
    remapped_inline["spec"] = {"pipelineSpec": copy.deepcopy(PIPELINE_SPEC),
                               "params": [{"name": "env", "value": "staging"}]}

    no_matrix_spec = copy.deepcopy(PIPELINE_SPEC)
    del no_matrix_spec["tasks"][2]["matrix"]
    no_fetch_spec = copy.deepcopy(PIPELINE_SPEC)
    del no_fetch_spec["tasks"][0]
    no_fetch_spec["tasks"][0]["runAfter"] = []

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "release-build-pod",
                                                           "namespace": NS}}

    def yaml_text(doc) -> str:
        return render(doc, "yaml")

    accept, reject, invalid = "accept", "reject", "invalid"
    return [
        Case("pristine", accept, None, "A PipelineRun of five TaskRuns (fetch, build, a "
             "two-way matrix test, a finally notify retried once) and a skipped deploy; nine "
             "results of every kind of reference, DEPLOYED_URL absent as Tekton leaves it.",
             pr, [pristine_list]),
        Case("pristine-yaml", accept, None, "pristine, both documents in YAML as kubectl "
             "prints them.", yaml_text(pr), [yaml_text(pristine_list)], ext="yaml"),
        Case("taskruns-in-separate-files", accept, None, "pristine with each TaskRun in a "
             "file of its own (--taskrun given five files).", pr, docs),
        Case("inline-pipeline-spec", accept, None, "pristine with the pipeline written "
             "inline in spec.pipelineSpec, equal to status.pipelineSpec.",
             pipelinerun(kids, inline=True), [pristine_list]),
        Case("custom-task-result-allowed", accept, None, "pristine plus a CustomRun child "
             "(task approve) whose result APPROVER the pipeline reports, verified with "
             "--unverifiable-results allow: APPROVER is reported as unverifiable.",
             custom_pr, [pristine_list], args=["--unverifiable-results", "allow"]),
        Case("spec-remapped-under-pipelineref", accept, None, "status.pipelineSpec edited so "
             "that IMAGE_DIGEST comes from tasks.fetch.results.commit, and the result set to "
             "the commit: with a pipelineRef, the status's spec is all there is, so this "
             "verifies, and the verdict names fetch.commit as the source (docs/pipelinerun.md, "
             "limits).", remapped, [pristine_list]),
        # The PipelineRun's results.
        Case("result-changed", reject, "pipeline.result-mismatch", "pristine with "
             "IMAGE_DIGEST in status.results set to another digest.",
             with_result_pr(pr, "IMAGE_DIGEST", other_digest), [pristine_list]),
        Case("object-result-field-changed", reject, "pipeline.result-mismatch", "pristine "
             "with INFO.repo changed in status.results.",
             edited_pr(lambda o: o["status"]["results"][4]["value"].update(repo="evil/app")),
             [pristine_list]),
        Case("matrix-results-reordered", reject, "pipeline.result-mismatch", "pristine with "
             "REPORTS reversed: Tekton gathers a matrix in the order of the TaskRuns' names.",
             edited_pr(lambda o: o["status"]["results"][5]["value"].reverse()), [pristine_list]),
        Case("result-from-earlier-attempt", reject, "pipeline.result-mismatch", "pristine "
             "with RECEIPT set to the receipt of notify's first, failed attempt (in its "
             "status.retriesStatus): only the final attempt's results count.",
             with_result_pr(pr, "RECEIPT", "notified #40"), [pristine_list]),
        Case("result-of-skipped-task", reject, "pipeline.result-unsourced", "pristine with "
             "DEPLOYED_URL added to status.results, although deploy was skipped.",
             edited_pr(lambda o: o["status"]["results"].append(
                 {"name": "DEPLOYED_URL", "value": "https://app.example.org"})),
             [pristine_list]),
        Case("result-undeclared", reject, "pipeline.result-undeclared", "pristine with a "
             "result SIGNED_OFF in status.results that the pipeline does not declare.",
             edited_pr(lambda o: o["status"]["results"].append(
                 {"name": "SIGNED_OFF", "value": "true"})), [pristine_list]),
        Case("result-dropped", reject, "pipeline.result-missing", "pristine without "
             "IMAGE_DIGEST in status.results, though its source verified.",
             edited_pr(lambda o: o["status"]["results"].pop(0)), [pristine_list]),
        Case("result-duplicated", reject, "pipeline.status-malformed", "pristine with "
             "IMAGE_DIGEST twice in status.results (same value).",
             edited_pr(lambda o: o["status"]["results"].append(
                 copy.deepcopy(o["status"]["results"][0]))), [pristine_list]),
        Case("literal-result", reject, "pipeline.result-unverifiable", "pristine plus a "
             "result CHANNEL whose value is the literal 'stable', refers to no task result.",
             literal_pr, [pristine_list]),
        Case("custom-task-result", reject, "pipeline.result-unverifiable",
             "custom-task-result-allowed without --unverifiable-results allow.",
             custom_pr, [pristine_list]),
        # The children.
        Case("child-swapped-for-another-pipelineruns", reject, "pipeline.child-foreign",
             "pristine with the build TaskRun replaced by the verified release-build of an "
             "earlier PipelineRun also named release (another UID), and IMAGE_DIGEST set to "
             "its digest.", swapped_pr, [swapped_list]),
        Case("child-swapped-for-another-pipelines-taskrun", reject, "pipeline.child-foreign",
             "pristine with childReferences naming nightly-build (a verified TaskRun of "
             "PipelineRun nightly) for build, that TaskRun given instead of release-build, and "
             "IMAGE_DIGEST set to its digest.", foreign_pr, [foreign_list]),
        Case("child-dropped-from-taskruns", reject, "pipeline.child-missing", "pristine "
             "without release-fetch among the TaskRuns given.",
             pr, [edited_list(lambda ds: ds.pop(0))]),
        Case("child-dropped-from-status", reject, "pipeline.child-unreferenced", "pristine "
             "with release-fetch removed from status.childReferences (the TaskRun, labelled "
             "and owned, still given).",
             edited_pr(lambda o: o["status"]["childReferences"].pop(0)), [pristine_list]),
        Case("child-forged", reject, "pipeline.child-rejected", "pristine with "
             "release-build's status showing another IMAGE_DIGEST than it sealed, and the "
             "PipelineRun's IMAGE_DIGEST following it.", forged_pr, [forged_list]),
        Case("child-given-twice", reject, "pipeline.child-duplicated", "pristine with "
             "release-fetch given twice.",
             pr, [edited_list(lambda ds: ds.append(copy.deepcopy(ds[0])))]),
        Case("child-referenced-twice", reject, "pipeline.child-duplicated", "pristine with "
             "release-fetch's child reference twice in status.childReferences.",
             edited_pr(lambda o: o["status"]["childReferences"].append(
                 copy.deepcopy(o["status"]["childReferences"][0]))), [pristine_list]),
        Case("child-tasks-swapped", reject, "pipeline.child-task-mismatch", "pristine with "
             "the pipeline tasks of release-fetch and release-build swapped in "
             "status.childReferences.",
             edited_pr(lambda o: (o["status"]["childReferences"][0].update(
                 pipelineTaskName="build"), o["status"]["childReferences"][1].update(
                 pipelineTaskName="fetch"))), [pristine_list]),
        Case("skipped-task-ran", reject, "pipeline.skipped-task-ran", "pristine with build "
             "also listed in status.skippedTasks.",
             edited_pr(lambda o: o["status"]["skippedTasks"].append(
                 {"name": "build", "reason": "When Expressions evaluated to false"})),
             [pristine_list]),
        Case("unknown-task", reject, "pipeline.unknown-task", "pristine with fetch removed "
             "from status.pipelineSpec.", pipelinerun(kids, spec=no_fetch_spec),
             [pristine_list]),
        Case("fan-out-without-matrix", reject, "pipeline.task-fanned-out", "pristine with "
             "test's matrix removed from status.pipelineSpec: two TaskRuns for one task.",
             pipelinerun(kids, spec=no_matrix_spec), [pristine_list]),
        # The PipelineRun itself.
        Case("spec-remapped-under-inline-spec", reject, "pipeline.spec-mismatch",
             "spec-remapped-under-pipelineref with the pipeline written inline in "
             "spec.pipelineSpec (which the status writer cannot change).",
             remapped_inline, [pristine_list]),
        Case("spec-missing", reject, "pipeline.spec-missing", "pristine without "
             "status.pipelineSpec.",
             edited_pr(lambda o: o["status"].pop("pipelineSpec")), [pristine_list]),
        Case("not-complete", reject, "pipeline.not-complete", "pristine without "
             "status.completionTime.",
             edited_pr(lambda o: o["status"].pop("completionTime")), [pristine_list]),
        Case("no-uid", reject, "pipeline.no-uid", "pristine without metadata.uid.",
             edited_pr(lambda o: o["metadata"].pop("uid")), [pristine_list]),
        Case("child-references-not-a-list", reject, "pipeline.status-malformed", "pristine "
             "with status.childReferences an object.",
             edited_pr(lambda o: o["status"].update(childReferences={"fetch": "release-fetch"})),
             [pristine_list]),
        # Input that is not what it should be.
        Case("pipelinerun-is-a-taskrun", invalid, "input.not-pipelinerun", "release-fetch "
             "given as --pipelinerun.", docs[0], [pristine_list]),
        Case("taskruns-list-holds-a-pod", invalid, "input.not-taskrun", "pristine with a Pod "
             "added to the List of TaskRuns.",
             pr, [edited_list(lambda ds: ds.append(pod))]),
    ]


# ---------------------------------------------------------------- files

def generate(out: Path) -> dict:
    p = SealPki()
    files: dict[str, str] = {ROOT_BUNDLE: p.root.pem()}
    by_text: dict[str, str] = {}

    def file_for(text: str, base: str) -> str:
        if text in by_text:
            return by_text[text]
        name = base
        by_text[text] = name
        files[name] = text
        return name

    manifest_cases = []
    for case in all_cases(p):
        pr_file = file_for(render(case.pipelinerun, case.ext),
                           f"{case.name}.pipelinerun.{case.ext}")
        tr_files = []
        for i, tr in enumerate(case.taskruns):
            suffix = "" if len(case.taskruns) == 1 else f"-{i}"
            tr_files.append(file_for(render(tr, case.ext),
                                     f"{case.name}.taskruns{suffix}.{case.ext}"))
        manifest_cases.append({
            "name": case.name, "pipelinerun": pr_file, "taskruns": tr_files,
            "bundles": [ROOT_BUNDLE], "trust_domain": pki.TRUST_DOMAIN, "args": case.args,
            "expect": case.expect, "reason": case.reason, "note": case.note})
    manifest = {"cases": manifest_cases}
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    for rel, text in files.items():
        if "PRIVATE KEY" in text:
            raise AssertionError(f"refusing to write key material into {rel}")
        gen_fixtures.write_atomic(out / rel, text)
    gen_seal_vectors.remove_stale(out, set(files))
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    manifest = generate(args.out)
    print(f"wrote {len(manifest['cases'])} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
