#!/usr/bin/env python3
"""Independent verifier of the tekton-spire seal, versions 2 and 1.

Written from docs/seal-format.md alone (plus the test vectors' manifest), to show
whether that specification is enough to build a verifier. It does not share code
with the Rust implementation nor with the Python fixtures generator.

Every point where the specification was silent or ambiguous was marked
``# SPEC-GAP: ...`` with the choice made; the specification has since stated those
rules (sections 4, 7, 9.1.1-9.1.5, 9.2 and 9.3), and the code follows it, citing the
section. What is left marked is out of this verifier's scope.

Usage:
    python3 seal_verifier.py --taskrun FILE|- --bundle FILE [--bundle FILE ...] \
        --trust-domain TD [--require-format seal|tekton] [--clock-skew SECONDS] \
        [--output text|json]

Exit 0: verified; 1: rejected; 2: invalid input or a usage error (section 9.3).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtensionOID

# --------------------------------------------------------------------------------------
# Constants from the specification
# --------------------------------------------------------------------------------------

SEAL_RESULT = "TEKTON_SPIRE_SEAL"  # section 2
SEAL_TAG = "sealv2"  # section 3.1
SEAL_TAG_V1 = "sealv1"  # section 3.1
PAYLOAD_TYPE = b"application/vnd.tekton-spire.seal.v2+json"  # section 6
PAYLOAD_TYPE_V1 = b"application/vnd.tekton-spire.seal.v1+json"  # section 6
MAX_ATTEMPT_DIGITS = 9  # section 3.1
MAX_SEAL_BYTES = 16384  # section 3.1
MAX_CERTS = 8  # section 3.1
MAX_DOC_BYTES = 3145728  # section 9.1
MAX_BUNDLE_BYTES = 1048576  # section 9.1
MAX_SKEW = 4294967295  # section 9.3
MAX_DEPTH = 128  # section 9.1.2
MAX_YAML_BYTES = 524288  # section 9.1
MAX_FLOW_DEPTH = 16  # section 9.1.2
DEFAULT_SKEW = 60  # section 9.1
NS = 10**9
# Section 9.1.1: the Unicode White_Space property.
WHITE_SPACE = frozenset(
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
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
    # Section 3.1: years 0000-9999, proleptic Gregorian (0000 is 1 BC).
    if not (1 <= mo <= 12) or not (1 <= d <= _days_in_month(y, mo)):
        return None
    if h > 23 or mi > 59 or se > 59:
        return None
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se


_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[\x00-\x7f]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_rfc3339(s: Any) -> int | None:
    """Section 9.1.4's RFC 3339 profile -> nanoseconds since the epoch, or None."""
    if not isinstance(s, str):
        return None
    m = _RFC3339_RE.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7), m.group(8)
    if not (1 <= mo <= 12) or not (1 <= d <= _days_in_month(y, mo)):
        return None
    if h > 23 or mi > 59 or se > 60:
        return None
    # Kept to the nanosecond: digits after the ninth are dropped, not rounded.
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    offset = 0
    if off not in ("Z", "z"):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (1 if off[0] == "+" else -1)
    if se == 60:
        # A leap second only as 23:59:60 UTC on the last day of a month, read as
        # 23:59:59.999999999 (the fraction written after it is dropped).
        utc = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + 59 - offset
        uy, umo, ud, uh, umi, use = _civil_from_epoch(utc)
        if not (uh == 23 and umi == 59 and use == 59 and ud == _days_in_month(uy, umo)):
            return None
        return utc * NS + NS - 1
    return (_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset) * NS + nanos


def _civil_from_epoch(t: int) -> tuple[int, int, int, int, int, int]:
    """Seconds since the epoch -> (year, month, day, hour, minute, second), proleptic."""
    days, rem = divmod(t, 86400)
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (m <= 2)
    return y, m, d, rem // 3600, rem % 3600 // 60, rem % 60


def _dt_to_epoch(dt) -> int:
    return _days_from_civil(dt.year, dt.month, dt.day) * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second


# --------------------------------------------------------------------------------------
# Reading the TaskRun (section 4 and 9.1)
# --------------------------------------------------------------------------------------


class _DuplicateKey(Exception):
    pass


class _BadDocument(Exception):
    pass


# Section 9.1.2: object keys are compared after unescaping ("a" and "\u0061" are one key).
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


def _json_number(text: str):
    # Section 9.1.2: a number that overflows binary64 makes the text not JSON.
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BadDocument("number out of range: " + text[:20])
    return value


def _json_int(text: str):
    value = int(text)
    if not -(2**63) <= value <= 2**64 - 1:
        _json_number(text)
    return value


def _json_load(text: str):
    return json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant,
                      parse_float=_json_number, parse_int=_json_int)


# ---- Section 9.1.3: the YAML profile ------------------------------------------------
# PyYAML parses (YAML 1.1 syntax, like libyaml); values are resolved here, not by
# PyYAML's YAML 1.1 resolver. The composer is extended to keep each node's tag as
# written (None when untagged) and to count events and alias uses.

_YAML = "tag:yaml.org,2002:"
_NULLS = ("~", "null", "Null", "NULL")
_BOOLS = {"true": True, "True": True, "TRUE": True,
          "false": False, "False": False, "FALSE": False}
_LEADING_ZERO_RE = re.compile(r"[-+]?0[0-9]+")
_INT_RES = (
    (re.compile(r"[-+]?(?:0|[1-9][0-9]*)"), 10, 0),
    (re.compile(r"[-+]?0x[0-9a-fA-F]+"), 16, 2),
    (re.compile(r"[-+]?0o[0-7]+"), 8, 2),
    (re.compile(r"[-+]?0b[01]+"), 2, 2),
)
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


_BEYOND_128 = object()  # an integer beyond the 128-bit range


def _yaml_int(text: str) -> Any:
    """An int in the 64-bit range, _BEYOND_128, or None (not of the integer form)."""
    for rx, base, prefix in _INT_RES:
        if rx.fullmatch(text):
            sign = -1 if text[0] == "-" else 1
            digits = text.lstrip("+-")[prefix:]
            value = sign * int(digits, base)
            if _INT_MIN <= value <= _INT_MAX:
                return value
            if -(2**127) <= value <= 2**128 - 1:
                raise _BadDocument("integer %s out of the 64-bit range" % text)
            return _BEYOND_128 if base != 10 else None
    return None


def _yaml_float(text: str) -> float | None:
    """A finite float, or None (not of the float form, or overflowing binary64)."""
    if _INF_RE.fullmatch(text) or _NAN_RE.fullmatch(text):
        raise _BadDocument("%s: JSON has no infinity or NaN" % text)
    if _FLOAT_RE.fullmatch(text):
        value = float(text)
        return None if value in (float("inf"), float("-inf")) else value
    return None


def _yaml_plain(text: str) -> Any:
    if text == "" or text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _LEADING_ZERO_RE.fullmatch(text):
        return text
    value = _yaml_int(text)
    if value is _BEYOND_128:
        return text  # hexadecimal, octal or binary beyond 128 bits: a string
    if value is not None:
        return value
    f = _yaml_float(text)  # decimal integers beyond 128 bits are read as floats
    return text if f is None else f


def _yaml_tagged(tag: str, text: str) -> Any:
    if tag == _YAML + "null":
        if text in _NULLS:
            return None
    elif tag == _YAML + "bool":
        if text in _BOOLS:
            return _BOOLS[text]
    elif tag == _YAML + "int":
        if not _LEADING_ZERO_RE.fullmatch(text):
            value = _yaml_int(text)
            if value is not None and value is not _BEYOND_128:
                return value
    elif tag == _YAML + "float":
        f = _yaml_float(text)
        if f is not None:
            return f
    else:
        return text  # !!str, !!binary, !!timestamp, tag: URIs...: a string
    raise _BadDocument("%s is not a valid %s" % (text, tag))


_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


class _ProfileLoader(yaml.composer.Composer, yaml.resolver.Resolver, yaml.cyaml.CParser):
    """Section 9.1.3: the syntax libyaml implements, so libyaml's own parser (PyYAML's C
    binding; the pure-Python scanner differs, e.g. it refuses a tab inside a plain
    scalar), with PyYAML's composer over its events so that aliases and block scalars
    are checked node by node."""

    def __init__(self, stream: str):
        yaml.cyaml.CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        # Section 9.1.3: in a text that does not end with a line break, a block scalar
        # may not be followed by nothing but spaces. libyaml's end mark of a block
        # scalar is after its last line break, or at the end of the text when its header
        # or last content line has none. Its marks count characters, as len() does, but
        # from after a byte order mark that starts the stream, which libyaml takes for
        # the stream's (a text that started with two: section 9.1.2 drops one).
        origin = 1 if stream.startswith("\ufeff") else 0
        self.open_end = (None if stream.endswith(_LINE_BREAKS)
                         else len(stream.rstrip(" ")) - origin)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            # Section 9.1.3: aliases are refused, not expanded.
            raise _BadDocument("an alias is not accepted")
        # Section 9.1.3: an anchor changes nothing, so a name given to two nodes is no
        # error (PyYAML's composer refuses it; libyaml and YAML itself do not).
        self.anchors = {}
        event = self.peek_event()
        if (isinstance(event, yaml.ScalarEvent) and event.style in ("|", ">")
                and self.open_end is not None and event.end_mark.index >= self.open_end):
            raise _BadDocument("a block scalar is followed by nothing but spaces in a text "
                               "without a final line break")
        raw_tag = getattr(event, "tag", None)
        node = super().compose_node(parent, index)
        node.raw_tag = raw_tag
        return node


class _YamlBuilder:
    def value(self, node, depth: int, flow: int = 0) -> Any:
        tag = node.raw_tag
        if tag is not None and tag.startswith("!"):
            raise _BadDocument("local tag %s" % tag)
        if isinstance(node, yaml.ScalarNode):
            if tag is None:
                return _yaml_plain(node.value) if not node.style else node.value  # plain: None or ""
            return _yaml_tagged(tag, node.value)
        if depth >= MAX_DEPTH:
            raise _BadDocument("nested more than %d deep" % MAX_DEPTH)
        if node.flow_style:
            # Section 9.1.2: flow collections nested at most 16 deep.
            flow += 1
            if flow > MAX_FLOW_DEPTH:
                raise _BadDocument("flow collections nested more than %d deep" % MAX_FLOW_DEPTH)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, depth + 1, flow) for item in node.value]
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _BadDocument("a mapping key is not a scalar")
            if key_node.value == "<<":  # in any style; tags on keys are ignored
                raise _BadDocument("YAML merge key")
            key = key_node.value  # its text, whatever its tag or type
            if key in out:
                raise _DuplicateKey(key)
            out[key] = self.value(value_node, depth + 1, flow)
        return out


def _yaml_load(text: str) -> Any:
    loader = _ProfileLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return None
    return _YamlBuilder().value(node, 0)


def _has_lone_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def _check_document(value: Any) -> None:
    """Section 9.1.2: no lone surrogate, nesting at most 128 deep (JSON; the YAML
    builder checks depth itself, aliases included)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if _has_lone_surrogate(v):
                raise _BadDocument("lone surrogate")
        elif isinstance(v, (list, dict)):
            if depth >= MAX_DEPTH:
                raise _BadDocument("nested more than %d deep" % MAX_DEPTH)
            if isinstance(v, dict):
                stack.extend((k, depth + 1) for k in v.keys())
                stack.extend((x, depth + 1) for x in v.values())
            else:
                stack.extend((x, depth + 1) for x in v)


_JSON_WS = " \t\n\r"


def is_yaml(text: str) -> bool:
    """Section 9.1.2: a text is read as YAML unless, after an optional byte order mark,
    its first character that is not JSON white space is { or [."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.lstrip(_JSON_WS)[:1] not in ("{", "[")


def check_yaml_size(text: str) -> None:
    """Section 9.1.1: a YAML document of more than 512 KiB is input.too-large."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES and is_yaml(text):
        raise Invalid("input.too-large", "the document is YAML larger than 512 KiB")


def parse_document(text: str) -> Any:
    """Section 9.1.2: after an optional byte order mark, a text whose first character
    that is not JSON white space is { or [ is read as JSON and nothing else; any other
    text as one YAML document. Raises Invalid(input.syntax)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        if text.lstrip(_JSON_WS)[:1] in ("{", "["):
            doc = _json_load(text)
        else:
            doc = _yaml_load(text)
        _check_document(doc)
    except _DuplicateKey as e:
        raise Invalid("input.syntax", "duplicate key %r" % (e.args[0],))
    except (ValueError, _BadDocument, RecursionError, yaml.YAMLError, TypeError) as e:
        raise Invalid("input.syntax", "not JSON or YAML as section 9.1.2 reads them: %s" % e)
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
    start: int | None  # nanoseconds since the epoch (section 9.1.4)
    completion: int | None
    results: list[Result] = field(default_factory=list)
    earlier_attempts: int = 0  # entries of status.retriesStatus (section 4)


def _absent(d: dict, key: str) -> bool:
    # Section 4: a member whose value is null is treated exactly as an absent one.
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
    # Section 9.1.1: size, UTF-8, empty (Unicode White_Space), syntax, shape.
    if len(data) > MAX_DOC_BYTES:
        raise Invalid("input.too-large", "the document is larger than 3 MiB")
    try:
        text = data.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise Invalid("input.not-taskrun", "the document is not UTF-8")
    if all(c in WHITE_SPACE for c in text):
        raise Invalid("input.empty", "the document is empty")
    check_yaml_size(text)
    doc = parse_document(text)
    return taskrun_from_doc(doc)


def read_taskrun(path: str) -> TaskRun:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_DOC_BYTES + 1)
        else:
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
    # Any value: a mapping or a list is another apiVersion too (and not hashable).
    if not isinstance(api, str) or api not in API_RESULTS_FIELD or doc.get("kind") != "TaskRun":
        raise bad("not a tekton.dev/v1 or v1beta1 TaskRun")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise bad("no metadata")
    name = meta.get("name")
    # Section 4: a string, possibly empty (an empty name fails step 14).
    if not isinstance(name, str):
        raise bad("no metadata.name")
    if _absent(meta, "namespace"):
        namespace = "default"
    else:
        namespace = meta["namespace"]
        # Section 4: an empty string is present, not absent (it fails step 14).
        if not isinstance(namespace, str):
            raise bad("metadata.namespace is not a string")
    if _absent(meta, "uid"):
        uid = None
    else:
        uid = meta["uid"]
        if not isinstance(uid, str):
            raise bad("metadata.uid is not a string")

    # Section 4: whoever writes the status controls all of it, so a status that cannot
    # be read is a rejection (status.malformed), not an unusable document.
    def malformed(msg: str) -> Rejected:
        error = Rejected("status.malformed", msg)
        error.taskrun = TaskRun(name, namespace, uid, None, None)
        return error

    status = {} if _absent(doc, "status") else doc["status"]
    if not isinstance(status, dict):
        raise malformed("status is not an object")

    times = []
    for key in ("startTime", "completionTime"):
        if _absent(status, key):
            times.append(None)
        else:
            t = parse_rfc3339(status[key])
            if t is None:
                raise malformed("status.%s is not RFC 3339" % key)
            times.append(t)

    list_key = API_RESULTS_FIELD[api]
    # Section 4: the other list is not read for results, but must have the same shape.
    for other_key in API_RESULTS_FIELD.values():
        if other_key == list_key or _absent(status, other_key):
            continue
        other = status[other_key]
        if not isinstance(other, list):
            raise malformed("status.%s is not a list" % other_key)
        for e in other:
            if (not isinstance(e, dict) or not isinstance(e.get("name"), str)
                    or not (_absent(e, "type") or isinstance(e["type"], str))
                    or "value" not in e):
                raise malformed("status.%s holds a malformed entry" % other_key)
    # Section 4: status.retriesStatus, absent or an array of objects; only its length counts.
    retries = [] if _absent(status, "retriesStatus") else status["retriesStatus"]
    if not isinstance(retries, list) or not all(isinstance(r, dict) for r in retries):
        raise malformed("status.retriesStatus is not an array of objects")
    entries = [] if _absent(status, list_key) else status[list_key]
    if not isinstance(entries, list):
        raise malformed("status.%s is not a list" % list_key)
    results: list[Result] = []
    seen: set[str] = set()
    for e in entries:
        if not isinstance(e, dict):
            raise malformed("a result is not an object")
        rname = e.get("name")
        if not isinstance(rname, str):
            raise malformed("a result has no string name")
        # Section 4: any string is a name, the empty one included.
        if _absent(e, "type"):
            declared = None
        else:
            declared = e["type"]
            if not isinstance(declared, str):
                raise malformed("result %r has a non-string type" % rname)
        if "value" not in e:
            raise malformed("result %r has no value" % rname)
        vtype = _value_type(e["value"])
        if vtype is None:
            raise malformed("result %r has a value of another shape" % rname)
        if rname in seen:
            raise malformed("two results named %r" % rname)
        seen.add(rname)
        results.append(Result(rname, declared, vtype, e["value"]))
    return TaskRun(name, namespace, uid, times[0], times[1], results, len(retries))


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


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The TLVs filling buf[start:end] -> [(tag, tlv start, content start, end)]."""
    out = []
    pos = start
    while pos < end:
        t, s, e = _read_tlv(buf, pos)
        if e > end:
            raise ValueError("TLV overruns its parent")
        out.append((t, pos, s, e))
        pos = e
    return out


def _one(buf: bytes, tag: int) -> tuple[int, int]:
    """buf is exactly one TLV with this tag -> (content start, end)."""
    t, s, e = _read_tlv(buf, 0)
    if t != tag or e != len(buf):
        raise ValueError("not exactly one value of tag %#x" % tag)
    return s, e


def _oid_text(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise ValueError("bad OID")
    arcs, v = [], 0
    for b in content:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first] + arcs[1:])


@dataclass
class _Tbs:
    issuer: bytes  # Name, DER, byte for byte
    subject: bytes
    spki: bytes  # SubjectPublicKeyInfo, DER, as written
    # (OID, critical, extnValue contents, the extension's bytes before its extnValue)
    extensions: list[tuple[str, bool, bytes, bytes]]
    ext_span: tuple[int, int, int] | None  # ([3] tlv start, SEQUENCE content start, end)


def _parse_tbs(tbs: bytes) -> _Tbs:
    s, e = _one(tbs, 0x30)
    elems = _children(tbs, s, e)
    if elems and elems[0][0] == 0xA0:  # [0] version
        elems = elems[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    if len(elems) < 6:
        raise ValueError("short TBSCertificate")
    name = lambda i: tbs[elems[i][1] : elems[i][3]]  # noqa: E731
    exts: list[tuple[str, bool, bytes, bytes]] = []
    span = None
    for t, ts, cs, ce in elems[6:]:
        if t != 0xA3:  # [1] issuerUniqueID, [2] subjectUniqueID
            continue
        st, ss, se = _read_tlv(tbs, cs)
        if st != 0x30 or se != ce:
            raise ValueError("extensions are not one SEQUENCE")
        span = (ts, ss, se)
        for _, xs, xcs, xce in _children(tbs, ss, se):
            parts = _children(tbs, xcs, xce)
            if not parts or parts[0][0] != 0x06:
                raise ValueError("extension without an OID")
            oid = _oid_text(tbs[parts[0][2] : parts[0][3]])
            critical = False
            rest = parts[1:]
            if rest and rest[0][0] == 0x01:
                critical = tbs[rest[0][2] : rest[0][3]] == b"\xff"
                rest = rest[1:]
            if len(rest) != 1 or rest[0][0] != 0x04:
                raise ValueError("extension %s has no single extnValue" % oid)
            exts.append((oid, critical, tbs[rest[0][2] : rest[0][3]],
                         tbs[xcs : rest[0][1]]))
    return _Tbs(name(2), name(4), name(5), exts, span)


def _mk_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + content


# Section 9.2 step 7: the extension types a verifier understands (parses).
UNDERSTOOD_EXTENSIONS = frozenset({
    "2.5.29.14", "2.5.29.35", "2.5.29.15", "2.5.29.37", "2.5.29.19", "2.5.29.17",
    "2.5.29.18", "2.5.29.30", "2.5.29.32", "2.5.29.33", "2.5.29.36", "2.5.29.54",
    "2.5.29.31", "1.3.6.1.5.5.7.1.1", "1.3.6.1.5.5.7.1.11", "2.5.29.20", "2.5.29.21",
    "2.5.29.24", "2.5.29.28", "1.3.6.1.4.1.11129.2.4.2", "2.16.840.1.113730.1.1",
    "2.16.840.1.113730.1.13",
})


# Section 9.2 step 7: the extensions whose rules a verifier applies; any other critical
# extension makes the certificate unusable.
PROCESSED_EXTENSIONS = frozenset({"2.5.29.19", "2.5.29.15", "2.5.29.17", "2.5.29.30"})
OID_NAME_CONSTRAINTS = "2.5.29.30"


def _check_der(buf: bytes, start: int, end: int, nesting: int = 0) -> None:
    """Section 9.2 step 7, DER: every TLV has the shortest definite length (checked by
    _read_tlv), constructed values are descended into, and BOOLEAN, INTEGER, BIT STRING,
    NULL and OBJECT IDENTIFIER values have their one DER form."""
    if nesting > 32:
        raise ValueError("values nested too deep")
    for tag, _, cs, ce in _children(buf, start, end):
        c = buf[cs:ce]
        if tag & 0x20:
            _check_der(buf, cs, ce, nesting + 1)
        elif tag == 0x01 and c not in (b"\x00", b"\xff"):
            raise ValueError("a BOOLEAN other than 00 or FF")
        elif tag == 0x02 and (not c or (len(c) > 1 and ((c[0] == 0 and c[1] < 0x80)
                                                        or (c[0] == 0xFF and c[1] >= 0x80)))):
            raise ValueError("an INTEGER not in its shortest form")
        elif tag == 0x03 and (not c or c[0] > 7 or (len(c) == 1 and c[0])
                              or (len(c) > 1 and c[-1] & ((1 << c[0]) - 1))):
            raise ValueError("a BIT STRING not in its DER form")
        elif tag == 0x05 and c:
            raise ValueError("a NULL with contents")
        elif tag == 0x0C:
            c.decode("utf-8")  # raises on anything but UTF-8
        elif tag == 0x12 and not all(b in b"0123456789 " for b in c):
            raise ValueError("a NumericString outside its alphabet")
        elif tag == 0x13 and not all(chr(b).isascii() and (chr(b).isalnum() or chr(b) in " '()+,-./:=?")
                                     for b in c):
            raise ValueError("a PrintableString outside its alphabet")
        elif tag == 0x16 and any(b > 0x7F for b in c):
            raise ValueError("an IA5String with a byte above 7F")
        elif tag == 0x1A and not all(0x20 <= b <= 0x7E for b in c):
            raise ValueError("a VisibleString outside its alphabet")
        elif tag == 0x06 and (not c or c[-1] & 0x80
                              or any(b == 0x80 and (i == 0 or not c[i - 1] & 0x80)
                                     for i, b in enumerate(c))):
            raise ValueError("an OBJECT IDENTIFIER not in its DER form")


def _uri_constraints(value: bytes) -> tuple[list[str], list[str]]:
    """Section 9.2 step 7: nameConstraints of URI subtrees only, without minimum or
    maximum -> (permitted hosts, excluded hosts)."""
    s, e = _one(value, 0x30)
    permitted: list[str] = []
    excluded: list[str] = []
    last = None
    for tag, _, cs, ce in _children(value, s, e):
        if tag == 0xA0 and last is None:
            target = permitted
        elif tag == 0xA1 and last != 0xA1:
            target = excluded
        else:
            raise ValueError("nameConstraints: subtrees out of order")
        last = tag
        subtrees = _children(value, cs, ce)
        if not subtrees:
            raise ValueError("nameConstraints: an empty list of subtrees")
        for st, _, ss, se in subtrees:
            parts = _children(value, ss, se)
            if st != 0x30 or len(parts) != 1:
                raise ValueError("nameConstraints: a subtree with a minimum or maximum")
            bt, _, bs, be = parts[0]
            if bt != 0x86:
                raise ValueError("nameConstraints: a name form other than URI")
            host = value[bs:be]
            if not host or any(b > 0x7F for b in host):
                raise ValueError("nameConstraints: a URI constraint that is not an ASCII host")
            target.append(host.decode("ascii"))
    return permitted, excluded


def _check_unparsed_extension(oid: str, value: bytes) -> None:
    """Understood types that `cryptography` does not parse in a certificate: their
    outer syntax only (an approximation of "holds one value of the type's syntax")."""
    if oid == "2.5.29.33":  # policyMappings: SEQUENCE SIZE (1..MAX) OF SEQUENCE {OID, OID}
        s, e = _one(value, 0x30)
        maps = _children(value, s, e)
        if not maps:
            raise ValueError("empty policyMappings")
        for t, _, ms, me in maps:
            pair = _children(value, ms, me)
            if t != 0x30 or [p[0] for p in pair] != [0x06, 0x06]:
                raise ValueError("malformed policyMappings")
        return
    tags = {"2.16.840.1.113730.1.1": 0x03, "2.16.840.1.113730.1.13": 0x16,
            "2.5.29.20": 0x02, "2.5.29.21": 0x0A, "2.5.29.24": 0x18, "2.5.29.28": 0x30}
    if oid in tags:
        _one(value, tags[oid])


@dataclass(eq=False)
class Cert:
    der: bytes
    x509: x509.Certificate  # the certificate as carried (signature, key, validity)
    issuer_der: bytes
    subject_der: bytes
    spki: bytes
    extensions: x509.Extensions  # its understood extensions, parsed
    uri_constraints: tuple[list[str], list[str]] | None = None  # (permitted, excluded)


def parse_cert(der: bytes) -> Cert:
    """Section 9.2 step 7: one DER certificate, no trailing bytes; no extension twice;
    understood extensions well formed; no critical extension of another type.
    Raises ValueError."""
    tag, s, end = _read_tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not exactly one DER SEQUENCE")
    _check_der(der, 0, end)
    parts = _children(der, s, end)
    if len(parts) != 3 or parts[0][0] != 0x30:
        raise ValueError("not a Certificate")
    tbs_bytes = der[parts[0][1] : parts[0][3]]
    tbs = _parse_tbs(tbs_bytes)
    oids = [x[0] for x in tbs.extensions]
    if len(oids) != len(set(oids)):
        raise ValueError("an extension occurs twice")
    kept = b""
    constraints = None
    for oid, critical, value, head in tbs.extensions:
        if critical and oid not in PROCESSED_EXTENSIONS:
            raise ValueError("critical extension %s is not processed" % oid)
        if oid in PROCESSED_EXTENSIONS:
            _one(value, value[0] if value else 0)  # exactly one value
            _check_der(value, 0, len(value))
        if oid == OID_NAME_CONSTRAINTS:
            constraints = _uri_constraints(value)
        if oid == "2.5.29.17":  # rfc822Name, dNSName and URI are IA5String: ASCII only
            s_, e_ = _one(value, 0x30)
            for t_, _, cs_, ce_ in _children(value, s_, e_):
                if t_ in (0x81, 0x82, 0x86) and any(b > 0x7F for b in value[cs_:ce_]):
                    raise ValueError("a subjectAltName name of an IA5String form is not ASCII")
        if oid in UNDERSTOOD_EXTENSIONS:
            # One value of the type's syntax at the start; bytes after it are ignored.
            _, _, first_end = _read_tlv(value, 0)
            first = value[:first_end]
            _check_unparsed_extension(oid, first)
            kept += _mk_tlv(0x30, head + _mk_tlv(0x04, first))
    try:
        c = x509.load_der_x509_certificate(der)
    except x509.InvalidVersion as e:  # not a ValueError: v2, or no version of X.509
        raise ValueError(str(e))
    # The understood extensions are parsed from a copy holding only them, each cut to
    # its first value (the others are ignored, even when `cryptography` would parse and
    # refuse them). The copy's signature no longer matches; it is read, never verified.
    if tbs.ext_span is not None:
        ts, _, se = tbs.ext_span
        _, cs, _ = _read_tlv(tbs_bytes, 0)
        new_ext = _mk_tlv(0xA3, _mk_tlv(0x30, kept)) if kept else b""
        new_tbs = _mk_tlv(0x30, tbs_bytes[cs:ts] + new_ext + tbs_bytes[se:])
        copy = x509.load_der_x509_certificate(
            _mk_tlv(0x30, new_tbs + der[parts[1][1] : parts[2][3]]))
        extensions = copy.extensions  # raises on a malformed understood extension
    else:
        extensions = c.extensions
    return Cert(der, c, tbs.issuer, tbs.subject, tbs.spki, extensions, constraints)


# --------------------------------------------------------------------------------------
# Trust bundles (section 9.1.5)
# --------------------------------------------------------------------------------------


def _strict_b64std(s: str) -> bytes:
    """Standard base64 with padding, canonical (RFC 4648 section 4)."""
    raw = base64.b64decode(s, validate=True)
    if base64.b64encode(raw).decode("ascii") != s:
        raise ValueError("non-canonical base64")
    return raw


def _pem_until(data: bytes, pos: int, marker: bytes) -> tuple[bytes, int] | None:
    i = data.find(marker, pos)
    return None if i < 0 else (data[pos:i], i + len(marker))


def _pem_skip(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in b" \t\r\n":
        pos += 1
    return pos


def _load_pem_bundle(data: bytes) -> list[bytes]:
    """Section 9.1.5, PEM: explanatory text and an unterminated last block ignored."""
    ders = []
    pos = 0
    while pos < len(data):
        found = _pem_until(data, pos, b"-----BEGIN ")
        if found is None:
            break
        found = _pem_until(data, found[1], b"-----")
        if found is None:
            break
        label, pos = found
        pos = _pem_skip(data, pos)
        found = _pem_until(data, pos, b"-----END ")
        if found is None:
            break
        content, pos = found
        found = _pem_until(data, pos, b"-----")
        if found is None:
            break
        end_label, pos = found
        pos = _pem_skip(data, pos)
        for sep in (b"\n\n", b"\r\n\r\n"):
            i = content.find(sep)
            if i >= 0:
                headers, body = content[:i], content[i + len(sep) :]
                for line in headers.decode("utf-8").splitlines():
                    if ":" not in line:
                        raise ValueError("malformed PEM header %r" % line)
                break
        else:
            body = content
        label_text, end_text = label.decode("utf-8"), end_label.decode("utf-8")
        if not label_text or label_text != end_text:
            raise ValueError("PEM labels %r and %r" % (label_text, end_text))
        text = "".join(ch for ch in body.decode("utf-8") if ch not in WHITE_SPACE)
        der = _strict_b64std(text)
        if label_text != "CERTIFICATE":
            raise ValueError("a PEM block other than CERTIFICATE: %s" % label_text)
        ders.append(der)
    return ders


def _load_json_bundle(data: bytes) -> list[bytes]:
    """Section 9.1.5: a SPIFFE bundle, or SPIRE's bundle JSON. Read as section 9.1.2
    reads JSON: a member given twice anywhere is refused."""
    doc = _json_load(data.decode("utf-8", "strict"))
    _check_document(doc)
    if not isinstance(doc, dict):
        raise ValueError("JSON that is not an object")
    if "keys" in doc:
        return _load_spiffe_bundle(doc)
    if "x509_authorities" in doc or "trust_domain" in doc:
        auths = doc.get("x509_authorities")
        if auths is None:
            return []
        if not isinstance(auths, list):
            raise ValueError("x509_authorities is not an array")
        ders = []
        for a in auths:
            if not isinstance(a, dict) or not isinstance(a.get("asn1"), str):
                raise ValueError("an X.509 authority without an asn1 string")
            ders.append(_strict_b64std(a["asn1"]))
        return ders
    raise ValueError("a JSON object that is neither a SPIFFE bundle nor SPIRE's bundle JSON")


def _load_spiffe_bundle(doc: dict) -> list[bytes]:
    """Section 9.1.5, SPIFFE bundle."""
    if not isinstance(doc.get("keys"), list):
        raise ValueError("not a SPIFFE bundle")
    ders = []
    for key in doc["keys"]:
        if not isinstance(key, dict):
            raise ValueError("a key is not an object")
        use, x5c = key.get("use"), key.get("x5c")
        if use is not None and not isinstance(use, str):
            raise ValueError("a key's use is not a string")
        if x5c is not None and not (isinstance(x5c, list) and all(isinstance(c, str) for c in x5c)):
            raise ValueError("a key's x5c is not an array of strings")
        if use is None:
            raise ValueError("a key has no use")
        if use != "x509-svid":
            continue  # jwt-svid, or a use this verifier does not know: skipped
        if x5c is None or len(x5c) != 1:
            raise ValueError("an x509-svid key without exactly one x5c certificate")
        ders.append(_strict_b64std(x5c[0]))
    return ders


def _split_der(data: bytes) -> list[bytes]:
    """Section 9.1.5, DER: certificates one after the other, split by outer length."""
    ders = []
    while data:
        if len(data) < 2 or data[0] != 0x30 or not 0x81 <= data[1] <= 0x83:
            raise ValueError("a DER certificate does not start with a SEQUENCE")
        n = data[1] & 0x7F
        if len(data) < 2 + n:
            raise ValueError("a DER certificate is cut short")
        end = 2 + n + int.from_bytes(data[2 : 2 + n], "big")
        if end > len(data):
            raise ValueError("a DER certificate is cut short")
        ders.append(data[:end])
        data = data[end:]
    return ders


def load_bundle_bytes(data: bytes) -> list[Cert]:
    if len(data) > MAX_BUNDLE_BYTES:
        raise ValueError("larger than 1 MiB")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    rest = data.lstrip(b" \t\n\x0c\r")
    if not rest:
        raise ValueError("empty")
    if rest[:1] in (b"{", b"["):
        ders = _load_json_bundle(data)
    elif rest[0] == 0x30 and len(rest) > 1 and 0x81 <= rest[1] <= 0x84:
        ders = _split_der(rest)
    else:
        ders = _load_pem_bundle(data)
    if not ders:
        raise ValueError("no certificate")
    return [parse_cert(d) for d in ders]


def _read_limited(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_BUNDLE_BYTES + 1)


def load_bundle_file(path: str) -> list[Cert]:
    """Section 9.1.5: a file, or a directory of them (names starting with '.' skipped,
    in the order of their names; a subdirectory or no file is refused)."""
    try:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if not n.startswith("."))
            if not names:
                raise ValueError("a directory with no bundle file")
            certs = []
            for n in names:
                full = os.path.join(path, n)
                if os.path.isdir(full):
                    raise ValueError("a directory inside the bundle directory")
                certs.extend(load_bundle_bytes(_read_limited(full)))
            return certs
        return load_bundle_bytes(_read_limited(path))
    except (OSError, ValueError, UnicodeDecodeError, _DuplicateKey, _BadDocument,
            UnsupportedAlgorithm, RecursionError, x509.DuplicateExtension) as e:
        error = Invalid("bundle.invalid", "bundle %s: %s" % (path, e))
        error.path = path
        raise error


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
# SPIFFE IDs (section 9.2, step 12)
# --------------------------------------------------------------------------------------

_TD_RE = re.compile(r"[a-z0-9._-]+")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")


def valid_trust_domain(td: str) -> bool:
    # 1 to 255 characters of a-z 0-9 . - _.
    return bool(_TD_RE.fullmatch(td)) and len(td) <= 255


def expected_trust_domain(given: str) -> str | None:
    """Section 9.1: a trust domain name, or its SPIFFE ID (spiffe://name, no path)."""
    if given.startswith("spiffe://"):
        parsed = parse_spiffe_id(given)
        return parsed[0] if parsed is not None and parsed[1] == "" else None
    return given if valid_trust_domain(given) else None


def valid_path_segment(seg: str) -> bool:
    return bool(_SEGMENT_RE.fullmatch(seg)) and seg not in (".", "..")


def parse_spiffe_id(uri: str) -> tuple[str, str] | None:
    """A valid SPIFFE ID -> (trust domain, path), else None. An ID with no path is
    valid (it fails step 14)."""
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
# Keys and signature algorithms (section 7)
# --------------------------------------------------------------------------------------

_CURVE_OIDS = {"1.2.840.10045.3.1.7": ("p256", 32), "1.3.132.0.34": ("p384", 48)}


def _key_kind(c: Cert) -> str | None:
    """'p256', 'p384' (named curves) or 'rsa' (rsaEncryption, RSAPublicKey parses, n of
    2048 to 8192 bits) from the SubjectPublicKeyInfo as written, else None."""
    try:
        s, e = _one(c.spki, 0x30)
        alg, bits = _children(c.spki, s, e)
        parts = _children(c.spki, alg[2], alg[3])
        oid = _oid_text(c.spki[parts[0][2] : parts[0][3]])
        if oid == OID_EC_PUBLIC_KEY:
            if len(parts) != 2 or parts[1][0] != 0x06:
                return None  # explicit or implicit curve parameters
            curve = _CURVE_OIDS.get(_oid_text(c.spki[parts[1][2] : parts[1][3]]))
            return curve[0] if curve else None
        if oid == OID_RSA_ENCRYPTION:
            key = c.spki[bits[2] + 1 : bits[3]]
            ks, ke = _one(key, 0x30)
            n, _ = _children(key, ks, ke)
            modulus = int.from_bytes(key[n[2] : n[3]], "big")
            return "rsa" if RSA_MIN_BITS <= modulus.bit_length() <= RSA_MAX_BITS else None
    except (ValueError, IndexError):
        return None
    return None


def _usable_key(c: Cert):
    """The public key if section 7 can use it (an uncompressed point on the curve, an
    RSA exponent of 3 to 2^33 - 1), else None."""
    kind = _key_kind(c)
    try:
        if kind in ("p256", "p384"):
            s, e = _one(c.spki, 0x30)
            bits = _children(c.spki, s, e)[1]
            point = c.spki[bits[2] + 1 : bits[3]]
            if not point or point[0] != 0x04 or len(point) != 1 + 2 * _CURVE_OIDS[
                    "1.2.840.10045.3.1.7" if kind == "p256" else "1.3.132.0.34"][1]:
                return None
            return c.x509.public_key()
        if kind == "rsa":
            key = c.x509.public_key()
            if not 3 <= key.public_numbers().e <= 2**33 - 1:
                return None
            return key
    except (ValueError, UnsupportedAlgorithm):
        return None
    return None


def _verify_cert_signature(child: Cert, issuer: Cert) -> bool:
    alg = CERT_SIG_ALGS[child.x509.signature_algorithm_oid.dotted_string]
    key = _usable_key(issuer)
    if key is None:
        return False  # a key section 7 cannot use verifies nothing
    try:
        if alg[0] == "ec":
            key.verify(child.x509.signature, child.x509.tbs_certificate_bytes, ec.ECDSA(alg[1]()))
        else:
            key.verify(child.x509.signature, child.x509.tbs_certificate_bytes, padding.PKCS1v15(), alg[1]())
        return True
    except (InvalidSignature, ValueError):
        return False


def _uri_sans(c: Cert) -> list[str]:
    try:
        san = c.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def uri_host(uri: str) -> str | None:
    """Section 9.2 step 10: the host of a URI: after "://", up to "/", "?", "#" or the
    end, without user information ("...@") and port (":" and digits); None if there is
    none or it is an IP literal ("[...]")."""
    if "://" not in uri:
        return None
    authority = re.split(r"[/?#]", uri.split("://", 1)[1], maxsplit=1)[0]
    host = authority.rsplit("@", 1)[-1]
    h, colon, port = host.rpartition(":")
    if colon and re.fullmatch(r"[0-9]*", port):
        host = h
    if not host or host.startswith("["):
        return None
    return host


def _host_matches(host: str, constraint: str) -> bool:
    """RFC 5280 4.2.1.10: ".domain" matches hosts below it, "host" only itself; ASCII
    case is ignored."""
    h, c = host.encode("utf-8").lower(), constraint.encode("ascii").lower()
    if c.startswith(b"."):
        return len(h) > len(c) and h.endswith(c)
    return h == c


def _combination_ok(child: Cert, issuer: Cert) -> bool:
    alg = CERT_SIG_ALGS.get(child.x509.signature_algorithm_oid.dotted_string)
    kind = _key_kind(issuer)
    return alg is not None and {"p256": "ec", "p384": "ec", "rsa": "rsa"}.get(kind) == alg[0]


def _is_ca(c: Cert) -> bool:
    try:
        bc = c.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca:
        return False
    try:
        ku = c.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
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
    attempt: str | None  # the attempt's text in a sealv2, None in a sealv1
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
    if fields[0] == SEAL_TAG:
        if len(fields) < 2 or not re.fullmatch(r"0|[1-9][0-9]{0,%d}" % (MAX_ATTEMPT_DIGITS - 1),
                                               fields[1], re.ASCII):
            return None
        attempt, fields = fields[1], fields[1:]
    elif fields[0] == SEAL_TAG_V1:
        attempt = None
    else:
        return None
    # fields: tag (or attempt), time, signature, 1 to 8 certificates.
    if len(fields) < 4 or len(fields) > 3 + MAX_CERTS:
        return None
    t = parse_signed_at(fields[1])
    if t is None:
        return None
    decoded = [decode_b64url_canonical(f) for f in fields[2:]]
    if any(d is None for d in decoded):
        return None
    return SealValue(attempt, fields[1], t, decoded[0], decoded[1:])


# --------------------------------------------------------------------------------------
# The signed body and message (sections 5, 6)
# --------------------------------------------------------------------------------------


def covered_results(tr: TaskRun) -> list[Result]:
    cov = [r for r in tr.results if r.name != SEAL_RESULT]
    return sorted(cov, key=lambda r: r.name.encode("utf-8"))


def build_body(tr: TaskRun, signed_at: str, attempt: str | None) -> bytes:
    """The body of a sealv2 made in `attempt`, or of a sealv1 when attempt is None."""
    task_run = {"name": tr.name, "namespace": tr.namespace, "uid": tr.uid if tr.uid is not None else ""}
    if attempt is not None:
        task_run["attempt"] = attempt
    body = {
        "results": [{"name": r.name, "type": r.type, "value": r.value} for r in covered_results(tr)],
        "signedAt": signed_at,
        "taskRun": task_run,
    }
    return jcs_bytes(body)


def build_message(tr: TaskRun, signed_at: str, attempt: str | None) -> bytes:
    payload_type = PAYLOAD_TYPE_V1 if attempt is None else PAYLOAD_TYPE
    return pae(payload_type, build_body(tr, signed_at, attempt))


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
    # No material at all is material.absent whatever format is required.
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
    # 5, attempt: the seal's attempt is the number of entries of status.retriesStatus; a
    # sealv1 binds none and is accepted only when there are none.
    if seal.attempt is None:
        if tr.earlier_attempts > 0:
            raise Rejected("seal.attempt-unbound", "a sealv1 on a TaskRun retried %d times"
                           % tr.earlier_attempts)
    elif int(seal.attempt) != tr.earlier_attempts:
        raise Rejected("seal.attempt-mismatch", "the seal's attempt %s, the status's %d"
                       % (seal.attempt, tr.earlier_attempts))

    # 6. Signing time within the run (exact: times are nanoseconds, section 9.1.4).
    t = seal.signed_at_epoch
    if not (tr.start - skew * NS <= t * NS <= tr.completion + skew * NS):
        raise Rejected("seal.time-outside-run", "signed-at %s outside the run" % seal.signed_at)

    # 7. Certificates parse.
    carried: list[Cert] = []
    for der in seal.certs:
        try:
            carried.append(parse_cert(der))
        except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as e:
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
        first_failure = None  # the code noted for the first candidate tried
        for cand, is_root in [(r, True) for r in root_cands] + [(c, False) for c in carried_cands]:
            if not _combination_ok(cur, cand):
                first_failure = first_failure or "signature.algorithm"
                continue
            if _verify_cert_signature(cur, cand):
                found, from_roots = cand, is_root
                break
            first_failure = first_failure or "chain.signature"
        if found is None:
            if first_failure is not None:
                raise Rejected(first_failure, "no candidate issuer verifies the certificate")
            raise Rejected("chain.untrusted", "no path to a bundle root")
        # The first candidate that verifies is the issuer: if it is no CA, the check
        # ends; no other candidate is tried.
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

    # 10. Constraints of the CAs on the path, the root included.
    for i, ca in enumerate(path[1:], start=1):
        try:
            limit = ca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.path_length
        except x509.ExtensionNotFound:
            limit = None
        if limit is not None and i - 1 > limit:
            raise Rejected("chain.path-length", "%d intermediates below a CA allowing %d" % (i - 1, limit))
        if ca.uri_constraints is None:
            continue
        permitted, excluded = ca.uri_constraints
        for below in path[:i]:
            for uri in _uri_sans(below):
                host = uri_host(uri)
                ok = host is not None and (not permitted or any(_host_matches(host, c) for c in permitted)) \
                    and not any(_host_matches(host, c) for c in excluded)
                if not ok:
                    raise Rejected("chain.name-constraints", "URI %s outside a CA's name constraints" % uri)

    # 11. Validity at the signing time (whole seconds).
    for c in path:
        if t < _dt_to_epoch(c.x509.not_valid_before_utc):
            raise Rejected("chain.not-yet-valid", "a certificate is not yet valid at signed-at")
        if t > _dt_to_epoch(c.x509.not_valid_after_utc):
            raise Rejected("chain.expired", "a certificate has expired at signed-at")

    # 12. X.509-SVID.
    exts = leaf.extensions
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

    # 13. Trust domain.
    if parsed[0] != trust_domain:
        raise Rejected("identity.trust-domain", "SPIFFE ID in trust domain %s" % parsed[0])

    # 14. Identity.
    if not (valid_path_segment(tr.namespace) and valid_path_segment(tr.name)):
        raise Rejected("identity.mismatch", "the namespace or name cannot form a SPIFFE ID")
    expected = "spiffe://%s/ns/%s/taskrun/%s" % (trust_domain, tr.namespace, tr.name)
    if spiffe_id != expected:
        raise Rejected("identity.mismatch", "SPIFFE ID %s, expected %s" % (spiffe_id, expected))

    # 15. Key: its kind, from the SubjectPublicKeyInfo as written.
    kind = _key_kind(leaf)
    if kind not in ("p256", "rsa"):
        raise Rejected("signature.algorithm", "the leaf's key is not P-256 or RSA 2048-8192")

    # 16. Signature. A key section 7 cannot use verifies nothing.
    msg = build_message(tr, seal.signed_at, seal.attempt)
    sig = seal.signature
    try:
        key = _usable_key(leaf)
        if key is None:
            raise InvalidSignature()
        if kind == "p256":
            # Section 7: exactly the DER Ecdsa-Sig-Value (re-encoding gives the same
            # bytes); BER or trailing bytes fail.
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
    "usage: seal_verifier.py --taskrun FILE|- --bundle FILE [--bundle FILE...] --trust-domain TD "
    "[--require-format seal|tekton] [--clock-skew SECONDS] [--output text|json]"
)


class UsageError(Exception):
    """A command line that section 9.3 does not accept: exit 2, no reason code."""


def parse_args(argv: list[str]) -> dict:
    opts = {"taskrun": None, "bundles": [], "trust_domain": None, "require_format": None,
            "clock_skew": DEFAULT_SKEW, "output": "text"}
    given: set[str] = set()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" in a:
            flag, val = a.split("=", 1)
            i += 1
        else:
            flag = a
            if i + 1 >= len(argv):
                raise UsageError("%s needs a value" % a)
            val = argv[i + 1]
            if val.startswith("-") and val != "-":
                raise UsageError("unexpected argument %s" % val)
            i += 2
        if flag != "--bundle":
            if flag in given:
                raise UsageError("%s given twice" % flag)
            given.add(flag)
        if flag == "--taskrun":
            opts["taskrun"] = val
        elif flag == "--bundle":
            opts["bundles"].append(val)
        elif flag == "--trust-domain":
            opts["trust_domain"] = val
        elif flag == "--require-format":
            if val not in ("seal", "tekton"):
                raise UsageError("--require-format is seal or tekton")
            opts["require_format"] = val
        elif flag == "--clock-skew":
            if not re.fullmatch(r"\+?[0-9]+", val) or int(val) > MAX_SKEW:
                raise UsageError("--clock-skew is a whole number of seconds, 0 to %d" % MAX_SKEW)
            opts["clock_skew"] = int(val)
        elif flag == "--output":
            if val not in ("text", "json"):
                raise UsageError("--output is text or json")
            opts["output"] = val
        else:
            raise UsageError("unknown argument %s" % a)
    if opts["taskrun"] is None or not opts["bundles"] or opts["trust_domain"] is None:
        raise UsageError("--taskrun, --bundle and --trust-domain are required")
    return opts


def _json_requested(argv: list[str]) -> bool:
    """Section 9.3: --output json or -o json anywhere, in any spelling."""
    return any(a in ("--output=json", "-o=json", "-ojson")
               or (a in ("--output", "-o") and i + 1 < len(argv) and argv[i + 1] == "json")
               for i, a in enumerate(argv))


def run(argv: list[str]) -> tuple[int, dict, str]:
    """Runs the CLI in-process: (exit code, JSON object, output format). A usage error
    gives (2, {"usage": message}, "text"), or under --output json the JSON object."""
    try:
        opts = parse_args(argv)
    except UsageError as e:
        if _json_requested(argv):
            return 2, {"schemaVersion": 1, "verdict": "invalid", "taskRun": None,
                       "source": None, "reason": {"code": "usage", "message": str(e)}}, "json"
        return 2, {"usage": "%s\n%s" % (e, USAGE)}, "text"
    output = opts["output"]
    head = {"schemaVersion": 1, "taskRun": None, "source": None}
    tr = None
    try:
        # Section 9.1.1: the trust domain, then each bundle, then the TaskRun.
        trust_domain = expected_trust_domain(opts["trust_domain"])
        if trust_domain is None:
            raise Invalid("input.trust-domain", "not a valid trust domain name")
        roots = load_bundles(opts["bundles"])
        head["source"] = {"file": opts["taskrun"], "item": None}
        tr = read_taskrun(opts["taskrun"])
        v = verify(tr, roots, trust_domain, opts["require_format"], opts["clock_skew"])
    except Invalid as e:
        if e.code == "bundle.invalid":
            head["source"] = {"file": e.path, "item": None}
        return 2, {**head, "verdict": "invalid",
                   "reason": {"code": e.code, "message": e.message}}, output
    except Rejected as e:
        who = getattr(e, "taskrun", None) or tr
        if who is not None:
            head["taskRun"] = {"namespace": who.namespace, "name": who.name, "uid": who.uid}
        return 1, {**head, "verdict": "rejected",
                   "reason": {"code": e.code, "message": e.message}}, output
    head["taskRun"] = {"namespace": tr.namespace, "name": tr.name, "uid": tr.uid}
    return 0, {**head, "verdict": "verified", "format": v.format, "spiffeId": v.spiffe_id,
               "signedAt": v.signed_at, "results": v.results}, output


def main(argv: list[str] | None = None) -> int:
    code, obj, output = run(sys.argv[1:] if argv is None else argv)
    if "usage" in obj:
        print(obj["usage"], file=sys.stderr)
    elif output == "json":
        print(json.dumps(obj, ensure_ascii=False))
    elif obj["verdict"] == "verified":
        who = obj["taskRun"]
        print("verified %s/%s: %d result(s) signed by %s at %s (seal format)"
              % (who["namespace"], who["name"], len(obj["results"]), obj["spiffeId"],
                 obj["signedAt"]))
    elif obj["verdict"] == "rejected":
        who = obj["taskRun"] or {"namespace": "?", "name": "?"}
        print("rejected %s/%s [%s]: %s" % (who["namespace"], who["name"],
                                           obj["reason"]["code"], obj["reason"]["message"]),
              file=sys.stderr)
    else:
        print("error [%s]: %s" % (obj["reason"]["code"], obj["reason"]["message"]),
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
