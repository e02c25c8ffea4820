#!/usr/bin/env python3
"""Write the benchmark's input into crates/verify/benches/data/.

A completed tekton.dev/v1 TaskRun with ten Task results (strings, arrays and objects),
signed in Tekton's TEP-0089 format by the same SVID and root as the pristine legacy
fixtures (gen_fixtures.py's Pki), and that root as a PEM bundle. Deterministic:
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

# BASELINE's four results plus six more of each type: ten Task results in all.
RESULTS = list(BASELINE) + [
    Result("IMAGE_URL", "string", "registry.example.org/team/app"),
    Result("COMMIT", "string", "3f1c2a9b7d4e5f60718293a4b5c6d7e8f9012345"),
    Result("CHANGED_FILES", "array", '["src/main.rs","src/lib.rs","Cargo.toml","README.md"]'),
    Result("PLATFORMS", "array", '["linux/amd64","linux/arm64"]'),
    Result("SBOM", "object", '{"digest":"sha256:0123abcd","format":"spdx","uri":"oci://x"}'),
    Result("TEST_SUMMARY", "string", "412 passed, 0 failed, 3 skipped"),
]


def generate(out: Path) -> list[str]:
    if len(RESULTS) != 10 or len({r.name for r in RESULTS}) != 10:
        raise AssertionError("the benchmark TaskRun must have ten distinct results")
    p = Pki()
    doc = Scenario(p.good_leaf, results=RESULTS).document()
    files = {
        TASKRUN: json.dumps(doc, indent=2) + "\n",
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
