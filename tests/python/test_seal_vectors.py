"""Checks on the seal vectors: current, deterministic, well formed, and what they claim.

The checks below rebuild the signed message with Python's json module rather than with
tsfixtures.seal, check the grammar with a regular expression of their own, and verify
signatures and chains with `cryptography`, so a mistake in the generator shows up here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_seal_vectors  # noqa: E402
from tsfixtures import seal as sl  # noqa: E402

COMMITTED = gen_seal_vectors.DEFAULT_OUT
DOC = HERE.parents[1] / "docs" / "seal-format.md"
SEAL = "TEKTON_SPIRE_SEAL"
PAYLOAD_TYPES = {"sealv2": b"application/vnd.tekton-spire.seal.v2+json",
                 "sealv1": b"application/vnd.tekton-spire.seal.v1+json"}

# The codes docs/seal-format.md lists; a case may expect no other.
REJECT_CODES = {
    "status.malformed", "material.absent", "format.not-allowed", "taskrun.not-complete", "taskrun.time-order",
    "results.type-mismatch", "material.malformed", "taskrun.no-uid", "seal.time-outside-run",
    "chain.untrusted", "chain.signature", "chain.issuer-not-ca", "chain.extra-certificate",
    "chain.not-yet-valid", "chain.expired", "svid.uri-san", "svid.ca", "svid.key-usage",
    "identity.trust-domain", "identity.mismatch", "signature.algorithm", "signature.invalid",
    "chain.path-length", "chain.name-constraints", "seal.attempt-mismatch",
    "seal.attempt-unbound",
}
INVALID_CODES = {"input.read", "input.empty", "input.too-large", "input.syntax",
                 "input.not-taskrun", "bundle.invalid", "input.trust-domain"}

# The brief's cases and outcomes, stated independently of the generator.
REQUIRED = {
    "pristine-v1-json": ("accept", None), "pristine-v1-yaml": ("accept", None),
    "pristine-v1beta1-json": ("accept", None), "chain-with-intermediate": ("accept", None),
    "rsa-2048-leaf": ("accept", None), "root-expired-after-signing": ("accept", None),
    "value-kinds-and-escapes": ("accept", None), "zero-results": ("accept", None),
    "swapped-values": ("reject", "signature.invalid"),
    "replayed-onto-new-uid": ("reject", "signature.invalid"),
    "result-added": ("reject", "signature.invalid"),
    "result-removed": ("reject", "signature.invalid"),
    "comma-string-retyped-as-array": ("reject", "signature.invalid"),
    "declared-type-mismatch": ("reject", "results.type-mismatch"),
    "tampered-string": ("reject", "signature.invalid"),
    "signed-at-before-start-beyond-skew": ("reject", "seal.time-outside-run"),
    "signed-at-after-completion-beyond-skew": ("reject", "seal.time-outside-run"),
    "signed-at-skew-before-start": ("accept", None),
    "signed-at-skew-after-completion": ("accept", None),
    "signed-at-edited-inside-run": ("reject", "signature.invalid"),
    "signed-at-edited-outside-run": ("reject", "seal.time-outside-run"),
    "seal-truncated": ("reject", "material.malformed"),
    "seal-garbled-base64": ("reject", "material.malformed"),
    "seal-wrong-tag": ("reject", "material.malformed"),
    "seal-missing-certificate": ("reject", "material.malformed"),
    "seal-not-a-string": ("reject", "material.malformed"),
    "retried-pristine": ("accept", None), "retried-v1beta1": ("accept", None),
    "attempt-copied-from-retries-status": ("reject", "seal.attempt-mismatch"),
    "attempt-edited-to-match": ("reject", "signature.invalid"),
    "retries-status-dropped": ("reject", "seal.attempt-mismatch"),
    "attempt-leading-zero": ("reject", "material.malformed"),
    "retries-status-not-an-array": ("reject", "status.malformed"),
    "sealv1-pristine": ("accept", None),
    "sealv1-on-retried-taskrun": ("reject", "seal.attempt-unbound"),
    "sealv2-downgraded-to-sealv1": ("reject", "signature.invalid"),
    "chain-extra-certificate": ("reject", "chain.extra-certificate"),
    "chain-missing-intermediate": ("reject", "chain.untrusted"),
    "untrusted-bundle": ("reject", "chain.untrusted"),
    "svid-of-other-taskrun": ("reject", "identity.mismatch"),
    "renamed-taskrun": ("reject", "identity.mismatch"),
    "other-namespace": ("reject", "identity.mismatch"),
    "wrong-trust-domain": ("reject", "identity.trust-domain"),
    "svid-ca": ("reject", "svid.ca"), "svid-two-uri-sans": ("reject", "svid.uri-san"),
    "svid-no-digital-signature": ("reject", "svid.key-usage"),
    "svid-expired": ("reject", "chain.expired"),
    "svid-not-yet-valid": ("reject", "chain.not-yet-valid"),
    "no-uid": ("reject", "taskrun.no-uid"),
    "no-completion-time": ("reject", "taskrun.not-complete"),
    "p384-leaf": ("reject", "signature.algorithm"),
    "seal-and-tekton-material": ("accept", None),
    "require-format-tekton": ("reject", "format.not-allowed"),
    # Issue 11: what the status writer controls is rejected, never invalid input.
    "duplicate-result-name": ("reject", "status.malformed"),
    "start-time-not-rfc3339": ("reject", "status.malformed"),
    "yaml-plain-number-value": ("reject", "status.malformed"),
    "status-not-an-object": ("reject", "status.malformed"),
}

# Cases whose seal string breaks the grammar of section 3.1.
GRAMMAR_BAD = {
    "seal-truncated", "seal-garbled-base64", "seal-base64-padded", "seal-base64-noncanonical",
    "seal-wrong-tag", "seal-missing-certificate", "seal-trailing-newline",
    "signed-at-offset-form", "signed-at-year-sign", "seal-too-long",
    "seal-too-many-certificates", "seal-malformed-beside-valid-tekton-material",
    "attempt-leading-zero",
}

# Cases where only the signature is wrong: the chain is good, the message is not.
SIGNATURE_ONLY = {
    "comma-string-retyped-as-array", "tampered-string", "tampered-array", "tampered-object",
    "swapped-values", "result-added", "result-removed", "replayed-onto-new-uid",
    "signed-at-edited-inside-run", "signature-by-other-key", "wrong-payload-type",
    "body-signed-without-pae", "seal-and-unsealed-tekton-material", "attempt-edited-to-match",
    "sealv2-downgraded-to-sealv1",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("seal")
    return out, gen_seal_vectors.generate(out)


def cases(generated) -> dict[str, dict]:
    return {c["name"]: c for c in generated[1]["cases"]}


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file()}


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML with the YAML 1.2 core schema's plain scalars (section 9.1.3) instead of
    YAML 1.1's: yes, off, 0123, 12:30 and 1_000 are strings. Enough for the vectors."""

    def compose_node(self, parent, index):
        # Section 9.1.3: an anchor changes nothing, so a name may be given twice (PyYAML
        # refuses it). The accepted vectors hold no alias, so none is left unresolved.
        self.anchors = {}
        return super().compose_node(parent, index)


Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("float", r"^(?![-+]?0[0-9]+$)"
                  r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                  r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
        ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])]:
    Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:" + _tag, re.compile(_regexp),
                                       list(_first))


def load(root: Path, case: dict) -> dict:
    text = (root / case["taskrun"]).read_text(encoding="utf-8")
    # Section 9.1.2 drops one byte order mark; PyYAML, as libyaml, one more at the start.
    text = text.removeprefix("\ufeff")
    if case["taskrun"].endswith(".yaml"):
        return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 (a SafeLoader)
    return json.loads(text)


def entries(doc: dict) -> list[dict]:
    key = "results" if doc["apiVersion"] == "tekton.dev/v1" else "taskResults"
    return doc["status"].get(key) or []


def seal_of(doc: dict):
    found = [e["value"] for e in entries(doc) if e["name"] == SEAL]
    return found[0] if found else None


# ---------------------------------------------------------------- a second implementation

GRAMMAR = re.compile(r"(?:sealv2\.(0|[1-9][0-9]{0,8})|sealv1)"
                     r"\.([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)"
                     r"\.([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+){1,8})")


def b64url_strict(text: str) -> bytes | None:
    if len(text) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    canonical = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    return data if data and canonical == text else None


def parse_seal(value) -> tuple[str, bytes, list[bytes], str | None] | None:
    """(signed-at, signature, chain, attempt) if value follows section 3.1, else None;
    attempt is None for a sealv1."""
    if not isinstance(value, str) or len(value.encode()) > 16384:
        return None
    m = GRAMMAR.fullmatch(value)
    if not m:
        return None
    try:
        dt.datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    parts = [b64url_strict(f) for f in [m.group(3)] + m.group(4)[1:].split(".")]
    if any(p is None for p in parts):
        return None
    return m.group(2), parts[0], parts[1:], m.group(1)


def rebuild(doc: dict, signed_at: str, attempt: str | None) -> bytes:
    """The message of section 6, from the status, with Python's own JSON encoder."""
    def shape(v):
        return {str: "string", list: "array", dict: "object"}[type(v)]

    def utf16_sorted(v):
        if isinstance(v, dict):
            return dict(sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be")))
        return v

    covered = sorted((e for e in entries(doc) if e["name"] != SEAL),
                     key=lambda e: e["name"].encode())
    md = doc["metadata"]
    task_run = {"name": md["name"], "namespace": "default" if md.get("namespace")
                is None else md["namespace"], "uid": md["uid"]}
    if attempt is not None:
        task_run = {"attempt": attempt, **task_run}  # "attempt" sorts first
    body = {"results": [{"name": e["name"], "type": shape(e["value"]),
                         "value": utf16_sorted(e["value"])} for e in covered],
            "signedAt": signed_at, "taskRun": task_run}
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    payload_type = PAYLOAD_TYPES["sealv1" if attempt is None else "sealv2"]
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(raw), raw)


def signature_verifies(leaf: x509.Certificate, message: bytes, signature: bytes) -> bool:
    key = leaf.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def roots_of(root: Path, bundles: list[str]) -> list[x509.Certificate]:
    out = []
    for b in bundles:
        data = (root / b).read_bytes()
        if b.endswith(".der"):
            out.append(x509.load_der_x509_certificate(data))
        elif b.endswith(".json"):
            out += [x509.load_der_x509_certificate(base64.b64decode(k["x5c"][0]))
                    for k in json.loads(data)["keys"] if k["use"] == "x509-svid"]
        else:
            out += x509.load_pem_x509_certificates(data)
    return out


# Accepted cases whose path `cryptography`'s verifier cannot judge: it refuses URI name
# constraints as unsupported. The Python verifier of tests/python judges them instead.
CHAIN_CHECK_UNSUPPORTED = {"name-constraints-permit-trust-domain"}


def chain_ok(chain: list[bytes], roots: list[x509.Certificate], at: str) -> bool:
    certs = [x509.load_der_x509_certificate(c) for c in chain]
    when = dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    verifier = PolicyBuilder().store(Store(roots)).time(when).build_client_verifier()
    try:
        verifier.verify(certs[0], certs[1:])
    except VerificationError:
        return False
    return True


# ---------------------------------------------------------------- files and manifest

def test_committed_vectors_are_current(generated):
    out, _ = generated
    fresh, committed = files_of(out), files_of(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run python3 tests/python/gen_seal_vectors.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date, regenerate: {stale}"


def test_regenerating_gives_identical_bytes(generated, tmp_path):
    out, _ = generated
    gen_seal_vectors.generate(tmp_path)
    assert files_of(tmp_path) == files_of(out)


def test_manifest_is_well_formed(generated):
    out, manifest = generated
    assert set(manifest) == {"cases"}
    names = [c["name"] for c in manifest["cases"]]
    assert len(names) == len(set(names))
    required = {"name", "taskrun", "bundles", "trust_domain", "expect", "reason", "note"}
    for case in manifest["cases"]:
        assert required <= set(case) <= required | {"args"}, case["name"]
        assert re.fullmatch(r"[a-z0-9-]+", case["name"])
        assert case["expect"] in {"accept", "reject", "invalid"}
        assert (case["reason"] is None) == (case["expect"] == "accept"), case["name"]
        if case["expect"] == "reject":
            assert case["reason"] in REJECT_CODES, case["name"]
        if case["expect"] == "invalid":
            assert case["reason"] in INVALID_CODES, case["name"]
        if "args" in case:
            assert case["args"] and all(isinstance(a, str) for a in case["args"])
        assert case["note"].strip() and case["trust_domain"]
        assert (out / case["taskrun"]).is_file(), case["taskrun"]
        assert case["bundles"] and all((out / b).is_file() for b in case["bundles"])
        assert (out / f"messages/{case['name']}.pae").is_file() == (case["expect"] == "accept")


def test_required_cases_have_the_briefs_outcomes(generated):
    by_name = cases(generated)
    for name, outcome in REQUIRED.items():
        assert name in by_name, name
        assert (by_name[name]["expect"], by_name[name]["reason"]) == outcome, name
    assert by_name["require-format-tekton"]["args"] == ["--require-format", "tekton"]


def test_every_code_is_documented():
    doc = DOC.read_text(encoding="utf-8")
    for code in REJECT_CODES | INVALID_CODES:
        assert f"`{code}`" in doc, code


def test_no_private_key_material(generated):
    out, _ = generated
    for path in out.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


# ---------------------------------------------------------------- the document

def doc_block(marker: str) -> str:
    doc = DOC.read_text(encoding="utf-8")
    m = re.search(re.escape(f"<!-- {marker} -->") + r"\n```\n(.*?)\n```", doc, re.S)
    assert m, marker
    return m.group(1)


def test_the_worked_example_is_the_vector(generated):
    out, _ = generated
    message = (out / "messages/worked-example.pae").read_bytes()
    assert doc_block("worked-example-message").encode() == message
    assert hashlib.sha256(message).hexdigest() in DOC.read_text(encoding="utf-8")
    doc = load(out, cases(generated)["worked-example"])
    assert doc_block("worked-example-seal") == seal_of(doc)
    assert rebuild(doc, "2025-06-01T12:04:58Z", "0") == message


# ---------------------------------------------------------------- signatures and chains

def test_accepted_cases_verify_with_a_second_verifier(generated):
    out, manifest = generated
    for case in manifest["cases"]:
        if case["expect"] != "accept":
            continue
        doc = load(out, case)
        parsed = parse_seal(seal_of(doc))
        assert parsed, case["name"]
        signed_at, signature, chain, attempt = parsed
        message = rebuild(doc, signed_at, attempt)
        assert message == (out / f"messages/{case['name']}.pae").read_bytes(), case["name"]
        leaf = x509.load_der_x509_certificate(chain[0])
        assert signature_verifies(leaf, message, signature), case["name"]
        if case["name"] in CHAIN_CHECK_UNSUPPORTED:
            continue
        assert chain_ok(chain, roots_of(out, case["bundles"]), signed_at), case["name"]


def test_signature_cases_break_only_the_signature(generated):
    out, _ = generated
    by_name = cases(generated)
    for name in SIGNATURE_ONLY:
        case = by_name[name]
        assert case["reason"] == "signature.invalid", name
        doc = load(out, case)
        signed_at, signature, chain, attempt = parse_seal(seal_of(doc))
        assert chain_ok(chain, roots_of(out, case["bundles"]), signed_at), name
        leaf = x509.load_der_x509_certificate(chain[0])
        assert not signature_verifies(leaf, rebuild(doc, signed_at, attempt), signature), name


def test_seal_strings_break_the_grammar_exactly_where_claimed(generated):
    out, manifest = generated
    for case in manifest["cases"]:
        readable = case["expect"] != "invalid" and case["reason"] != "status.malformed"
        doc = load(out, case) if readable else None
        value = seal_of(doc) if doc else None
        if not isinstance(value, str):
            continue
        assert (parse_seal(value) is None) == (case["name"] in GRAMMAR_BAD), case["name"]


def test_bad_certificates_have_the_property_they_claim(generated):
    out, _ = generated

    def leaf(name):
        return x509.load_der_x509_certificate(parse_seal(seal_of(load(out, cases(generated)[
            name])))[2][0])

    def ext(cert, cls):
        try:
            return cert.extensions.get_extension_for_class(cls).value
        except x509.ExtensionNotFound:
            return None

    assert ext(leaf("svid-ca"), x509.BasicConstraints).ca
    assert len(ext(leaf("svid-two-uri-sans"), x509.SubjectAlternativeName)) == 2
    assert ext(leaf("svid-no-uri-san"), x509.SubjectAlternativeName) is None
    assert not ext(leaf("svid-no-digital-signature"), x509.KeyUsage).digital_signature
    assert ext(leaf("svid-key-cert-sign"), x509.KeyUsage).key_cert_sign
    assert ext(leaf("svid-no-key-usage"), x509.KeyUsage) is None
    assert leaf("p384-leaf").public_key().curve.name == "secp384r1"
    assert leaf("rsa-1024-leaf").public_key().key_size == 1024
    assert leaf("rsa-2048-leaf").public_key().key_size == 2048
    assert leaf("svid-of-other-taskrun").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == ["spiffe://example.org/ns/default/taskrun/build-other"]
    assert ext(leaf("svid-uri-not-spiffe-id"), x509.SubjectAlternativeName).get_values_for_type(
        x509.UniformResourceIdentifier) == ["spiffe://example.org/ns/default/taskrun/build-abc/"]
    unknown = leaf("svid-unknown-critical-extension").extensions.get_extension_for_oid(
        x509.ObjectIdentifier(gen_seal_vectors.UNKNOWN_EXTENSION_OID))
    assert unknown.critical and isinstance(unknown.value, x509.UnrecognizedExtension)
    p384_leaf = leaf("chain-p384-intermediate")
    assert p384_leaf.signature_hash_algorithm.name == "sha384"
    chain = parse_seal(seal_of(load(out, cases(generated)["chain-p384-intermediate"])))[2]
    assert x509.load_der_x509_certificate(chain[1]).public_key().curve.name == "secp384r1"
    rsa_root = x509.load_pem_x509_certificate((out / "pki/rsa-root.pem").read_bytes())
    assert rsa_root.public_key().key_size == 2048
    assert leaf("rsa-root").signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256


def test_cases_that_only_fail_a_later_check_are_otherwise_sound(generated):
    """A bad key or identity: the signature itself still verifies over the message."""
    out, _ = generated
    for name in ["p384-leaf", "rsa-1024-leaf", "renamed-taskrun", "other-namespace",
                 "svid-of-other-taskrun", "svid-ca", "svid-expired", "empty-uid",
                 "signed-at-year-sign", "duplicate-json-key",
                 "attempt-copied-from-retries-status", "retries-status-dropped",
                 "sealv1-on-retried-taskrun"]:
        doc = load(out, cases(generated)[name])
        value = seal_of(doc)
        if name == "signed-at-year-sign":
            value = value.replace(".+2025-", ".2025-", 1)
        signed_at, signature, chain, attempt = parse_seal(value)
        leaf = x509.load_der_x509_certificate(chain[0])
        if name in {"renamed-taskrun", "other-namespace", "empty-uid"}:
            doc = load(out, cases(generated)["pristine-v1-json"])
        if name == "svid-of-other-taskrun":
            doc = dict(doc, metadata={"name": "build-other", "namespace": "default",
                                      "uid": gen_seal_vectors.OTHER_UID})
        assert signature_verifies(leaf, rebuild(doc, signed_at, attempt), signature), name


# ---------------------------------------------------------------- the canonical encoding

def test_jcs_escapes_only_what_rfc_8785_escapes():
    assert sl.jcs("é\n").encode() == bytes.fromhex("22c3a95c6e22")
    assert sl.jcs('"\\/\b\f\n\r\t') == '"\\"\\\\/\\b\\f\\n\\r\\t"'
    assert sl.jcs("\x00\x01\x1f\x7f\u2028\ufeff") == '"\\u0000\\u0001\\u001f\x7f\u2028\ufeff"'
    assert sl.jcs(["a", {"b": "c"}, []]) == '["a",{"b":"c"},[]]'
    with pytest.raises(ValueError):
        sl.jcs("\ud800")


def test_jcs_sorts_keys_by_utf16_code_units():
    keys = {"\uff61": "", "\U0001f600": "", "a": "", "\u00e9": "", "B": ""}
    assert sl.jcs(keys) == '{"B":"","a":"","é":"","😀":"","｡":""}'


def test_results_are_sorted_by_utf8_bytes_and_typed_by_shape():
    body = sl.body(sl.Identity("ns", "n", "u"), "2025-06-01T12:00:00Z",
                   {"\uff58": "s", "\U0001f600": ["a"], "B": {"k": "v"}})
    assert [(r["name"], r["type"]) for r in body["results"]] == [
        ("B", "object"), ("\uff58", "string"), ("\U0001f600", "array")]


def test_pae_prefixes_byte_lengths():
    assert sl.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_signing_time_is_truncated_to_the_second_in_utc():
    later = dt.datetime(2025, 6, 1, 14, 4, 58, 999999,
                        tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert sl.format_time(later) == "2025-06-01T12:04:58Z"
