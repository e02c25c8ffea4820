"""README's "Sign in a Task" is what the node tests run: its Task snippet is
deploy/example/task.yaml (results, volume and the signing step, as written), and its
StepAction snippet passes the params deploy/stepaction/sign.yaml declares."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def section_yaml_blocks(title):
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text[start:end], re.S)]


def test_the_task_snippet_is_the_example_task():
    snippet = section_yaml_blocks("Sign in a Task")[0]["spec"]
    example = yaml.safe_load((ROOT / "deploy/example/task.yaml").read_text())["spec"]
    assert snippet["results"] == example["results"]
    assert snippet["volumes"] == example["volumes"]
    assert snippet["steps"] == [s for s in example["steps"] if s["name"] == "sign"]
    assert example["steps"][-1]["name"] == "sign", "the signing step must be the last"


def test_the_stepaction_snippet_passes_the_stepactions_params():
    (step,) = section_yaml_blocks("Sign in a Task")[1]
    action = yaml.safe_load((ROOT / "deploy/stepaction/sign.yaml").read_text())
    assert step["ref"]["name"] == action["metadata"]["name"]
    declared = {p["name"]: p for p in action["spec"]["params"]}
    for param in step["params"]:
        assert param["name"] in declared
    required = {n for n, p in declared.items() if "default" not in p}
    assert required <= {p["name"] for p in step["params"]}
