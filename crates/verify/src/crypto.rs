//! Signature checks with ring: certificate signatures on a chain, and the signatures a
//! leaf makes over results.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// The kind of a public key, as far as verification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Rsa,
    Unsupported,
}

/// A public key taken from a certificate.
#[derive(Debug, Clone)]
pub(crate) struct PublicKey {
    pub(crate) kind: KeyKind,
    /// For ECDSA the uncompressed point, for RSA the `RSAPublicKey` DER.
    bits: Vec<u8>,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureError {
    /// The key or algorithm is one this verifier does not accept.
    Unsupported(String),
    /// The signature does not verify.
    Invalid,
}

impl PublicKey {
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let algorithm = &spki.algorithm;
        let kind = if algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            match curve(algorithm) {
                Some(c) if c == OID_EC_P256 => KeyKind::EcdsaP256,
                Some(c) if c == OID_NIST_EC_P384 => KeyKind::EcdsaP384,
                _ => KeyKind::Unsupported,
            }
        } else if algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
            // ring refuses keys outside 2048..=8192 bits with the same error as a bad
            // signature; telling them apart here names the real problem.
            match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(key))
                    if (2048..=8192).contains(&modulus_bits(key.modulus)) =>
                {
                    KeyKind::Rsa
                }
                _ => KeyKind::Unsupported,
            }
        } else {
            KeyKind::Unsupported
        };
        Self {
            kind,
            bits: spki.subject_public_key.data.to_vec(),
        }
    }

    /// Human-readable name of the key type, for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self.kind {
            KeyKind::EcdsaP256 => "ECDSA P-256",
            KeyKind::EcdsaP384 => "ECDSA P-384",
            KeyKind::Rsa => "RSA",
            KeyKind::Unsupported => "an unsupported key type or size",
        }
    }

    /// Checks a signature the SVID's key made over `message`, the way both formats sign:
    /// SHA-256, then ECDSA P-256 (ASN.1 DER) or RSA PKCS#1 v1.5 (2048 to 8192 bits).
    pub(crate) fn verify_message(&self, message: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let algorithm: &dyn VerificationAlgorithm = match self.kind {
            KeyKind::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyKind::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
            KeyKind::EcdsaP384 | KeyKind::Unsupported => {
                return Err(SignatureError::Unsupported(format!(
                    "signing keys must be ECDSA P-256 or RSA of 2048 to 8192 bits; this SVID has {}",
                    self.describe()
                )));
            }
        };
        check(algorithm, &self.bits, message, sig)
    }

    /// Checks a certificate signature made by this (issuer) key.
    pub(crate) fn verify_certificate(
        &self,
        signature_algorithm: &AlgorithmIdentifier<'_>,
        tbs: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        let oid = &signature_algorithm.algorithm;
        let algorithm: &dyn VerificationAlgorithm = match self.kind {
            KeyKind::EcdsaP256 if *oid == OID_SIG_ECDSA_WITH_SHA256 => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            KeyKind::EcdsaP256 if *oid == OID_SIG_ECDSA_WITH_SHA384 => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            KeyKind::EcdsaP384 if *oid == OID_SIG_ECDSA_WITH_SHA256 => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            KeyKind::EcdsaP384 if *oid == OID_SIG_ECDSA_WITH_SHA384 => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            KeyKind::Rsa if *oid == OID_PKCS1_SHA256WITHRSA => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            KeyKind::Rsa if *oid == OID_PKCS1_SHA384WITHRSA => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            KeyKind::Rsa if *oid == OID_PKCS1_SHA512WITHRSA => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            _ => {
                return Err(SignatureError::Unsupported(format!(
                    "certificate signature algorithm {oid} with an issuer key of {}",
                    self.describe()
                )));
            }
        };
        check(algorithm, &self.bits, tbs, sig)
    }
}

/// The bit length of a big-endian modulus (x509-parser's `key_size` rounds to bytes).
fn modulus_bits(modulus: &[u8]) -> usize {
    let significant = modulus
        .iter()
        .position(|b| *b != 0)
        .map_or(&[][..], |i| &modulus[i..]);
    match significant.first() {
        None => 0,
        Some(first) => (significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn curve(
    algorithm: &AlgorithmIdentifier<'_>,
) -> Option<x509_parser::der_parser::oid::Oid<'static>> {
    algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_owned())
}

fn check(
    algorithm: &'static dyn VerificationAlgorithm,
    key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), SignatureError> {
    UnparsedPublicKey::new(algorithm, key)
        .verify(message, sig)
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::modulus_bits;

    #[test]
    fn modulus_bits_count_the_leading_byte_exactly() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        let mut m = vec![0x01];
        m.extend([0xff; 1024]);
        assert_eq!(modulus_bits(&m), 8193, "x509-parser would say 8192");
    }
}
