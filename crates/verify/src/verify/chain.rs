//! The certificate chain: a path from the signing certificate to a trusted root, judged
//! at the signing time, and the rules that make the leaf an X.509-SVID.

use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::bundle::TrustBundle;
use crate::crypto::{PublicKey, SignatureError};
use crate::spiffe_id::SpiffeId;
use crate::verify::Rejection;

/// Most certificates a chain may carry (leaf and intermediates). SPIRE deployments use
/// one or two levels of upstream CAs; a longer chain is refused rather than searched.
pub(crate) const MAX_CHAIN_LEN: usize = 8;

/// What a verified chain proves: the leaf's SPIFFE ID and its key.
#[derive(Debug)]
pub(crate) struct VerifiedLeaf {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) key: PublicKey,
}

/// Verifies `chain` (DER, leaf first, then intermediates) against `bundle` at time `at`.
///
/// Checks, in order:
/// 1. every certificate parses, extensions included;
/// 2. a path leads from the leaf through carried intermediates to a bundle root, each
///    signature on it verifying with its issuer's key, each issuer a CA that may sign
///    certificates;
/// 3. every carried certificate is on that path;
/// 4. every certificate on the path, the root included, is valid at `at`;
/// 5. the leaf is an X.509-SVID: exactly one URI SAN holding a SPIFFE ID, not a CA,
///    key usage `digitalSignature` without `keyCertSign` or `cRLSign`.
pub(crate) fn verify_chain(
    chain: &[Vec<u8>],
    bundle: &TrustBundle,
    at: OffsetDateTime,
) -> Result<VerifiedLeaf, Rejection> {
    // 1. Parse.
    if chain.len() > MAX_CHAIN_LEN {
        return Err(Rejection::MalformedCertificate {
            index: MAX_CHAIN_LEN,
            problem: format!("the chain carries more than {MAX_CHAIN_LEN} certificates"),
        });
    }
    let carried = chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            parse(der).map_err(|problem| Rejection::MalformedCertificate { index, problem })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The bundle loader parsed every root with `parse` already.
    let roots = bundle
        .roots()
        .filter_map(|der| parse(der).ok())
        .collect::<Vec<_>>();
    let Some(leaf) = carried.first() else {
        return Err(Rejection::MalformedCertificate {
            index: 0,
            problem: "the chain holds no certificate".into(),
        });
    };

    // 2. Build the path. A bundle root ends it; otherwise an unused carried
    // certificate extends it. Both are tried before a name match that fails to verify
    // is reported, so a root that merely shares an issuer's name cannot hide the real one.
    let mut path: Vec<&X509Certificate<'_>> = vec![leaf];
    let mut used = vec![false; carried.len()];
    used[0] = true;
    loop {
        let current = path[path.len() - 1];
        let roots_then_carried = roots.iter().map(|c| (None, c)).chain(
            carried
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .map(|(i, c)| (Some(i), c)),
        );
        match find_issuer(current, roots_then_carried)? {
            (None, root) => {
                path.push(root);
                break;
            }
            (Some(i), intermediate) => {
                used[i] = true;
                path.push(intermediate);
            }
        }
    }

    // 3. Nothing carried that does not belong.
    if let Some((stray, _)) = carried.iter().zip(&used).find(|(_, used)| !**used) {
        return Err(Rejection::ExtraCertificate {
            subject: stray.subject().to_string(),
        });
    }

    // 4. Validity at the signing time.
    for cert in &path {
        let validity = cert.validity();
        let (not_before, not_after) = (
            validity.not_before.to_datetime(),
            validity.not_after.to_datetime(),
        );
        if at < not_before {
            return Err(Rejection::NotYetValid {
                subject: cert.subject().to_string(),
                not_before,
                at,
            });
        }
        if at > not_after {
            return Err(Rejection::Expired {
                subject: cert.subject().to_string(),
                not_after,
                at,
            });
        }
    }

    // 5. The leaf is an X.509-SVID.
    let spiffe_id = check_svid(leaf)?;
    Ok(VerifiedLeaf {
        spiffe_id,
        key: PublicKey::from_spki(leaf.public_key()),
    })
}

/// Parses one DER certificate strictly: nothing after it, every extension parses, and no
/// critical extension is one this verifier does not understand (RFC 5280, 4.2).
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| format!("not X.509 DER: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    // The same extension twice is ambiguous (which one counts?): refuse it.
    cert.tbs_certificate
        .extensions_map()
        .map_err(|e| format!("an extension appears twice: {e}"))?;
    // Reject extensions that fail to parse rather than skipping them.
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(format!("extension {} does not parse: {error}", ext.oid));
            }
            ParsedExtension::UnsupportedExtension { .. } if ext.critical => {
                return Err(format!("critical extension {} is not understood", ext.oid));
            }
            _ => {}
        }
    }
    Ok(cert)
}

/// The first candidate named as `child`'s issuer whose key verifies `child`'s signature,
/// with its position among the carried certificates (`None` for a bundle root). When no
/// candidate verifies, a name match that failed is reported, else the chain is untrusted.
fn find_issuer<'c, 'a: 'c>(
    child: &X509Certificate<'_>,
    candidates: impl Iterator<Item = (Option<usize>, &'c X509Certificate<'a>)>,
) -> Result<(Option<usize>, &'c X509Certificate<'a>), Rejection> {
    let mut failure = None;
    for (position, candidate) in candidates {
        if candidate.subject().as_raw() != child.issuer().as_raw() {
            continue;
        }
        let key = PublicKey::from_spki(candidate.public_key());
        match key.verify_certificate(
            &child.signature_algorithm,
            child.tbs_certificate.as_ref(),
            &child.signature_value.data,
        ) {
            Ok(()) => {
                check_issuer_is_ca(candidate)?;
                return Ok((position, candidate));
            }
            Err(SignatureError::Invalid) => {
                failure.get_or_insert(Rejection::BadCertificateSignature {
                    subject: child.subject().to_string(),
                });
            }
            Err(SignatureError::Unsupported(detail)) => {
                failure.get_or_insert(Rejection::UnsupportedAlgorithm { detail });
            }
        }
    }
    Err(failure.unwrap_or_else(|| Rejection::Untrusted {
        subject: child.subject().to_string(),
    }))
}

fn check_issuer_is_ca(issuer: &X509Certificate<'_>) -> Result<(), Rejection> {
    let not_ca = || Rejection::IssuerNotCa {
        subject: issuer.subject().to_string(),
    };
    let is_ca = matches!(issuer.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let may_sign = match issuer.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    if is_ca && may_sign {
        Ok(())
    } else {
        Err(not_ca())
    }
}

fn check_svid(leaf: &X509Certificate<'_>) -> Result<SpiffeId, Rejection> {
    let malformed = |problem: String| Rejection::MalformedCertificate { index: 0, problem };
    let sans = leaf
        .subject_alternative_name()
        .map_err(|e| malformed(format!("subjectAltName: {e}")))?;
    let uris: Vec<&str> = sans
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let [uri] = uris[..] else {
        return Err(Rejection::UriSanCount { count: uris.len() });
    };
    let spiffe_id = SpiffeId::parse(uri).map_err(Rejection::InvalidSpiffeId)?;

    let constraints = leaf
        .basic_constraints()
        .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
    if constraints.is_some_and(|bc| bc.value.ca) {
        return Err(Rejection::LeafIsCa);
    }
    let usage = leaf
        .key_usage()
        .map_err(|e| malformed(format!("keyUsage: {e}")))?
        .ok_or(Rejection::LeafKeyUsage {
            rule: "must have a keyUsage extension",
        })?;
    if !usage.value.digital_signature() {
        return Err(Rejection::LeafKeyUsage {
            rule: "must have 'digitalSignature' set as key usage",
        });
    }
    if usage.value.key_cert_sign() {
        return Err(Rejection::LeafKeyUsage {
            rule: "must not have 'keyCertSign' set as key usage",
        });
    }
    if usage.value.crl_sign() {
        return Err(Rejection::LeafKeyUsage {
            rule: "must not have 'cRLSign' set as key usage",
        });
    }
    Ok(spiffe_id)
}
