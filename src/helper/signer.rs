//! Signing with the SVID's private key: ECDSA P-256 (ASN.1 DER) or RSA PKCS#1 v1.5, both
//! over SHA-256, as both formats define.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};

/// Why the SVID's key cannot sign.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key is neither ECDSA P-256 nor RSA.
    #[error(
        "the SVID's private key is neither ECDSA P-256 nor RSA; set the SPIRE server's X.509-SVID key type to ec-p256 or rsa-2048"
    )]
    UnsupportedKey,
    /// The signing operation failed.
    #[error("signing failed")]
    Sign,
}

enum Key {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A key that signs; its `Debug` names only the algorithm.
pub(super) struct Signer {
    key: Key,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.key {
            Key::Ecdsa(_) => "ECDSA P-256",
            Key::Rsa(_) => "RSA",
        };
        f.debug_struct("Signer")
            .field("key", &kind)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Takes a PKCS#8 DER private key, as the Workload API hands it out.
    pub(super) fn from_pkcs8(der: &[u8]) -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let key = if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
        {
            Key::Ecdsa(k)
        } else if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            Key::Rsa(k)
        } else {
            return Err(SignerError::UnsupportedKey);
        };
        Ok(Self { key, rng })
    }

    /// Signs `message` (hashed with SHA-256 by the algorithm).
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            Key::Ecdsa(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignerError::Sign),
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| SignerError::Sign)?;
                Ok(sig)
            }
        }
    }
}
