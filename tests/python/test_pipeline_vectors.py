"""The PipelineRun vectors (tests/vectors/pipeline): current, well-formed, and judged by
the independent Python verifier (pipeline_verifier.py, from docs/pipelinerun.md) exactly
as the manifest says. tests/pipeline_vectors.rs runs the same manifest through the Rust
CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_pipeline_vectors  # noqa: E402
import pipeline_verifier as pv  # noqa: E402

COMMITTED = gen_pipeline_vectors.DEFAULT_OUT
DOC = HERE.parents[1] / "docs" / "pipelinerun.md"
EXIT = {"accept": 0, "reject": 1, "invalid": 2}

# The issue's attacks and variants, with their outcomes, stated apart from the generator.
REQUIRED = {
    "pristine": ("accept", None),
    "pristine-yaml": ("accept", None),
    "taskruns-in-separate-files": ("accept", None),
    "result-changed": ("reject", "pipeline.result-mismatch"),
    "child-swapped-for-another-pipelineruns": ("reject", "pipeline.child-foreign"),
    "child-swapped-for-another-pipelines-taskrun": ("reject", "pipeline.child-foreign"),
    "child-dropped-from-taskruns": ("reject", "pipeline.child-missing"),
    "child-dropped-from-status": ("reject", "pipeline.child-unreferenced"),
    "child-forged": ("reject", "pipeline.child-rejected"),
    "matrix-results-reordered": ("reject", "pipeline.result-mismatch"),
    "result-from-earlier-attempt": ("reject", "pipeline.result-mismatch"),
    "result-of-skipped-task": ("reject", "pipeline.result-unsourced"),
    "custom-task-result": ("reject", "pipeline.result-unverifiable"),
    "custom-task-result-allowed": ("accept", None),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pipeline")
    return out, gen_pipeline_vectors.generate(out)


def test_committed_vectors_are_current(generated):
    out, _ = generated
    made = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(COMMITTED).as_posix(): p.read_bytes()
                 for p in COMMITTED.rglob("*") if p.is_file()}
    assert made == committed, "run python3 tests/python/gen_pipeline_vectors.py"


def test_required_cases_have_the_issues_outcomes(generated):
    _, manifest = generated
    cases = {c["name"]: (c["expect"], c["reason"]) for c in manifest["cases"]}
    for name, outcome in REQUIRED.items():
        assert cases.get(name) == outcome, name


def test_every_code_is_documented(generated):
    _, manifest = generated
    doc = DOC.read_text(encoding="utf-8")
    for case in manifest["cases"]:
        if case["expect"] == "reject":
            assert f"`{case['reason']}`" in doc, case["reason"]


def test_no_private_key_material(generated):
    out, _ = generated
    for p in out.rglob("*"):
        if p.is_file():
            assert b"PRIVATE KEY" not in p.read_bytes(), p


@pytest.mark.parametrize("case", json.loads((COMMITTED / "manifest.json").read_text())["cases"],
                         ids=lambda c: c["name"])
def test_the_independent_verifier_gives_the_manifests_outcome(case, monkeypatch):
    monkeypatch.chdir(COMMITTED)
    argv = ["--pipelinerun", case["pipelinerun"], "--taskrun", *case["taskruns"],
            "--trust-domain", case["trust_domain"]]
    for b in case["bundles"]:
        argv += ["--bundle", b]
    code, obj = pv.run(argv + case["args"])
    assert code == EXIT[case["expect"]], obj
    assert (obj.get("reason") or {}).get("code") == case["reason"], obj


def test_tekton_result_rules_on_their_own():
    def lookup(task, r):
        table = {("b", "d"): "x", ("b", "a"): ["1", "2"], ("b", "o"): {"k": "v"}}
        return ("found", table[(task, r)]) if (task, r) in table else (None, None)

    assert pv.make("$(tasks.b.results.a[*])", lookup)[1][0] == ["1", "2"]
    assert pv.make("$(tasks.b.results.a)", lookup)[1][0] == "1"  # Go's Atoi error: item 0
    assert pv.make("v=$(tasks.b.results.o.k)", lookup)[1][0] == "v=v"
    assert pv.make(["$(tasks.b.results.a[*])", "$(tasks.b.results.d)"], lookup)[1][0] == \
        ["1", "2", "x"]
    assert pv.make("all $(tasks.b.results.a[*])", lookup)[1][0] == "all $(tasks.b.results.a[*])"
    assert pv.make("$(tasks.b.results.a[5])", lookup)[0] == pv.UNMADE
    assert pv.make("$(params.p)", lookup)[0] == pv.UNVERIFIABLE
    assert pv.make("literal", lookup)[0] == pv.UNVERIFIABLE
    assert pv.replace("$(a)$(b)$($(b)", {"a": "$(b)", "b": "B"}) == "$(b)B$(B"
