#!/usr/bin/env python3
"""Write the seal-format test vectors into tests/vectors/seal/.

Each case is a TaskRun as the API server would return it, sealed by tsfixtures.seal (an
implementation of the signing side of docs/seal-format.md that does not call the Rust
code), the trust bundles and trust domain to verify it with, optional extra CLI
arguments, and the expected outcome. Every bad case differs from a valid one in a single
property, which its note names. For each accepted case, messages/<name>.pae holds the
exact message the verifier must rebuild. Output is deterministic; no private key is
written.

Usage: python3 tests/python/gen_seal_vectors.py [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_fixtures  # noqa: E402  (the legacy fixtures' PKI labels and file writer)
from gen_fixtures import LEAF_NA, LEAF_NB, Pki  # noqa: E402
from tsfixtures import pki  # noqa: E402
from tsfixtures import seal as sl  # noqa: E402
from tsfixtures.legacy import (Result, TaskRunMeta, signing_material,  # noqa: E402
                               status_entry, taskrun_document)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "vectors" / "seal"
V1, V1BETA1 = "tekton.dev/v1", "tekton.dev/v1beta1"
ROOT_BUNDLE = "pki/root.pem"
# An extension no verifier understands (a private OID), for the critical-extension case.
UNKNOWN_EXTENSION_OID = "1.3.6.1.4.1.99999.1"

# The TaskRun runs 12:00:00-12:05:00 (TaskRunMeta's defaults); the signing step seals at
# 12:04:58; the good SVID lives 11:30-12:30.
SIGNED_AT = "2025-06-01T12:04:58Z"
# What a failed first attempt of the retried TaskRun sealed (retry_cases).
FIRST_DIGEST = "sha256:" + "5e" * 32
OTHER_UID = "0d9e57b2-8c41-4f3a-b6d0-2a7e9c4f1b88"

# The legacy fixtures' results, as the status shows them (name -> typed value).
BASE = {e["name"]: e["value"] for e in map(status_entry, gen_fixtures.BASELINE)}

SIGN_STEP = {"name": "sign", "image": "tekton-spire-sign",
             "args": ["--taskrun-namespace=$(context.taskRun.namespace)",
                      "--taskrun-name=$(context.taskRun.name)",
                      "--taskrun-uid=$(context.taskRun.uid)",
                      "--taskrun-retry-count=$(context.task.retry-count)"]}


# ---------------------------------------------------------------- PKI

class SealPki(Pki):
    """The legacy fixtures' PKI (same labels, same certificates) plus what the seal adds."""

    @cached_property
    def other_taskrun_leaf(self):
        return self.leaf("leaf-build-other", spiffe_id=self.spiffe_id(name="build-other"))

    @cached_property
    def via_intermediate(self):
        return self.leaf("leaf-via-intermediate", issuer=self.intermediate)

    def impostor(self, label: str, of: pki.Credential) -> pki.Credential:
        """A self-signed CA with the subject of `of` but a key of its own."""
        return pki.issue(pki.CertSpec(
            label=label, subject=of.cert.subject, not_before=pki.utc("2025-01-01T00:00:00Z"),
            not_after=pki.utc("2035-01-01T00:00:00Z"), uris=[f"spiffe://{pki.TRUST_DOMAIN}"],
            is_ca=True, key_usage=pki.CA_USAGE), None)

    @cached_property
    def impostor_root(self):
        return self.impostor("impostor-root", self.root)

    @cached_property
    def impostor_intermediate(self):
        return self.impostor("impostor-intermediate", self.intermediate)

    @cached_property
    def p384_intermediate(self):
        return pki.intermediate_ca("intermediate-p384", self.root, "2025-05-01T00:00:00Z",
                                   "2026-05-01T00:00:00Z", key_kind="p384")

    @cached_property
    def via_p384_intermediate(self):
        """A P-256 SVID that the P-384 intermediate signs with ecdsa-with-SHA384."""
        return self.leaf("leaf-via-intermediate-p384", issuer=self.p384_intermediate,
                         signature_hash="sha384")

    @cached_property
    def rsa_root(self):
        return pki.root_ca("rsa-root", "2025-01-01T00:00:00Z", "2035-01-01T00:00:00Z",
                           key_kind="rsa2048")

    @cached_property
    def via_rsa_root(self):
        """A P-256 SVID that the RSA-2048 root signs with sha256WithRSAEncryption."""
        return self.leaf("leaf-via-rsa-root", issuer=self.rsa_root)


    # ---- path validation (section 9.2, steps 7 and 10)

    def constrained_root(self, label: str, **knobs) -> pki.Credential:
        return pki.root_ca(label, "2025-01-01T00:00:00Z", "2035-01-01T00:00:00Z", **knobs)

    def constrained_intermediate(self, label: str, parent: pki.Credential | None = None,
                                 **knobs) -> pki.Credential:
        return pki.intermediate_ca(label, parent or self.root, "2025-05-01T00:00:00Z",
                                   "2026-05-01T00:00:00Z", **knobs)

    @cached_property
    def root_path_length_zero(self):
        return self.constrained_root("root-pathlen-0", path_length=0)

    @cached_property
    def root_path_length_one(self):
        return self.constrained_root("root-pathlen-1", path_length=1)


def uri_constraints(permitted=None, excluded=None):
    """A critical nameConstraints extension of URI subtrees (hosts or .domains)."""
    uris = lambda hosts: None if hosts is None else [  # noqa: E731
        x509.UniformResourceIdentifier(h) for h in hosts]
    return (x509.NameConstraints(permitted_subtrees=uris(permitted),
                                 excluded_subtrees=uris(excluded)), True)


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    if data.count(old) != 1:
        raise AssertionError("%s is not in the certificate exactly once" % old.hex())
    return data.replace(old, new)


def resigned(cert: pki.Credential, issuer: pki.Credential, edit) -> pki.Credential:
    """cert with its TBSCertificate's bytes edited by `edit` and signed again by issuer
    (ECDSA P-256, RFC 6979), so that the edit is the only fault."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    der = cert.cert.public_bytes(serialization.Encoding.DER)
    tbs = cert.cert.tbs_certificate_bytes
    new_tbs = edit(tbs)
    sig = issuer.key.sign(new_tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    alg = der[der.index(tbs) + len(tbs):]
    alg = alg[:alg[1] + 2]  # signatureAlgorithm (short form: ecdsa-with-SHA256 is 12 bytes)
    bits = b"\x00" + sig
    body = new_tbs + alg + _tlv(0x03, bits)
    return pki.Credential(_RawCertificate(_tlv(0x30, body)), cert.key)


class _RawCertificate:
    """DER bytes standing in for a certificate that `cryptography` (strict DER) would not
    load: the sealing code only asks for its bytes."""

    def __init__(self, der: bytes):
        self.der = der

    def public_bytes(self, encoding) -> bytes:
        return self.der


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + content


# ---------------------------------------------------------------- scenarios

@dataclass
class Sealing:
    """A TaskRun whose signing step sealed `results`; bad cases edit what it produced."""
    leaf: pki.Credential
    results: dict = field(default_factory=lambda: dict(BASE))
    intermediates: tuple = ()
    meta: TaskRunMeta = field(default_factory=TaskRunMeta)
    api: str = V1
    signed_at: str = SIGNED_AT
    key: object = None  # signs instead of the leaf's key (a bad variant)
    payload_type: str | None = None  # the version's own, unless a bad variant sets one
    signer_identity: sl.Identity | None = None  # what the step was told, if not meta
    version: int = 2  # 1: a seal as the signing step made it before sealv2
    # The statuses of earlier attempts, as Tekton moves them to status.retriesStatus; the
    # signing step of this attempt was told $(context.task.retry-count) = their number.
    retries_status: list = field(default_factory=list)

    @cached_property
    def sealed(self) -> sl.Sealed:
        identity = self.signer_identity or sl.Identity(
            self.meta.namespace, self.meta.name, self.meta.uid, len(self.retries_status))
        return sl.seal(identity, self.signed_at, self.results, self.leaf, self.intermediates,
                       self.payload_type, self.key, self.version)

    def entries(self, seal_value: str | None = None) -> list[dict]:
        """The status list: every result and the seal, sorted by name as Tekton does."""
        value = self.sealed.value if seal_value is None else seal_value
        entries = [{"name": n, "type": sl.type_of(v), "value": copy.deepcopy(v)}
                   for n, v in self.results.items()]
        entries.append({"name": sl.RESULT_NAME, "type": "string", "value": value})
        return sorted(entries, key=lambda e: e["name"].encode())

    def document(self, entries: list[dict] | None = None) -> dict:
        declared = [Result(n, sl.type_of(v), "") for n, v in self.results.items()]
        declared.append(Result(sl.RESULT_NAME, "string", ""))
        doc = taskrun_document(self.api, self.meta, declared,
                               self.entries() if entries is None else entries)
        doc["status"]["taskSpec"]["steps"].append(copy.deepcopy(SIGN_STEP))
        if self.retries_status:
            doc["status"]["podName"] += f"-retry{len(self.retries_status)}"
            doc["status"]["retriesStatus"] = copy.deepcopy(self.retries_status)
        return doc

    def attempt_status(self) -> dict:
        """This attempt's status as Tekton archives it in status.retriesStatus when it
        retries the TaskRun: failed, with its sealed results."""
        doc = self.document()
        status = {k: doc["status"][k] for k in ("conditions", "podName", "startTime",
                                                 "completionTime")}
        status["conditions"] = [{**status["conditions"][0], "status": "False",
                                 "reason": "Failed", "message": "\"step-sign\" exited "
                                 "with code 0; the pod failed after it"}]
        key = "results" if self.api == V1 else "taskResults"
        status[key] = doc["status"][key]
        return status


def find(entries, name):
    matches = [e for e in entries if e["name"] == name]
    if len(matches) != 1:
        raise KeyError(f"{name!r} occurs {len(matches)} times")
    return matches[0]


def set_value(entries, name, value, typ=None):
    out = copy.deepcopy(entries)
    entry = find(out, name)
    entry["value"] = value
    if typ:
        entry["type"] = typ
    return out


def set_type(entries, name, typ):
    out = copy.deepcopy(entries)
    find(out, name)["type"] = typ
    return out


def drop(entries, *names):
    for name in names:
        find(entries, name)
    return [e for e in copy.deepcopy(entries) if e["name"] not in names]


def add(entries, *new):
    out = copy.deepcopy(entries) + [copy.deepcopy(e) for e in new]
    return sorted(out, key=lambda e: e["name"].encode())


def swap(entries, a, b):
    out = copy.deepcopy(entries)
    ea, eb = find(out, a), find(out, b)
    ea["value"], eb["value"] = eb["value"], ea["value"]
    return out


# The dot-separated fields of a sealv2: tag, attempt, time, signature, leaf, intermediates.
ATTEMPT, TIME, SIGNATURE, LEAF = 1, 2, 3, 4


def edit_seal(value: str, index: int, new: str) -> str:
    """The seal with dot-separated field `index` replaced (ATTEMPT, TIME, ...)."""
    fields = value.split(".")
    fields[index] = new
    return ".".join(fields)


def with_metadata(doc: dict, **changes) -> dict:
    """The document with metadata fields changed; a value of None removes the field."""
    out = copy.deepcopy(doc)
    for key, value in changes.items():
        if value is None:
            out["metadata"].pop(key)
        else:
            out["metadata"][key] = None if value is NULL else value
    return out


NULL = object()  # with_metadata / with_status: set the field to JSON null


def with_status(doc: dict, **changes) -> dict:
    """The document with status fields changed; a value of None removes the field."""
    out = copy.deepcopy(doc)
    for key, value in changes.items():
        if value is None:
            out["status"].pop(key)
        else:
            out["status"][key] = None if value is NULL else value
    return out


def yaml_text(doc: dict) -> str:
    """A document rendered as the YAML vectors are (see Case.render)."""
    return Case("", "accept", None, "", doc, ext="yaml").render()


def duplicate_yaml_key(scenario: "Sealing") -> str:
    """The YAML rendering with IMAGE_DIGEST holding a forged value key before the real one."""
    text = yaml_text(scenario.document())
    needle = f"    value: {BASE['IMAGE_DIGEST']}\n"
    if text.count(needle) != 1:
        raise AssertionError("IMAGE_DIGEST's value is not unique in the YAML document")
    return text.replace(needle, f"    value: sha256:{'0' * 64}\n" + needle)


def yaml_flow_nested(scenario: "Sealing", depth: int) -> str:
    """The YAML rendering with a member x of flow sequences nested `depth` deep."""
    return yaml_text(scenario.document()) + "x: " + "[" * depth + "]" * depth + "\n"


def noncanonical(field_text: str) -> str:
    """The same bytes' base64url with a non-zero unused trailing bit; '' if it has none."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(field_text) % 4 == 0:
        return ""
    index = alphabet.index(field_text[-1])
    return field_text[:-1] + alphabet[index | 1]


# ---------------------------------------------------------------- cases

@dataclass
class Case:
    name: str
    expect: str  # accept | reject | invalid
    reason: str | None
    note: str
    content: dict | str  # a TaskRun document, or raw file text
    ext: str = "json"
    bundles: list[str] = field(default_factory=lambda: [ROOT_BUNDLE])
    trust_domain: str = pki.TRUST_DOMAIN
    args: list[str] = field(default_factory=list)
    message: bytes | None = None  # for accepted cases: the message the verifier rebuilds

    def file_name(self) -> str:
        return f"{self.name}.{self.ext}"

    def render(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.ext == "yaml":
            return yaml.dump(self.content, Dumper=gen_fixtures._BlockDumper, sort_keys=False,
                             default_flow_style=False, width=1000, allow_unicode=False)
        return json.dumps(self.content, indent=2) + "\n"


def accept(name, note, scenario: Sealing, content=None, message=None, **kw):
    return Case(name, "accept", None, note,
                scenario.document() if content is None else content,
                message=scenario.sealed.message if message is None else message, **kw)


def reject(name, reason, note, content, **kw):
    return Case(name, "reject", reason, note, content, **kw)


def invalid(name, reason, note, content, **kw):
    return Case(name, "invalid", reason, note, content, **kw)


def pristine_cases(p: SealPki) -> list[Case]:
    base = Sealing(p.good_leaf)
    return [
        accept("pristine-v1-json", "Baseline: tekton.dev/v1 status.results holding "
               "IMAGE_DIGEST, tags (array), info (object), summary and the seal made at "
               "12:04:58 by the SVID of default/build-abc, during the 12:00-12:05 run.", base),
        accept("pristine-v1-yaml", "pristine-v1-json rendered as YAML.", base, ext="yaml"),
        accept("pristine-v1beta1-json", "pristine-v1-json as tekton.dev/v1beta1 "
               "(status.taskResults).", replace(base, api=V1BETA1)),
        accept("pristine-bundle-spiffe", "pristine-v1-json with the root given as a SPIFFE "
               "bundle (JWKS).", base, bundles=["pki/bundle.spiffe.json"]),
        accept("require-format-seal", "pristine-v1-json verified with --require-format seal.",
               base, args=["--require-format", "seal"]),
        accept("worked-example", "The worked example of docs/seal-format.md: two results, "
               "IMAGE_DIGEST and tags.", Sealing(p.good_leaf, results={
                   "IMAGE_DIGEST": BASE["IMAGE_DIGEST"], "tags": BASE["tags"]})),
        accept("zero-results", "pristine-v1-json with no result but the seal: the body's "
               "results list is empty.", Sealing(p.good_leaf, results={})),
        accept("namespace-omitted", "pristine-v1-json without metadata.namespace; the "
               "namespace is then 'default', as the signing step was told.", base,
               content=with_metadata(base.document(), namespace=None)),
        accept("rsa-2048-leaf", "pristine-v1-json sealed with an RSA-2048 SVID "
               "(PKCS#1 v1.5, SHA-256).", Sealing(p.leaf("leaf-rsa", key_kind="rsa2048"))),
        accept("chain-with-intermediate", "pristine-v1-json sealed by an SVID issued by an "
               "intermediate CA; the seal carries leaf then intermediate.",
               Sealing(p.via_intermediate, intermediates=(p.intermediate,))),
        accept("ecdsa-high-s", "pristine-v1-json with the ECDSA signature replaced by its "
               "other valid form (r, n-s): verifiers must not demand low-S.",
               base, content=base.document(base.entries(edit_seal(
                   base.sealed.value, SIGNATURE, sl.b64url(sl.negate_s(base.sealed.signature)))))),
    ]


def value_cases(p: SealPki) -> list[Case]:
    escapes = {
        "QUOTES": 'say "hi" \\ C:\\dir\\file /slash',
        "CONTROLS": "\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f\u007f end",
        "UNICODE": "é € 😀 \u2028\u2029 \ufeff 中文",
        "items": ["", "a,b", "ü", "\n", "a,b"],
        "labels": {"z": "1", "é": "\"2\"", "A": "\\", "\u007f": "", "\u0001": "ctl"},
    }
    names = {"A": "ascii", "\uff58": "fullwidth x (U+FF58)",
             "\U0001f600x": "emoji (U+1F600) then x"}
    utf16 = {"MAP": {"a": "ascii", "\uff61": "U+FF61", "\U0001f600": "U+1F600"}}
    comma = Sealing(p.good_leaf, results={**BASE, "CSV": "a,b"})
    return [
        accept("value-kinds-and-escapes", "Strings, an array and an object holding characters "
               "JCS escapes (quote, backslash, every control class) and ones it keeps literal "
               "(solidus, DEL, non-ASCII, U+2028, U+FEFF).", Sealing(p.good_leaf,
                                                                    results=escapes)),
        accept("object-keys-utf16-order", "An object whose keys sort differently by UTF-16 "
               "code units (a, U+1F600, U+FF61: the JCS order) than by code points.",
               Sealing(p.good_leaf, results=utf16)),
        accept("result-names-byte-order", "Result names that sort differently by UTF-8 bytes "
               "(A, U+FF58, U+1F600 x: the order of the results list) than by UTF-16 code "
               "units. Tekton allows only ASCII names; the rule still has to be one.",
               Sealing(p.good_leaf, results=names)),
        accept("comma-string", "pristine-v1-json plus CSV, the string \"a,b\".", comma),
        reject("comma-string-retyped-as-array", "signature.invalid", "comma-string with CSV "
               "shown as the array [\"a\",\"b\"] of type array: the type is signed, unlike in "
               "Tekton's comma join.", comma.document(
                   set_value(comma.entries(), "CSV", ["a", "b"], "array"))),
    ]


def tamper_cases(p: SealPki) -> list[Case]:
    base = Sealing(p.good_leaf)
    e = base.entries()
    doc = base.document()
    stolen = sl.sign(base.sealed.message, pki.ec_key("attacker"))
    value = base.sealed.value
    legacy_material = [status_entry(r) for r in signing_material(gen_fixtures.BASELINE,
                                                                  p.good_leaf)]
    return [
        reject("tampered-string", "signature.invalid", "pristine-v1-json with IMAGE_DIGEST "
               "rewritten.", base.document(set_value(e, "IMAGE_DIGEST", "sha256:" + "0" * 64))),
        reject("tampered-array", "signature.invalid", "pristine-v1-json with tags rewritten to "
               '["v1","evil"].', base.document(set_value(e, "tags", ["v1", "evil"]))),
        reject("tampered-object", "signature.invalid", "pristine-v1-json with info.commit "
               "rewritten to def.", base.document(set_value(
                   e, "info", {"commit": "def", "url": "https://x"}))),
        reject("swapped-values", "signature.invalid", "pristine-v1-json with IMAGE_DIGEST and "
               "summary swapping values: names are signed.",
               base.document(swap(e, "IMAGE_DIGEST", "summary"))),
        reject("result-added", "signature.invalid", "pristine-v1-json plus a result EXTRA "
               "written after sealing.", base.document(
                   add(e, {"name": "EXTRA", "type": "string", "value": "x"}))),
        reject("result-removed", "signature.invalid", "pristine-v1-json without summary.",
               base.document(drop(e, "summary"))),
        reject("declared-type-mismatch", "results.type-mismatch", "pristine-v1-json with "
               "tags declared as type string while its value is an array.",
               base.document(set_type(e, "tags", "string"))),
        reject("replayed-onto-new-uid", "signature.invalid", "pristine-v1-json's status on a "
               "later TaskRun of the same namespace and name (metadata.uid " + OTHER_UID +
               "): the UID is signed.", with_metadata(doc, uid=OTHER_UID)),
        reject("signed-at-edited-inside-run", "signature.invalid", "pristine-v1-json with the "
               "seal's time edited to 12:04:59, still inside the run: the time is signed, so "
               "the signature fails (step 16).", base.document(base.entries(
                   edit_seal(value, TIME, "2025-06-01T12:04:59Z")))),
        reject("signed-at-edited-outside-run", "seal.time-outside-run", "pristine-v1-json with "
               "the seal's time edited to 12:07:00: the time window (step 6) is checked before "
               "the signature (step 16).", base.document(base.entries(
                   edit_seal(value, TIME, "2025-06-01T12:07:00Z")))),
        reject("signature-by-other-key", "signature.invalid", "pristine-v1-json with the seal's "
               "signature replaced by a signature of the same message by another key.",
               base.document(base.entries(edit_seal(value, SIGNATURE, sl.b64url(stolen))))),
        reject("wrong-payload-type", "signature.invalid", "pristine-v1-json sealed with the "
               "DSSE payload type application/vnd.in-toto+json: the type is signed.",
               replace(base, payload_type="application/vnd.in-toto+json").document()),
        reject("body-signed-without-pae", "signature.invalid", "pristine-v1-json whose "
               "signature covers the canonical body alone, without the DSSE envelope.",
               base.document(base.entries(edit_seal(value, SIGNATURE, sl.b64url(sl.sign(
                   base.sealed.message.split(b" ", 4)[4], p.good_leaf.key)))))),
        accept("seal-and-tekton-material", "pristine-v1-json whose status also carries "
               "Tekton-format material (SVID, RESULT_MANIFEST, .sig results), sealed with the "
               "rest: the seal wins and covers them as ordinary results.",
               Sealing(p.good_leaf, results={**BASE, **{m["name"]: m["value"]
                                                        for m in legacy_material}})),
        reject("seal-and-unsealed-tekton-material", "signature.invalid", "pristine-v1-json "
               "plus valid Tekton-format material added after sealing: the seal wins and does "
               "not cover it.", base.document(add(e, *legacy_material))),
        reject("seal-malformed-beside-valid-tekton-material", "material.malformed",
               "seal-and-unsealed-tekton-material with the seal's tag changed to sealv3: no "
               "fallback to the Tekton format once a seal is present.", base.document(
                   set_value(add(e, *legacy_material), sl.RESULT_NAME,
                             edit_seal(value, 0, "sealv3")))),
    ]


def material_cases(p: SealPki) -> list[Case]:
    base = Sealing(p.good_leaf)
    value = base.sealed.value
    fields = value.split(".")

    def with_seal(text: str) -> dict:
        return base.document(base.entries(text))

    bad_bits = next(filter(None, (noncanonical(f) for f in fields[SIGNATURE:])))
    bad_index = next(i for i, f in enumerate(fields) if i >= SIGNATURE and noncanonical(f))
    via_int = Sealing(p.via_intermediate, intermediates=(p.intermediate,))
    nine = via_int.sealed.value + ("." + sl.b64url(sl.der(p.intermediate.cert))) * 7
    legacy_doc = gen_fixtures.Scenario(p.good_leaf).document()
    return [
        reject("seal-absent", "material.absent", "pristine-v1-json without the seal: an "
               "unsigned TaskRun.", base.document(drop(base.entries(), sl.RESULT_NAME))),
        reject("seal-truncated", "material.malformed", "pristine-v1-json with the seal cut at "
               "half its length (inside the leaf certificate).", with_seal(
                   value[:len(value) // 2])),
        reject("seal-garbled-base64", "material.malformed", "pristine-v1-json with a '+' "
               "(standard alphabet) in the signature field.", with_seal(
                   edit_seal(value, SIGNATURE, "+" + fields[SIGNATURE][1:]))),
        reject("seal-base64-padded", "material.malformed", "pristine-v1-json with '=' padding "
               "added to the leaf certificate field.", with_seal(edit_seal(
                   value, LEAF, fields[LEAF] + "=" * (-len(fields[LEAF]) % 4 or 4)))),
        reject("seal-base64-noncanonical", "material.malformed", "pristine-v1-json with an "
               f"unused trailing bit set in field {bad_index} (the same bytes, non-canonical "
               "base64url).", with_seal(edit_seal(value, bad_index, bad_bits))),
        reject("seal-wrong-tag", "material.malformed", "pristine-v1-json with the tag sealv3.",
               with_seal(edit_seal(value, 0, "sealv3"))),
        reject("seal-missing-certificate", "material.malformed", "pristine-v1-json with the "
               "certificate field removed (tag, attempt, time and signature only).",
               with_seal(".".join(fields[:LEAF]))),
        reject("seal-not-a-string", "material.malformed", "pristine-v1-json with the seal "
               "shown as an array holding the seal string (type array).", base.document(
                   set_value(base.entries(), sl.RESULT_NAME, [value], "array"))),
        reject("seal-trailing-newline", "material.malformed", "pristine-v1-json with a newline "
               "after the seal: the value is not trimmed.", with_seal(value + "\n")),
        reject("signed-at-offset-form", "material.malformed", "pristine-v1-json with the time "
               "written 2025-06-01T12:04:58+00:00.", with_seal(
                   edit_seal(value, TIME, "2025-06-01T12:04:58+00:00"))),
        reject("signed-at-year-sign", "material.malformed", "pristine-v1-json with the time "
               "written +2025-06-01T12:04:58Z: the year is exactly four digits.", with_seal(
                   edit_seal(value, TIME, "+" + SIGNED_AT))),
        reject("seal-too-long", "material.malformed", "pristine-v1-json with a 16384-character "
               "certificate field appended: the seal exceeds 16384 bytes.",
               with_seal(value + "." + "A" * 16384)),
        reject("seal-too-many-certificates", "material.malformed", "chain-with-intermediate "
               "with the intermediate carried 8 times: 9 certificates.",
               via_int.document(via_int.entries(nine))),
        reject("certificate-not-der", "material.malformed", "pristine-v1-json with the leaf "
               "field the base64url of 'not a certificate'.", with_seal(
                   edit_seal(value, LEAF, sl.b64url(b"not a certificate")))),
        reject("require-format-tekton", "format.not-allowed", "pristine-v1-json verified with "
               "--require-format tekton.", base.document(), args=["--require-format", "tekton"]),
        reject("tekton-format-require-seal", "format.not-allowed", "The legacy fixtures' "
               "pristine-v1-json (Tekton's format, no seal) verified with --require-format "
               "seal.", legacy_doc, args=["--require-format", "seal"]),
    ]


def run_cases(p: SealPki) -> list[Case]:
    base = Sealing(p.good_leaf)
    doc = base.document()
    skew_early = Sealing(p.good_leaf, signed_at="2025-06-01T11:59:00Z")
    skew_late = Sealing(p.good_leaf, signed_at="2025-06-01T12:06:00Z")

    def status_without(document, key):
        out = copy.deepcopy(document)
        out["status"].pop(key)
        return out

    return [
        reject("no-uid", "taskrun.no-uid", "pristine-v1-json without metadata.uid.",
               with_metadata(doc, uid=None)),
        reject("empty-uid", "taskrun.no-uid", "pristine-v1-json with metadata.uid \"\" (the "
               "seal was made for the real UID).", with_metadata(doc, uid="")),
        reject("no-completion-time", "taskrun.not-complete", "pristine-v1-json without "
               "status.completionTime.", status_without(doc, "completionTime")),
        reject("no-start-time", "taskrun.not-complete", "pristine-v1-json without "
               "status.startTime.", status_without(doc, "startTime")),
        reject("completion-before-start", "taskrun.time-order", "pristine-v1-json with "
               "completionTime 11:55, before startTime 12:00.", Sealing(
                   p.good_leaf, meta=TaskRunMeta(completion="2025-06-01T11:55:00Z")).document()),
        accept("signed-at-skew-before-start", "pristine-v1-json sealed at 11:59:00, exactly "
               "the 60 s skew before the 12:00 start: the bound is inclusive.", skew_early),
        accept("signed-at-skew-after-completion", "pristine-v1-json sealed at 12:06:00, "
               "exactly the 60 s skew after the 12:05 completion.", skew_late),
        reject("signed-at-before-start-beyond-skew", "seal.time-outside-run", "pristine-v1-json "
               "sealed at 11:58:59, 61 s before the start.",
               Sealing(p.good_leaf, signed_at="2025-06-01T11:58:59Z").document()),
        reject("signed-at-after-completion-beyond-skew", "seal.time-outside-run",
               "pristine-v1-json sealed at 12:06:01, 61 s after the completion.",
               Sealing(p.good_leaf, signed_at="2025-06-01T12:06:01Z").document()),
        reject("clock-skew-zero", "seal.time-outside-run", "signed-at-skew-before-start "
               "verified with --clock-skew 0.", skew_early.document(),
               args=["--clock-skew", "0"]),
    ]


def retry_cases(p: SealPki) -> list[Case]:
    """Section 9.2, step 5: a sealv2 binds its attempt, which must be the number of entries
    of status.retriesStatus; a sealv1 binds none and is refused on a retried TaskRun."""
    def first_attempt(api: str = V1) -> Sealing:
        # Attempt 0 ran 11:50-11:55, sealed its own IMAGE_DIGEST at 11:54:58, then failed.
        return Sealing(p.good_leaf, api=api, results={**BASE, "IMAGE_DIGEST": FIRST_DIGEST},
                       meta=TaskRunMeta(start="2025-06-01T11:50:00Z",
                                        completion="2025-06-01T11:55:00Z"),
                       signed_at="2025-06-01T11:54:58Z")

    def retried(api: str = V1, version: int = 2) -> Sealing:
        return Sealing(p.good_leaf, api=api, version=version,
                       retries_status=[first_attempt(api).attempt_status()])

    final = retried()
    doc = final.document()
    earlier = doc["status"]["retriesStatus"][0]
    copied = with_status(doc, results=earlier["results"], startTime=earlier["startTime"],
                         completionTime=earlier["completionTime"])
    copied_seal = find(earlier["results"], sl.RESULT_NAME)["value"]
    copied_edited = with_status(copied, results=set_value(
        earlier["results"], sl.RESULT_NAME, edit_seal(copied_seal, ATTEMPT, "1")))
    leading_zero = final.document(final.entries(edit_seal(final.sealed.value, ATTEMPT, "01")))
    base = Sealing(p.good_leaf)
    v2_fields = base.sealed.value.split(".")
    downgraded = ".".join(["sealv1"] + v2_fields[TIME:])
    return [
        accept("retried-pristine", "pristine-v1-json retried once: status.retriesStatus holds "
               "attempt 0 (11:50-11:55, failed after sealing its own IMAGE_DIGEST), and the "
               "status is attempt 1's (pod build-abc-pod-retry1), sealed with attempt 1.",
               final),
        accept("retried-v1beta1", "retried-pristine as tekton.dev/v1beta1 (status.taskResults, "
               "in retriesStatus too).", retried(V1BETA1)),
        reject("attempt-copied-from-retries-status", "seal.attempt-mismatch", "retried-pristine "
               "with status.results, startTime and completionTime replaced by attempt 0's "
               "from status.retriesStatus: its seal verifies in every other respect, but binds "
               "attempt 0 and the status reports attempt 1.", copied),
        reject("attempt-edited-to-match", "signature.invalid", "attempt-copied-from-retries-"
               "status with the copied seal's attempt field edited from 0 to 1: the attempt "
               "is signed.", copied_edited),
        reject("retries-status-dropped", "seal.attempt-mismatch", "retried-pristine without "
               "status.retriesStatus: the seal binds attempt 1, the status reports attempt 0.",
               with_status(doc, retriesStatus=None)),
        accept("retries-status-dropped-with-attempt-copied", "attempt-copied-from-retries-"
               "status without status.retriesStatus: accepted. A status writer who rewrites "
               "the whole history can present a sealed earlier attempt as the only one; "
               "section 12 names this limit.", final, content=with_status(
                   copied, retriesStatus=None), message=first_attempt().sealed.message),
        reject("attempt-leading-zero", "material.malformed", "retried-pristine with the "
               "seal's attempt written 01: an attempt has one form, without leading zeros.",
               leading_zero),
        reject("retries-status-not-an-array", "status.malformed", "retried-pristine with "
               "status.retriesStatus an object holding attempt 0's status under the key 0.",
               with_status(doc, retriesStatus={"0": earlier})),
        reject("retries-status-entry-not-an-object", "status.malformed", "retried-pristine "
               "with status.retriesStatus holding the string build-abc-pod instead of "
               "attempt 0's status.", with_status(doc, retriesStatus=["build-abc-pod"])),
        accept("retries-status-null", "pristine-v1-json with status.retriesStatus null: read "
               "as absent, so attempt 0.", base,
               content=with_status(base.document(), retriesStatus=NULL)),
        accept("sealv1-pristine", "pristine-v1-json sealed as version 1 (tag sealv1, no "
               "attempt, payload type ...seal.v1+json), as the signing step did before "
               "sealv2: still verified on a TaskRun never retried.",
               Sealing(p.good_leaf, version=1)),
        reject("sealv1-on-retried-taskrun", "seal.attempt-unbound", "retried-pristine sealed "
               "as version 1: a sealv1 binds no attempt, so it could be any attempt's.",
               retried(version=1).document()),
        reject("sealv2-downgraded-to-sealv1", "signature.invalid", "pristine-v1-json with the "
               "seal rewritten as a sealv1 (tag sealv1, attempt field removed): the version "
               "is signed, through the payload type and the body.",
               base.document(base.entries(downgraded))),
    ]


def chain_cases(p: SealPki) -> list[Case]:
    via_bad = p.leaf("leaf-via-intermediate-not-ca", issuer=p.intermediate_not_ca)
    expired_root_leaf = p.leaf("leaf-expired-root", issuer=p.expired_root)
    # The intermediate's notBefore with the tag [APPLICATION 23] (57) instead of UTCTime
    # (17), signed again by the root: the same number, another class.
    not_before = p.intermediate.cert.not_valid_before_utc.strftime("%y%m%d%H%M%SZ").encode()
    retimed = resigned(p.intermediate, p.root, lambda tbs: _replace_once(
        tbs, b"\x17\x0d" + not_before, b"\x57\x0d" + not_before))
    return [
        reject("chain-intermediate-validity-not-a-time", "material.malformed",
               "chain-with-intermediate with the intermediate's notBefore tagged [APPLICATION "
               "23] instead of UTCTime, signed again by the root: tags are read whole, class "
               "included.", Sealing(p.via_intermediate, intermediates=(retimed,)).document()),
        reject("chain-missing-intermediate", "chain.untrusted", "chain-with-intermediate "
               "without the intermediate.", Sealing(p.via_intermediate).document()),
        reject("chain-extra-certificate", "chain.extra-certificate", "pristine-v1-json (leaf "
               "issued by the root) carrying the unrelated intermediate after the leaf.",
               Sealing(p.good_leaf, intermediates=(p.intermediate,)).document()),
        reject("chain-reversed", "chain.extra-certificate", "chain-with-intermediate with the "
               "certificates in the order intermediate, leaf: the first is taken as the "
               "signer, reaches the root alone, and the leaf is left over.",
               Sealing(p.intermediate, intermediates=(p.via_intermediate,),
                       key=p.via_intermediate.key).document()),
        reject("chain-certificate-twice", "chain.extra-certificate", "chain-with-intermediate "
               "carrying its intermediate twice: a member given twice in the seal is refused, "
               "the second copy being on no path.",
               Sealing(p.via_intermediate, intermediates=(p.intermediate, p.intermediate))
               .document()),
        reject("chain-carries-root", "chain.extra-certificate", "pristine-v1-json carrying the "
               "trusted root after the leaf: roots come from the bundle, never the seal.",
               Sealing(p.good_leaf, intermediates=(p.root,)).document()),
        reject("bundle-holds-intermediate", "chain.extra-certificate", "chain-with-intermediate "
               "verified against a bundle holding the intermediate itself: the leaf reaches "
               "a trust anchor directly, and the carried intermediate is left over.",
               Sealing(p.via_intermediate, intermediates=(p.intermediate,)).document(),
               bundles=["pki/intermediate.pem"]),
        reject("leaf-signed-by-impostor-ca", "chain.signature", "pristine-v1-json sealed by "
               "an SVID issued by a CA that has the root's subject but another key.",
               Sealing(p.leaf("leaf-impostor", issuer=p.impostor_root)).document()),
        accept("bundle-root-shares-issuer-name", "chain-with-intermediate verified against "
               "root.pem plus a second root with the intermediate's subject but another key: "
               "a candidate whose key does not verify is passed over, and the path goes on "
               "through the carried intermediate.",
               Sealing(p.via_intermediate, intermediates=(p.intermediate,)),
               bundles=[ROOT_BUNDLE, "pki/impostor-intermediate.pem"]),
        reject("untrusted-bundle", "chain.untrusted", "pristine-v1-json verified against "
               "other-root.pem only.", Sealing(p.good_leaf).document(),
               bundles=["pki/other-root.pem"]),
        reject("self-signed-leaf", "chain.untrusted", "pristine-v1-json sealed by a "
               "self-signed SVID.", Sealing(pki.svid("leaf-self-signed", None, p.spiffe_id(),
                                                     LEAF_NB, LEAF_NA)).document()),
        reject("intermediate-not-ca", "chain.issuer-not-ca", "chain-with-intermediate whose "
               "intermediate lacks CA:true.",
               Sealing(via_bad, intermediates=(p.intermediate_not_ca,)).document()),
        accept("root-expired-after-signing", "pristine-v1-json under a root that expired at "
               "12:02:00, sealed at 12:01:30: certificates are judged at the signing time, "
               "not at the completion (12:05) nor now.",
               Sealing(expired_root_leaf, signed_at="2025-06-01T12:01:30Z"),
               bundles=["pki/expired-root.pem"]),
        reject("root-expired-before-signing", "chain.expired", "root-expired-after-signing "
               "sealed at 12:04:58 instead, after the root's expiry.",
               Sealing(expired_root_leaf).document(), bundles=["pki/expired-root.pem"]),
        reject("svid-expired", "chain.expired", "pristine-v1-json sealed by an SVID valid "
               "11:03-12:03, at 12:04:58.", Sealing(p.leaf(
                   "leaf-expired", nb="2025-06-01T11:03:00Z", na="2025-06-01T12:03:00Z"))
               .document()),
        reject("svid-not-yet-valid", "chain.not-yet-valid", "pristine-v1-json sealed by an "
               "SVID valid only from 12:10.", Sealing(p.leaf(
                   "leaf-future", nb="2025-06-01T12:10:00Z", na="2025-06-01T13:10:00Z"))
               .document()),
        accept("chain-p384-intermediate", "chain-with-intermediate with an intermediate CA "
               "whose key is P-384 and which signs the (P-256) SVID with ecdsa-with-SHA384; "
               "the root signs the intermediate with ecdsa-with-SHA256.",
               Sealing(p.via_p384_intermediate, intermediates=(p.p384_intermediate,))),
        accept("rsa-root", "pristine-v1-json sealed by a P-256 SVID that an RSA-2048 root "
               "signs with sha256WithRSAEncryption (bundle rsa-root.pem).",
               Sealing(p.via_rsa_root), bundles=["pki/rsa-root.pem"]),
    ]


def path_validation_cases(p: SealPki) -> list[Case]:
    """Section 9.2, steps 7 and 10: pathLenConstraint, URI name constraints, critical
    extensions that are not processed, and DER read strictly. Each differs from
    pristine-v1-json or chain-with-intermediate in the one property its note names."""
    from cryptography.x509.oid import ExtendedKeyUsageOID
    sid = p.spiffe_id()
    r0, r1 = p.root_path_length_zero, p.root_path_length_one
    via_r1 = p.constrained_intermediate("intermediate-under-pathlen-1", r1)
    via_r0 = p.constrained_intermediate("intermediate-under-pathlen-0", r0)

    def under(label: str, **knobs):
        inter = p.constrained_intermediate(label, **knobs)
        return Sealing(p.leaf("leaf-" + label, issuer=inter), intermediates=(inter,))

    critical_eku = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), True)
    critical_policies = (x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]), True)
    dns_constraint = (x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.org")],
                                           excluded_subtrees=None), True)
    # The leaf's basicConstraints (critical) with its BOOLEAN TRUE written 01 (BER) instead
    # of FF (DER), signed again so that nothing else is wrong.
    critical_true = bytes.fromhex("0603551d130101ff")
    ber_leaf = resigned(p.leaf("leaf-ber-boolean"), p.root,
                        lambda tbs: tbs.replace(critical_true, bytes.fromhex("0603551d13010101"), 1))
    # OBJECT IDENTIFIERs written with another tag (OCTET STRING, 04) around the same bytes:
    # the first key purpose (serverAuth) of the leaf's extendedKeyUsage, signed again; and
    # the leaf's outer signatureAlgorithm (ecdsa-with-SHA256), which no signature covers.
    server_auth = bytes.fromhex("06082b06010505070301")
    eku_leaf = resigned(p.leaf("leaf-key-purpose-octet-string"), p.root,
                        lambda tbs: _replace_once(tbs, server_auth, b"\x04" + server_auth[1:]))
    ecdsa_sha256 = bytes.fromhex("300a06082a8648ce3d040302")
    algorithm_leaf = p.leaf("leaf-signature-algorithm-octet-string")
    algorithm_der = algorithm_leaf.cert.public_bytes(serialization.Encoding.DER)
    tbs_end = algorithm_der.index(algorithm_leaf.cert.tbs_certificate_bytes) + len(
        algorithm_leaf.cert.tbs_certificate_bytes)
    if not algorithm_der.startswith(ecdsa_sha256, tbs_end):
        raise AssertionError("the leaf's signatureAlgorithm is not ecdsa-with-SHA256")
    algorithm_leaf = pki.Credential(_RawCertificate(
        algorithm_der[:tbs_end + 2] + b"\x04" + algorithm_der[tbs_end + 3:]), algorithm_leaf.key)
    return [
        accept("path-length-zero-root-signs-leaf", "pristine-v1-json under a root whose "
               "basicConstraints say pathLenConstraint 0 (bundle root-pathlen-0.pem): no "
               "intermediate, so it holds.",
               Sealing(p.leaf("leaf-under-pathlen-0", issuer=r0)),
               bundles=["pki/root-pathlen-0.pem"]),
        reject("path-length-zero-root-with-intermediate", "chain.path-length",
               "path-length-zero-root-signs-leaf with an intermediate between the root and "
               "the leaf: one intermediate below a CA that allows none.",
               Sealing(p.leaf("leaf-via-pathlen-0", issuer=via_r0), intermediates=(via_r0,))
               .document(), bundles=["pki/root-pathlen-0.pem"]),
        accept("path-length-one-root-with-intermediate", "chain-with-intermediate under a "
               "root with pathLenConstraint 1 (bundle root-pathlen-1.pem).",
               Sealing(p.leaf("leaf-via-pathlen-1", issuer=via_r1), intermediates=(via_r1,)),
               bundles=["pki/root-pathlen-1.pem"]),
        accept("name-constraints-permit-trust-domain", "chain-with-intermediate whose "
               "intermediate carries critical nameConstraints permitting the URI host "
               "example.org: the leaf's SPIFFE ID (and the intermediate's own) is inside.",
               under("intermediate-permits-example-org",
                     extra_extensions=[uri_constraints(permitted=["example.org"])])),
        reject("name-constraints-permit-other-domain", "chain.name-constraints",
               "name-constraints-permit-trust-domain permitting other.org instead.",
               under("intermediate-permits-other-org",
                     extra_extensions=[uri_constraints(permitted=["other.org"])]).document()),
        reject("name-constraints-dot-domain-excludes-itself", "chain.name-constraints",
               "name-constraints-permit-trust-domain permitting .example.org instead: a "
               "leading dot permits hosts below example.org, not example.org itself.",
               under("intermediate-permits-below-example-org",
                     extra_extensions=[uri_constraints(permitted=[".example.org"])])
               .document()),
        reject("name-constraints-exclude-trust-domain", "chain.name-constraints",
               "name-constraints-permit-trust-domain excluding example.org instead of "
               "permitting it.",
               under("intermediate-excludes-example-org",
                     extra_extensions=[uri_constraints(excluded=["example.org"])]).document()),
        reject("name-constraints-dns-form", "material.malformed",
               "name-constraints-permit-trust-domain with a DNS name subtree instead of a "
               "URI one: only URI name constraints are processed (step 7).",
               under("intermediate-dns-constraint",
                     extra_extensions=[dns_constraint]).document()),
        reject("svid-critical-extended-key-usage", "material.malformed", "pristine-v1-json "
               "sealed by a leaf whose extendedKeyUsage (clientAuth) is critical: extended "
               "key usage is not processed, so a critical one makes the leaf unusable.",
               Sealing(p.leaf("leaf-critical-eku", server_client_eku=False,
                              extra_extensions=[critical_eku])).document()),
        reject("intermediate-critical-certificate-policies", "material.malformed",
               "chain-with-intermediate whose intermediate has critical certificatePolicies "
               "(anyPolicy): not processed, so unusable.",
               under("intermediate-critical-policies",
                     extra_extensions=[critical_policies]).document()),
        reject("svid-ber-boolean", "material.malformed", "pristine-v1-json sealed by a leaf "
               "whose basicConstraints' critical flag is the BER BOOLEAN 01 instead of the "
               "DER FF, signed again by the root: certificates are read as strict DER.",
               Sealing(ber_leaf).document()),
        reject("svid-key-purpose-not-an-oid", "material.malformed", "pristine-v1-json sealed "
               "by a leaf whose extendedKeyUsage holds serverAuth as an OCTET STRING (tag 04) "
               "instead of an OBJECT IDENTIFIER, signed again by the root: not that "
               "extension's syntax.", Sealing(eku_leaf).document()),
        reject("svid-signature-algorithm-not-an-oid", "material.malformed", "pristine-v1-json "
               "sealed by a leaf whose outer signatureAlgorithm holds ecdsa-with-SHA256 as an "
               "OCTET STRING (tag 04) instead of an OBJECT IDENTIFIER; no signature covers "
               "that field, so only reading it strictly refuses it.",
               Sealing(algorithm_leaf).document()),
        accept("trust-domain-as-spiffe-id", "pristine-v1-json verified with the trust domain "
               "given as spiffe://example.org.", Sealing(p.good_leaf),
               trust_domain="spiffe://example.org"),
        invalid("trust-domain-with-path", "input.trust-domain", "pristine-v1-json verified "
                "with the trust domain given as " + sid + ", a workload's ID.",
                Sealing(p.good_leaf).document(), trust_domain=sid),
        accept("bundle-der", "pristine-v1-json verified against root.der: the root as one "
               "DER certificate.", Sealing(p.good_leaf), bundles=["pki/root.der"]),
        invalid("bundle-spiffe-duplicate-keys", "bundle.invalid", "pristine-bundle-spiffe "
                "with a second \"keys\" member holding another root: readers disagree on "
                "which counts.", Sealing(p.good_leaf).document(),
                bundles=["pki/bundle-duplicate-keys.spiffe.json"]),
    ]


def svid_cases(p: SealPki) -> list[Case]:
    sid = p.spiffe_id()
    u = pki.SVID_USAGE

    def sealed_by(label, **knobs):
        return Sealing(p.leaf(label, **knobs)).document()

    return [
        reject("svid-ca", "svid.ca", "pristine-v1-json sealed by a leaf with CA:true.",
               sealed_by("leaf-ca", is_ca=True)),
        reject("svid-two-uri-sans", "svid.uri-san", "pristine-v1-json sealed by a leaf with a "
               "second URI SAN.", sealed_by("leaf-two-uris",
                                           uris=[sid, "spiffe://example.org/ns/default/sa/x"])),
        reject("svid-no-uri-san", "svid.uri-san", "pristine-v1-json sealed by a leaf without "
               "URI SAN.", sealed_by("leaf-no-uri", uris=[])),
        reject("svid-no-digital-signature", "svid.key-usage", "pristine-v1-json sealed by a "
               "leaf whose key usage lacks digitalSignature.", sealed_by(
                   "leaf-no-ds", key_usage=pki.KeyUsageBits(key_encipherment=True,
                                                            key_agreement=True))),
        reject("svid-key-cert-sign", "svid.key-usage", "pristine-v1-json sealed by a leaf whose "
               "key usage adds keyCertSign.", sealed_by(
                   "leaf-kcs", key_usage=replace(u, key_cert_sign=True))),
        reject("svid-no-key-usage", "svid.key-usage", "pristine-v1-json sealed by a leaf "
               "without a key usage extension.", sealed_by("leaf-no-ku", key_usage=None)),
        reject("p384-leaf", "signature.algorithm", "pristine-v1-json sealed by a P-384 SVID.",
               sealed_by("leaf-p384", key_kind="p384")),
        reject("rsa-1024-leaf", "signature.algorithm", "pristine-v1-json sealed by an RSA-1024 "
               "SVID: RSA keys must have 2048 to 8192 bits.",
               sealed_by("leaf-rsa-1024", key_kind="rsa1024")),
        reject("svid-uri-not-spiffe-id", "svid.uri-san", "pristine-v1-json sealed by a leaf "
               "whose one URI SAN is " + sid + "/ (a trailing slash: an empty path segment, "
               "so not a valid SPIFFE ID).", sealed_by("leaf-uri-trailing-slash",
                                                       uris=[sid + "/"])),
        reject("svid-unknown-critical-extension", "material.malformed", "pristine-v1-json "
               "sealed by a leaf with one more extension, critical, of a type no verifier "
               f"understands (OID {UNKNOWN_EXTENSION_OID}, value NULL) (step 7).",
               sealed_by("leaf-unknown-critical", extra_extensions=[(x509.UnrecognizedExtension(
                   x509.ObjectIdentifier(UNKNOWN_EXTENSION_OID), b"\x05\x00"), True)])),
    ]


def identity_cases(p: SealPki) -> list[Case]:
    base = Sealing(p.good_leaf)
    other_meta = TaskRunMeta(name="build-other", uid=OTHER_UID)
    other = Sealing(p.other_taskrun_leaf, meta=other_meta)
    return [
        reject("svid-of-other-taskrun", "identity.mismatch", "pristine-v1-json's TaskRun "
               "carrying the seal that TaskRun default/build-other made with its own SVID.",
               base.document(other.entries())),
        reject("renamed-taskrun", "identity.mismatch", "pristine-v1-json with metadata.name "
               "build-xyz.", with_metadata(base.document(), name="build-xyz")),
        reject("other-namespace", "identity.mismatch", "pristine-v1-json with "
               "metadata.namespace prod.", with_metadata(base.document(), namespace="prod")),
        reject("wrong-trust-domain", "identity.trust-domain", "pristine-v1-json verified with "
               "--trust-domain other.org and the same bundle.", base.document(),
               trust_domain="other.org"),
        reject("namespace-not-a-path-segment", "identity.mismatch", "pristine-v1-json with "
               "metadata.namespace prod/../default: it cannot form one SPIFFE ID path segment "
               "(a verifier that built the ID as text and normalized it would find the "
               "SVID's own ID).", with_metadata(base.document(), namespace="prod/../default")),
        reject("namespace-empty", "identity.mismatch", "pristine-v1-json with "
               "metadata.namespace \"\": present, so not defaulted to 'default', and an "
               "empty path segment.", with_metadata(base.document(), namespace="")),
    ]


def invalid_cases(p: SealPki) -> list[Case]:
    base = Sealing(p.good_leaf)
    e = base.entries()
    text = json.dumps(base.document(), indent=2) + "\n"
    digest = json.dumps(BASE["IMAGE_DIGEST"])
    forged = json.dumps("sha256:" + "0" * 64)
    needle = f'"value": {digest}\n'
    if text.count(needle) != 1:
        raise AssertionError("IMAGE_DIGEST's value is not unique in the document")
    line_start = text.rindex("\n", 0, text.index(needle)) + 1
    indent = text[line_start:text.index(needle)]
    duplicated = text.replace(needle, f'"value": {forged},\n{indent}{needle}')
    return [
        invalid("duplicate-json-key", "input.syntax", "pristine-v1-json's text with IMAGE_DIGEST "
                "holding two \"value\" members, a forged one first and the sealed one second: "
                "parsers disagree on which counts, so the document is refused.", duplicated),
        invalid("duplicate-yaml-key", "input.syntax", "pristine-v1-yaml's text with IMAGE_DIGEST "
                "holding two value keys, a forged one first and the sealed one second.",
                duplicate_yaml_key(base), ext="yaml"),
        accept("yaml-flow-nested-16", "pristine-v1-yaml's text with a member x holding flow "
               "sequences nested 16 deep, the most YAML flow collections may nest "
               "(section 9.1.2).", base, content=yaml_flow_nested(base, 16), ext="yaml"),
        invalid("yaml-flow-nested-17", "input.syntax", "yaml-flow-nested-16 with one more "
                "level of flow: libyaml's scanner spends time per token on each level.",
                yaml_flow_nested(base, 17), ext="yaml"),
        invalid("empty-taskrun", "input.empty", "An empty TaskRun file (0 bytes).", ""),
        invalid("bundle-garbage", "bundle.invalid", "pristine-v1-json verified against a "
                "bundle file that is neither PEM nor a SPIFFE bundle.", base.document(),
                bundles=["pki/garbage.pem"]),
    ]


def status_cases(p: SealPki) -> list[Case]:
    """A status that cannot be read is the status writer's doing: rejected (section 4),
    never invalid input."""
    base = Sealing(p.good_leaf)
    e = base.entries()
    malformed = "status.malformed"
    return [
        reject("duplicate-result-name", malformed, "pristine-v1-json with a second "
               "summary entry (same value).", base.document(
                   add(e, {"name": "summary", "type": "string", "value": BASE["summary"]}))),
        reject("start-time-not-rfc3339", malformed, "pristine-v1-json with "
               "status.startTime 2025-06-01T12:00:00, without a time zone: not RFC 3339.",
               with_status(base.document(), startTime="2025-06-01T12:00:00")),
        reject("yaml-plain-number-value", malformed, "pristine-v1-yaml's text with "
               "summary's value written as the plain scalar 1e3: a float in YAML 1.2 (a "
               "string in YAML 1.1), and a result value must be a string, an array or an "
               "object.", yaml_text(base.document()).replace(
                   "value: built 2 images, pushed 1\n", "value: 1e3\n"), ext="yaml"),
        reject("result-value-null", malformed, "pristine-v1-json with summary's value null.",
               base.document([{**x, "value": None} if x["name"] == "summary" else x
                              for x in e])),
        reject("result-without-name", malformed, "pristine-v1-json with summary's entry "
               "lacking its name.", base.document([{k: v for k, v in x.items() if k != "name"}
                                                  if x["name"] == "summary" else x
                                                  for x in e])),
        reject("result-entry-not-an-object", malformed, "pristine-v1-json with a results "
               "entry that is the array [\"summary\", \"x\"].",
               base.document(copy.deepcopy(e) + [["summary", "x"]])),
        reject("results-not-a-list", malformed, "pristine-v1-json with status.results an "
               "object mapping each name to its value.",
               with_status(base.document(), results={x["name"]: x["value"] for x in e})),
        reject("status-not-an-object", malformed, "pristine-v1-json with status the string "
               "\"done\".", {**base.document(), "status": "done"}),
        reject("completion-time-a-number", malformed, "pristine-v1-json with "
               "status.completionTime the number 1748779500.",
               with_status(base.document(), completionTime=1748779500)),
    ]


def profile_cases(p: SealPki) -> list[Case]:
    """How the verifier reads its inputs (section 9.1): cases where readers often differ."""
    base = Sealing(p.good_leaf)
    plain = {"ANSWER": "yes", "SWITCH": "off", "PADDED": "0123", "CLOCK": "12:30",
             "GROUPED": "1_000", "EQUALS": "="}
    plain_scalars = Sealing(p.good_leaf, results={**BASE, **plain})
    plain_text = yaml_text(plain_scalars.document())
    for value in plain.values():
        quoted = f"value: '{value}'\n"
        if plain_text.count(quoted) != 1:
            raise AssertionError(f"{value!r} is not quoted once in the YAML rendering")
        plain_text = plain_text.replace(quoted, f"value: {value}\n")
    seal_absent = base.document(drop(base.entries(), sl.RESULT_NAME))
    return [
        accept("run-times-offset-and-fraction", "pristine-v1-json with status.startTime "
               "2025-06-01T14:00:00.25+02:00 (12:00:00.25 UTC) and completionTime "
               "2025-06-01t12:05:00.5z: offsets, fractions and lowercase t and z are RFC 3339.",
               base, content=with_status(base.document(),
                                         startTime="2025-06-01T14:00:00.25+02:00",
                                         completionTime="2025-06-01t12:05:00.5z")),
        accept("namespace-null", "pristine-v1-json with metadata.namespace null: read as "
               "absent, so 'default'.", base,
               content=with_metadata(base.document(), namespace=NULL)),
        accept("yaml-plain-scalars-are-strings", "pristine-v1-yaml plus results whose values "
               "are written as plain YAML scalars: yes, off, 0123, 12:30, 1_000 and =. Each "
               "is a string in the YAML 1.2 core schema the verifier reads with (YAML 1.1 "
               "would read booleans, numbers and a value key).", plain_scalars,
               content=plain_text, ext="yaml"),
        accept("bundle-pem-explanatory-text", "pristine-v1-json verified against a PEM "
               "bundle with text before, between and after its blocks (other-root.pem, then "
               "root.pem): text outside the blocks is ignored, as RFC 7468 allows.", base,
               bundles=["pki/root-with-text.pem"]),
        reject("seal-absent-require-format", "material.absent", "seal-absent verified with "
               "--require-format seal: no material at all is reported before the format "
               "requirement.", seal_absent, args=["--require-format", "seal"]),
    ] + reading_cases(p)


def reading_cases(p: SealPki) -> list[Case]:
    """Section 9.1.2-9.1.3: text that starts like JSON is JSON only, a byte order mark is
    dropped, aliases and merge keys are refused, a block scalar needs a final line break
    when nothing but spaces follows it. Each differs from pristine-v1-json or
    pristine-v1-yaml in the one property its note names."""
    base = Sealing(p.good_leaf)
    json_text = json.dumps(base.document(), indent=2) + "\n"
    text_yaml = yaml_text(base.document())
    summary = json.dumps(BASE["summary"])
    if json_text.count(summary) != 1 or "metadata:\n" not in text_yaml:
        raise AssertionError("the pristine renderings changed shape")
    raw_break = json_text.replace(summary, summary.replace(", ", ",\n    "))
    huge = json_text.replace('"metadata": {', '"metadata": {\n    "generation": 1e400,', 1)
    merged = text_yaml.replace("metadata:\n", "metadata:\n  <<: {labels: {team: a}}\n", 1)
    aliased = text_yaml.replace("metadata:\n", "metadata:\n  labels: &l {team: a}\n"
                                "  annotations: *l\n", 1)
    anchored_twice = text_yaml.replace(
        "metadata:\n", "metadata:\n  annotations: &l {team: a}\n", 1).replace(
        "\nspec:\n", "\nspec: &l\n", 1)
    return [
        accept("bom-before-block-yaml", "pristine-v1-yaml with a byte order mark before it: "
               "dropped, as YAML allows.", base, content="\ufeff" + text_yaml, ext="yaml"),
        accept("bom-twice-before-block-yaml", "pristine-v1-yaml with two byte order marks "
               "before it: section 9.1.2 drops the first, libyaml the second as the "
               "stream's (section 9.1.3).", base, content="\ufeff\ufeff" + text_yaml,
               ext="yaml"),
        invalid("bom-thrice-before-block-yaml", "input.syntax", "pristine-v1-yaml with three "
                "byte order marks before it: the third, at the start of the first line, "
                "takes a column as libyaml reads it, so the first key is out of line with "
                "the next (section 9.1.3).", "\ufeff\ufeff\ufeff" + text_yaml, ext="yaml"),
        accept("bom-before-yaml-directive", "pristine-v1-yaml with a byte order mark and a "
               "%YAML 1.1 directive before it.", base,
               content="\ufeff%YAML 1.1\n---\n" + text_yaml, ext="yaml"),
        invalid("json-raw-line-break-in-string", "input.syntax", "pristine-v1-json's text "
                "with a raw line break inside summary's value: not JSON, and a YAML reader "
                "would fold it into the signed value, so the text is refused, not read as "
                "YAML.", raw_break),
        invalid("json-number-beyond-binary64", "input.syntax", "pristine-v1-json with "
                "metadata.generation 1e400, a number beyond binary64: JSON readers disagree "
                "on it (infinity, an error), so the text is refused, not read as YAML.",
                huge),
        invalid("yaml-block-scalar-at-the-end", "input.syntax", "pristine-v1-yaml with a "
                "last member x whose literal block scalar runs to the end of the text, "
                "which has no final line break (section 9.1.3).",
                text_yaml + "x: |\n  y", ext="yaml"),
        invalid("yaml-block-scalar-then-spaces", "input.syntax", "pristine-v1-yaml with a "
                "last member x holding a folded block scalar whose header ends with CR, "
                "then a line of one space and no final line break: nothing but spaces "
                "follows the scalar (section 9.1.3).", text_yaml + "x: >\r ", ext="yaml"),
        accept("yaml-block-scalar-then-comment", "pristine-v1-yaml with a last member x "
               "holding a literal block scalar, then a comment line and no final line "
               "break: more than spaces follows the scalar (section 9.1.3).", base,
               content=text_yaml + "x: |\n  y\n# end", ext="yaml"),
        invalid("yaml-merge-key", "input.syntax", "pristine-v1-yaml with a merge key (<<) in "
                "metadata.", merged, ext="yaml"),
        accept("yaml-anchor-given-twice", "pristine-v1-yaml with metadata.annotations and "
               "spec both anchored &l: an anchor changes nothing, so a name given twice is "
               "no error (section 9.1.3).", base, content=anchored_twice,
               ext="yaml"),
        invalid("yaml-alias", "input.syntax", "pristine-v1-yaml with metadata.annotations an "
                "alias of metadata.labels: aliases are refused, never expanded.", aliased,
                ext="yaml"),
    ]


def all_cases(p: SealPki) -> list[Case]:
    cases = [c for group in (pristine_cases, value_cases, tamper_cases, material_cases,
                             run_cases, retry_cases, chain_cases, path_validation_cases, svid_cases,
                             identity_cases, invalid_cases, status_cases, profile_cases)
             for c in group(p)]
    names = [c.name for c in cases]
    if len(names) != len(set(names)):
        raise ValueError("duplicate case names")
    return cases


def pki_files(p: SealPki) -> dict[str, str]:
    return {
        "pki/root.pem": p.root.pem(),
        "pki/other-root.pem": p.other_root.pem(),
        "pki/expired-root.pem": p.expired_root.pem(),
        "pki/intermediate.pem": p.intermediate.pem(),
        "pki/impostor-intermediate.pem": p.impostor_intermediate.pem(),
        "pki/bundle.spiffe.json": pki.spiffe_bundle([p.root.cert]),
        "pki/rsa-root.pem": p.rsa_root.pem(),
        "pki/root-with-text.pem": ("Trust bundle of example.org, annotated by hand.\n\n"
                                   "The previous root:\n" + p.other_root.pem() +
                                   "\nThe current root:\n" + p.root.pem() + "\nEnd.\n"),
        "pki/garbage.pem": "This is not a trust bundle: no PEM block, no JSON.\n",
        "pki/root-pathlen-0.pem": p.root_path_length_zero.pem(),
        "pki/root-pathlen-1.pem": p.root_path_length_one.pem(),
        "pki/bundle-duplicate-keys.spiffe.json": pki.spiffe_bundle([p.root.cert]).replace(
            '"keys": [', '"keys": ' + json.dumps(json.loads(pki.spiffe_bundle(
                [p.other_root.cert]))["keys"]) + ',\n    "keys": [', 1),
    }


# ---------------------------------------------------------------- writing

def manifest_entry(case: Case) -> dict:
    entry = {"name": case.name, "taskrun": case.file_name(), "bundles": case.bundles,
             "trust_domain": case.trust_domain, "expect": case.expect, "reason": case.reason,
             "note": case.note}
    if case.args:
        entry["args"] = case.args
    return entry


def remove_stale(out: Path, keep: set[str]) -> None:
    """Drop vectors of cases that no longer exist, touching only our own file kinds."""
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if (path.is_file() and path.suffix in {".json", ".yaml", ".pem", ".pae", ".der"}
                and rel not in keep):
            path.unlink()


def generate(out: Path) -> dict:
    p = SealPki()
    files: dict[str, str] = dict(pki_files(p))
    cases = all_cases(p)
    for case in cases:
        files[case.file_name()] = case.render()
        if case.expect == "accept":
            files[f"messages/{case.name}.pae"] = case.message.decode("utf-8")
    manifest = {"cases": [manifest_entry(c) for c in cases]}
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    for rel, text in files.items():
        if "PRIVATE KEY" in text:
            raise AssertionError(f"refusing to write key material into {rel}")
        gen_fixtures.write_atomic(out / rel, text)
    from cryptography.hazmat.primitives import serialization
    binary = {"pki/root.der": p.root.cert.public_bytes(serialization.Encoding.DER)}
    for rel, data in binary.items():
        tmp = out / (rel + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out / rel)
    remove_stale(out, set(files) | set(binary))
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    manifest = generate(args.out)
    print(f"wrote {len(manifest['cases'])} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
