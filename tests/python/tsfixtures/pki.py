"""A SPIRE-like PKI: root CA, intermediate CA and X.509-SVID leaves, with knobs for bad variants.

Everything is deterministic: keys are derived from labels, ECDSA signatures use RFC 6979 and
validity windows are explicit, so regenerating the committed fixtures gives identical bytes.
These keys are for test fixtures only; they are never written to disk.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "example.org"


def utc(text: str) -> dt.datetime:
    """Parse an RFC 3339 UTC time such as 2025-06-01T12:00:00Z."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------- deterministic keys

def _seed(label: str) -> int:
    return int.from_bytes(hashlib.sha256(b"tsfixtures/" + label.encode()).digest(), "big")


def ec_key(label: str, curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """An EC key whose scalar is derived from the label (P-256 unless told otherwise)."""
    curve = curve or ec.SECP256R1()
    order = {"secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
             "secp384r1": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
                              "581A0DB248B0A77AECEC196ACCC52973", 16)}[curve.name]
    # A 256-bit seed is enough for P-384 test keys; reduce into [1, order - 1].
    return ec.derive_private_key(_seed(label) % (order - 1) + 1, curve)


def _probable_prime(rng: random.Random, bits: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # top two bits: full-size n
        if candidate % 65537 != 1 and _miller_rabin(candidate, rng):
            return candidate


def _miller_rabin(n: int, rng: random.Random, rounds: int = 40) -> bool:
    for small in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key whose primes come from a label-seeded PRNG (cryptography cannot seed keygen)."""
    rng = random.Random(_seed(label))
    e = 65537
    p = _probable_prime(rng, bits // 2)
    q = _probable_prime(rng, bits // 2)
    while q == p:
        q = _probable_prime(rng, bits // 2)
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    private = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), public)
    return private.private_key()


# ---------------------------------------------------------------- certificates

@dataclass
class KeyUsageBits:
    digital_signature: bool = False
    key_encipherment: bool = False
    key_agreement: bool = False
    key_cert_sign: bool = False
    crl_sign: bool = False

    def extension(self) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=self.digital_signature, content_commitment=False,
            key_encipherment=self.key_encipherment, data_encipherment=False,
            key_agreement=self.key_agreement, key_cert_sign=self.key_cert_sign,
            crl_sign=self.crl_sign, encipher_only=False, decipher_only=False)


CA_USAGE = KeyUsageBits(key_cert_sign=True, crl_sign=True)  # what SPIRE puts on its CAs
SVID_USAGE = KeyUsageBits(digital_signature=True, key_encipherment=True, key_agreement=True)


@dataclass
class Credential:
    """A certificate and the key that belongs to it (kept in memory only)."""
    cert: x509.Certificate
    key: object

    def pem(self) -> str:
        return cert_pem(self.cert)


@dataclass
class CertSpec:
    """Everything that may vary between a good certificate and a bad variant."""
    label: str
    subject: x509.Name
    not_before: dt.datetime
    not_after: dt.datetime
    uris: list[str] = field(default_factory=list)
    is_ca: bool = False
    key_usage: KeyUsageBits | None = None
    server_client_eku: bool = False
    key_kind: str = "p256"  # p256 | p384 | rsa2048 | rsa1024 (too short: a bad variant)
    signature_hash: str = "sha256"  # the hash the issuer signs this certificate with
    extra_extensions: list = field(default_factory=list)  # (extension, critical) pairs
    path_length: int | None = None  # basicConstraints pathLenConstraint (CAs only)


def _make_key(spec: CertSpec):
    if spec.key_kind == "p256":
        return ec_key(spec.label)
    if spec.key_kind == "p384":
        return ec_key(spec.label, ec.SECP384R1())
    if spec.key_kind == "rsa2048":
        return rsa_key(spec.label, 2048)
    if spec.key_kind == "rsa1024":
        return rsa_key(spec.label, 1024)
    raise ValueError(f"unknown key kind {spec.key_kind!r}")


def _serial(label: str) -> int:
    return (_seed("serial/" + label) >> 97) | 1  # positive, < 2**159, never zero


_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def issue(spec: CertSpec, issuer: Credential | None) -> Credential:
    """Issue a certificate for spec; issuer None means self-signed."""
    key = _make_key(spec)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else spec.subject
    builder = (x509.CertificateBuilder()
               .subject_name(spec.subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(_serial(spec.label))
               .not_valid_before(spec.not_before).not_valid_after(spec.not_after))
    if spec.key_usage is not None:
        builder = builder.add_extension(spec.key_usage.extension(), critical=True)
    if spec.server_client_eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=spec.is_ca, path_length=spec.path_length), critical=True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                    critical=False)
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False)
    if spec.uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in spec.uris]),
            critical=False)
    for extension, critical in spec.extra_extensions:
        builder = builder.add_extension(extension, critical=critical)
    # RFC 6979 ECDSA keeps the certificate bytes identical across regenerations.
    deterministic = True if isinstance(signer_key, ec.EllipticCurvePrivateKey) else None
    cert = builder.sign(signer_key, _HASHES[spec.signature_hash](),
                        ecdsa_deterministic=deterministic)
    return Credential(cert, key)


def ca_subject(label: str) -> x509.Name:
    # SPIRE's default CA subject is C=US, O=SPIFFE plus the serial number.
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIFFE"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, str(_serial(label)))])


def svid_subject(spiffe_id: str) -> x509.Name:
    # SPIRE's default workload subject, C=US, O=SPIRE, plus a per-identity unique id.
    unique = hashlib.sha256(spiffe_id.encode()).hexdigest()[:32]
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIRE"),
                      x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, unique)])


def taskrun_spiffe_id(namespace: str, name: str, trust_domain: str = TRUST_DOMAIN) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/taskrun/{name}"


def root_ca(label: str, not_before: str, not_after: str,
            trust_domain: str = TRUST_DOMAIN, key_kind: str = "p256",
            signature_hash: str = "sha256", path_length: int | None = None,
            extra_extensions: list | None = None) -> Credential:
    """A self-signed SPIRE-style root CA (P-256 unless told otherwise)."""
    return issue(CertSpec(label=label, subject=ca_subject(label), not_before=utc(not_before),
                          not_after=utc(not_after), uris=[f"spiffe://{trust_domain}"],
                          is_ca=True, key_usage=CA_USAGE, key_kind=key_kind,
                          signature_hash=signature_hash, path_length=path_length,
                          extra_extensions=list(extra_extensions or [])), None)


def intermediate_ca(label: str, parent: Credential, not_before: str, not_after: str,
                    is_ca: bool = True, trust_domain: str = TRUST_DOMAIN,
                    key_kind: str = "p256", signature_hash: str = "sha256",
                    path_length: int | None = None,
                    extra_extensions: list | None = None) -> Credential:
    """A SPIRE-style intermediate (as with an UpstreamAuthority); is_ca=False is a bad variant.
    signature_hash is the hash the parent signs it with."""
    subject = x509.Name(list(ca_subject(label)) + [
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DOWNSTREAM-1")])
    return issue(CertSpec(label=label, subject=subject, not_before=utc(not_before),
                          not_after=utc(not_after), uris=[f"spiffe://{trust_domain}"],
                          is_ca=is_ca, key_usage=CA_USAGE, key_kind=key_kind,
                          signature_hash=signature_hash, path_length=path_length,
                          extra_extensions=list(extra_extensions or [])), parent)


def svid_spec(label: str, spiffe_id: str, not_before: str, not_after: str, **knobs) -> CertSpec:
    """The spec of a good X.509-SVID; keyword knobs override single properties."""
    spec = CertSpec(label=label, subject=svid_subject(spiffe_id), not_before=utc(not_before),
                    not_after=utc(not_after), uris=[spiffe_id], is_ca=False,
                    key_usage=SVID_USAGE, server_client_eku=True)
    for name, value in knobs.items():
        if not hasattr(spec, name):
            raise TypeError(f"unknown SVID knob {name!r}")
        setattr(spec, name, value)
    return spec


def svid(label: str, issuer: Credential | None, spiffe_id: str, not_before: str,
         not_after: str, **knobs) -> Credential:
    """An X.509-SVID issued by issuer (None: self-signed, a bad variant)."""
    return issue(svid_spec(label, spiffe_id, not_before, not_after, **knobs), issuer)


# ---------------------------------------------------------------- encodings

def cert_pem(cert: x509.Certificate) -> str:
    """PEM with 64-column lines and a trailing newline, as Go's pem.EncodeToMemory writes it."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64url_int(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()


def _jwk(key, use: str) -> dict:
    numbers = key.public_numbers()
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
        return {"use": use, "kty": "EC", "crv": crv,
                "x": _b64url_int(numbers.x, size), "y": _b64url_int(numbers.y, size)}
    size = (key.key_size + 7) // 8
    return {"use": use, "kty": "RSA", "n": _b64url_int(numbers.n, size),
            "e": _b64url_int(numbers.e, 3)}


def spiffe_bundle(roots: list[x509.Certificate], sequence: int = 1,
                  jwt_keys: dict[str, object] | None = None) -> str:
    """A SPIFFE bundle (JWKS) as `spire-server bundle show -format spiffe` prints it."""
    keys = []
    for root in roots:
        entry = _jwk(root.public_key(), "x509-svid")
        entry["x5c"] = [base64.b64encode(root.public_bytes(serialization.Encoding.DER)).decode()]
        keys.append(entry)
    for kid, key in (jwt_keys or {}).items():
        entry = _jwk(key, "jwt-svid")
        entry = {"use": entry.pop("use"), "kty": entry.pop("kty"), "kid": kid, **entry}
        keys.append(entry)
    return json.dumps({"keys": keys, "spiffe_sequence": sequence}, indent=4) + "\n"
