//! Trust bundles: the root certificates of one trust domain, loaded strictly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// Largest bundle file read, in bytes: a bundle holds a handful of CA certificates.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

/// Why a trust bundle could not be loaded. Not worth retrying: fix the file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is larger than [`MAX_BUNDLE_BYTES`].
    #[error("the bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    /// No certificate was found.
    #[error(
        "the bundle holds no certificate; expected PEM CERTIFICATE blocks or a SPIFFE bundle (JSON with keys[].x5c), as 'spire-server bundle show -format spiffe' prints"
    )]
    Empty,
    /// The PEM could not be parsed, or held a block other than CERTIFICATE.
    #[error("the bundle's PEM is malformed: {problem}")]
    Pem {
        /// What is wrong with it.
        problem: String,
    },
    /// The SPIFFE bundle JSON could not be parsed.
    #[error("the SPIFFE bundle JSON is malformed")]
    Json(#[source] serde_json::Error),
    /// A key of a SPIFFE bundle has no usable `x5c` certificate.
    #[error("key {index} of the SPIFFE bundle is not an X.509-SVID authority: {problem}")]
    Key {
        /// Position of the key in `keys`.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A certificate does not parse as X.509 DER, or has an extension that does not
    /// parse or a critical one that is not understood.
    #[error("certificate {index} of the bundle is not valid X.509: {problem}")]
    Certificate {
        /// Position of the certificate in the bundle.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// Root certificates trusted for one trust domain. Several bundle files (CA rotation)
/// are merged into one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    roots: Vec<Vec<u8>>,
}

impl TrustBundle {
    /// Loads a bundle file: PEM `CERTIFICATE` blocks, or a SPIFFE bundle (a JWKS whose
    /// keys with `"use": "x509-svid"` carry the CA in `x5c`). JWT authorities in a SPIFFE
    /// bundle are skipped: they do not sign certificates.
    ///
    /// # Errors
    /// On anything malformed, including one bad certificate among good ones: trust
    /// material is loaded strictly.
    pub fn load(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Error::TooLarge);
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let roots = match first {
            None => return Err(Error::Empty),
            Some(b'{') => from_spiffe_json(bytes)?,
            Some(_) => from_pem(bytes)?,
        };
        if roots.is_empty() {
            return Err(Error::Empty);
        }
        for (index, der) in roots.iter().enumerate() {
            crate::verify::parse_certificate(der)
                .map_err(|problem| Error::Certificate { index, problem })?;
        }
        Ok(Self { roots })
    }

    /// Adds the roots of another bundle of the same trust domain.
    pub fn extend(&mut self, other: TrustBundle) {
        for root in other.roots {
            if !self.roots.contains(&root) {
                self.roots.push(root);
            }
        }
    }

    /// The roots, DER-encoded.
    pub fn roots(&self) -> impl Iterator<Item = &[u8]> {
        self.roots.iter().map(Vec::as_slice)
    }
}

fn from_pem(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let blocks = pem::parse_many(bytes).map_err(|e| Error::Pem {
        problem: e.to_string(),
    })?;
    blocks
        .into_iter()
        .map(|block| {
            if block.tag() == "CERTIFICATE" {
                Ok(block.into_contents())
            } else {
                Err(Error::Pem {
                    problem: format!(
                        "unexpected {} block (only CERTIFICATE belongs in a bundle)",
                        block.tag()
                    ),
                })
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct SpiffeBundle {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(rename = "use", default)]
    key_use: Option<String>,
    #[serde(default)]
    x5c: Option<Vec<String>>,
}

fn from_spiffe_json(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    // serde would also read a key from an array, positionally: keys must be objects.
    let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(Error::Json)?;
    let keys_are_objects = raw
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|keys| keys.iter().all(serde_json::Value::is_object));
    if !raw.is_object() || !keys_are_objects {
        return Err(Error::Key {
            index: 0,
            problem: "a SPIFFE bundle is an object whose \"keys\" is an array of objects".into(),
        });
    }
    let bundle: SpiffeBundle = serde_json::from_value(raw).map_err(Error::Json)?;
    let mut roots = Vec::new();
    for (index, key) in bundle.keys.into_iter().enumerate() {
        let problem = |p: &str| Error::Key {
            index,
            problem: p.into(),
        };
        match key.key_use.as_deref() {
            Some("x509-svid") => {}
            // The SPIFFE bundle format says keys of other uses are ignored.
            Some(_) => continue,
            None => {
                return Err(problem("it has no \"use\" (x509-svid or jwt-svid)"));
            }
        }
        // The SPIFFE bundle format requires exactly one certificate per X.509 authority.
        let [cert] = key.x5c.unwrap_or_default().try_into().map_err(|_| {
            problem("an X.509-SVID authority must carry exactly one certificate in x5c")
        })?;
        roots.push(
            STANDARD
                .decode(cert)
                .map_err(|_| problem("x5c is not standard base64"))?,
        );
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_blank_file_is_refused_with_a_hint() {
        for input in [&b""[..], b" \n"] {
            let err = TrustBundle::load(input).unwrap_err();
            assert!(matches!(err, Error::Empty));
            assert!(err.to_string().contains("spire-server bundle show"));
        }
    }

    #[test]
    fn a_private_key_block_is_not_trust_material() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            TrustBundle::load(pem.as_bytes()),
            Err(Error::Pem { .. })
        ));
    }

    #[test]
    fn a_certificate_block_holding_garbage_is_refused() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TrustBundle::load(pem.as_bytes()),
            Err(Error::Certificate { index: 0, .. })
        ));
    }

    #[test]
    fn a_spiffe_bundle_with_only_jwt_authorities_is_empty() {
        let json = br#"{"keys":[{"use":"jwt-svid","kty":"EC"}]}"#;
        assert!(matches!(TrustBundle::load(json), Err(Error::Empty)));
    }

    #[test]
    fn a_spiffe_key_with_two_certificates_is_refused() {
        let json = br#"{"keys":[{"use":"x509-svid","x5c":["AAAA","AAAA"]}]}"#;
        assert!(matches!(
            TrustBundle::load(json),
            Err(Error::Key { index: 0, .. })
        ));
    }
}
