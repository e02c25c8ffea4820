#!/usr/bin/env python3
"""The worst inputs we know of for each class of issue 12 (time, memory, parser
differentials), each as large as the verifier accepts, judged beside an ordinary
10-result TaskRun: time of the judging (wall clock, fastest of RUNS in one process; and
CPU time per run, from wait4, which other work on the machine does not inflate) and peak
memory of the whole process (VmHWM, its maximum resident set).

Goal: every input up to the size limit judged in under 100 ms and 64 MiB.

The `verify` command reads each file as a possible List first (up to 64 MiB): the cases
of class `cli` are read that way (`judge --list`, the read timed too), the documents
beyond a single TaskRun's limits among them, and Lists filled to 64 MiB, which are judged
in seconds (each TaskRun is verified), not in 100 ms; their line says what they cost.

Usage: python3 scripts/bench-hostile.py [RUNS]     (default 5; the `cli` cases run once)
Builds crates/verify's `judge` example in release mode first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "crates" / "verify" / "benches" / "data"
LIMIT = 3 * 1024 * 1024  # MAX_TASKRUN_BYTES
LIST_LIMIT = 64 * 1024 * 1024  # MAX_LIST_BYTES
YAML_LIMIT = 512 * 1024  # MAX_YAML_BYTES
FLOW = 16  # YAML flow collections nested at most this deep
GOAL_MS, GOAL_MIB = 100, 64


def ordinary() -> dict:
    return json.loads((DATA / "taskrun-10-results.json").read_text())


def fill_json(doc: dict, member: str, unit: str, head: str = "", tail: str = "") -> str:
    """The ordinary TaskRun with one more top-level member holding head + unit repeated
    + tail, as close to the size limit as the unit allows."""
    base = json.dumps(doc, separators=(",", ":"))
    skeleton = base[:-1] + ',"%s":%s%%s%s}' % (member, head, tail)
    room = LIMIT - len(skeleton.encode()) + 2
    return skeleton % (unit * (room // len(unit.encode())))


def fill_keys(doc: dict) -> str:
    """The ordinary TaskRun with a member holding an object of as many distinct keys as
    fit: every key is kept while the object is read, to refuse a second one."""
    base = json.dumps(doc, separators=(",", ":"))
    head, tail = base[:-1] + ',"x":{', "}}"
    room = LIMIT - len(head) - len(tail)
    keys, size, i = [], 0, 0
    while True:
        item = '"k%d":0' % i
        if size + len(item) + 1 > room:
            break
        keys.append(item)
        size += len(item) + 1
        i += 1
    return head + ",".join(keys) + tail


def yaml_of(doc: dict) -> str:
    import yaml  # PyYAML, as scripts/test.sh installs it
    return yaml.safe_dump(doc, sort_keys=False, width=1 << 20)


def fill_yaml(doc: dict, head: str, unit: str, tail: str = "", limit: int = YAML_LIMIT) -> str:
    base = yaml_of(doc) + head
    room = limit - len(base.encode()) - len(tail.encode())
    return base + unit * (room // len(unit.encode())) + tail


def cases() -> list[tuple[str, str, str]]:
    doc = ordinary()
    # 126 levels inside the top object and the member's array: 128 in all.
    deep = "[" * 126 + "]" * 126
    results = doc["status"]["results"]
    big_value = json.loads(json.dumps(doc))
    big_value["status"]["results"][0] = dict(results[0], type="array", value=["" for _ in range(1)])
    kept = json.dumps(big_value, separators=(",", ":"))
    needle = '"value":[""]'
    room = LIMIT - len(kept.encode())
    kept = kept.replace(needle, '"value":[""' + ',""' * (room // 3) + "]", 1)
    yaml_kept = yaml_of(big_value)
    yaml_needle = "    value:\n    - ''\n"
    if yaml_kept.count(yaml_needle) != 1:
        raise SystemExit("the YAML rendering changed shape")
    room = YAML_LIMIT - len(yaml_kept.encode())
    yaml_kept = yaml_kept.replace(yaml_needle, "    value:\n" + "    - ''\n" * (room // 9 + 1), 1)
    alias_bomb = ("apiVersion: tekton.dev/v1\nkind: TaskRun\na: &a [" + ",".join(["x"] * 1000)
                  + "]\nb: [" + ",".join(["*a"] * ((YAML_LIMIT - 4100) // 3)) + "]\n")
    flow = "[" * (FLOW - 1) + "]" * (FLOW - 1)
    return [
        ("ordinary", "10-result TaskRun, sealed (the reference)",
         json.dumps(doc, indent=2)),
        ("time", "JSON nested 3 million deep",
         fill_json(doc, "x", "[")),
        ("time", "YAML nested 3 million deep (over its limit)",
         fill_yaml(doc, "x: ", "[", limit=LIMIT)),
        ("time", "YAML nested 500,000 deep",
         fill_yaml(doc, "x: ", "[")),
        ("time", "JSON nested 128 deep, over and over",
         fill_json(doc, "x", deep + ",", "[", "0]")),
        ("time", "YAML flow nested 128 deep (refused at 17)",
         fill_yaml(doc, "x: [", deep + ",", "0]\n")),
        ("time", "YAML flow nested 16 deep, over and over",
         fill_yaml(doc, "x: [", flow + ",", "0]\n")),
        ("time", "YAML block nested 127 deep, over and over",
         fill_yaml(doc, "x:\n", "- " + "- " * 126 + "a\n")),
        ("time", "YAML block 111 deep, flow 16 inside, repeated",
         fill_yaml(doc, "x:\n", "- " * 111 + "[" * FLOW + "]" * FLOW + "\n")),
        ("time", "YAML flow sequence of 1-letter strings",
         fill_yaml(doc, "x: [", "a,", "0]\n")),
        ("time", "YAML flow mappings of 1-letter pairs",
         fill_yaml(doc, "x: [", "{a: b},", "0]\n")),
        ("memory", "YAML aliases that would expand to 10^9 nodes",
         alias_bomb),
        ("memory", "JSON object of 300,000 distinct keys, ignored",
         fill_keys(doc)),
        ("memory", "JSON result value of a million strings, kept",
         kept),
        ("memory", "YAML result value of 58,000 strings, kept",
         yaml_kept),
        ("differential", "JSON-like text that is YAML at its very end",
         fill_json(doc, "x", '"a",', "[", "'b']")),
        ("differential", "a member given twice, deep in an ignored part",
         fill_json(doc, "x", '{"a":0},', "[", '{"a":0,"a":1}]')),
    ]


def cli_cases():
    """Files for the `verify` command, read as a possible List up to 64 MiB: the worst a
    single TaskRun over its limit costs before it is refused (result values that would
    be kept, as JSON and as YAML), and Lists of ordinary TaskRuns filled to 64 MiB. One
    at a time: each is 64 MiB."""
    doc = ordinary()
    big_value = json.loads(json.dumps(doc))
    big_value["status"]["results"][0] = dict(big_value["status"]["results"][0], type="array",
                                             value=[""])
    kept = json.dumps(big_value, separators=(",", ":"))
    room = LIST_LIMIT - len(kept.encode())
    yield ("cli", "JSON TaskRun of 64 MiB, 22 million strings",
           kept.replace('"value":[""]', '"value":[""' + ',""' * (room // 3) + "]", 1))
    yaml_kept = yaml_of(big_value)
    room = LIST_LIMIT - len(yaml_kept.encode())
    yield ("cli", "YAML TaskRun of 64 MiB, 7 million strings",
           yaml_kept.replace("    value:\n    - ''\n",
                             "    value:\n" + "    - ''\n" * (room // 9 + 1), 1))
    item = json.dumps(doc, separators=(",", ":"))
    head, tail = '{"apiVersion":"v1","items":[', '],"kind":"List","metadata":{}}'
    count = (LIST_LIMIT - len(head) - len(tail)) // (len(item) + 1)
    yield ("cli", "JSON List of 64 MiB, ordinary TaskRuns",
           head + ",".join([item] * count) + tail)
    yaml_item = yaml_of({"apiVersion": "v1", "items": [doc]}).split("items:\n", 1)[1]
    yaml_head, yaml_tail = "apiVersion: v1\nitems:\n", "kind: List\nmetadata: {}\n"
    count = (LIST_LIMIT - len(yaml_head) - len(yaml_tail)) // len(yaml_item.encode())
    yield ("cli", "YAML List of 64 MiB, ordinary TaskRuns",
           yaml_head + yaml_item * count + yaml_tail)


def build() -> Path:
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "tekton-spire-verify",
                    "--example", "judge"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "examples" / "judge"


def judge(binary: Path, path: Path, runs: int,
          as_list: bool = False) -> tuple[str, float, float, float]:
    proc = subprocess.Popen([str(binary)] + (["--list"] if as_list else []) +
                            [str(path), str(DATA / "root.pem"), str(runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit("judge failed on %s: %s" % (path.name, err.decode()))
    code, nanos, peak_kib = out.decode().split()
    cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000 / runs
    return code, int(nanos) / 1e6, cpu_ms, int(peak_kib) / 1024


def run_case(binary: Path, path: Path, case: tuple[str, str, str], limit: int, runs: int,
             as_list: bool = False) -> tuple[float, float]:
    """Writes the case's text to path, judges it and prints its line; returns the time
    (the lower of wall and CPU per run) and the peak."""
    cls, name, text = case
    data = text.encode()
    if len(data) > limit:
        raise SystemExit("case %r is %d bytes, over the limit" % (name, len(data)))
    path.write_bytes(data)
    code, ms, cpu, mib = judge(binary, path, runs, as_list)
    print("%-13s %-46s %9d %-18s %8.2f %8.2f %8.1f" % (cls, name, len(data), code, ms, cpu,
                                                      mib))
    return min(ms, cpu), mib


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 5
    binary = build()
    print("%-13s %-46s %9s %-18s %8s %8s %8s" % ("class", "input", "bytes", "verdict",
                                                 "wall ms", "cpu ms", "peak MiB"))
    worst = (0.0, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases():
            ms, mib = run_case(binary, Path(tmp) / "taskrun", case, LIMIT, runs)
            if case[0] != "ordinary":
                worst = (max(worst[0], ms), max(worst[1], mib))
        print("worst: %.2f ms, %.1f MiB (goal: under %d ms and %d MiB; time is the lower of "
              "wall and CPU per run)" % (worst[0], worst[1], GOAL_MS, GOAL_MIB))
        for case in cli_cases():
            run_case(binary, Path(tmp) / "taskruns", case, LIST_LIMIT, 1, as_list=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
