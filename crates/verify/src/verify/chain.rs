//! The certificate chain: a path from the signing certificate to a trusted root, judged
//! at the signing time, and the rules that make the leaf an X.509-SVID.

use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::bundle::TrustBundle;
use crate::crypto::{PublicKey, SignatureError};
use crate::spiffe_id::SpiffeId;
use crate::verify::{Rejection, der, shape};

/// Extensions whose rules the verifier applies; any other critical extension makes a
/// certificate unusable (RFC 5280, 4.2): basicConstraints, keyUsage, subjectAltName and
/// nameConstraints (of URI names only).
const PROCESSED: [&str; 4] = ["2.5.29.19", "2.5.29.15", "2.5.29.17", "2.5.29.30"];
const NAME_CONSTRAINTS: &str = "2.5.29.30";
const SUBJECT_ALT_NAME: &str = "2.5.29.17";

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
/// 4. every CA on the path, the root included, allows what follows it: no more
///    intermediates below it than its pathLenConstraint, no URI outside its name
///    constraints;
/// 5. every certificate on the path, the root included, is valid at `at`;
/// 6. the leaf is an X.509-SVID: exactly one URI SAN holding a SPIFFE ID, not a CA,
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

    // 4. Constraints of the CAs on the path.
    check_constraints(&path)?;

    // 5. Validity at the signing time.
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

    // 6. The leaf is an X.509-SVID.
    let spiffe_id = check_svid(leaf)?;
    Ok(VerifiedLeaf {
        spiffe_id,
        key: PublicKey::from_spki(leaf.public_key()),
    })
}

/// Parses one DER certificate strictly: DER throughout (see [`der`]), nothing after it,
/// the shape of RFC 5280 with whole tags and identifiers where it has them (see
/// [`shape`]), every extension of a known type parses, no extension twice, and every critical
/// extension is one whose rules are applied ([`PROCESSED`]; RFC 5280, 4.2: a critical
/// extension that is not processed makes the certificate unusable).
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    der::check(der).map_err(|problem| format!("not DER: {problem}"))?;
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| format!("not X.509 DER: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    shape::certificate(der)?;
    // The same extension twice is ambiguous (which one counts?): refuse it.
    cert.tbs_certificate
        .extensions_map()
        .map_err(|e| format!("an extension appears twice: {e}"))?;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        // Reject extensions that fail to parse rather than skipping them.
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(format!("extension {oid} does not parse: {error}"));
        }
        if PROCESSED.contains(&oid.as_str()) {
            der::check(ext.value)
                .map_err(|problem| format!("extension {oid} is not one DER value: {problem}"))?;
        } else if !matches!(
            ext.parsed_extension(),
            ParsedExtension::UnsupportedExtension { .. }
        ) {
            // An understood type: its value is read up to the end of its first DER value,
            // which must be whole (x509-parser reads some values past their own end).
            der::check_first(ext.value)
                .map_err(|problem| format!("extension {oid} is not DER: {problem}"))?;
        }
        if !matches!(
            ext.parsed_extension(),
            ParsedExtension::UnsupportedExtension { .. }
        ) {
            shape::extension(&oid, ext.value)?;
        }
        if ext.critical && !PROCESSED.contains(&oid.as_str()) {
            return Err(format!(
                "critical extension {oid} is not processed by this verifier"
            ));
        }
        if oid == NAME_CONSTRAINTS {
            uri_constraints(ext.value)?;
        }
        if oid == SUBJECT_ALT_NAME {
            ia5_general_names(ext.value)?;
        }
    }
    Ok(cert)
}

/// The IA5String forms of a subjectAltName's names (rfc822Name, dNSName,
/// uniformResourceIdentifier) hold only ASCII; x509-parser does not check it.
fn ia5_general_names(value: &[u8]) -> Result<(), String> {
    let malformed = |problem: &str| format!("subjectAltName: {problem}");
    let names = der::tlv(value).map_err(malformed)?;
    for name in der::items(names.contents) {
        let name = name.map_err(malformed)?;
        if matches!(name.tag, 0x81 | 0x82 | 0x86) && !name.contents.is_ascii() {
            return Err(malformed(
                "a name of an IA5String form holds a byte above 7F",
            ));
        }
    }
    Ok(())
}

/// The URI subtrees of a nameConstraints extension: (permitted, excluded), each the
/// list of hosts (`example.org`) or domains (`.example.org`).
///
/// # Errors
/// When it holds a subtree of another name form, or a minimum or maximum: those are
/// not processed, so the certificate cannot be used.
fn uri_constraints(value: &[u8]) -> Result<(Vec<&str>, Vec<&str>), String> {
    let malformed = |problem: &str| format!("nameConstraints: {problem}");
    let outer = der::tlv(value).map_err(malformed)?;
    if outer.tag != 0x30 || !outer.rest.is_empty() {
        return Err(malformed("not one SEQUENCE"));
    }
    let (mut permitted, mut excluded) = (Vec::new(), Vec::new());
    let mut last_tag = None;
    for subtrees in der::items(outer.contents) {
        let subtrees = subtrees.map_err(malformed)?;
        let list = match subtrees.tag {
            0xa0 if last_tag.is_none() => &mut permitted,
            0xa1 if last_tag != Some(0xa1) => &mut excluded,
            _ => return Err(malformed("subtrees out of order or of an unknown kind")),
        };
        last_tag = Some(subtrees.tag);
        if subtrees.contents.is_empty() {
            return Err(malformed("an empty list of subtrees"));
        }
        for subtree in der::items(subtrees.contents) {
            let subtree = subtree.map_err(malformed)?;
            let base = der::tlv(subtree.contents).map_err(malformed)?;
            if subtree.tag != 0x30 {
                return Err(malformed("a subtree is not a SEQUENCE"));
            }
            if !base.rest.is_empty() {
                return Err(malformed(
                    "a subtree with a minimum or maximum is not processed",
                ));
            }
            // uniformResourceIdentifier [6] IA5String
            if base.tag != 0x86 {
                return Err(malformed(
                    "only URI name constraints are processed; this one has another name form",
                ));
            }
            let host = std::str::from_utf8(base.contents)
                .ok()
                .filter(|h| h.is_ascii() && !h.is_empty())
                .ok_or_else(|| malformed("a URI constraint that is not an ASCII host"))?;
            list.push(host);
        }
    }
    Ok((permitted, excluded))
}

/// Rules 4 of [`verify_chain`]: pathLenConstraint and URI name constraints of every CA on
/// the path (the root included, as Go's verifier does), applied to every certificate
/// below it.
fn check_constraints(path: &[&X509Certificate<'_>]) -> Result<(), Rejection> {
    for (position, ca) in path.iter().enumerate().skip(1) {
        // Every certificate between this one and the leaf counts, self-issued or not.
        let intermediates = position - 1;
        if let Ok(Some(bc)) = ca.basic_constraints()
            && let Some(limit) = bc.value.path_len_constraint
            && intermediates > limit as usize
        {
            return Err(Rejection::PathLength {
                subject: ca.subject().to_string(),
                limit,
                intermediates,
            });
        }
        let Some(ext) = ca
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == NAME_CONSTRAINTS)
        else {
            continue;
        };
        // Parsed at step 1 already.
        let (permitted, excluded) =
            uri_constraints(ext.value).map_err(|problem| Rejection::MalformedCertificate {
                index: position,
                problem,
            })?;
        for below in &path[..position] {
            for uri in uri_sans(below) {
                let host = uri_host(uri);
                let allowed = host.is_some_and(|host| {
                    (permitted.is_empty() || permitted.iter().any(|c| host_matches(host, c)))
                        && !excluded.iter().any(|c| host_matches(host, c))
                });
                if !allowed {
                    return Err(Rejection::NameConstraints {
                        issuer: ca.subject().to_string(),
                        uri: uri.to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn uri_sans<'c>(cert: &'c X509Certificate<'_>) -> Vec<&'c str> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::URI(uri) => Some(*uri),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The host of a URI (RFC 3986: after `scheme://`, up to `/`, `?`, `#` or the end,
/// without user information or port), or `None` when there is none or it is an IP
/// literal.
fn uri_host(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    (!host.is_empty() && !host.starts_with('[')).then_some(host)
}

/// RFC 5280, 4.2.1.10: a constraint starting with `.` matches any host below that
/// domain, any other only that host; compared without regard to ASCII case.
fn host_matches(host: &str, constraint: &str) -> bool {
    if constraint.starts_with('.') {
        host.len() > constraint.len()
            && host.is_char_boundary(host.len() - constraint.len())
            && host[host.len() - constraint.len()..].eq_ignore_ascii_case(constraint)
    } else {
        host.eq_ignore_ascii_case(constraint)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_hosts_are_found_as_rfc_3986_says() {
        for (uri, host) in [
            ("spiffe://example.org/ns/a", Some("example.org")),
            ("spiffe://example.org", Some("example.org")),
            ("https://user@example.org:8443/x?y#z", Some("example.org")),
            ("urn:example:a", None),
            ("spiffe:///a", None),
            ("https://[::1]/", None),
        ] {
            assert_eq!(uri_host(uri), host, "{uri}");
        }
    }

    /// The DER of the first certificate of a PEM file of the vectors.
    fn vector_cert(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/vectors/seal/pki/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let pem = std::fs::read(path).expect("a vector certificate");
        pem::parse(pem).expect("PEM").into_contents()
    }

    #[test]
    fn the_extensions_are_a_sequence() {
        let der = vector_cert("intermediate.pem");
        assert!(parse(&der).is_ok());
        // The SEQUENCE inside [3] retagged as [APPLICATION 16] (constructed): x509-parser
        // reads it, a strict reader refuses it (found by the differential fuzz target).
        let cert = der::tlv(&der).expect("a certificate");
        let tbs = der::tlv(cert.contents).expect("its TBSCertificate");
        let extensions = der::items(tbs.contents)
            .map(|item| item.expect("a TBSCertificate field"))
            .find(|item| item.tag == 0xa3)
            .expect("the extensions");
        let inner = extensions.contents.as_ptr() as usize - der.as_ptr() as usize;
        let mut retagged = der.clone();
        assert_eq!(retagged[inner], 0x30);
        retagged[inner] = 0x70;
        let error = parse(&retagged).expect_err("a retagged list of extensions");
        assert!(error.contains("not a SEQUENCE"), "{error}");
    }

    #[test]
    fn a_name_attribute_has_an_object_identifier_for_its_type() {
        let der = vector_cert("intermediate.pem");
        // The issuer's first attribute type (OBJECT IDENTIFIER, 06) retagged as a private
        // tag: x509-parser reads it (found by the differential fuzz target).
        let cert = der::tlv(&der).expect("a certificate");
        let tbs = der::tlv(cert.contents).expect("its TBSCertificate");
        let fields: Vec<_> = der::items(tbs.contents)
            .map(|item| item.expect("a TBSCertificate field"))
            .collect();
        let issuer = &fields[usize::from(fields[0].tag == 0xa0) + 2];
        let rdn = der::tlv(issuer.contents).expect("an RDN");
        let attribute = der::tlv(rdn.contents).expect("an attribute");
        let at = attribute.contents.as_ptr() as usize - der.as_ptr() as usize;
        assert_eq!(der[at], 0x06);
        let mut retagged = der.clone();
        retagged[at] = 0xde;
        let error = parse(&retagged).expect_err("a retagged attribute type");
        assert!(error.contains("names:"), "{error}");
    }

    #[test]
    fn every_algorithm_and_the_curve_is_an_object_identifier() {
        // x509-parser reads any primitive value as an identifier: the leaf whose outer
        // signatureAlgorithm was an OCTET STRING verified (found by the differential
        // fuzz target, after it found a key purpose of the same kind).
        let der = vector_cert("intermediate.pem");
        assert!(parse(&der).is_ok());
        let at = |tlv: &der::Tlv<'_>| tlv.contents.as_ptr() as usize - der.as_ptr() as usize;
        let cert = der::tlv(&der).expect("a certificate");
        let parts: Vec<_> = der::items(cert.contents).map(Result::unwrap).collect();
        let fields: Vec<_> = der::items(parts[0].contents).map(Result::unwrap).collect();
        let skip = usize::from(fields[0].tag == 0xa0);
        let key_algorithm = der::tlv(fields[skip + 5].contents).expect("an AlgorithmIdentifier");
        let curve = der::items(key_algorithm.contents).nth(1).unwrap().unwrap();
        for (which, position) in [
            ("signatureAlgorithm", at(&parts[1])),
            ("signature", at(&fields[skip + 1])),
            ("subjectPublicKeyInfo", at(&key_algorithm)),
            (
                "curve",
                curve.contents.as_ptr() as usize - der.as_ptr() as usize - 2,
            ),
        ] {
            assert_eq!(der[position], 0x06, "{which}");
            let mut retagged = der.clone();
            retagged[position] = 0x04;
            let error = parse(&retagged).expect_err(which);
            assert!(
                error.contains("not an OBJECT IDENTIFIER"),
                "{which}: {error}"
            );
        }
    }

    #[test]
    fn every_part_of_the_certificate_has_its_tag_class_included() {
        // x509-parser reads a value by its tag's number alone: the validity's notBefore
        // as [APPLICATION 23] was read as a UTCTime (found by the differential fuzz
        // target). Each part here under the same number in another class is refused.
        let der = vector_cert("intermediate.pem");
        let at = |tlv: &der::Tlv<'_>| tlv.contents.as_ptr() as usize - der.as_ptr() as usize;
        let cert = der::tlv(&der).expect("a certificate");
        let parts: Vec<_> = der::items(cert.contents).map(Result::unwrap).collect();
        let fields: Vec<_> = der::items(parts[0].contents).map(Result::unwrap).collect();
        let skip = usize::from(fields[0].tag == 0xa0);
        let not_before = der::tlv(fields[skip + 3].contents).expect("a Time");
        let key_bits = der::items(fields[skip + 5].contents)
            .nth(1)
            .unwrap()
            .unwrap();
        // A TLV's tag is two bytes before its contents when its length is short.
        let tag_of = |tlv: &der::Tlv<'_>| at(tlv) - 2;
        for (which, position) in [
            ("notBefore", tag_of(&not_before)),
            ("serialNumber", tag_of(&fields[skip])),
            ("the key's BIT STRING", tag_of(&key_bits)),
            ("the validity", tag_of(&fields[skip + 3])),
            ("the signature's BIT STRING", tag_of(&parts[2])),
        ] {
            assert_eq!(der[position] & 0xc0, 0, "{which} is universal");
            for class in [0x40, 0x80, 0xc0] {
                let mut retagged = der.clone();
                retagged[position] |= class;
                assert!(parse(&retagged).is_err(), "{which} in class {class:02x}");
            }
        }
        // A time without its seconds is not DER.
        let mut short = der.clone();
        let time = at(&not_before);
        assert_eq!(der[time - 1], 13);
        short[time + 10..time + 12].copy_from_slice(b"Z0");
        assert!(parse(&short).is_err());
    }

    #[test]
    fn the_version_is_v3_or_left_out() {
        // x509-parser read a version of 10 (found by the differential fuzz target, which
        // also made the Python verifier fail on it); v1 written out is a DEFAULT DER
        // leaves out, and v2 is refused as cryptography refuses it.
        let der = vector_cert("intermediate.pem");
        let at = der
            .windows(5)
            .position(|w| w == [0xa0, 0x03, 0x02, 0x01, 0x02])
            .expect("a written v3")
            + 4;
        for version in [0, 1, 3, 10] {
            let mut other = der.clone();
            other[at] = version;
            let error = parse(&other).expect_err("another version");
            assert!(error.contains("not v3"), "{version}: {error}");
        }
        assert!(parse(&der).is_ok());
    }

    #[test]
    fn a_leading_dot_matches_subdomains_only() {
        assert!(host_matches("example.org", "example.org"));
        assert!(host_matches("Example.ORG", "example.org"));
        assert!(!host_matches("a.example.org", "example.org"));
        assert!(host_matches("a.example.org", ".example.org"));
        assert!(!host_matches("example.org", ".example.org"));
        assert!(!host_matches("badexample.org", "example.org"));
    }
}
