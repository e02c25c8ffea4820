"""Runs the independent seal verifier (seal_verifier.py, written from
docs/seal-format.md alone) over tests/vectors/seal/manifest.json, and checks its
RFC 8785 canonicalization against the rules the specification cites."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VECTORS = REPO / "tests" / "vectors" / "seal"
SPEC = REPO / "docs" / "seal-format.md"

sys.path.insert(0, str(HERE))
import seal_verifier as sv  # noqa: E402

MANIFEST = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]
EXPECT = {"accept": (0, "verified"), "reject": (1, "rejected"), "invalid": (2, "invalid")}


def _argv(case: dict) -> list[str]:
    argv = ["--output", "json", "--taskrun", str(VECTORS / case["taskrun"])]
    for b in case["bundles"]:
        argv += ["--bundle", str(VECTORS / b)]
    argv += ["--trust-domain", case["trust_domain"]]
    return argv + list(case.get("args", []))


def test_manifest_shape():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for c in CASES:
        assert re.fullmatch(r"[a-z0-9-]+", c["name"])
        assert c["expect"] in EXPECT
        assert (c["reason"] is None) == (c["expect"] == "accept")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case):
    code, obj, _ = sv.run(_argv(case))
    exp_code, exp_verdict = EXPECT[case["expect"]]
    got_reason = (obj.get("reason") or {}).get("code")
    assert (obj["verdict"], got_reason) == (exp_verdict, case["reason"]), obj
    assert code == exp_code
    if case["expect"] == "accept":
        assert obj["format"] == "seal"
        assert obj["spiffeId"].startswith("spiffe://" + case["trust_domain"] + "/")


ACCEPTED = [c for c in CASES if c["expect"] == "accept"]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["name"] for c in ACCEPTED])
def test_rebuilt_message_matches_pae_file(case):
    tr = sv.read_taskrun(str(VECTORS / case["taskrun"]))
    seal = next(r for r in tr.results if r.name == sv.SEAL_RESULT)
    parsed = sv.parse_seal(seal.value)
    assert parsed is not None
    expected = (VECTORS / "messages" / (case["name"] + ".pae")).read_bytes()
    assert sv.build_message(tr, parsed.signed_at) == expected


def _spec_block(marker: str) -> str:
    text = SPEC.read_text(encoding="utf-8")
    m = re.search(r"<!-- " + re.escape(marker) + r" -->\n```\n(.*?)\n```", text, re.S)
    assert m, marker
    return m.group(1)


def test_worked_example_matches_spec():
    tr = sv.read_taskrun(str(VECTORS / "worked-example.json"))
    seal_value = next(r for r in tr.results if r.name == sv.SEAL_RESULT).value
    assert seal_value == _spec_block("worked-example-seal")
    assert len(seal_value.encode()) == 944
    seal = sv.parse_seal(seal_value)
    assert seal.signed_at == "2025-06-01T12:04:58Z"
    fields = seal_value.split(".")
    assert (len(seal.signature), len(fields[2])) == (72, 96)
    assert (len(seal.certs[0]), len(fields[3])) == (614, 819)
    body = sv.build_body(tr, seal.signed_at)
    msg = sv.build_message(tr, seal.signed_at)
    assert len(body) == 322
    assert len(msg) == 378
    assert msg == _spec_block("worked-example-message").encode("ascii")
    assert hashlib.sha256(msg).hexdigest() == "6e4d03ddd996b43f1054e854778904470d28c27ee488e9f7443ba757186d5cc0"


# ---- canonicalization (RFC 8785 subset of section 5) ---------------------------------


def test_jcs_spec_example():
    # Section 5: é then a line feed is the 6 bytes 22 c3 a9 5c 6e 22.
    assert sv.jcs_bytes("é\n") == bytes.fromhex("22c3a95c6e22")


def test_jcs_short_escapes():
    assert sv.jcs('"') == '"\\""'
    assert sv.jcs("\\") == '"\\\\"'
    assert sv.jcs("\b\t\n\f\r") == '"\\b\\t\\n\\f\\r"'


def test_jcs_other_controls_lowercase_u00():
    assert sv.jcs("\x00\x01\x0b\x1b\x1f") == '"\\u0000\\u0001\\u000b\\u001b\\u001f"'
    for cp in range(0x20):
        out = sv.jcs(chr(cp))
        if cp not in (0x08, 0x09, 0x0A, 0x0C, 0x0D):
            assert out == '"\\u%04x"' % cp


def test_jcs_literals_kept():
    # '/', U+007F, U+2028, U+2029, U+FEFF and non-ASCII are written as themselves.
    s = "/\x7f\u2028\u2029\ufeff€😀"
    assert sv.jcs_bytes(s) == b'"' + s.encode("utf-8") + b'"'


def test_jcs_rfc8785_string_example():
    # RFC 8785 section 3.2.2.2: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"
    value = json.loads('"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/"')
    assert sv.jcs(value) == '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'


def test_jcs_rfc8785_key_order():
    # RFC 8785 section 3.2.3's sorting example (values made strings).
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001F600", "\u0080", "\u00f6"]
    out = sv.jcs({k: "x" for k in keys})
    order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001F600", "\ufb33"]
    assert out == "{" + ",".join(sv.jcs(k) + ':"x"' for k in order) + "}"


def test_jcs_utf16_vs_code_point_order():
    # Section 5: U+1F600 (surrogates D83D DE00) sorts before U+E000-U+FFFF.
    out = sv.jcs({"\uff61": "c", "a": "a", "\U0001F600": "b"})
    assert out == '{"a":"a","\U0001F600":"b","\uff61":"c"}'


def test_jcs_no_whitespace_and_nesting():
    v = {"b": ["x", "", "x"], "a": {"k": "v"}}
    assert sv.jcs(v) == '{"a":{"k":"v"},"b":["x","","x"]}'


def test_results_sorted_by_utf8_bytes():
    # The results list is sorted by UTF-8 bytes: U+FF58 before U+1F600 (unlike UTF-16).
    tr = sv.TaskRun("n", "default", "u", None, None, [
        sv.Result("\U0001F600 x", None, "string", "3"),
        sv.Result("\uff58", None, "string", "2"),
        sv.Result("A", None, "string", "1"),
        sv.Result(sv.SEAL_RESULT, "string", "string", "ignored"),
    ])
    body = sv.build_body(tr, "2025-06-01T12:04:58Z").decode("utf-8")
    assert [r["name"] for r in json.loads(body)["results"]] == ["A", "\uff58", "\U0001F600 x"]


def test_jcs_refuses_lone_surrogate():
    with pytest.raises(ValueError):
        sv.jcs("\ud800")


def test_pae():
    assert sv.pae(b"t", b"ab") == b"DSSEv1 1 t 2 ab"
    assert len(sv.PAYLOAD_TYPE) == 41
    assert sv.pae(sv.PAYLOAD_TYPE, b"") == b"DSSEv1 41 " + sv.PAYLOAD_TYPE + b" 0 "


def test_b64url_canonical():
    assert sv.decode_b64url_canonical("AA") == b"\x00"
    assert sv.decode_b64url_canonical("AB") is None  # unused bits set
    assert sv.decode_b64url_canonical("AA==") is None  # padding
    assert sv.decode_b64url_canonical("A") is None  # length mod 4 == 1
    assert sv.decode_b64url_canonical("_-8") == b"\xff\xef"
    assert sv.decode_b64url_canonical("/+8") is None  # standard alphabet


def test_signed_at_grammar():
    assert sv.parse_signed_at("2025-06-01T12:04:58Z") is not None
    for bad in ("2025-06-01T12:04:58.000Z", "+2025-06-01T12:04:58Z", "2025-06-01T12:04:58+00:00",
                "2025-02-29T00:00:00Z", "2025-06-01T24:00:00Z", "2025-06-01T12:04:60Z",
                "2025-06-01t12:04:58Z", "2025-06-01T12:04:58z", "٢٠٢٥-06-01T12:04:58Z"):
        assert sv.parse_signed_at(bad) is None, bad
    assert sv.parse_signed_at("2024-02-29T00:00:00Z") is not None
