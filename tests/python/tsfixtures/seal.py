"""The tekton-spire seal, signing side, written from docs/seal-format.md alone.

Independent of the Rust code on purpose: the vectors made with it are a second opinion on
what the verifier must accept. Section numbers in comments refer to docs/seal-format.md.

A result value is typed by its JSON shape, as the TaskRun status shows it (section 4):
a str is a string, a list of str an array, a dict of str to str an object.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)

RESULT_NAME = "TEKTON_SPIRE_SEAL"
TAG = "sealv2"
TAG_V1 = "sealv1"
PAYLOAD_TYPE = "application/vnd.tekton-spire.seal.v2+json"
PAYLOAD_TYPE_V1 = "application/vnd.tekton-spire.seal.v1+json"
MAX_SEAL_LEN = 16 * 1024
MAX_CERTIFICATES = 8
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# ---------------------------------------------------------------- values (section 4)

def type_of(value) -> str:
    """string | array | object, from the value's JSON shape; anything else is refused."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "array"
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                       for k, v in value.items()):
        return "object"
    raise TypeError(f"not a Tekton result value: {value!r}")


# ---------------------------------------------------------------- RFC 8785 (section 5)

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                  "\f": "\\f", "\r": "\\r"}


def _jcs_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError("lone surrogate: not a Unicode scalar value")
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)  # everything else literally, as UTF-8 (DEL, U+2028 included)
    out.append('"')
    return "".join(out)


def _utf16_order(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the sequences of UTF-16 code units do.
    return key.encode("utf-16-be")


def jcs(value) -> str:
    """RFC 8785 text of a JSON value made of strings, arrays and objects only."""
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_utf16_order)
        return "{" + ",".join(_jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"the seal body holds no {type(value).__name__}")


# ---------------------------------------------------------------- the message (sections 5, 6)

def format_time(when: dt.datetime) -> str:
    """YYYY-MM-DDTHH:MM:SSZ in UTC, fractions of a second dropped (not rounded)."""
    return when.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Identity:
    """The TaskRun as the signing step learns it: $(context.taskRun.namespace/name/uid)
    and $(context.task.retry-count), the attempt (0 for the first)."""
    namespace: str
    name: str
    uid: str
    attempt: int = 0


def body(identity: Identity, signed_at: str, results: dict[str, object],
         version: int = 2) -> dict:
    """The signed body: every result but the seal, sorted by the UTF-8 bytes of its name;
    a version 2 body also names the attempt, as a decimal string."""
    if RESULT_NAME in results:
        raise ValueError("the seal does not sign itself")
    entries = [{"name": n, "type": type_of(v), "value": v}
               for n, v in sorted(results.items(), key=lambda item: item[0].encode())]
    task_run = {"name": identity.name, "namespace": identity.namespace, "uid": identity.uid}
    if version == 2:
        task_run["attempt"] = str(identity.attempt)
    elif version != 1:
        raise ValueError(f"no seal version {version}")
    return {"results": entries, "signedAt": signed_at, "taskRun": task_run}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding; lengths in bytes, ASCII decimal."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def message(identity: Identity, signed_at: str, results: dict[str, object],
            payload_type: str | None = None, version: int = 2) -> bytes:
    """The message; payload_type overrides the version's own (a bad variant)."""
    if payload_type is None:
        payload_type = PAYLOAD_TYPE if version == 2 else PAYLOAD_TYPE_V1
    return pae(payload_type, jcs(body(identity, signed_at, results, version)).encode("utf-8"))


# ---------------------------------------------------------------- signing (section 7)

def sign(data: bytes, key) -> bytes:
    """SHA-256, then ECDSA P-256 (ASN.1 DER) or RSA PKCS#1 v1.5.

    ECDSA is deterministic (RFC 6979) only so that the vectors regenerate identically;
    real signers may randomise.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError(f"unsupported key {type(key).__name__}")


_ORDERS = {"secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551}


def negate_s(signature: bytes, curve_name: str = "secp256r1") -> bytes:
    """The other valid ECDSA signature of the same message, (r, n - s): ECDSA is malleable."""
    r, s = decode_dss_signature(signature)
    return encode_dss_signature(r, _ORDERS[curve_name] - s)


# ---------------------------------------------------------------- the seal value (section 3)

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode(signed_at: str, signature: bytes, chain_der: list[bytes],
           attempt: int | None) -> str:
    """A sealv2 made in `attempt`, or a sealv1 when attempt is None."""
    if not 1 <= len(chain_der) <= MAX_CERTIFICATES:
        raise ValueError("a seal carries 1 to 8 certificates")
    head = [TAG_V1] if attempt is None else [TAG, str(attempt)]
    value = ".".join(head + [signed_at, b64url(signature)] + [b64url(c) for c in chain_der])
    if len(value) > MAX_SEAL_LEN:
        raise ValueError(f"the seal would be {len(value)} bytes, more than {MAX_SEAL_LEN}")
    return value


def der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class Sealed:
    """What a signing step produced: the seal value and the exact message it signed."""
    value: str
    message: bytes
    signature: bytes


def seal(identity: Identity, signed_at: str, results: dict[str, object], leaf,
         intermediates: tuple = (), payload_type: str | None = None,
         key=None, version: int = 2) -> Sealed:
    """Seal results as a signing step would (version 2; version 1 as the signing step did
    before, for the vectors of old seals). leaf is a pki.Credential; key overrides the
    signing key and payload_type the version's own (bad variants); intermediates are
    pki.Credentials carried after the leaf."""
    msg = message(identity, signed_at, results, payload_type, version)
    signature = sign(msg, key if key is not None else leaf.key)
    chain = [der(leaf.cert)] + [der(c.cert) for c in intermediates]
    attempt = identity.attempt if version == 2 else None
    return Sealed(encode(signed_at, signature, chain, attempt), msg, signature)
