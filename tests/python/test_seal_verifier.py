"""Runs the independent seal verifier (seal_verifier.py, written from
docs/seal-format.md alone) over tests/vectors/seal/manifest.json, and checks its
RFC 8785 canonicalization against the rules the specification cites."""

from __future__ import annotations

import base64
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
        td = case["trust_domain"].removeprefix("spiffe://")
        assert obj["spiffeId"].startswith("spiffe://" + td + "/")


ACCEPTED = [c for c in CASES if c["expect"] == "accept"]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["name"] for c in ACCEPTED])
def test_rebuilt_message_matches_pae_file(case):
    tr = sv.read_taskrun(str(VECTORS / case["taskrun"]))
    seal = next(r for r in tr.results if r.name == sv.SEAL_RESULT)
    parsed = sv.parse_seal(seal.value)
    assert parsed is not None
    expected = (VECTORS / "messages" / (case["name"] + ".pae")).read_bytes()
    assert sv.build_message(tr, parsed.signed_at, parsed.attempt) == expected


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
    assert (seal.attempt, seal.signed_at) == ("0", "2025-06-01T12:04:58Z")
    fields = seal_value.split(".")
    assert (len(seal.signature), len(fields[3])) == (70, 94)
    assert (len(seal.certs[0]), len(fields[4])) == (614, 819)
    body = sv.build_body(tr, seal.signed_at, seal.attempt)
    msg = sv.build_message(tr, seal.signed_at, seal.attempt)
    assert len(body) == 336
    assert len(msg) == 392
    assert msg == _spec_block("worked-example-message").encode("ascii")
    assert hashlib.sha256(msg).hexdigest() == "3301aed53e37c4784327bab0530f86826065c6eb7a8478cfa169da0d1c20a127"


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
    body = sv.build_body(tr, "2025-06-01T12:04:58Z", "0").decode("utf-8")
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


# ---- reading the inputs (sections 9.1.1-9.1.5, 9.3) ------------------------------------


def _doc(text: str):
    return sv.parse_document(text)


@pytest.mark.parametrize("text, value", [
    ("yes", "yes"), ("off", "off"), ("y", "y"), ("0123", "0123"), ("-007", "-007"),
    ("12:30", "12:30"), ("1_000", "1_000"), ("=", "="), ("<<", "<<"), ("NaN", "NaN"),
    ("2025-06-01", "2025-06-01"), ("'5'", "5"), ("!!str 5", "5"), ("!!binary aGk=", "aGk="),
    ("", None), ("~", None), ("Null", None), ("TRUE", True), ("false", False),
    ("0", 0), ("-0", 0), ("+5", 5), ("0x1F", 31), ("-0x10", -16), ("0o17", 15), ("0b101", 5),
    ("1.5", 1.5), ("1e3", 1000.0), (".5", 0.5), ("1.", 1.0), ("!!int '7'", 7),
    ("!!float 0123", 123.0),
])
def test_yaml_plain_scalars_follow_the_profile(text, value):
    assert _doc("v: " + text) == {"v": value}


def test_yaml_numbers_at_the_edges():
    # Overflowing floats and integers beyond 128 bits: strings or floats, never refused.
    big = "9" * 40
    assert _doc("a: 1e400\nb: -1e400\nc: %s\nd: 0x%s\ne: %s\n" % (big, "f" * 40, "9" * 400)) == {
        "a": "1e400", "b": "-1e400", "c": float(big), "d": "0x" + "f" * 40, "e": "9" * 400}
    assert _doc("a: 18446744073709551615\nb: -9223372036854775808\n") == {
        "a": 2**64 - 1, "b": -(2**63)}


@pytest.mark.parametrize("text", [
    "v: 18446744073709551616", "v: -9223372036854775809", "v: 0x" + "f" * 32,
    "v: .inf", "v: -.INF", "v: .nan", "v: !!float 1e400", "v: !!float .inf",
    "v: !!int " + "9" * 40, "v: !foo x", "v: ! x",
    "v: !foo {a: b}", "v: !!bool yes", "v: !!null ''", "v: !!int 0123",
    "<<: {a: b}", "m: {'<<': {a: b}}", "{a: 1, 'a': 2}", "{1: a, '1': b}",
    "? [a]\n: b", "a: 1\n---\nb: 2\n", "a: *missing",
    "v: " + "[" * 128 + "]" * 128,
])
def test_yaml_documents_refused_as_syntax(text):
    with pytest.raises(sv.Invalid) as e:
        _doc(text)
    assert e.value.code == "input.syntax"


def test_yaml_keys_are_their_text():
    assert _doc("v: {1: a, true: b, ~: c, !foo k: e, !!merge m: f, x: <<}\n")["v"] == {
        "1": "a", "true": "b", "~": "c", "k": "e", "m": "f", "x": "<<"}
    assert _doc("v:\n" + "- " * 111 + "[" * 16 + "]" * 16 + "\n") is not None  # 128 deep


def test_a_tab_inside_a_plain_scalar_is_part_of_it_as_libyaml_reads_it():
    # Found by the differential fuzz target: PyYAML's pure-Python scanner refused the tab
    # (input.syntax), libyaml and the Rust verifier read a plain scalar (section 9.1.3).
    assert _doc("v: a\tb\n") == {"v": "a\tb"}
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(b'a"1"{\t^a"aompletion"a"1"{\t^a"aompletionTime"')
    assert e.value.code == "input.not-taskrun"
    # Also found by it: a text starting with U+FFFD is a string (the Rust port of libyaml
    # took the byte EF for a broken byte order mark).
    assert _doc("\ufffd-") == "\ufffd-"


@pytest.mark.parametrize("text", [
    ">\r ",  # the differential fuzz target's finding (run 10): a header ended by CR, a space
    ">\n ", "a: |\n  x", "a: |", "a: | # c", "a: |\n  x\n  ", "a: |+\n  x\n ",
    "a: |\n  x\n   ", "a: >\r\n  x\r\n ", "a: |\n  x\u2028 ", "? |\n  k\n: |\n   w",
    # Characters of 2 and 4 bytes before the scalar: positions are characters here and
    # in libyaml's marks, bytes on the Rust side; each side compares like with like.
    "é: |\n  x", "ééééé: |\n  x\n ", "\U0001d11e\U0001d11e: >\n  x\n  ",
])
def test_a_block_scalar_followed_by_nothing_but_spaces_needs_a_final_line_break(text):
    # Section 9.1.3: nothing but spaces (or nothing) after a block scalar, in a text that
    # does not end with a line break, makes the document input.syntax.
    with pytest.raises(sv.Invalid) as e:
        _doc(text)
    assert e.value.code == "input.syntax"
    assert _doc(text + "\n") is not None  # the same text with a final line break is read


def test_a_block_scalar_followed_by_more_than_spaces_is_read_without_a_final_line_break():
    assert _doc("a: |\n  x\n# c") == {"a": "x\n"}
    assert _doc("a: |+\n  x\n \nb: c") == {"a": "x\n\n", "b": "c"}
    assert _doc("- |\n  x\n-  ") == ["x\n", None]
    # Multi-byte characters before it: a byte count compared with a character count
    # would refuse these.
    assert _doc("ééééé: |\n  x\n#") == {"ééééé": "x\n"}
    assert _doc("\U0001d11e: >-\n  x\nb: c") == {"\U0001d11e": "x", "b": "c"}
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(b">\r ")
    assert e.value.code == "input.syntax"


def test_a_second_byte_order_mark_is_the_streams_as_libyaml_reads_it():
    # The differential fuzz target's finding (run 11): two byte order marks, then YAML.
    # Section 9.1.2 drops the first, libyaml the second as the stream's (the Rust port
    # took it for a character); its marks leave it out, and so must the block scalar rule.
    assert sv.parse_document("\ufeff\ufeffa: b\nc: d\n") == {"a": "b", "c": "d"}
    assert sv.parse_document("\ufeff\ufeffa: |\n  x\n# c") == {"a": "x\n"}
    for text in ["\ufeff\ufeffa: |\n  x", "\ufeff\ufeff\ufeffa: b\nc: d\n"]:
        with pytest.raises(sv.Invalid) as e:
            sv.parse_document(text)
        assert e.value.code == "input.syntax"
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes("\ufeff\ufeffapiVersion: v1\nkind: Pod\n".encode())
    assert e.value.code == "input.not-taskrun"


@pytest.mark.parametrize("api", ["{uid: x}", "[tekton.dev/v1]", "1", "~"])
def test_an_apiversion_that_is_not_a_string_is_another_apiversion(api):
    # The differential fuzz target's finding (run 12): apiVersion holding a mapping made
    # the Python verifier fail (a dict is not hashable) instead of saying not-taskrun.
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(("apiVersion: %s\nkind: TaskRun\nmetadata: {name: a}\n"
                               % api).encode())
    assert e.value.code == "input.not-taskrun"


def test_an_anchor_given_twice_changes_nothing():
    # The differential fuzz target's finding (run 15): PyYAML's composer refused an
    # anchor name given to two nodes; section 9.1.3 says an anchor changes nothing.
    assert _doc("a: &x 1\nb: &x [2]\nc: {d: &x e}\n") == {"a": 1, "b": [2], "c": {"d": "e"}}
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(b"a: &l {b: c}\nd: &l \n")
    assert e.value.code == "input.not-taskrun"


@pytest.mark.parametrize("version", [0, 1, 3, 10])
def test_a_certificate_version_other_than_v3_written_is_malformed(version):
    # The differential fuzz target's finding (run 16): version 10 made `cryptography`
    # raise InvalidVersion, which is no ValueError, and the verifier fail. Section 9.2
    # step 7: a written version is v3 (v1 is a DEFAULT, left out; v2 is refused).
    pem = (VECTORS / "pki" / "intermediate.pem").read_text()
    der = bytearray(base64.b64decode("".join(pem.splitlines()[1:-1])))
    at = der.index(bytes.fromhex("a003020102")) + 4
    sv.parse_cert(bytes(der))
    der[at] = version
    with pytest.raises(ValueError):
        sv.parse_cert(bytes(der))


def test_yaml_flow_collections_nest_at_most_16_deep():
    # Section 9.1.2: flow collections only are counted, mappings as sequences.
    assert _doc("v: " + "[" * 16 + "]" * 16 + "\n") is not None
    for text in ["v: " + "[" * 17 + "]" * 17 + "\n",
                 "v:\n  w: " + "{c: [" * 8 + "[]" + "]}" * 8 + "\n",
                 "v:\n" + "- " * 100 + "[" * 17 + "]" * 17 + "\n"]:
        with pytest.raises(sv.Invalid) as e:
            _doc(text)
        assert e.value.code == "input.syntax"
    assert _doc("[" * 17 + "]" * 17) is not None  # JSON: another reader, no flow limit


def test_yaml_documents_are_at_most_512_kib():
    # Section 9.1.1: after UTF-8 and emptiness, before syntax; JSON keeps its 3 MiB.
    head = "a: ["
    at_limit = head + "b" * (sv.MAX_YAML_BYTES - len(head))
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(at_limit.encode())
    assert e.value.code == "input.syntax"  # read, and not YAML
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes((at_limit + "b").encode())
    assert e.value.code == "input.too-large"
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(("\ufeff [" + "b" * sv.MAX_YAML_BYTES).encode())
    assert e.value.code == "input.syntax"
    # The pristine sealed TaskRun padded with a comment: read at the limit, not beyond.
    text = (VECTORS / "pristine-v1-yaml.yaml").read_text()
    padded = text + "#" + "a" * (sv.MAX_YAML_BYTES - len(text.encode()) - 2) + "\n"
    assert len(padded.encode()) == sv.MAX_YAML_BYTES
    assert sv.read_taskrun_bytes(padded.encode()).results
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(padded.encode() + b"\n")
    assert e.value.code == "input.too-large"


@pytest.mark.parametrize("text", [
    "a: &a [x]\nb: *a\n",  # an alias, however small, is refused (section 9.1.3)
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        "%s: &%s [%s]\n" % (n, n, ", ".join(["*" + p] * 10)) for p, n in zip("abcdefghi", "bcdefghij")),
])
def test_yaml_aliases_are_refused(text):
    with pytest.raises(sv.Invalid) as e:
        _doc(text)
    assert e.value.code == "input.syntax"
    assert _doc("a: &a [x]\n") == {"a": ["x"]}  # an anchor alone changes nothing


def test_json_rules():
    # Text that starts with { or [ is JSON only (section 9.1.2): no YAML fallback.
    assert _doc('{"v": %s}' % ("9" * 30)) == {"v": 10**30 - 1}
    assert _doc('\ufeff{"v": "x"}') == {"v": "x"}  # a BOM is dropped
    assert _doc('\ufeffv: x\n') == {"v": "x"}
    assert _doc('\ufeff%YAML 1.1\n---\nv: x\n') == {"v": "x"}
    for bad in ('{"a": 1, "\\u0061": 2}', '{"v": "\\ud800"}', '[' * 129 + ']' * 129,
                '{"v": 1e400}', '{"v": %s}' % ("9" * 310), '{"v": NaN}', '{"v": "a\nb"}',
                '{v: x}', '[1] # c'):
        with pytest.raises(sv.Invalid) as e:
            _doc(bad)
        assert e.value.code == "input.syntax"


@pytest.mark.parametrize("data, code", [
    (b"", "input.empty"), (b" \t\r\n\x0b\x0c", "input.empty"),
    ("\u00a0\u2028\u3000".encode(), "input.empty"), (b"\xef\xbb\xbf", "input.not-taskrun"),
    (b"\xff", "input.not-taskrun"), (b"\x1c", "input.syntax"),
])
def test_document_checks_in_order(data, code):
    with pytest.raises(sv.Invalid) as e:
        sv.read_taskrun_bytes(data)
    assert e.value.code == code


@pytest.mark.parametrize("text, ok", [
    ("2025-06-01T12:00:00Z", True), ("2025-06-01t12:00:00z", True),
    ("2025-06-01 12:00:00Z", True), ("2025-06-01x12:00:00Z", True),
    ("2025-06-01T12:00:00.123456789999Z", True), ("2025-06-01T14:00:00+02:00", True),
    ("2025-06-01T12:00:00-00:00", True), ("2025-06-30T23:59:60Z", True),
    ("2025-07-01T01:59:60+02:00", True), ("0000-01-01T00:00:00Z", True),
    ("2025-06-01T23:59:60Z", False), ("2025-06-01T12:00:00", False),
    ("2025-06-01T12:00:00+0000", False), ("2025-06-01T12:00:00+24:00", False),
    ("2025-06-01T12:00:00.Z", False), ("2025-06-01T12:00:00,5Z", False),
    ("+2025-06-01T12:00:00Z", False), ("2025-02-29T12:00:00Z", False),
    (" 2025-06-01T12:00:00Z", False), ("2025-06-01\u00e912:00:00Z", False),
])
def test_run_time_profile(text, ok):
    assert (sv.parse_rfc3339(text) is not None) == ok


def test_run_times_keep_nanoseconds_and_leap_seconds():
    base = sv.parse_rfc3339("2025-06-01T12:00:00Z")
    assert sv.parse_rfc3339("2025-06-01T12:00:00.0000000019Z") == base + 1
    assert sv.parse_rfc3339("2025-06-01T14:00:00.5+02:00") == base + sv.NS // 2
    leap = sv.parse_rfc3339("2025-06-30T23:59:60.5Z")
    assert leap == sv.parse_rfc3339("2025-06-30T23:59:59.999999999Z")


ROOT_PEM = (VECTORS / "pki" / "root.pem").read_text(encoding="ascii")


@pytest.mark.parametrize("text, count", [
    ("notes\n" + ROOT_PEM + "more notes\n", 1),
    (ROOT_PEM + "-----BEGIN CERTIFICATE-----\nMIIB\n", 1),  # unterminated: ignored
    (ROOT_PEM.replace("\n", "\r\n"), 1),
    (ROOT_PEM.replace("-----BEGIN CERTIFICATE-----\n",
                      "-----BEGIN CERTIFICATE-----\nProc-Type: 4,NONE\n\n"), 1),
    (ROOT_PEM.replace("\n", " \n", 5), 1),
    ("no block here\n", 0),
])
def test_pem_bundles_are_read_laxly_outside_blocks(text, count):
    assert len(sv._load_pem_bundle(text.encode())) == count


@pytest.mark.parametrize("text", [
    ROOT_PEM.replace("END CERTIFICATE", "END X509 CRL"),
    ROOT_PEM.replace("CERTIFICATE", "TRUSTED CERTIFICATE"),
    ROOT_PEM.replace("\n", "\n\n", 3),  # a blank line: base64 taken as headers
    ROOT_PEM.replace("=\n-----END", "\n-----END"),
])
def test_pem_blocks_are_read_strictly(text):
    with pytest.raises(ValueError):
        sv._load_pem_bundle(text.encode())


def _spiffe(keys) -> bytes:
    return json.dumps({"keys": keys}).encode()


def test_spiffe_bundle_use_rules():
    key = json.loads((VECTORS / "pki" / "bundle.spiffe.json").read_text())["keys"][0]
    assert len(sv._load_json_bundle(_spiffe([key]))) == 1
    # Unknown use values and JWT authorities are skipped; kty, x, y are not compared.
    assert len(sv._load_json_bundle(_spiffe([dict(key, use="x509-future"), dict(
        key, use="jwt-svid", x5c=None), dict(key, kty="RSA", x="AAAA")]))) == 1
    for bad in ([{k: v for k, v in key.items() if k != "use"}], [dict(key, use=None)],
                [dict(key, use=5)], [dict(key, use="jwt-svid", x5c=[1])],
                [dict(key, x5c=key["x5c"] * 2)], [dict(key, x5c=[key["x5c"][0].rstrip("=")])]):
        with pytest.raises((ValueError, sv._DuplicateKey)):
            sv._load_json_bundle(_spiffe(bad))
    # A member given twice is refused anywhere in the bundle (section 9.1.5).
    for dup in (b'{"keys": [], "keys": []}', b'{"keys": %s, "x": 1, "x": 2}' % json.dumps([key]).encode(),
                b'{"keys": [{"use": "jwt-svid", "kty": "EC", "kty": "RSA"}]}'):
        with pytest.raises(sv._DuplicateKey):
            sv._load_json_bundle(dup)


@pytest.mark.parametrize("skew, ok", [
    ("0", True), ("+5", True), ("007", True), ("4294967295", True), ("4294967296", False),
    ("-1", False), ("0x10", False), (" 5", False), ("", False),
])
def test_clock_skew_syntax(skew, ok):
    argv = ["--taskrun", "t", "--bundle", "b", "--trust-domain", "td", "--clock-skew", skew]
    if ok:
        assert sv.parse_args(argv)["clock_skew"] == int(skew)
    else:
        with pytest.raises(sv.UsageError):
            sv.parse_args(argv)


def test_cli_defaults_and_usage_errors():
    opts = sv.parse_args(["--taskrun=-", "--bundle", "b", "--bundle", "c", "--trust-domain", "t"])
    assert (opts["output"], opts["clock_skew"], opts["bundles"]) == ("text", 60, ["b", "c"])
    for argv in (["--taskrun", "t", "--bundle", "b"], ["--bogus", "x"],
                 ["--taskrun", "t", "--taskrun", "u", "--bundle", "b", "--trust-domain", "t"],
                 ["--taskrun", "t", "--bundle", "b", "--trust-domain", "t", "--output", "JSON"]):
        with pytest.raises(sv.UsageError):
            sv.parse_args(argv)
    code, obj, _ = sv.run(["--bogus", "x"])
    assert code == 2 and "usage" in obj


def test_input_checks_run_trust_domain_then_bundles_then_taskrun(tmp_path):
    missing = str(tmp_path / "missing")
    argv = ["--output", "json", "--taskrun", missing, "--bundle", missing]
    assert sv.run(argv + ["--trust-domain", "Bad"])[1]["reason"]["code"] == "input.trust-domain"
    assert sv.run(argv + ["--trust-domain", "ok.org"])[1]["reason"]["code"] == "bundle.invalid"
    argv[-1] = str(VECTORS / "pki" / "root.pem")
    assert sv.run(argv + ["--trust-domain", "ok.org"])[1]["reason"]["code"] == "input.read"
