#!/usr/bin/env python3
"""Independent verifier of a PipelineRun end to end, written from docs/pipelinerun.md.

It shares no code with the Rust implementation; each TaskRun is verified by the
independent seal verifier (seal_verifier.py, written from docs/seal-format.md). Section
numbers in comments refer to docs/pipelinerun.md.

Usage:
    python3 pipeline_verifier.py --pipelinerun FILE --taskrun FILE [FILE ...] \
        --bundle FILE [--bundle FILE ...] --trust-domain TD \
        [--unverifiable-results reject|allow] [--clock-skew SECONDS]

Prints one JSON object; exit 0 verified, 1 rejected, 2 invalid input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seal_verifier as sv  # noqa: E402

MAX_LIST_BYTES = 64 * 1024 * 1024  # section 1
API_RESULTS = {"tekton.dev/v1": "results", "tekton.dev/v1beta1": "pipelineResults"}
# Section 3, step 1 (RE2; Python's re agrees for this expression).
VARIABLE = re.compile(r"\$\([_a-zA-Z0-9.-]+(\.[_a-zA-Z0-9.-]+)*(\[([0-9]+|\*)\])?\)")
INDEX = re.compile(r"\[[0-9]*\*?\]")


class Rejected(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


# ------------------------------------------------------------------ reading (section 1)

def _read_bytes(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise sv.Invalid("input.read", "cannot read %s: %s" % (path, e))
    if len(data) > limit:
        raise sv.Invalid("input.too-large", "%s is too large" % path)
    return data


def _text(data: bytes, not_kind: str) -> str:
    try:
        text = data.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise sv.Invalid(not_kind, "not UTF-8")
    if all(c in sv.WHITE_SPACE for c in text):
        raise sv.Invalid("input.empty", "empty")
    return text


@dataclass
class Given:
    """A TaskRun given: identity, owner, labels, and its own verdict."""
    namespace: str
    name: str
    uid: str | None
    labels: dict
    owners: list  # (name, uid) of each owner reference of kind PipelineRun
    taskrun: Any  # sv.TaskRun, or None when its status was malformed
    rejection: Any = None  # sv.Rejected from reading its status


def _membership(doc: dict) -> tuple[dict, list]:
    """Section 1: labels (strings) and the owner references of kind PipelineRun."""
    meta = doc.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    labels = {} if labels is None else labels
    owners = [] if owners is None else owners
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise sv.Invalid("input.not-taskrun", "metadata.labels is not an object of strings")
    if not isinstance(owners, list):
        raise sv.Invalid("input.not-taskrun", "metadata.ownerReferences is not a list")
    pipelineruns = []
    for o in owners:
        if not isinstance(o, dict) or not all(isinstance(o.get(k), str)
                                              for k in ("kind", "name", "uid")):
            raise sv.Invalid("input.not-taskrun", "a malformed owner reference")
        if o["kind"] == "PipelineRun":
            pipelineruns.append((o["name"], o["uid"]))
    return labels, pipelineruns


def _given(doc: Any) -> Given:
    labels, owners = (_membership(doc) if isinstance(doc, dict) else ({}, []))
    try:
        tr = sv.taskrun_from_doc(doc)
        return Given(tr.namespace, tr.name, tr.uid, labels, owners, tr)
    except sv.Rejected as e:  # a malformed status: the TaskRun is still identified
        who = e.taskrun
        return Given(who.namespace, who.name, who.uid, labels, owners, None, e)


def read_taskruns(path: str) -> list[Given]:
    text = _text(_read_bytes(path, MAX_LIST_BYTES), "input.not-taskrun")
    doc = sv.parse_document(text)
    is_list = (isinstance(doc, dict)
               and (doc.get("apiVersion"), doc.get("kind")) in {
                   ("v1", "List"), ("tekton.dev/v1", "TaskRunList"),
                   ("tekton.dev/v1beta1", "TaskRunList")})
    if not is_list:
        # Section 1: a file holding one TaskRun is bounded as a TaskRun document is
        # (docs/seal-format.md, section 9.1), once it is read.
        if len(text.encode("utf-8")) > sv.MAX_DOC_BYTES:
            raise sv.Invalid("input.too-large", "%s is too large for one TaskRun" % path)
        sv.check_yaml_size(text)
        return [_given(doc)]
    items = doc.get("items")
    if items is None:
        items = []
    if not isinstance(items, list) or not items:
        raise sv.Invalid("input.not-taskrun", "the List holds no items")
    return [_given(item) for item in items]


@dataclass
class Spec:
    tasks: list  # (name, matrixed) in order: tasks then finally
    results: list  # (name, value) in order


@dataclass
class PipelineRunDoc:
    namespace: str
    name: str
    uid: str | None
    inline: Spec | None
    status: Any  # dict of parsed parts, or a Rejected


def _shape(value) -> bool:
    return sv._value_type(value) is not None


def _spec(raw: Any) -> Spec:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    tasks, names = [], set()
    for key in ("tasks", "finally"):
        lst = [] if sv._absent(raw, key) else raw[key]
        if not isinstance(lst, list):
            raise ValueError("%s is not a list" % key)
        for t in lst:
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise ValueError("a task without a name")
            if t["name"] in names:
                raise ValueError("task %r twice" % t["name"])
            names.add(t["name"])
            m = None if sv._absent(t, "matrix") else t["matrix"]
            if m is not None and not isinstance(m, dict):
                raise ValueError("a matrix is not an object")
            matrixed = False
            for part in ("params", "include"):
                v = None if m is None or sv._absent(m, part) else m[part]
                if v is not None and not isinstance(v, list):
                    raise ValueError("matrix.%s is not a list" % part)
                matrixed = matrixed or bool(v)
            tasks.append((t["name"], matrixed))
    results = _named_values(None if sv._absent(raw, "results") else raw["results"])
    if len({n for n, _ in results}) != len(results):
        raise ValueError("a result declared twice")
    return Spec(tasks, results)


def _named_values(lst: Any) -> list:
    if lst is None:
        return []
    if not isinstance(lst, list):
        raise ValueError("not a list")
    out = []
    for r in lst:
        if (not isinstance(r, dict) or not isinstance(r.get("name"), str) or "value" not in r
                or not _shape(r["value"])):
            raise ValueError("a malformed result")
        out.append((r["name"], r["value"]))
    return out


def _status(doc: dict, results_key: str) -> dict:
    status = {} if sv._absent(doc, "status") else doc["status"]
    if not isinstance(status, dict):
        raise ValueError("status is not an object")
    out = {"completion": None, "children": [], "skipped": set(), "spec": None, "results": []}
    if not sv._absent(status, "completionTime"):
        if sv.parse_rfc3339(status["completionTime"]) is None:
            raise ValueError("completionTime is not RFC 3339")
        out["completion"] = status["completionTime"]
    refs = [] if sv._absent(status, "childReferences") else status["childReferences"]
    if not isinstance(refs, list):
        raise ValueError("childReferences is not a list")
    for c in refs:
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str)
                                              for k in ("kind", "name", "pipelineTaskName")):
            raise ValueError("a malformed child reference")
        out["children"].append((c["kind"], c["name"], c["pipelineTaskName"]))
    skipped = [] if sv._absent(status, "skippedTasks") else status["skippedTasks"]
    if not isinstance(skipped, list):
        raise ValueError("skippedTasks is not a list")
    for s in skipped:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise ValueError("a malformed skipped task")
        out["skipped"].add(s["name"])
    if not sv._absent(status, "pipelineSpec"):
        out["spec"] = _spec(status["pipelineSpec"])
    out["results"] = _named_values(None if sv._absent(status, results_key)
                                   else status[results_key])
    if len({n for n, _ in out["results"]}) != len(out["results"]):
        raise ValueError("a result twice")
    return out


def read_pipelinerun(path: str) -> PipelineRunDoc:
    text = _text(_read_bytes(path, sv.MAX_DOC_BYTES), "input.not-pipelinerun")
    sv.check_yaml_size(text)
    doc = sv.parse_document(text)
    bad = lambda m: sv.Invalid("input.not-pipelinerun", m)  # noqa: E731
    if not isinstance(doc, dict) or doc.get("kind") != "PipelineRun" \
            or doc.get("apiVersion") not in API_RESULTS:
        raise bad("not a tekton.dev/v1 or v1beta1 PipelineRun")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise bad("no metadata.name")
    ns = "default" if sv._absent(meta, "namespace") else meta["namespace"]
    uid = None if sv._absent(meta, "uid") else meta["uid"]
    if not isinstance(ns, str) or not (uid is None or isinstance(uid, str)):
        raise bad("metadata.namespace or uid is not a string")
    inline = None
    spec = doc.get("spec")
    if isinstance(spec, dict) and not sv._absent(spec, "pipelineSpec"):
        try:
            inline = _spec(spec["pipelineSpec"])
        except ValueError as e:
            raise bad("spec.pipelineSpec: %s" % e)
    try:
        status = _status(doc, API_RESULTS[doc["apiVersion"]])
    except ValueError as e:
        status = Rejected("pipeline.status-malformed", str(e))
    return PipelineRunDoc(ns, meta["name"], uid, inline, status)


# ------------------------------------------------------------------ section 3

UNVERIFIABLE, UNMADE = "unverifiable", "unmade"


def variables(value) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        texts = value
    else:
        texts = [value[k] for k in sorted(value, key=lambda k: k.encode())]
    return [m.group(0)[2:-1] for t in texts for m in VARIABLE.finditer(t)]


def split_name(n: str) -> tuple[str, str]:
    m = INDEX.search(n)
    index = m.group(0)[1:-1] if m else ""
    return INDEX.sub("", n), index


def strip_star(v: str) -> str:
    return v[:-3] if v.endswith("[*]") else v


def make(value, lookup) -> tuple[str, Any]:
    """('value', (made, sources)) | ('unverifiable', why) | ('unmade', why)."""
    vs = variables(value)
    if not vs:
        return UNVERIFIABLE, "refers to no task result"
    strings, arrays, objects, sources = {}, {}, {}, set()
    unverifiable = None
    for v in vs:
        parts = v.split(".")
        if len(parts) < 3 or parts[0] not in ("tasks", "finally") or parts[2] != "results":
            unverifiable = unverifiable or "$(%s) is not a task result" % v
            continue
        task = parts[1]
        if len(parts) == 4:
            r, index = split_name(parts[3])
            kind, val = lookup(task, r)
            if kind == UNVERIFIABLE:
                unverifiable = unverifiable or "from a run that is not a TaskRun"
                continue
            if kind is None:
                return UNMADE, "$(%s): no such result" % v
            if isinstance(val, str):
                strings[v] = val
            elif isinstance(val, list):
                if index == "*":
                    arrays[strip_star(v)] = val
                else:
                    i = int(index) if index.isdigit() else 0
                    if i >= len(val):
                        return UNMADE, "$(%s): index out of range" % v
                    strings[v] = val[i]
            else:
                objects[strip_star(v)] = val
            sources.add((task, r))
        elif len(parts) == 5:
            r, _ = split_name(parts[3])
            kind, val = lookup(task, r)
            if kind == "found" and isinstance(val, dict) and parts[4] in val:
                strings[v] = val[parts[4]]
                sources.add((task, r))
            else:
                return UNMADE, "$(%s): no such key" % v
        else:
            unverifiable = unverifiable or "$(%s) is not a task result" % v
    if unverifiable:
        return UNVERIFIABLE, unverifiable
    return "value", (apply(value, strings, arrays, objects), sorted(sources))


def replace(text: str, strings: dict) -> str:
    out, i = [], 0
    while True:
        j = text.find("$(", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        end = text.find(")", j + 2)
        key = text[j + 2:end] if end >= 0 else None
        if key is not None and key in strings:
            out.append(strings[key])
            i = end + 1
        else:
            out.append("$(")
            i = j + 2


def apply_array(text: str, strings: dict, arrays: dict) -> list:
    for k, v in arrays.items():
        if text in ("$(%s)" % k, "$(%s[*])" % k):
            return list(v)
    return [replace(text, strings)]


def apply(value, strings, arrays, objects):
    if isinstance(value, list):
        return [x for item in value for x in apply_array(item, strings, arrays)]
    if isinstance(value, dict):
        return {k: replace(v, strings) for k, v in value.items()}
    exact = VARIABLE.fullmatch(value)
    if not exact:
        return replace(value, strings)
    v = strip_star(value[2:-1])
    out = value
    if v in strings:
        out = replace(value, strings)
    if v in arrays:
        out = apply_array(value, strings, arrays)
    if v in objects:
        out = dict(objects[v])
    return out


# ------------------------------------------------------------------ section 2

def verify_pipelinerun(pr: PipelineRunDoc, given: list[Given], roots, td: str, skew: int,
                       policy: str) -> dict:
    verdicts = []
    for g in given:
        if g.rejection is not None:
            verdicts.append(g.rejection)
            continue
        try:
            verdicts.append(sv.verify(g.taskrun, roots, td, None, skew))
        except sv.Rejected as e:
            verdicts.append(e)
    report = {"taskRuns": [{"name": g.name, "verdict": "rejected" if isinstance(v, sv.Rejected)
                            else "verified"} for g, v in zip(given, verdicts)],
              "results": []}
    # 1.
    if isinstance(pr.status, Rejected):
        raise pr.status
    st = pr.status
    # 2.-4.
    if not pr.uid:
        raise Rejected("pipeline.no-uid")
    if st["completion"] is None:
        raise Rejected("pipeline.not-complete")
    spec = st["spec"]
    if spec is None:
        raise Rejected("pipeline.spec-missing")
    if pr.inline is not None and (pr.inline.tasks != spec.tasks
                                  or pr.inline.results != spec.results):
        raise Rejected("pipeline.spec-mismatch")
    # 5.
    refs = {}
    for kind, name, task in st["children"]:
        if name in refs:
            raise Rejected("pipeline.child-duplicated", name)
        refs[name] = (kind, task)
    names = [g.name for g in given]
    if len(set(names)) != len(names):
        raise Rejected("pipeline.child-duplicated")
    # 6.
    for g in given:
        if (g.namespace != pr.namespace or g.owners != [(pr.name, pr.uid)]
                or g.labels.get("tekton.dev/pipelineRun") != pr.name):
            raise Rejected("pipeline.child-foreign", g.name)
        ref = refs.get(g.name)
        if ref is None or ref[0] != "TaskRun":
            raise Rejected("pipeline.child-unreferenced", g.name)
        if g.labels.get("tekton.dev/pipelineTask") != ref[1]:
            raise Rejected("pipeline.child-task-mismatch", g.name)
    # 7.
    for kind, name, _ in st["children"]:
        if kind == "TaskRun" and name not in names:
            raise Rejected("pipeline.child-missing", name)
    # 8.
    task_names = {t for t, _ in spec.tasks}
    matrixed = {t for t, m in spec.tasks if m}
    count: dict[str, int] = {}
    for _, name, task in st["children"]:
        if task not in task_names:
            raise Rejected("pipeline.unknown-task", name)
        if task in st["skipped"]:
            raise Rejected("pipeline.skipped-task-ran", name)
        count[task] = count.get(task, 0) + 1
    for task in sorted(count, key=lambda t: t.encode()):
        if count[task] > 1 and task not in matrixed:
            raise Rejected("pipeline.task-fanned-out", task)
    # 9.
    for g, v in zip(given, verdicts):
        if isinstance(v, sv.Rejected):
            raise Rejected("pipeline.child-rejected", "%s: %s" % (g.name, v.code))
    # 10.
    by_task: dict[str, list[Given]] = {}
    other_kinds = set()
    for kind, name, task in st["children"]:
        if kind == "TaskRun":
            by_task.setdefault(task, []).append(next(g for g in given if g.name == name))
        else:
            other_kinds.add(task)

    def lookup(task: str, r: str):
        runs = by_task.get(task)
        if runs:
            if task in matrixed:
                runs = sorted(runs, key=lambda g: g.name.encode())
                vals = [res.value if isinstance(res.value, str) else ""
                        for g in runs for res in g.taskrun.results if res.name == r]
                return ("found", vals) if vals else (None, None)
            found = [res.value for res in runs[0].taskrun.results if res.name == r]
            return ("found", found[0]) if found else (None, None)
        if task in other_kinds:
            return UNVERIFIABLE, None
        return None, None

    declared = dict(spec.results)
    allowed = []
    for name, value in st["results"]:
        if name not in declared:
            raise Rejected("pipeline.result-undeclared", name)
        kind, made = make(declared[name], lookup)
        if kind == UNMADE:
            raise Rejected("pipeline.result-unsourced", "%s: %s" % (name, made))
        if kind == UNVERIFIABLE:
            if policy != "allow":
                raise Rejected("pipeline.result-unverifiable", "%s: %s" % (name, made))
            allowed.append(name)
            report["results"].append({"name": name, "outcome": "unverifiable"})
            continue
        made_value, sources = made
        if made_value != value:
            raise Rejected("pipeline.result-mismatch", name)
        report["results"].append({"name": name, "outcome": "verified",
                                  "sources": [{"pipelineTask": t, "result": r}
                                              for t, r in sources]})
    # 11.
    present = {n for n, _ in st["results"]}
    for name, value in spec.results:
        if name not in present and make(value, lookup)[0] == "value":
            raise Rejected("pipeline.result-missing", name)
    return report


def run(argv: list[str]) -> tuple[int, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelinerun", required=True)
    parser.add_argument("--taskrun", nargs="+", action="extend", required=True)
    parser.add_argument("--bundle", action="append", required=True)
    parser.add_argument("--trust-domain", required=True)
    parser.add_argument("--clock-skew", type=int, default=sv.DEFAULT_SKEW)
    parser.add_argument("--unverifiable-results", choices=["reject", "allow"], default="reject")
    args = parser.parse_args(argv)
    try:
        if not sv.valid_trust_domain(args.trust_domain):
            raise sv.Invalid("input.trust-domain")
        roots = sv.load_bundles(args.bundle)
        pr = read_pipelinerun(args.pipelinerun)
        given = [g for path in args.taskrun for g in read_taskruns(path)]
        report = verify_pipelinerun(pr, given, roots, args.trust_domain, args.clock_skew,
                                    args.unverifiable_results)
    except sv.Invalid as e:
        return 2, {"verdict": "invalid", "reason": {"code": e.code, "message": e.message}}
    except Rejected as e:
        return 1, {"verdict": "rejected", "reason": {"code": e.code, "message": str(e)}}
    return 0, {"verdict": "verified", **report}


def main(argv: list[str] | None = None) -> int:
    code, obj = run(sys.argv[1:] if argv is None else argv)
    print(json.dumps(obj))
    return code


if __name__ == "__main__":
    sys.exit(main())
