"""Checks on the legacy fixtures: well formed, current, and cryptographically what they claim.

The signature checks below use their own small verifier and literal expected strings, not
the generator's helpers, so a mistake in the generator's value rules shows up here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_fixtures  # noqa: E402
from tsfixtures.legacy import parse_value, signed_string  # noqa: E402

COMMITTED = gen_fixtures.DEFAULT_OUT
COMPLETION = dt.datetime(2025, 6, 1, 12, 5, tzinfo=dt.timezone.utc)
DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

# The brief's cases and outcomes, stated independently of the generator.
REQUIRED = {
    "pristine-v1-json": ("accept", None), "pristine-v1-yaml": ("accept", None),
    "pristine-v1beta1-json": ("accept", None), "pristine-bundle-spiffe": ("accept", None),
    "bundle-rotation": ("accept", None), "chain-with-intermediate": ("accept", None),
    "chain-missing-intermediate": ("reject", "chain.untrusted"),
    "root-expired-after-completion": ("accept", None), "rsa-2048-leaf": ("accept", None),
    "p384-leaf": ("reject", "signature.algorithm"), "json-string-result": ("accept", None),
    "tampered-string": ("reject", "signature.invalid"),
    "tampered-array": ("reject", "signature.invalid"),
    "tampered-object": ("reject", "signature.invalid"),
    "swapped-results": ("accept", None), "comma-ambiguity": ("accept", None),
    "sig-dropped": ("reject", "results.unsigned"), "result-dropped": ("reject", "results.missing"),
    "result-extra": ("reject", "results.unsigned"),
    "stray-signature": ("reject", "results.stray-signature"),
    "svid-dropped": ("reject", "material.missing"),
    "manifest-dropped": ("reject", "material.missing"),
    "manifest-sig-dropped": ("reject", "material.missing"),
    "material-absent": ("reject", "material.absent"),
    "sig-garbage-base64": ("reject", "material.malformed"),
    "svid-garbage-pem": ("reject", "material.malformed"),
    "manifest-name-dropped": ("reject", "signature.invalid"),
    "renamed-taskrun": ("reject", "identity.mismatch"),
    "other-namespace": ("reject", "identity.mismatch"),
    "svid-of-other-taskrun": ("reject", "identity.mismatch"),
    "wrong-trust-domain": ("reject", "identity.trust-domain"),
    "untrusted-bundle": ("reject", "chain.untrusted"),
    "self-signed-leaf": ("reject", "chain.untrusted"), "svid-ca": ("reject", "svid.ca"),
    "svid-two-uri-sans": ("reject", "svid.uri-san"),
    "svid-no-digital-signature": ("reject", "svid.key-usage"),
    "svid-key-cert-sign": ("reject", "svid.key-usage"),
    "intermediate-not-ca": ("reject", "chain.issuer-not-ca"),
    "svid-expired": ("reject", "chain.expired"),
    "svid-not-yet-valid": ("reject", "chain.not-yet-valid"),
    "completion-before-start": ("reject", "taskrun.time-order"),
    "no-completion-time": ("reject", "taskrun.not-complete"),
    "input-empty": ("invalid", "input.empty"), "input-syntax": ("invalid", "input.syntax"),
    "input-json-array": ("invalid", "input.not-taskrun"),
    "input-pod": ("invalid", "input.not-taskrun"), "bundle-garbage": ("invalid", "bundle.invalid"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("legacy")
    return out, gen_fixtures.generate(out)


def cases(generated) -> dict[str, dict]:
    return {c["name"]: c for c in generated[1]["cases"]}


def load_case(root: Path, case: dict) -> dict:
    text = (root / case["taskrun"]).read_text()
    return yaml.safe_load(text) if case["taskrun"].endswith(".yaml") else json.loads(text)


def results_of(doc: dict) -> dict[str, dict]:
    status = doc["status"]
    entries = status["results"] if doc["apiVersion"] == "tekton.dev/v1" else status["taskResults"]
    return {e["name"]: e for e in entries}


def svid_certs(doc: dict) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(results_of(doc)["SVID"]["value"].encode())


# ---------------------------------------------------------------- a tiny second verifier

def tekton_string(entry: dict) -> str:
    """Signed string recomputed from a status entry (Tekton's getResultValue on the value)."""
    value = entry["value"]
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{k},{value[k]}" for k in sorted(value))
    # A string in the status is the raw file text: re-apply Tekton's typing to it.
    first = value[:1]
    try:
        parsed = json.loads(value) if value else ""
    except ValueError:
        return value
    if parsed is None:
        return ""
    if first == "[" and isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
        return ",".join(parsed)
    if (first == "{" and isinstance(parsed, dict)
            and all(isinstance(v, str) for v in parsed.values())):
        return ",".join(f"{k},{parsed[k]}" for k in sorted(parsed))
    return parsed if isinstance(parsed, str) else value


def verifies(public_key, text: str, sig_b64: str) -> bool:
    sig = base64.b64decode(sig_b64, validate=True)
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, text.encode(), ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(sig, text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def bad_signatures(doc: dict) -> list[str]:
    """Names whose .sig does not verify over the status value (manifest included)."""
    results = results_of(doc)
    key = svid_certs(doc)[0].public_key()
    names = results["RESULT_MANIFEST"]["value"].split(",") + ["RESULT_MANIFEST"]
    return [n for n in names if n and n in results
            and not verifies(key, tekton_string(results[n]), results[n + ".sig"]["value"])]


def chain_ok(doc: dict, bundle: Path, at=COMPLETION) -> bool:
    certs = svid_certs(doc)
    roots = x509.load_pem_x509_certificates(bundle.read_bytes())
    verifier = PolicyBuilder().store(Store(roots)).time(at).build_client_verifier()
    try:
        verifier.verify(certs[0], certs[1:])
    except VerificationError:
        return False
    return True


# ---------------------------------------------------------------- manifest and files

def test_committed_fixtures_are_current(generated):
    out, _ = generated
    fresh = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(COMMITTED).as_posix(): p.read_bytes()
                 for p in COMMITTED.rglob("*") if p.is_file()}
    assert sorted(fresh) == sorted(committed), "run python3 tests/python/gen_fixtures.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date, regenerate: {stale}"


def test_manifest_is_well_formed(generated):
    out, manifest = generated
    assert set(manifest) == {"cases"}
    names = [c["name"] for c in manifest["cases"]]
    assert len(names) == len(set(names))
    for case in manifest["cases"]:
        assert set(case) == {"name", "taskrun", "bundles", "trust_domain", "expect", "reason",
                             "note"}, case["name"]
        assert re.fullmatch(r"[a-z0-9-]+", case["name"])
        assert case["expect"] in {"accept", "reject", "invalid"}
        assert (case["reason"] is None) == (case["expect"] == "accept"), case["name"]
        if case["reason"] is not None:
            assert re.fullmatch(r"[a-z]+\.[a-z-]+", case["reason"]), case["name"]
        assert case["note"].strip() and case["trust_domain"]
        assert (out / case["taskrun"]).is_file(), case["taskrun"]
        assert case["bundles"] and all((out / b).is_file() for b in case["bundles"])


def test_required_cases_have_the_briefs_outcomes(generated):
    by_name = cases(generated)
    for name, (expect, reason) in REQUIRED.items():
        assert name in by_name, name
        assert (by_name[name]["expect"], by_name[name]["reason"]) == (expect, reason), name


def test_no_private_key_material(generated):
    out, _ = generated
    for path in out.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


def test_spiffe_bundle_matches_root_pem(generated):
    out, _ = generated
    bundle = json.loads((out / "pki/bundle.spiffe.json").read_text())
    assert bundle["spiffe_sequence"] == 1 and len(bundle["keys"]) == 1
    key = bundle["keys"][0]
    root = x509.load_pem_x509_certificate((out / "pki/root.pem").read_bytes())
    assert base64.b64decode(key["x5c"][0]) == root.public_bytes(serialization.Encoding.DER)
    numbers = root.public_key().public_numbers()
    pad = "=" * (-len(key["x"]) % 4)
    assert int.from_bytes(base64.urlsafe_b64decode(key["x"] + pad), "big") == numbers.x
    assert (key["use"], key["kty"], key["crv"]) == ("x509-svid", "EC", "P-256")


# ---------------------------------------------------------------- signatures

def test_pristine_signatures_verify_over_tektons_strings(generated):
    out, _ = generated
    doc = load_case(out, cases(generated)["pristine-v1-json"])
    results = results_of(doc)
    expected = {"IMAGE_DIGEST": DIGEST, "tags": "v1,latest", "info": "commit,abc,url,https://x",
                "summary": "built 2 images, pushed 1",
                "RESULT_MANIFEST": "IMAGE_DIGEST,tags,info,summary"}
    key = svid_certs(doc)[0].public_key()
    for name, text in expected.items():
        assert tekton_string(results[name]) == text, name
        assert verifies(key, text, results[name + ".sig"]["value"]), name
        assert not verifies(key, text + " ", results[name + ".sig"]["value"]), name
    assert results["SVID"]["value"].count("BEGIN CERTIFICATE") == 1  # leaf only, as Tekton
    assert results["SVID"]["value"].endswith("-----END CERTIFICATE-----\n")


@pytest.mark.parametrize("name", ["pristine-v1-json", "pristine-v1-yaml", "pristine-v1beta1-json",
                                  "rsa-2048-leaf", "p384-leaf", "json-string-result",
                                  "json-string-unquoted-in-status", "string-typed-array-text",
                                  "no-results", "chain-with-intermediate", "swapped-results",
                                  "pristine-comma-array", "comma-ambiguity",
                                  "root-expired-after-completion", "renamed-taskrun",
                                  "svid-of-other-taskrun", "svid-ca", "svid-expired"])
def test_signatures_verify_where_only_something_else_is_wrong(generated, name):
    out, _ = generated
    assert bad_signatures(load_case(out, cases(generated)[name])) == []


@pytest.mark.parametrize("name,bad", [("tampered-string", ["IMAGE_DIGEST"]),
                                      ("tampered-array", ["tags"]), ("tampered-object", ["info"]),
                                      ("signature-by-other-key", ["tags"]),
                                      ("manifest-name-dropped", ["RESULT_MANIFEST"]),
                                      ("manifest-reordered", ["RESULT_MANIFEST"])])
def test_signature_cases_break_exactly_one_signature(generated, name, bad):
    out, _ = generated
    assert bad_signatures(load_case(out, cases(generated)[name])) == bad


def test_json_string_result_is_raw_in_status_but_signed_unquoted(generated):
    out, _ = generated
    results = results_of(load_case(out, cases(generated)["json-string-result"]))
    assert results["GREETING"] == {"name": "GREETING", "type": "string", "value": '"hello"'}
    key = svid_certs(load_case(out, cases(generated)["json-string-result"]))[0].public_key()
    assert verifies(key, "hello", results["GREETING.sig"]["value"])


# ---------------------------------------------------------------- certificates

def test_chains_verify_at_completion_only_where_they_should(generated):
    out, _ = generated
    by_name = cases(generated)
    root = out / "pki/root.pem"

    def doc(name):
        return load_case(out, by_name[name])

    assert chain_ok(doc("pristine-v1-json"), root)
    assert chain_ok(doc("chain-with-intermediate"), root)
    assert chain_ok(doc("root-expired-after-completion"), out / "pki/short-lived-root.pem")
    assert not chain_ok(doc("root-expired-after-completion"), out / "pki/short-lived-root.pem",
                        at=dt.datetime(2025, 6, 1, 12, 11, tzinfo=dt.timezone.utc))
    assert not chain_ok(doc("chain-missing-intermediate"), root)
    assert not chain_ok(doc("pristine-v1-json"), out / "pki/other-root.pem")
    assert not chain_ok(doc("self-signed-leaf"), root)
    assert not chain_ok(doc("svid-expired"), root)
    assert not chain_ok(doc("svid-not-yet-valid"), root)
    assert not chain_ok(doc("root-expired-before-completion"), out / "pki/expired-root.pem")


def _ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def test_pristine_leaf_is_an_x509_svid(generated):
    out, _ = generated
    leaf = svid_certs(load_case(out, cases(generated)["pristine-v1-json"]))[0]
    san = _ext(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.org/ns/default/taskrun/build-abc"]
    bc = _ext(leaf, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = _ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"


def test_bad_leaves_have_the_property_they_claim(generated):
    out, _ = generated

    def leaf(name):
        return svid_certs(load_case(out, cases(generated)[name]))[0]

    assert _ext(leaf("svid-ca"), x509.BasicConstraints).value.ca
    assert len(_ext(leaf("svid-two-uri-sans"), x509.SubjectAlternativeName).value) == 2
    assert _ext(leaf("svid-no-uri-san"), x509.SubjectAlternativeName) is None
    assert not _ext(leaf("svid-no-digital-signature"), x509.KeyUsage).value.digital_signature
    assert _ext(leaf("svid-key-cert-sign"), x509.KeyUsage).value.key_cert_sign
    assert _ext(leaf("svid-crl-sign"), x509.KeyUsage).value.crl_sign
    assert _ext(leaf("svid-no-key-usage"), x509.KeyUsage) is None
    assert leaf("self-signed-leaf").issuer == leaf("self-signed-leaf").subject
    assert leaf("rsa-2048-leaf").public_key().key_size == 2048
    assert leaf("p384-leaf").public_key().curve.name == "secp384r1"
    other = load_case(out, cases(generated)["intermediate-not-ca"])
    assert not _ext(svid_certs(other)[1], x509.BasicConstraints).value.ca


# ---------------------------------------------------------------- Tekton's value rules

@pytest.mark.parametrize("raw,typed", [
    ("", ("string", "")),
    ('"hello"', ("string", "hello")),
    ("null", ("string", "")),  # Go decodes null into a string as a no-op
    ("sha256:abc\n", ("string", "sha256:abc\n")),  # no trimming
    ('["a","b"]\n', ("array", ["a", "b"])),  # trailing whitespace is fine for encoding/json
    (' ["a"]', ("string", ' ["a"]')),  # only the first byte selects array
    ("[1,2]", ("string", "[1,2]")),
    ('[null,"a"]', ("array", ["", "a"])),
    ('{"a":1}', ("string", '{"a":1}')),
    ('{"b":"2","a":"1"}', ("object", {"b": "2", "a": "1"})),
    ("42", ("string", "42")),
    ("NaN", ("string", "NaN")),
])
def test_parse_value_follows_param_value_unmarshal(raw, typed):
    assert parse_value(raw) == typed


def test_signed_string_joins():
    assert signed_string('{"url":"https://x","commit":"abc"}') == "commit,abc,url,https://x"
    assert signed_string('["a,b"]') == signed_string('["a","b"]') == "a,b"
