#!/usr/bin/env python3
"""Judges TaskRun documents with the independent Python verifier, for the differential
fuzz target (fuzz/fuzz_targets/differential.rs), which runs our verifier on the same
bytes and compares the verdicts.

Protocol on stdin/stdout: each request is a 4-byte little-endian length and that many
bytes of TaskRun document; each answer is one line: `verified`, or the code of the
rejection or of the invalid input. Every document is judged against
tests/vectors/seal/pki/root.pem for the trust domain example.org, with the default skew.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.setrecursionlimit(10000)

import seal_verifier as sv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "seal" / "pki" / "root.pem"


def judge(data: bytes, roots) -> str:
    try:
        tr = sv.read_taskrun_bytes(data)
        sv.verify(tr, roots, "example.org")
    except (sv.Invalid, sv.Rejected) as e:
        return e.code
    return "verified"


def main() -> int:
    roots = sv.load_bundles([str(ROOT)])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            return 0
        data = stdin.read(int.from_bytes(header, "little"))
        stdout.write(judge(data, roots).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
