#!/usr/bin/env python3
"""Write the legacy-format verifier fixtures into tests/fixtures/legacy/.

Every case is a TaskRun as the API server would return it, the trust bundles to pass to the
CLI, and the expected outcome: accept (exit 0), reject (exit 1, with a reason code) or
invalid (exit 2). Each bad case differs from a valid one in a single property; its note
names the valid case it derives from. Output is deterministic, so regenerating gives
identical files. No private key is ever written.

Usage: python3 tests/python/gen_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tsfixtures import pki  # noqa: E402
from tsfixtures.legacy import (MANIFEST, SIG, SVID, Result, TaskRunMeta,  # noqa: E402
                               sign_text, signing_material, status_results, taskrun_document)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "legacy"
V1, V1BETA1 = "tekton.dev/v1", "tekton.dev/v1beta1"
ROOT_BUNDLE = "pki/root.pem"

# Times: the TaskRun runs 12:00-12:05 (TaskRunMeta's defaults); the good SVID lives
# 11:30-12:30 (SPIRE's 1 h TTL, fetched before the run and cached by the agent).
LEAF_NB, LEAF_NA = "2025-06-01T11:30:00Z", "2025-06-01T12:30:00Z"

BASELINE = [
    Result("IMAGE_DIGEST", "string",
           "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    Result("tags", "array", '["v1","latest"]'),
    Result("info", "object", '{"url":"https://x","commit":"abc"}'),
    Result("summary", "string", "built 2 images, pushed 1"),
]


# ---------------------------------------------------------------- PKI

class Pki:
    """The certificates of all cases, built once each on first use."""

    def spiffe_id(self, name="build-abc", namespace="default"):
        return pki.taskrun_spiffe_id(namespace, name)

    @cached_property
    def root(self):
        return pki.root_ca("root", "2025-01-01T00:00:00Z", "2035-01-01T00:00:00Z")

    @cached_property
    def other_root(self):
        # Another SPIRE deployment claiming the same trust domain: same shape, other key.
        return pki.root_ca("other-root", "2025-01-01T00:00:00Z", "2035-01-01T00:00:00Z")

    @cached_property
    def short_lived_root(self):
        # SPIRE's default 24 h CA: expired long before any audit, but after the completion.
        return pki.root_ca("short-lived-root", "2025-05-31T12:10:00Z", "2025-06-01T12:10:00Z")

    @cached_property
    def expired_root(self):
        # Expired at 12:02, between the TaskRun's start and its completion.
        return pki.root_ca("expired-root", "2025-05-31T12:02:00Z", "2025-06-01T12:02:00Z")

    @cached_property
    def intermediate(self):
        return pki.intermediate_ca("intermediate", self.root,
                                   "2025-05-01T00:00:00Z", "2026-05-01T00:00:00Z")

    @cached_property
    def intermediate_not_ca(self):
        return pki.intermediate_ca("intermediate-not-ca", self.root,
                                   "2025-05-01T00:00:00Z", "2026-05-01T00:00:00Z", is_ca=False)

    def leaf(self, label, issuer=None, spiffe_id=None, nb=LEAF_NB, na=LEAF_NA, **knobs):
        """An SVID issued by the root unless told otherwise; knobs make bad variants."""
        issuer = self.root if issuer is None else issuer
        return pki.svid(label, issuer, spiffe_id or self.spiffe_id(), nb, na, **knobs)

    @cached_property
    def good_leaf(self):
        return self.leaf("leaf")


# ---------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    """A TaskRun whose results were signed in its pod; bad cases mutate its status list."""
    leaf: pki.Credential
    results: list[Result] = field(default_factory=lambda: list(BASELINE))
    chain: tuple = ()
    meta: TaskRunMeta = field(default_factory=TaskRunMeta)
    api: str = V1

    def entries(self) -> list[dict]:
        return status_results(self.results, signing_material(self.results, self.leaf, self.chain))

    def document(self, entries: list[dict] | None = None) -> dict:
        return taskrun_document(self.api, self.meta, self.results,
                                self.entries() if entries is None else entries)


def find(entries: list[dict], name: str) -> dict:
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


def drop(entries, *names):
    for name in names:
        find(entries, name)  # fail loudly on a typo rather than silently drop nothing
    return [e for e in copy.deepcopy(entries) if e["name"] not in names]


def add(entries, name, value, typ="string"):
    return copy.deepcopy(entries) + [{"name": name, "type": typ, "value": value}]


def swap(entries, a, b):
    out = copy.deepcopy(entries)
    ea, eb = find(out, a), find(out, b)
    ea["value"], eb["value"] = eb["value"], ea["value"]
    return out


# ---------------------------------------------------------------- cases

class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the SVID PEM) as literal blocks, as kubectl does."""


def _represent_str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


@dataclass
class Case:
    name: str
    expect: str  # accept | reject | invalid
    reason: str | None
    note: str
    content: dict | str  # a TaskRun document, or raw file text for unreadable inputs
    ext: str = "json"
    bundles: list[str] = field(default_factory=lambda: [ROOT_BUNDLE])
    trust_domain: str = pki.TRUST_DOMAIN

    def file_name(self) -> str:
        return f"{self.name}.{self.ext}"

    def render(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.ext == "yaml":
            return yaml.dump(self.content, Dumper=_BlockDumper, sort_keys=False,
                             default_flow_style=False, width=1000)
        return json.dumps(self.content, indent=2) + "\n"


def accept(name, note, content, **kw):
    return Case(name, "accept", None, note, content, **kw)


def reject(name, reason, note, content, **kw):
    return Case(name, "reject", reason, note, content, **kw)


def invalid(name, reason, note, content, **kw):
    return Case(name, "invalid", reason, note, content, **kw)


def format_cases(p: Pki) -> list[Case]:
    base = Scenario(p.good_leaf)
    doc = base.document()
    rsa = Scenario(p.leaf("leaf-rsa", key_kind="rsa2048"))
    hello = Scenario(p.good_leaf, results=BASELINE + [Result("GREETING", "string", '"hello"')])
    listy = Scenario(p.good_leaf, results=BASELINE + [Result("LIST", "string", '["x","y"]')])
    return [
        accept("pristine-v1-json", "Baseline: tekton.dev/v1 status.results, as Tekton signs it.",
               doc),
        accept("pristine-v1-yaml", "pristine-v1-json rendered as YAML.", doc, ext="yaml"),
        accept("pristine-v1beta1-json", "pristine-v1-json as tekton.dev/v1beta1 "
               "(status.taskResults).", Scenario(p.good_leaf, api=V1BETA1).document()),
        accept("pristine-bundle-spiffe", "pristine-v1-json with the root given as a SPIFFE "
               "bundle (JWKS, spire-server bundle show -format spiffe).", doc,
               bundles=["pki/bundle.spiffe.json"]),
        accept("bundle-spiffe-with-jwt-key", "pristine-bundle-spiffe, bundle also holding a "
               "jwt-svid key as SPIRE's real output does; it must be ignored.", doc,
               bundles=["pki/bundle-with-jwt.spiffe.json"]),
        accept("bundle-rotation", "pristine-v1-json with two bundles, only the second trusts "
               "the chain (CA rotation).", doc, bundles=["pki/other-root.pem", ROOT_BUNDLE]),
        accept("rsa-2048-leaf", "pristine-v1-json signed by an RSA-2048 SVID "
               "(PKCS#1 v1.5, SHA-256).", rsa.document()),
        reject("p384-leaf", "signature.algorithm", "pristine-v1-json signed by a P-384 SVID "
               "(ECDSA over SHA-256); only P-256 and RSA are supported.",
               Scenario(p.leaf("leaf-p384", key_kind="p384")).document()),
        accept("json-string-result", "pristine-v1-json plus GREETING whose file held the JSON "
               'string "hello": signed unquoted (hello), while the status keeps the raw text '
               '"hello" with quotes because the result is declared string.', hello.document()),
        accept("json-string-unquoted-in-status", "json-string-result with the status showing "
               "hello unquoted (how an undeclared-type result is reported); same signed string.",
               hello.document(set_value(hello.entries(), "GREETING", "hello"))),
        accept("string-typed-array-text", 'pristine-v1-json plus LIST, declared string, file '
               '["x","y"]: the status keeps the text, Tekton signs it as x,y.', listy.document()),
        accept("no-results", "A TaskRun with no results: SVID, an empty RESULT_MANIFEST and its "
               "signature only.", Scenario(p.good_leaf, results=[]).document()),
    ]


def tamper_cases(p: Pki) -> list[Case]:
    base = Scenario(p.good_leaf)
    e = base.entries()
    comma = Scenario(p.good_leaf, results=[BASELINE[0], Result("tags", "array", '["a,b"]'),
                                           *BASELINE[2:]])
    ce = comma.entries()
    impostor_sig = sign_text("v1,latest", pki.ec_key("attacker"))
    return [
        reject("tampered-string", "signature.invalid", "pristine-v1-json with IMAGE_DIGEST "
               "rewritten in the status.", base.document(set_value(
                   e, "IMAGE_DIGEST", "sha256:" + "0" * 64))),
        reject("tampered-array", "signature.invalid", "pristine-v1-json with tags rewritten "
               'to ["v1","evil"].', base.document(set_value(e, "tags", ["v1", "evil"]))),
        reject("tampered-object", "signature.invalid", "pristine-v1-json with info.commit "
               "rewritten to def.", base.document(set_value(
                   e, "info", {"commit": "def", "url": "https://x"}))),
        reject("signature-by-other-key", "signature.invalid", "pristine-v1-json with tags.sig "
               "replaced by a well-formed signature of the same value by another key.",
               base.document(set_value(e, "tags.sig", impostor_sig))),
        accept("swapped-results", "pristine-v1-json with IMAGE_DIGEST and summary swapping "
               "values and signatures. Known weakness: a legacy signature does not bind the "
               "result name.", base.document(swap(swap(e, "IMAGE_DIGEST", "summary"),
                                                  "IMAGE_DIGEST.sig", "summary.sig"))),
        accept("pristine-comma-array", 'pristine-v1-json with tags signed as ["a,b"].',
               comma.document()),
        accept("comma-ambiguity", 'pristine-comma-array with the status rewritten to '
               '["a","b"]. Known weakness: the comma join is ambiguous (both sign a,b).',
               comma.document(set_value(ce, "tags", ["a", "b"]))),
    ]


def material_cases(p: Pki) -> list[Case]:
    base = Scenario(p.good_leaf)
    e = base.entries()
    signed_names = [r.name for r in BASELINE]
    bad_pem = ("-----BEGIN CERTIFICATE-----\nZ2FyYmFnZSwgbm90IGEgY2VydGlmaWNhdGU=\n"
               "-----END CERTIFICATE-----\n")
    return [
        reject("sig-dropped", "results.unsigned", "pristine-v1-json without tags.sig.",
               base.document(drop(e, "tags" + SIG))),
        reject("result-dropped", "results.missing", "pristine-v1-json without tags and "
               "tags.sig; RESULT_MANIFEST still names tags.", base.document(
                   drop(e, "tags", "tags" + SIG))),
        reject("result-extra", "results.unsigned", "pristine-v1-json plus a result EXTRA that "
               "is in neither the manifest nor signed.", base.document(add(e, "EXTRA", "x"))),
        reject("stray-signature", "results.stray-signature", "pristine-v1-json plus ghost.sig "
               "(a well-formed signature) with no result ghost.", base.document(
                   add(e, "ghost" + SIG, sign_text("x", p.good_leaf.key)))),
        reject("svid-dropped", "material.missing", "pristine-v1-json without SVID.",
               base.document(drop(e, SVID))),
        reject("manifest-dropped", "material.missing", "pristine-v1-json without "
               "RESULT_MANIFEST.", base.document(drop(e, MANIFEST))),
        reject("manifest-sig-dropped", "material.missing", "pristine-v1-json without "
               "RESULT_MANIFEST.sig.", base.document(drop(e, MANIFEST + SIG))),
        reject("material-absent", "material.absent", "pristine-v1-json with every piece of "
               "signature material removed (an unsigned TaskRun).", base.document(
                   drop(e, SVID, MANIFEST, MANIFEST + SIG, *(n + SIG for n in signed_names)))),
        reject("sig-garbage-base64", "material.malformed", "pristine-v1-json with tags.sig "
               "not valid base64.", base.document(set_value(e, "tags.sig", "!!not*base64!!"))),
        reject("svid-garbage-pem", "material.malformed", "pristine-v1-json with SVID a PEM "
               "block whose content is not a certificate.", base.document(
                   set_value(e, SVID, bad_pem))),
        reject("svid-not-pem", "material.malformed", "pristine-v1-json with SVID plain text.",
               base.document(set_value(e, SVID, "not a certificate"))),
        reject("manifest-name-dropped", "signature.invalid", "pristine-v1-json with "
               "RESULT_MANIFEST rewritten without info (status keeps info and info.sig): "
               "RESULT_MANIFEST.sig no longer verifies.", base.document(
                   set_value(e, MANIFEST, "IMAGE_DIGEST,tags,summary"))),
        reject("manifest-reordered", "signature.invalid", "pristine-v1-json with "
               "RESULT_MANIFEST's names reordered: the signed string is exact.",
               base.document(set_value(e, MANIFEST, "tags,IMAGE_DIGEST,info,summary"))),
    ]


def identity_cases(p: Pki) -> list[Case]:
    base = Scenario(p.good_leaf)
    other = p.leaf("leaf-build-other", spiffe_id=p.spiffe_id(name="build-other"))
    renamed = Scenario(p.good_leaf, meta=TaskRunMeta(name="build-xyz"))
    moved = Scenario(p.good_leaf, meta=TaskRunMeta(namespace="prod"))
    return [
        reject("renamed-taskrun", "identity.mismatch", "pristine-v1-json with metadata.name "
               "build-xyz (SVID names build-abc).", renamed.document()),
        reject("other-namespace", "identity.mismatch", "pristine-v1-json with "
               "metadata.namespace prod.", moved.document()),
        reject("svid-of-other-taskrun", "identity.mismatch", "pristine-v1-json signed "
               "correctly by the SVID of TaskRun default/build-other.",
               Scenario(other).document()),
        reject("wrong-trust-domain", "identity.trust-domain", "pristine-v1-json verified with "
               "--trust-domain other.org and the same bundle.", base.document(),
               trust_domain="other.org"),
    ]


def chain_cases(p: Pki) -> list[Case]:
    via_int = p.leaf("leaf-via-intermediate", issuer=p.intermediate)
    via_bad = p.leaf("leaf-via-intermediate-not-ca", issuer=p.intermediate_not_ca)
    doc = Scenario(p.good_leaf).document()
    return [
        reject("untrusted-bundle", "chain.untrusted", "pristine-v1-json verified against "
               "other-root.pem only.", doc, bundles=["pki/other-root.pem"]),
        reject("self-signed-leaf", "chain.untrusted", "pristine-v1-json signed by a "
               "self-signed SVID.", Scenario(pki.svid("leaf-self-signed", None, p.spiffe_id(),
                                                      LEAF_NB, LEAF_NA)).document()),
        accept("chain-with-intermediate", "pristine-v1-json signed by an SVID issued by an "
               "intermediate; SVID holds leaf then intermediate (this project's extension: "
               "Tekton emits the leaf only).",
               Scenario(via_int, chain=(p.intermediate,)).document()),
        reject("chain-missing-intermediate", "chain.untrusted", "chain-with-intermediate with "
               "the leaf alone in SVID, as Tekton emits it.", Scenario(via_int).document()),
        reject("intermediate-not-ca", "chain.issuer-not-ca", "chain-with-intermediate whose "
               "intermediate lacks CA:true.",
               Scenario(via_bad, chain=(p.intermediate_not_ca,)).document()),
        accept("root-expired-after-completion", "pristine-v1-json under a 24 h root that "
               "expired at 12:10, after the 12:05 completion: validity is judged then.",
               Scenario(p.leaf("leaf-short-lived-root", issuer=p.short_lived_root,
                               na="2025-06-01T12:10:00Z")).document(),
               bundles=["pki/short-lived-root.pem"]),
        reject("root-expired-before-completion", "chain.expired", "pristine-v1-json under a "
               "root that expired at 12:02, before the 12:05 completion.",
               Scenario(p.leaf("leaf-expired-root", issuer=p.expired_root)).document(),
               bundles=["pki/expired-root.pem"]),
        reject("svid-expired", "chain.expired", "pristine-v1-json signed by an SVID valid "
               "11:03-12:03, before the 12:05 completion.",
               Scenario(p.leaf("leaf-expired", nb="2025-06-01T11:03:00Z",
                               na="2025-06-01T12:03:00Z")).document()),
        reject("svid-not-yet-valid", "chain.not-yet-valid", "pristine-v1-json signed by an "
               "SVID valid only from 12:10.",
               Scenario(p.leaf("leaf-future", nb="2025-06-01T12:10:00Z",
                               na="2025-06-01T13:10:00Z")).document()),
    ]


def svid_profile_cases(p: Pki) -> list[Case]:
    sid = p.spiffe_id()
    u = pki.SVID_USAGE

    def signed_by(label, **knobs):
        return Scenario(p.leaf(label, **knobs)).document()

    return [
        reject("svid-ca", "svid.ca", "pristine-v1-json signed by a leaf with CA:true.",
               signed_by("leaf-ca", is_ca=True)),
        reject("svid-two-uri-sans", "svid.uri-san", "pristine-v1-json signed by a leaf with a "
               "second URI SAN.", signed_by("leaf-two-uris",
                                           uris=[sid, "spiffe://example.org/ns/default/sa/x"])),
        reject("svid-no-uri-san", "svid.uri-san", "pristine-v1-json signed by a leaf without "
               "URI SAN.", signed_by("leaf-no-uri", uris=[])),
        reject("svid-no-digital-signature", "svid.key-usage", "pristine-v1-json signed by a "
               "leaf whose key usage lacks digitalSignature.", signed_by(
                   "leaf-no-ds", key_usage=pki.KeyUsageBits(key_encipherment=True,
                                                            key_agreement=True))),
        reject("svid-key-cert-sign", "svid.key-usage", "pristine-v1-json signed by a leaf whose "
               "key usage adds keyCertSign.", signed_by(
                   "leaf-kcs", key_usage=replace(u, key_cert_sign=True))),
        reject("svid-crl-sign", "svid.key-usage", "pristine-v1-json signed by a leaf whose key "
               "usage adds cRLSign.", signed_by(
                   "leaf-crl", key_usage=replace(u, crl_sign=True))),
        reject("svid-no-key-usage", "svid.key-usage", "pristine-v1-json signed by a leaf "
               "without a key usage extension (X.509-SVIDs must carry one).",
               signed_by("leaf-no-ku", key_usage=None)),
    ]


def time_cases(p: Pki) -> list[Case]:
    early = Scenario(p.good_leaf, meta=TaskRunMeta(completion="2025-06-01T11:55:00Z"))
    running = Scenario(p.good_leaf, meta=TaskRunMeta(completion=None))
    return [
        reject("completion-before-start", "taskrun.time-order", "pristine-v1-json with "
               "completionTime 11:55, before startTime 12:00.", early.document()),
        reject("no-completion-time", "taskrun.not-complete", "pristine-v1-json without "
               "status.completionTime.", running.document()),
    ]


def invalid_cases(p: Pki) -> list[Case]:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "build-abc-pod", "namespace": "default"},
           "spec": {"containers": [{"name": "step-build", "image": "busybox"}]}}
    doc = Scenario(p.good_leaf).document()
    return [
        invalid("input-empty", "input.empty", "An empty file.", ""),
        invalid("input-syntax", "input.syntax", "Truncated JSON.", '{"a":'),
        invalid("input-yaml-syntax", "input.syntax", "Broken YAML (unclosed flow sequence).",
                "apiVersion: tekton.dev/v1\nkind: [TaskRun\n", ext="yaml"),
        invalid("input-json-array", "input.not-taskrun", "A JSON array, not an object.",
                json.dumps([{"apiVersion": V1, "kind": "TaskRun"}]) + "\n"),
        invalid("input-pod", "input.not-taskrun", "A Pod object.",
                json.dumps(pod, indent=2) + "\n"),
        invalid("bundle-garbage", "bundle.invalid", "pristine-v1-json with a bundle file of "
                "garbage.", doc, bundles=["pki/garbage.pem"]),
    ]


def all_cases(p: Pki) -> list[Case]:
    cases = [c for group in (format_cases, tamper_cases, material_cases, identity_cases,
                             chain_cases, svid_profile_cases, time_cases, invalid_cases)
             for c in group(p)]
    names = [c.name for c in cases]
    if len(names) != len(set(names)):
        raise ValueError("duplicate case names")
    return cases


def pki_files(p: Pki) -> dict[str, str]:
    return {
        "pki/root.pem": p.root.pem(),
        "pki/other-root.pem": p.other_root.pem(),
        "pki/short-lived-root.pem": p.short_lived_root.pem(),
        "pki/expired-root.pem": p.expired_root.pem(),
        "pki/bundle.spiffe.json": pki.spiffe_bundle([p.root.cert]),
        "pki/bundle-with-jwt.spiffe.json": pki.spiffe_bundle(
            [p.root.cert], sequence=3, jwt_keys={"jwt-kid-1": pki.ec_key("jwt-1").public_key()}),
        "pki/garbage.pem": "this is not a trust bundle\n",
    }


# ---------------------------------------------------------------- writing

def write_atomic(path: Path, text: str) -> None:
    """Readers never see a half-written fixture: write a sibling temp file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would be committed as is
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def manifest_entry(case: Case) -> dict:
    return {"name": case.name, "taskrun": case.file_name(), "bundles": case.bundles,
            "trust_domain": case.trust_domain, "expect": case.expect, "reason": case.reason,
            "note": case.note}


def remove_stale(out: Path, keep: set[str]) -> None:
    """Drop fixtures of cases that no longer exist, touching only our own file kinds."""
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and path.suffix in {".json", ".yaml", ".pem"} and rel not in keep:
            path.unlink()


def generate(out: Path) -> dict:
    p = Pki()
    files = pki_files(p)
    cases = all_cases(p)
    for case in cases:
        files[case.file_name()] = case.render()
    manifest = {"cases": [manifest_entry(c) for c in cases]}
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    for rel, text in files.items():
        if "PRIVATE KEY" in text:
            raise AssertionError(f"refusing to write key material into {rel}")
        write_atomic(out / rel, text)
    remove_stale(out, set(files))
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
