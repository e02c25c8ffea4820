"""Tekton's legacy signed-results format (enforce-nonfalsifiability: spire), re-derived.

Behaviour modelled (tektoncd/pipeline, read not copied):
- pkg/entrypoint/entrypointer.go readResultsFromDisk: each declared result file that exists
  is read verbatim (no trimming) and handed to the signer in declaration order.
- pkg/spire/sign.go Sign: emits SVID (PEM of the leaf only), `<name>.sig` per result,
  RESULT_MANIFEST (names comma-joined) and RESULT_MANIFEST.sig; every signature is
  base64(std) of PrivateKey.Sign(SHA-256(signed string)): ASN.1 DER ECDSA, or PKCS#1 v1.5 RSA.
- pkg/spire/verify.go getResultValue: the signed string of a raw value, see signed_string.
- pkg/apis/pipeline/v1/param_types.go ParamValue.UnmarshalJSON: see parse_value.
- pkg/pod/status.go filterResults: a result declared as string keeps its raw text in the
  status; anything else (other declared types, and the undeclared signing material) is
  parsed with parse_value.
- pkg/termination/parse.go ParseMessage: results of a step are de-duplicated and sorted by key.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .pki import Credential, cert_pem

SVID = "SVID"
MANIFEST = "RESULT_MANIFEST"
SIG = ".sig"


@dataclass
class Result:
    """A Task result as the step wrote it: declared type and the file's raw text."""
    name: str
    declared: str  # string | array | object
    raw: str


# ---------------------------------------------------------------- value rules

def _reject_constant(token: str):
    raise ValueError(token)  # Go's encoding/json has no NaN/Infinity


def _json(text: str):
    return json.loads(text, parse_constant=_reject_constant)


def _string_items(value, kind):
    """Go decodes null into a string as "" and fails on any other non-string."""
    if not isinstance(value, kind):
        return None
    items = value if kind is list else value.values()
    if not all(v is None or isinstance(v, str) for v in items):
        return None
    if kind is list:
        return ["" if v is None else v for v in value]
    return {k: "" if v is None else v for k, v in value.items()}


def parse_value(raw: str) -> tuple[str, object]:
    """(type, value) as ParamValue.UnmarshalJSON would type the raw text.

    Only the first byte selects array/object; a value that decodes as a JSON string is
    unquoted ("null" also decodes, to ""); anything else stays raw text, untrimmed.
    """
    if raw == "":
        return "string", ""
    for first, kind, typ in (("[", list, "array"), ("{", dict, "object")):
        if raw[0] == first:
            try:
                parsed = _string_items(_json(raw), kind)
            except ValueError:
                parsed = None
            if parsed is not None:
                return typ, parsed
    try:
        decoded = _json(raw)
    except ValueError:
        return "string", raw
    if decoded is None:
        return "string", ""
    return ("string", decoded) if isinstance(decoded, str) else ("string", raw)


def join_typed(typ: str, value) -> str:
    """The signed string of a typed value: arrays comma-joined, objects as sorted k,v pairs."""
    if typ == "array":
        return ",".join(value)
    if typ == "object":
        return ",".join(part for k in sorted(value) for part in (k, value[k]))
    return value


def signed_string(raw: str) -> str:
    """What Tekton signs for a raw result text (getResultValue)."""
    return join_typed(*parse_value(raw))


def status_entry(result: Result) -> dict:
    """The {name, type, value} entry the TaskRun status reports for a raw result."""
    if result.declared == "string":
        return {"name": result.name, "type": "string", "value": result.raw}
    typ, value = parse_value(result.raw)
    if typ == "object":
        value = dict(sorted(value.items()))  # Go marshals map keys sorted
    return {"name": result.name, "type": typ, "value": value}


# ---------------------------------------------------------------- signing

def sign_text(text: str, key) -> str:
    """base64(std) of the signature Go's crypto.Signer makes over SHA-256(text)."""
    data = text.encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        # Deterministic (RFC 6979) only so that fixtures are reproducible; Go's is randomised.
        raw = key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise TypeError(f"unsupported key {type(key).__name__}")
    return base64.b64encode(raw).decode()


def signing_material(results: list[Result], leaf: Credential, chain: tuple = ()) -> list[Result]:
    """The extra results the entrypointer appends, in its order.

    Tekton puts only the leaf in SVID; chain (intermediates) is this project's extension.
    """
    svid_pem = leaf.pem() + "".join(cert_pem(c.cert) for c in chain)
    out = [Result(SVID, "undeclared", svid_pem)]
    for r in results:
        out.append(Result(r.name + SIG, "undeclared", sign_text(signed_string(r.raw), leaf.key)))
    manifest = ",".join(r.name for r in results)
    out.append(Result(MANIFEST, "undeclared", manifest))
    out.append(Result(MANIFEST + SIG, "undeclared", sign_text(manifest, leaf.key)))
    return out


def status_results(results: list[Result], material: list[Result]) -> list[dict]:
    """The status list for one step's termination message: sorted by key, as ParseMessage does."""
    return [status_entry(r) for r in sorted(results + material, key=lambda r: r.name.encode())]


# ---------------------------------------------------------------- TaskRun document

@dataclass
class TaskRunMeta:
    name: str = "build-abc"
    namespace: str = "default"
    uid: str = "6c1f3a0e-2b7d-4e59-9a41-8d2f0c5b7e13"
    start: str | None = "2025-06-01T12:00:00Z"
    completion: str | None = "2025-06-01T12:05:00Z"


def taskrun_document(api_version: str, meta: TaskRunMeta, declared: list[Result],
                     entries: list[dict]) -> dict:
    """A completed TaskRun as the API server returns it (tekton.dev/v1 or v1beta1)."""
    results_key = {"tekton.dev/v1": "results", "tekton.dev/v1beta1": "taskResults"}[api_version]
    status = {
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded",
                        "message": "All Steps have completed executing",
                        "lastTransitionTime": meta.completion or meta.start}],
        "podName": f"{meta.name}-pod",
        "startTime": meta.start,
        "completionTime": meta.completion,
        results_key: copy.deepcopy(entries),
        "taskSpec": {"results": [{"name": r.name, "type": r.declared} for r in declared],
                     "steps": [{"name": "build", "image": "cgr.dev/chainguard/busybox",
                                "script": "build-and-write-results"}]},
    }
    status = {k: v for k, v in status.items() if v is not None}
    return {
        "apiVersion": api_version,
        "kind": "TaskRun",
        "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid,
                     "labels": {"tekton.dev/task": "build"}},
        "spec": {"taskRef": {"kind": "Task", "name": "build"}, "serviceAccountName": "default"},
        "status": status,
    }

