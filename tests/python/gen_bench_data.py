#!/usr/bin/env python3
"""Write the benchmark's input into crates/verify/benches/data/.

A completed tekton.dev/v1 TaskRun with ten Task results (strings, arrays and objects),
signed in Tekton's TEP-0089 format by the same SVID and root as the pristine legacy
fixtures (gen_fixtures.py's Pki), and that root as a PEM bundle; and a v1 List of 50
TaskRuns (build-00 to build-49) each sealed by an SVID of its own under that root, with
the seal vectors' four results, as `kubectl get taskruns -o json` prints them. Deterministic:
regenerating gives identical files. No private key is written.

Usage: python3 tests/python/gen_bench_data.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_fixtures import BASELINE, Pki, Scenario, write_atomic  # noqa: E402
from tsfixtures.legacy import Result  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "crates" / "verify" / "benches" / "data"
TASKRUN = "taskrun-10-results.json"
LIST = "taskruns-50-list.json"
LIST_SIZE = 50

# BASELINE's four results plus six more of each type: ten Task results in all.
RESULTS = list(BASELINE) + [
    Result("IMAGE_URL", "string", "registry.example.org/team/app"),
    Result("COMMIT", "string", "3f1c2a9b7d4e5f60718293a4b5c6d7e8f9012345"),
    Result("CHANGED_FILES", "array", '["src/main.rs","src/lib.rs","Cargo.toml","README.md"]'),
    Result("PLATFORMS", "array", '["linux/amd64","linux/arm64"]'),
    Result("SBOM", "object", '{"digest":"sha256:0123abcd","format":"spdx","uri":"oci://x"}'),
    Result("TEST_SUMMARY", "string", "412 passed, 0 failed, 3 skipped"),
]


def taskrun_list() -> dict:
    from gen_seal_vectors import Sealing, SealPki
    from tsfixtures import pki
    from tsfixtures.legacy import TaskRunMeta

    p = SealPki()
    items = []
    for i in range(LIST_SIZE):
        name = f"build-{i:02d}"
        meta = TaskRunMeta(name=name, uid=f"6c1f3a0e-2b7d-4e59-9a41-{i:012d}")
        leaf = p.leaf(f"bench-leaf-{name}", spiffe_id=pki.taskrun_spiffe_id("default", name))
        items.append(Sealing(leaf, meta=meta).document())
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": items}


def generate(out: Path) -> list[str]:
    if len(RESULTS) != 10 or len({r.name for r in RESULTS}) != 10:
        raise AssertionError("the benchmark TaskRun must have ten distinct results")
    p = Pki()
    doc = Scenario(p.good_leaf, results=RESULTS).document()
    files = {
        TASKRUN: json.dumps(doc, indent=2) + "\n",
        LIST: json.dumps(taskrun_list(), indent=2) + "\n",
        "root.pem": p.root.pem(),
    }
    for name, text in files.items():
        if "PRIVATE KEY" in text:
            raise AssertionError(f"refusing to write key material into {name}")
        write_atomic(out / name, text)
    return sorted(files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    names = generate(args.out)
    print(f"wrote {', '.join(names)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
