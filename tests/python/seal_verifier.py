#!/usr/bin/env python3
"""Independent verifier of the tekton-spire seal, version 1.

Written from docs/seal-format.md alone (plus the test vectors' manifest), to show
whether that specification is enough to build a verifier. It does not share code
with the Rust implementation nor with the Python fixtures generator.

Every point where the specification is silent or ambiguous is marked
``# SPEC-GAP: ...`` with the choice made.

Usage:
    python3 seal_verifier.py --taskrun FILE --bundle FILE [--bundle FILE ...] \
        --trust-domain TD [--require-format seal|tekton] [--clock-skew SECONDS] \
        [--output json|text]

Exit 0: verified; 1: rejected; 2: invalid input (section 9.3).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtensionOID

# --------------------------------------------------------------------------------------
# Constants from the specification
# --------------------------------------------------------------------------------------

SEAL_RESULT = "TEKTON_SPIRE_SEAL"  # section 2
SEAL_TAG = "sealv1"  # section 3.1
PAYLOAD_TYPE = b"application/vnd.tekton-spire.seal.v1+json"  # section 6
MAX_SEAL_BYTES = 16384  # section 3.1
MAX_CERTS = 8  # section 3.1
MAX_DOC_BYTES = 3145728  # section 9.1
DEFAULT_SKEW = 60  # section 9.1
API_RESULTS_FIELD = {  # section 4
    "tekton.dev/v1": "results",
    "tekton.dev/v1beta1": "taskResults",
}

OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_ECDSA_SHA384 = "1.2.840.10045.4.3.3"
OID_SHA256_RSA = "1.2.840.113549.1.1.11"
OID_SHA384_RSA = "1.2.840.113549.1.1.12"
OID_SHA512_RSA = "1.2.840.113549.1.1.13"

# Section 7, certificates on the chain: signature algorithm -> (issuer key kind, hash).
CERT_SIG_ALGS = {
    OID_ECDSA_SHA256: ("ec", hashes.SHA256),
    OID_ECDSA_SHA384: ("ec", hashes.SHA384),
    OID_SHA256_RSA: ("rsa", hashes.SHA256),
    OID_SHA384_RSA: ("rsa", hashes.SHA384),
    OID_SHA512_RSA: ("rsa", hashes.SHA512),
}
ISSUER_EC_CURVES = ("secp256r1", "secp384r1")
RSA_MIN_BITS, RSA_MAX_BITS = 2048, 8192


# --------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------


class Invalid(Exception):
    """Input that cannot be used (exit 2, section 9.1)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code
        self.message = message or code


class Rejected(Exception):
    """A check of section 9.2 failed (exit 1)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code
        self.message = message or code


@dataclass
class Verified:
    format: str
    spiffe_id: str
    signed_at: str
    results: list[str]


# --------------------------------------------------------------------------------------
# RFC 8785 (JCS) for the subset the body uses: objects, arrays, strings
# --------------------------------------------------------------------------------------

_SHORT_ESCAPES = {
    0x22: '\\"',
    0x5C: "\\\\",
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
}


def jcs_string(s: str) -> str:
    """Serialize a string as RFC 8785 / section 5 say."""
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            # A lone surrogate is not a Unicode scalar value: it cannot be UTF-8.
            raise ValueError("lone surrogate in string")
        esc = _SHORT_ESCAPES.get(cp)
        if esc is not None:
            out.append(esc)
        elif cp < 0x20:
            out.append("\\u%04x" % cp)  # lowercase hex (section 5)
        else:
            out.append(ch)  # '/', U+007F, U+2028, U+2029, U+FEFF literal
    out.append('"')
    return "".join(out)


def _utf16_key(s: str) -> bytes:
    # Big-endian UTF-16: comparing bytes compares code units (RFC 8785 section 3.2.3).
    return s.encode("utf-16-be", "surrogatepass")


def jcs(value: Any) -> str:
    """Canonical JSON of a value made of dicts, lists and strings only."""
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError("object key is not a string")
        keys = sorted(value, key=_utf16_key)
        return "{" + ",".join(jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError("JCS subset: only objects, arrays and strings, not %r" % type(value))


def jcs_bytes(value: Any) -> bytes:
    return jcs(value).encode("utf-8")


def pae(payload_type: bytes, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (section 6)."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(body), body)


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in_month(y: int, m: int) -> int:
    return [31, 29 if _is_leap(y) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]


_SIGNED_AT_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")


def parse_signed_at(s: str) -> int | None:
    """Section 3.1 signed-at -> seconds since the epoch, or None if malformed."""
    m = _SIGNED_AT_RE.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(g) for g in m.groups())
    # SPEC-GAP: the ABNF allows year 0000; section 3.1 says "a real calendar date".
    # Year 0000 is accepted here as the proleptic Gregorian year 0 (ISO 8601, RFC 3339).
    if not (1 <= mo <= 12) or not (1 <= d <= _days_in_month(y, mo)):
        return None
    if h > 23 or mi > 59 or se > 59:
        return None
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se


_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_rfc3339(s: Any) -> Fraction | None:
    """RFC 3339 date-time (section 5.6) -> exact seconds since the epoch, or None."""
    # SPEC-GAP: "RFC 3339" is not profiled. Accepted: the section 5.6 ABNF (T and Z
    # in either case, any number of fraction digits, numeric offsets); refused: the
    # space separator of the RFC's note, and any other ISO 8601 form. Fractions are
    # kept exactly (no rounding) for the window of step 6.
    if not isinstance(s, str):
        return None
    m = _RFC3339_RE.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7), m.group(8)
    if not (1 <= mo <= 12) or not (1 <= d <= _days_in_month(y, mo)):
        return None
    # SPEC-GAP: RFC 3339 allows a leap second (:60) in startTime/completionTime; it
    # is accepted and counted as the instant one second after :59.
    if h > 23 or mi > 59 or se > 60:
        return None
    t = Fraction(_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
    if frac:
        t += Fraction(int(frac), 10 ** len(frac))
    if off not in ("Z", "z"):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        delta = oh * 3600 + om * 60
        t = t - delta if off[0] == "+" else t + delta
    return t


def _dt_to_epoch(dt) -> int:
    return _days_from_civil(dt.year, dt.month, dt.day) * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second


# --------------------------------------------------------------------------------------
# Reading the TaskRun (section 4 and 9.1)
# --------------------------------------------------------------------------------------


class _DuplicateKey(Exception):
    pass


class _BadDocument(Exception):
    pass


# SPEC-GAP: "two members with the same key" — keys are compared after unescaping
# ("a" and "\u0061" are the same key).
def _json_pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise _DuplicateKey(k)
        obj[k] = v
    return obj


def _json_constant(name):
    # Python's json accepts NaN/Infinity/-Infinity; JSON (RFC 8259) does not.
    raise _BadDocument("not JSON: " + name)


def _json_load(text: str):
    return json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader refusing duplicate and merge keys, with timestamps kept as strings."""


# SPEC-GAP: the YAML version and schema are not specified. PyYAML implements YAML 1.1;
# its implicit timestamp type is removed so that startTime/completionTime, unquoted,
# stay strings as they do in JSON. YAML 1.1 booleans (yes/no/on/off), numbers and null
# keep their YAML 1.1 meaning, so `value: yes` is a boolean and the document invalid.
_StrictYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for (tag, rx) in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_construct_mapping(loader, node, deep=False):
    if not isinstance(node, yaml.MappingNode):
        raise _BadDocument("expected a mapping")
    out = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            # SPEC-GAP: YAML merge keys (<<) are not mentioned. They let one member be
            # given twice (explicitly and through the merge), which is the ambiguity the
            # duplicate-key rule exists to prevent: refused as input.syntax.
            raise _BadDocument("YAML merge key")
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            # SPEC-GAP: a YAML mapping key that is not a string (e.g. 1, true, null)
            # has no JSON equivalent; refused as input.syntax.
            raise _BadDocument("non-string mapping key")
        if key in out:
            raise _DuplicateKey(key)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictYamlLoader.add_constructor("tag:yaml.org,2002:map", _yaml_construct_mapping)


def _has_lone_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def _check_unicode(value: Any, depth: int = 0) -> None:
    """Refuse strings holding lone surrogates (from \\udXXX escapes)."""
    # SPEC-GAP: JSON "\ud800" (an escape of a lone surrogate) is accepted by RFC 8259
    # parsers but is no Unicode text and cannot be written in UTF-8 (RFC 8785 requires
    # well-formed strings). Refused anywhere in the document as input.syntax.
    stack = [value]
    seen = set()
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _has_lone_surrogate(v):
                raise _BadDocument("lone surrogate")
        elif isinstance(v, (list, dict)):
            if id(v) in seen:  # YAML aliases share objects
                continue
            seen.add(id(v))
            if isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)


def parse_document(text: str) -> Any:
    """JSON first, then YAML. Raises Invalid(input.syntax)."""
    # SPEC-GAP: the spec says "JSON or YAML" without saying how one is told from the
    # other. The document is read as JSON; if it is not JSON, as YAML (one document).
    try:
        doc = _json_load(text)
    except _DuplicateKey as e:
        raise Invalid("input.syntax", "duplicate key %r" % (e.args[0],))
    except (ValueError, _BadDocument, RecursionError):
        try:
            doc = yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 (strict SafeLoader)
        except _DuplicateKey as e:
            raise Invalid("input.syntax", "duplicate key %r" % (e.args[0],))
        except (yaml.YAMLError, _BadDocument, RecursionError, ValueError, TypeError) as e:
            raise Invalid("input.syntax", "neither JSON nor YAML: %s" % e)
    try:
        _check_unicode(doc)
    except _BadDocument as e:
        raise Invalid("input.syntax", str(e))
    return doc


@dataclass
class Result:
    name: str
    declared_type: str | None
    type: str  # read from the value's shape
    value: Any


@dataclass
class TaskRun:
    name: str
    namespace: str
    uid: str | None
    start: Fraction | None
    completion: Fraction | None
    results: list[Result] = field(default_factory=list)


def _absent(d: dict, key: str) -> bool:
    # SPEC-GAP: the spec speaks of absent fields only. A member whose value is null
    # (JSON null, YAML `key:` with nothing) is treated as absent, as Kubernetes' own
    # decoding does, for metadata.namespace, metadata.uid, status, the results list,
    # startTime, completionTime and a result's `type`.
    return key not in d or d[key] is None


def _value_type(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "array"
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return "object"
    return None


def read_taskrun_bytes(data: bytes) -> TaskRun:
    if len(data) > MAX_DOC_BYTES:
        raise Invalid("input.too-large", "the document is larger than 3 MiB")
    # SPEC-GAP: "white space" is not defined; taken as JSON's (space, tab, CR, LF).
    # SPEC-GAP: the order of the input checks is not given; used: read, size, empty,
    # UTF-8, syntax, shape (a non-UTF-8 file of only white space cannot exist).
    if data.strip(b" \t\r\n") == b"":
        raise Invalid("input.empty", "the document is empty")
    try:
        text = data.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise Invalid("input.not-taskrun", "the document is not UTF-8")
    # SPEC-GAP: a UTF-8 byte order mark is not mentioned. It is not stripped: JSON
    # parsing then fails and YAML (which allows a BOM at the start of a stream) reads it.
    doc = parse_document(text)
    return taskrun_from_doc(doc)


def read_taskrun(path: str) -> TaskRun:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOC_BYTES + 1)
    except OSError as e:
        raise Invalid("input.read", "cannot read %s: %s" % (path, e))
    return read_taskrun_bytes(data)


def taskrun_from_doc(doc: Any) -> TaskRun:
    bad = lambda msg: Invalid("input.not-taskrun", msg)  # noqa: E731
    if not isinstance(doc, dict):
        raise bad("the document is not an object")
    api = doc.get("apiVersion")
    if api not in API_RESULTS_FIELD or doc.get("kind") != "TaskRun":
        raise bad("not a tekton.dev/v1 or v1beta1 TaskRun")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise bad("no metadata")
    name = meta.get("name")
    # SPEC-GAP: "no metadata.name" — an empty or non-string name is treated as none.
    if not isinstance(name, str) or name == "":
        raise bad("no metadata.name")
    if _absent(meta, "namespace"):
        namespace = "default"
    else:
        namespace = meta["namespace"]
        # SPEC-GAP: a non-string namespace is not covered: invalid input. An empty
        # string is present (not "absent"), so it is kept and fails step 13 (it cannot
        # form a SPIFFE ID path segment).
        if not isinstance(namespace, str):
            raise bad("metadata.namespace is not a string")
    if _absent(meta, "uid"):
        uid = None
    else:
        uid = meta["uid"]
        # SPEC-GAP: a non-string uid is not covered: invalid input (an absent or empty
        # one is rejected at step 5).
        if not isinstance(uid, str):
            raise bad("metadata.uid is not a string")

    status = {} if _absent(doc, "status") else doc["status"]
    if not isinstance(status, dict):
        raise bad("status is not an object")

    times = []
    for key in ("startTime", "completionTime"):
        if _absent(status, key):
            times.append(None)
        else:
            t = parse_rfc3339(status[key])
            if t is None:
                raise bad("status.%s is not RFC 3339" % key)
            times.append(t)

    list_key = API_RESULTS_FIELD[api]
    entries = [] if _absent(status, list_key) else status[list_key]
    if not isinstance(entries, list):
        raise bad("status.%s is not a list" % list_key)
    results: list[Result] = []
    seen: set[str] = set()
    for e in entries:
        if not isinstance(e, dict):
            raise bad("a result is not an object")
        rname = e.get("name")
        if not isinstance(rname, str):
            raise bad("a result has no string name")
        # SPEC-GAP: result names are not constrained (not even non-empty); any string
        # is taken as is.
        if _absent(e, "type"):
            declared = None
        else:
            declared = e["type"]
            if not isinstance(declared, str):
                # SPEC-GAP: "an optional type (string)": a non-string type is invalid input.
                raise bad("result %r has a non-string type" % rname)
        if "value" not in e:
            # SPEC-GAP: an entry without `value` is not covered; invalid input.
            raise bad("result %r has no value" % rname)
        vtype = _value_type(e["value"])
        if vtype is None:
            raise bad("result %r has a value of another shape" % rname)
        if rname in seen:
            raise bad("two results named %r" % rname)
        seen.add(rname)
        results.append(Result(rname, declared, vtype, e["value"]))
    return TaskRun(name, namespace, uid, times[0], times[1], results)


# --------------------------------------------------------------------------------------
# DER helpers
# --------------------------------------------------------------------------------------


def _read_tlv(buf: bytes, off: int) -> tuple[int, int, int]:
    """One DER TLV at off -> (tag byte, content start, end). Raises ValueError."""
    if off + 2 > len(buf):
        raise ValueError("truncated TLV")
    tag = buf[off]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag number")
    ln = buf[off + 1]
    pos = off + 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise ValueError("bad length")
        ln = int.from_bytes(buf[pos : pos + n], "big")
        if buf[pos] == 0 or ln < 0x80:
            raise ValueError("non-minimal length")
        pos += n
    if pos + ln > len(buf):
        raise ValueError("truncated value")
    return tag, pos, pos + ln


def _tbs_names(tbs: bytes) -> tuple[bytes, bytes]:
    """(issuer, subject) Name encodings, byte for byte, from a TBSCertificate."""
    tag, start, end = _read_tlv(tbs, 0)
    if tag != 0x30:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    pos = start
    elems = []
    while pos < end and len(elems) < 7:
        t, s, e = _read_tlv(tbs, pos)
        elems.append((t, pos, e))
        pos = e
    if elems and elems[0][0] == 0xA0:  # [0] version
        elems = elems[1:]
    # serialNumber, signature, issuer, validity, subject
    if len(elems) < 5:
        raise ValueError("short TBSCertificate")
    _, i0, i1 = elems[2]
    _, s0, s1 = elems[4]
    return tbs[i0:i1], tbs[s0:s1]


@dataclass(eq=False)
class Cert:
    der: bytes
    x509: x509.Certificate
    issuer_der: bytes
    subject_der: bytes


def parse_cert(der: bytes) -> Cert:
    """Section 9.2 step 7: one DER certificate, no trailing bytes, well-formed
    extensions. Raises ValueError."""
    tag, _, end = _read_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not exactly one DER SEQUENCE")
    c = x509.load_der_x509_certificate(der)
    # Parsing every extension: raises on a malformed or duplicated one.
    # SPEC-GAP: "every extension in it is well formed" is read as: every extension
    # cryptography knows parses, no extension appears twice; an unknown extension
    # is only checked to be an OCTET STRING. The TBS signature AlgorithmIdentifier is
    # not compared with the outer one (RFC 5280 4.1.1.2); the spec does not ask.
    for _ in c.extensions:
        pass
    issuer, subject = _tbs_names(c.tbs_certificate_bytes)
    return Cert(der, c, issuer, subject)


# --------------------------------------------------------------------------------------
# Trust bundles
# --------------------------------------------------------------------------------------

_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n \t]*?)-----END ([A-Z0-9 ]+)-----"
)


def _strict_b64std(s: str) -> bytes:
    """Standard base64 with padding, canonical, at least one byte."""
    raw = base64.b64decode(s, validate=True)
    if not raw or base64.b64encode(raw).decode("ascii") != s:
        raise ValueError("non-canonical base64")
    return raw


def _load_pem_bundle(text: str) -> list[bytes]:
    # SPEC-GAP: "PEM CERTIFICATE blocks" with "trust material loaded strictly": taken
    # as RFC 7468 strict: only CERTIFICATE blocks, nothing but white space between
    # them (no explanatory text), canonical padded base64 inside.
    ders = []
    pos = 0
    for m in _PEM_BLOCK_RE.finditer(text):
        if text[pos : m.start()].strip(" \t\r\n"):
            raise ValueError("text outside PEM blocks")
        if m.group(1) != "CERTIFICATE" or m.group(3) != "CERTIFICATE":
            raise ValueError("a PEM block other than CERTIFICATE")
        body = re.sub(r"[ \t\r\n]", "", m.group(2))
        ders.append(_strict_b64std(body))
        pos = m.end()
    if text[pos:].strip(" \t\r\n"):
        raise ValueError("text outside PEM blocks")
    return ders


def _b64url_nopad(s: Any) -> bytes:
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _check_jwk_matches(jwk: dict, cert: x509.Certificate) -> None:
    # SPEC-GAP: the spec does not say whether the JWK's own key parameters must match
    # the certificate in x5c. Loading "strictly", they must when present: kty must
    # name the certificate's key type, and crv/x/y or n/e must equal its key.
    pub = cert.public_key()
    kty = jwk.get("kty")
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if kty != "EC":
            raise ValueError("kty does not match the certificate")
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(pub.curve.name)
        if "crv" in jwk and jwk["crv"] != crv:
            raise ValueError("crv does not match the certificate")
        size = (pub.curve.key_size + 7) // 8
        nums = pub.public_numbers()
        for k, v in (("x", nums.x), ("y", nums.y)):
            if k in jwk and _b64url_nopad(jwk[k]) != v.to_bytes(size, "big"):
                raise ValueError("%s does not match the certificate" % k)
    elif isinstance(pub, rsa.RSAPublicKey):
        if kty != "RSA":
            raise ValueError("kty does not match the certificate")
        nums = pub.public_numbers()
        for k, v in (("n", nums.n), ("e", nums.e)):
            if k in jwk and int.from_bytes(_b64url_nopad(jwk[k]), "big") != v:
                raise ValueError("%s does not match the certificate" % k)
    elif kty is not None and kty not in ("OKP",):
        raise ValueError("kty does not match the certificate")


def _load_spiffe_bundle(text: str) -> list[bytes]:
    # SPEC-GAP: the SPIFFE bundle is described in one clause. Followed here: the SPIFFE
    # Trust Domain and Bundle spec: a JSON object with a "keys" array; keys whose "use"
    # is "x509-svid" carry exactly one certificate in "x5c", in standard padded base64
    # (RFC 7517 section 4.7, as in the vector, not base64url); keys with another or
    # no "use" (jwt-svid) are ignored; other members (spiffe_sequence...) are ignored.
    doc = json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a SPIFFE bundle")
    ders = []
    for key in doc["keys"]:
        if not isinstance(key, dict):
            raise ValueError("a key is not an object")
        if key.get("use") != "x509-svid":
            continue
        x5c = key.get("x5c")
        if not isinstance(x5c, list) or len(x5c) != 1 or not isinstance(x5c[0], str):
            raise ValueError("an x509-svid key without exactly one x5c certificate")
        der = _strict_b64std(x5c[0])
        cert = parse_cert(der).x509
        _check_jwk_matches(key, cert)
        ders.append(der)
    return ders


def load_bundle_file(path: str) -> list[Cert]:
    try:
        with open(path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8", "strict")
        # SPEC-GAP: how a SPIFFE bundle is told from PEM is not said: a file whose
        # first non-white-space character is "{" is read as a SPIFFE bundle.
        if text.lstrip(" \t\r\n").startswith("{"):
            ders = _load_spiffe_bundle(text)
        else:
            ders = _load_pem_bundle(text)
        if not ders:
            raise ValueError("no certificate")
        return [parse_cert(d) for d in ders]
    except (OSError, ValueError, UnicodeDecodeError, _DuplicateKey, _BadDocument, UnsupportedAlgorithm, RecursionError) as e:
        raise Invalid("bundle.invalid", "bundle %s: %s" % (path, e))


def load_bundles(paths: Iterable[str]) -> list[Cert]:
    roots: list[Cert] = []
    seen = set()
    for p in paths:
        for c in load_bundle_file(p):
            if c.der not in seen:
                seen.add(c.der)
                roots.append(c)
    return roots


# --------------------------------------------------------------------------------------
# SPIFFE IDs
# --------------------------------------------------------------------------------------

_TD_RE = re.compile(r"[a-z0-9._-]+")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")


def valid_trust_domain(td: str) -> bool:
    # SPEC-GAP: "a valid trust domain name" is not defined here; taken from the SPIFFE
    # ID spec: lowercase letters, digits, '.', '-', '_', 1 to 255 characters. A
    # "spiffe://" prefix is not accepted in --trust-domain.
    return bool(_TD_RE.fullmatch(td)) and len(td) <= 255


def valid_path_segment(seg: str) -> bool:
    return bool(_SEGMENT_RE.fullmatch(seg)) and seg not in (".", "..")


def parse_spiffe_id(uri: str) -> tuple[str, str] | None:
    """A valid SPIFFE ID -> (trust domain, path), else None (SPIFFE ID spec)."""
    # SPEC-GAP: "a valid SPIFFE ID" is taken from the SPIFFE ID spec: scheme exactly
    # "spiffe" (lowercase), no userinfo/port/query/fragment, trust domain as above,
    # path of segments [A-Za-z0-9._-]+ other than "." and "..", no trailing "/",
    # at most 2048 bytes. An ID with no path is valid here (it fails step 13).
    if len(uri.encode("utf-8")) > 2048 or not uri.startswith("spiffe://"):
        return None
    rest = uri[len("spiffe://") :]
    td, slash, path = rest.partition("/")
    if not valid_trust_domain(td):
        return None
    if slash:
        for seg in path.split("/"):
            if not valid_path_segment(seg):
                return None
        path = "/" + path
    return td, path


# --------------------------------------------------------------------------------------
# Signature algorithms (section 7)
# --------------------------------------------------------------------------------------


def _spki_oid(c: x509.Certificate) -> str:
    return c.public_key_algorithm_oid.dotted_string


def _issuer_key_kind(c: Cert) -> str | None:
    """'ec' for a P-256/P-384 key, 'rsa' for RSA 2048-8192, else None."""
    try:
        oid = _spki_oid(c.x509)
        key = c.x509.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return None
    if oid == OID_EC_PUBLIC_KEY and isinstance(key, ec.EllipticCurvePublicKey):
        return "ec" if key.curve.name in ISSUER_EC_CURVES else None
    # SPEC-GAP: "an RSA issuer key" — only rsaEncryption SPKIs count (not RSA-PSS
    # keys, which the leaf rule names explicitly).
    if oid == OID_RSA_ENCRYPTION and isinstance(key, rsa.RSAPublicKey):
        return "rsa" if RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS else None
    return None


def _verify_cert_signature(child: Cert, issuer: Cert) -> bool:
    alg = CERT_SIG_ALGS[child.x509.signature_algorithm_oid.dotted_string]
    key = issuer.x509.public_key()
    try:
        if alg[0] == "ec":
            key.verify(child.x509.signature, child.x509.tbs_certificate_bytes, ec.ECDSA(alg[1]()))
        else:
            key.verify(child.x509.signature, child.x509.tbs_certificate_bytes, padding.PKCS1v15(), alg[1]())
        return True
    except (InvalidSignature, ValueError):
        return False


def _combination_ok(child: Cert, issuer: Cert) -> bool:
    alg = CERT_SIG_ALGS.get(child.x509.signature_algorithm_oid.dotted_string)
    return alg is not None and _issuer_key_kind(issuer) == alg[0]


def _is_ca(c: Cert) -> bool:
    try:
        bc = c.x509.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca:
        return False
    try:
        ku = c.x509.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        return True
    return bool(ku.key_cert_sign)


# --------------------------------------------------------------------------------------
# The seal value (section 3.1)
# --------------------------------------------------------------------------------------


def decode_b64url_canonical(s: str) -> bytes | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", s) or len(s) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        return None
    if not raw or base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != s:
        return None  # unused low bits not zero
    return raw


@dataclass
class SealValue:
    signed_at: str
    signed_at_epoch: int
    signature: bytes
    certs: list[bytes]


def parse_seal(value: Any) -> SealValue | None:
    if not isinstance(value, str):
        return None
    if len(value.encode("utf-8")) > MAX_SEAL_BYTES:
        return None
    fields = value.split(".")
    if len(fields) < 4 or len(fields) > 3 + MAX_CERTS:
        return None
    if fields[0] != SEAL_TAG:
        return None
    t = parse_signed_at(fields[1])
    if t is None:
        return None
    decoded = [decode_b64url_canonical(f) for f in fields[2:]]
    if any(d is None for d in decoded):
        return None
    return SealValue(fields[1], t, decoded[0], decoded[1:])


# --------------------------------------------------------------------------------------
# The signed body and message (sections 5, 6)
# --------------------------------------------------------------------------------------


def covered_results(tr: TaskRun) -> list[Result]:
    cov = [r for r in tr.results if r.name != SEAL_RESULT]
    return sorted(cov, key=lambda r: r.name.encode("utf-8"))


def build_body(tr: TaskRun, signed_at: str) -> bytes:
    body = {
        "results": [{"name": r.name, "type": r.type, "value": r.value} for r in covered_results(tr)],
        "signedAt": signed_at,
        "taskRun": {"name": tr.name, "namespace": tr.namespace, "uid": tr.uid if tr.uid is not None else ""},
    }
    return jcs_bytes(body)


def build_message(tr: TaskRun, signed_at: str) -> bytes:
    return pae(PAYLOAD_TYPE, build_body(tr, signed_at))


# --------------------------------------------------------------------------------------
# Verification (section 9.2)
# --------------------------------------------------------------------------------------


def detect_format(tr: TaskRun) -> str | None:
    names = [r.name for r in tr.results]
    if SEAL_RESULT in names:
        return "seal"
    if any(n in ("SVID", "RESULT_MANIFEST") or n.endswith(".sig") for n in names):
        return "tekton"
    return None


def verify(tr: TaskRun, roots: list[Cert], trust_domain: str, require_format: str | None = None, skew: int = DEFAULT_SKEW) -> Verified:
    # 1. Format.
    fmt = detect_format(tr)
    # SPEC-GAP: with --require-format and no material at all, material.absent or
    # format.not-allowed? The sentence order ("Otherwise: material.absent. If a format
    # is required and this is not it") is followed: material.absent.
    if fmt is None:
        raise Rejected("material.absent", "no seal and no Tekton-format material")
    if require_format is not None and fmt != require_format:
        raise Rejected("format.not-allowed", "format %s found, %s required" % (fmt, require_format))
    if fmt == "tekton":
        # SPEC-GAP (scope): verifying Tekton's own format is specified in
        # docs/tekton-format.md, which this verifier was not allowed to read. It does
        # not claim a verdict on it.
        raise Invalid("verifier.tekton-format-unsupported", "Tekton's format is out of this verifier's scope")

    # 2. Run times.
    if tr.start is None:
        raise Rejected("taskrun.not-complete", "no status.startTime")
    if tr.completion is None:
        raise Rejected("taskrun.not-complete", "no status.completionTime")
    if tr.completion < tr.start:
        raise Rejected("taskrun.time-order", "completionTime before startTime")

    # 3. Declared types.
    for r in tr.results:
        if r.declared_type is not None and r.declared_type != r.type:
            raise Rejected("results.type-mismatch", "result %r declared %s, is %s" % (r.name, r.declared_type, r.type))

    # 4. Seal value.
    seal_entry = next(r for r in tr.results if r.name == SEAL_RESULT)
    seal = parse_seal(seal_entry.value)
    if seal is None:
        raise Rejected("material.malformed", "the seal does not match section 3.1")

    # 5. UID.
    if tr.uid is None or tr.uid == "":
        raise Rejected("taskrun.no-uid", "metadata.uid absent or empty")

    # 6. Signing time within the run.
    t = seal.signed_at_epoch
    if not (tr.start - skew <= t <= tr.completion + skew):
        raise Rejected("seal.time-outside-run", "signed-at %s outside the run" % seal.signed_at)

    # 7. Certificates parse.
    carried: list[Cert] = []
    for der in seal.certs:
        try:
            carried.append(parse_cert(der))
        except (ValueError, UnsupportedAlgorithm) as e:
            raise Rejected("material.malformed", "a certificate does not parse: %s" % e)

    # 8. Path.
    leaf = carried[0]
    path = [leaf]
    unused = list(carried[1:])
    cur = leaf
    while True:
        root_cands = [r for r in roots if r.subject_der == cur.issuer_der]
        carried_cands = [c for c in unused if c.subject_der == cur.issuer_der]
        found = None
        from_roots = False
        bad_alg = False
        for cand, is_root in [(r, True) for r in root_cands] + [(c, False) for c in carried_cands]:
            # SPEC-GAP: step 8 does not say whether a candidate whose key cannot make
            # a section 7 combination with the certificate's signature algorithm is
            # passed over (like one whose key does not verify) or ends the check at
            # once. It is passed over here; signature.algorithm is reported only if no
            # candidate verifies and at least one failed on the combination (before
            # chain.signature).
            if not _combination_ok(cur, cand):
                bad_alg = True
                continue
            if _verify_cert_signature(cur, cand):
                found, from_roots = cand, is_root
                break
        if found is None:
            if bad_alg:
                raise Rejected("signature.algorithm", "unsupported certificate signature algorithm or issuer key")
            if root_cands or carried_cands:
                raise Rejected("chain.signature", "no candidate issuer's key verifies")
            raise Rejected("chain.untrusted", "no path to a bundle root")
        # SPEC-GAP: a candidate that verifies but is not a CA ends the check
        # (chain.issuer-not-ca, "each issuer appended ... must"); it is not passed over
        # in favour of another candidate, unlike one whose key does not verify.
        if not _is_ca(found):
            raise Rejected("chain.issuer-not-ca", "an issuer is not a CA")
        path.append(found)
        if from_roots:
            break
        unused.remove(found)
        cur = found

    # 9. Nothing extra.
    if unused:
        raise Rejected("chain.extra-certificate", "%d carried certificate(s) not on the path" % len(unused))

    # 10. Validity at the signing time.
    for c in path:
        if t < _dt_to_epoch(c.x509.not_valid_before_utc):
            raise Rejected("chain.not-yet-valid", "a certificate is not yet valid at signed-at")
        if t > _dt_to_epoch(c.x509.not_valid_after_utc):
            raise Rejected("chain.expired", "a certificate has expired at signed-at")

    # 11. X.509-SVID.
    exts = leaf.x509.extensions
    try:
        san = exts.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if len(uris) != 1:
        raise Rejected("svid.uri-san", "the leaf has %d URI SANs" % len(uris))
    spiffe_id = uris[0]
    parsed = parse_spiffe_id(spiffe_id)
    if parsed is None:
        raise Rejected("svid.uri-san", "the URI SAN is not a valid SPIFFE ID")
    try:
        bc = exts.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        if bc.ca:
            raise Rejected("svid.ca", "the leaf is a CA")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = exts.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        raise Rejected("svid.key-usage", "the leaf has no keyUsage")
    if not ku.digital_signature or ku.key_cert_sign or ku.crl_sign:
        raise Rejected("svid.key-usage", "the leaf's keyUsage is not an SVID's")

    # 12. Trust domain.
    if parsed[0] != trust_domain:
        raise Rejected("identity.trust-domain", "SPIFFE ID in trust domain %s" % parsed[0])

    # 13. Identity.
    if not (valid_path_segment(tr.namespace) and valid_path_segment(tr.name)):
        raise Rejected("identity.mismatch", "the namespace or name cannot form a SPIFFE ID")
    expected = "spiffe://%s/ns/%s/taskrun/%s" % (trust_domain, tr.namespace, tr.name)
    if spiffe_id != expected:
        raise Rejected("identity.mismatch", "SPIFFE ID %s, expected %s" % (spiffe_id, expected))

    # 14. Key.
    try:
        oid = _spki_oid(leaf.x509)
        key = leaf.x509.public_key()
    except (UnsupportedAlgorithm, ValueError):
        # SPEC-GAP: a leaf public key that cannot be loaded at all (unknown algorithm,
        # malformed point) is not placed at step 7; it is reported here.
        raise Rejected("signature.algorithm", "the leaf's key cannot be used")
    if oid == OID_EC_PUBLIC_KEY and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        kind = "ec"
    elif oid == OID_RSA_ENCRYPTION and isinstance(key, rsa.RSAPublicKey) and RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
        kind = "rsa"
    else:
        raise Rejected("signature.algorithm", "the leaf's key is not P-256 or RSA 2048-8192")

    # 15. Signature.
    msg = build_message(tr, seal.signed_at)
    sig = seal.signature
    try:
        if kind == "ec":
            # SPEC-GAP: "the DER Ecdsa-Sig-Value": strict DER is required (re-encoding
            # must give the same bytes); BER or trailing bytes fail as signature.invalid.
            r, s = decode_dss_signature(sig)
            if encode_dss_signature(r, s) != sig:
                raise InvalidSignature()
            key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        else:
            if len(sig) != (key.key_size + 7) // 8:
                raise InvalidSignature()
            key.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise Rejected("signature.invalid", "the signature does not verify over the rebuilt message")

    return Verified("seal", spiffe_id, seal.signed_at, [r.name for r in covered_results(tr)])


# --------------------------------------------------------------------------------------
# CLI (section 9.3)
# --------------------------------------------------------------------------------------

USAGE = (
    "usage: seal_verifier.py --taskrun FILE --bundle FILE [--bundle FILE...] --trust-domain TD "
    "[--require-format seal|tekton] [--clock-skew SECONDS] [--output text|json]"
)


def parse_args(argv: list[str]) -> dict:
    # SPEC-GAP: the spec gives no reason code for a bad command line (unknown flag,
    # missing --taskrun, a --clock-skew that is not a whole number); this verifier
    # reports invalid input with the code "input.usage" (exit 2).
    opts = {"taskrun": None, "bundles": [], "trust_domain": None, "require_format": None, "clock_skew": DEFAULT_SKEW, "output": "json"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if "=" in a and a.startswith("--"):
            flag, val = a.split("=", 1)
            i += 1
        else:
            flag = a
            if i + 1 >= len(argv):
                raise Invalid("input.usage", "%s needs a value\n%s" % (a, USAGE))
            val = argv[i + 1]
            i += 2
        if flag == "--taskrun":
            opts["taskrun"] = val
        elif flag == "--bundle":
            opts["bundles"].append(val)
        elif flag == "--trust-domain":
            opts["trust_domain"] = val
        elif flag == "--require-format":
            if val not in ("seal", "tekton"):
                raise Invalid("input.usage", "--require-format is seal or tekton")
            opts["require_format"] = val
        elif flag == "--clock-skew":
            # SPEC-GAP: "a whole number of seconds": ASCII digits only (no sign, so
            # never negative), no upper bound.
            if not re.fullmatch(r"[0-9]+", val):
                raise Invalid("input.usage", "--clock-skew is a whole number of seconds")
            opts["clock_skew"] = int(val)
        elif flag == "--output":
            if val not in ("text", "json"):
                raise Invalid("input.usage", "--output is text or json")
            opts["output"] = val
        else:
            raise Invalid("input.usage", "unknown argument %s\n%s" % (a, USAGE))
    if opts["taskrun"] is None or not opts["bundles"] or opts["trust_domain"] is None:
        raise Invalid("input.usage", USAGE)
    return opts


def run(argv: list[str]) -> tuple[int, dict, str]:
    """Runs the CLI in-process: (exit code, JSON object, output format)."""
    output = "json"
    try:
        opts = parse_args(argv)
        output = opts["output"]
        # SPEC-GAP: the order of the input checks of section 9.1 is not given; used:
        # the table's order (TaskRun, then bundles, then the trust domain).
        tr = read_taskrun(opts["taskrun"])
        roots = load_bundles(opts["bundles"])
        if not valid_trust_domain(opts["trust_domain"]):
            raise Invalid("input.trust-domain", "not a valid trust domain name")
        v = verify(tr, roots, opts["trust_domain"], opts["require_format"], opts["clock_skew"])
    except Invalid as e:
        return 2, {"verdict": "invalid", "reason": {"code": e.code, "message": e.message}}, output
    except Rejected as e:
        return 1, {"verdict": "rejected", "reason": {"code": e.code, "message": e.message}}, output
    return 0, {"verdict": "verified", "format": v.format, "spiffeId": v.spiffe_id, "signedAt": v.signed_at, "results": v.results, "reason": None}, output


def main(argv: list[str] | None = None) -> int:
    code, obj, output = run(sys.argv[1:] if argv is None else argv)
    if output == "text":
        if obj["verdict"] == "verified":
            print("verified: %s signed at %s results %s" % (obj["spiffeId"], obj["signedAt"], ", ".join(obj["results"])))
        else:
            print("%s: %s: %s" % (obj["verdict"], obj["reason"]["code"], obj["reason"]["message"]))
    else:
        print(json.dumps(obj, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
