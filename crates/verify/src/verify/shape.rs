//! The shape of a certificate, where x509-parser does not check it: it reads a value by
//! its tag's number alone, whatever its class (`[APPLICATION 23]` as a UTCTime, `[APPLICATION
//! 16]` as a SEQUENCE), and, where X.509 puts an OBJECT IDENTIFIER, any primitive value
//! (asn1-rs 0.7's `Oid` does not look at the tag): a certificate whose outer
//! signatureAlgorithm was an OCTET STRING holding the right bytes verified, where any
//! strict reader refuses the certificate. docs/seal-format.md, section 9.2, step 7.
//!
//! These checks run after the strict DER walk (`der::check`) and after x509-parser has
//! read the certificate: the parts inside extension values they look for are known to be
//! there, so one that is missing is skipped here (x509-parser refused it, or reads none).

use super::der::{self, Tlv};

const OID: u8 = 0x06;
const NULL: u8 = 0x05;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// id-ecPublicKey (1.2.840.10045.2.1), whose parameters name the curve.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// The extensions whose values x509-parser reads identifiers (or names) from.
const SUBJECT_ALT_NAME: &str = "2.5.29.17";
const ISSUER_ALT_NAME: &str = "2.5.29.18";
const ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
const CRL_DISTRIBUTION_POINTS: &str = "2.5.29.31";
const CERTIFICATE_POLICIES: &str = "2.5.29.32";
const POLICY_MAPPINGS: &str = "2.5.29.33";
const AUTHORITY_KEY_IDENTIFIER: &str = "2.5.29.35";
const EXTENDED_KEY_USAGE: &str = "2.5.29.37";
const AUTHORITY_INFO_ACCESS: &str = "1.3.6.1.5.5.7.1.1";
const SUBJECT_INFO_ACCESS: &str = "1.3.6.1.5.5.7.1.11";

/// Checks the certificate `der` has exactly the shape of RFC 5280, 4.1, tags whole:
///
/// ```text
/// Certificate  SEQUENCE { TBSCertificate, AlgorithmIdentifier, BIT STRING }
/// TBSCertificate  SEQUENCE { [0] { INTEGER } (optional), INTEGER, AlgorithmIdentifier,
///     Name, SEQUENCE { Time, Time }, Name, SEQUENCE { AlgorithmIdentifier, BIT STRING },
///     [1] (optional), [2] (optional), [3] { SEQUENCE OF Extension } (optional) }
/// AlgorithmIdentifier  SEQUENCE { OBJECT IDENTIFIER, parameters (optional) }
/// Name  SEQUENCE OF SET OF SEQUENCE { OBJECT IDENTIFIER, value }
/// Time  UTCTime or GeneralizedTime
/// Extension  SEQUENCE { OBJECT IDENTIFIER, BOOLEAN (optional), OCTET STRING }
/// ```
///
/// and that an EC key's parameters, when neither NULL nor a SEQUENCE, are a named curve
/// (an OBJECT IDENTIFIER). Messages name the part: `names:` and `extensions:` for those.
pub(crate) fn certificate(der: &[u8]) -> Result<(), String> {
    let malformed = |problem: &str| format!("shape: {problem}");
    let certificate = der::tlv(der).map_err(malformed)?;
    let parts = items(certificate.contents);
    let [tbs, signature_algorithm, signature] = &parts[..] else {
        return Err(malformed("the certificate is not three values"));
    };
    if certificate.tag != SEQUENCE || tbs.tag != SEQUENCE || signature.tag != BIT_STRING {
        return Err(malformed(
            "the certificate is not SEQUENCE { SEQUENCE, AlgorithmIdentifier, BIT STRING }",
        ));
    }
    algorithm(signature_algorithm, "signatureAlgorithm")?;
    let mut fields = items(tbs.contents).into_iter().peekable();
    if let Some(version) = fields.next_if(|f| f.tag == 0xa0)
        && !matches!(&items(version.contents)[..], [v] if v.tag == INTEGER)
    {
        return Err(malformed("the version is not [0] { INTEGER }"));
    }
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| malformed(&format!("the TBSCertificate has no {what}")))
    };
    if next("serialNumber")?.tag != INTEGER {
        return Err(malformed("the serialNumber is not an INTEGER"));
    }
    algorithm(&next("signature")?, "signature")?;
    let issuer = next("issuer")?;
    let validity = next("validity")?;
    let subject = next("subject")?;
    let key = next("subjectPublicKeyInfo")?;
    for name in [&issuer, &subject] {
        if !is_name(name) {
            return Err(
                "names: a name is not SEQUENCE OF SET OF SEQUENCE { OBJECT IDENTIFIER, value }"
                    .into(),
            );
        }
    }
    let times = items(validity.contents);
    if validity.tag != SEQUENCE
        || !matches!(&times[..], [a, b] if [a.tag, b.tag].iter().all(|t| matches!(*t, UTC_TIME | GENERALIZED_TIME)))
    {
        return Err(malformed(
            "the validity is not SEQUENCE { Time, Time } (UTCTime or GeneralizedTime)",
        ));
    }
    subject_public_key_info(&key).map_err(|problem| malformed(&problem))?;
    let mut last = 0;
    for field in fields {
        // [1] issuerUniqueID, [2] subjectUniqueID (primitive or constructed), [3]
        // extensions, each once, in that order.
        let number = match field.tag {
            0x81 | 0xa1 => 1,
            0x82 | 0xa2 => 2,
            0xa3 => 3,
            _ => 4,
        };
        if number <= last || number == 4 {
            return Err(malformed(
                "the TBSCertificate holds more than [1], [2] and [3] after its key, in order",
            ));
        }
        last = number;
        if number == 3 {
            extensions(&field)?;
        }
    }
    Ok(())
}

/// `SEQUENCE { AlgorithmIdentifier, BIT STRING }`; an EC key's curve is named.
fn subject_public_key_info(key: &Tlv<'_>) -> Result<(), String> {
    let parts = items(key.contents);
    let [key_algorithm, bits] = &parts[..] else {
        return Err("the subjectPublicKeyInfo is not two values".into());
    };
    if key.tag != SEQUENCE || bits.tag != BIT_STRING {
        return Err(
            "the subjectPublicKeyInfo is not SEQUENCE { AlgorithmIdentifier, BIT STRING }".into(),
        );
    }
    algorithm(key_algorithm, "subjectPublicKeyInfo")?;
    // ECParameters: a named curve, or (refused later as unsupported) NULL or the curve
    // itself; any other tag is none of them.
    let parts = items(key_algorithm.contents);
    if let (Some(id), Some(parameters)) = (parts.first(), parts.get(1))
        && id.contents == EC_PUBLIC_KEY
        && !matches!(parameters.tag, OID | NULL | SEQUENCE)
    {
        return Err("the EC key's curve is not an OBJECT IDENTIFIER".into());
    }
    Ok(())
}

/// `[3] { SEQUENCE OF SEQUENCE { OBJECT IDENTIFIER, BOOLEAN (optional), OCTET STRING } }`.
fn extensions(field: &Tlv<'_>) -> Result<(), String> {
    let malformed = |problem: &str| format!("extensions: {problem}");
    let [list] = &items(field.contents)[..] else {
        return Err(malformed("[3] does not hold one value"));
    };
    if list.tag != SEQUENCE {
        return Err(malformed("the list of extensions is not a SEQUENCE"));
    }
    for extension in der::items(list.contents) {
        let extension = extension.map_err(malformed)?;
        let tags: Vec<u8> = items(extension.contents).iter().map(|p| p.tag).collect();
        if extension.tag != SEQUENCE
            || !matches!(tags[..], [OID, OCTET_STRING] | [OID, BOOLEAN, OCTET_STRING])
        {
            return Err(malformed(
                "an extension is not SEQUENCE { OID, [BOOLEAN,] OCTET STRING }",
            ));
        }
    }
    Ok(())
}

/// Checks that the identifiers in the value of the extension `oid`, one x509-parser
/// has read (`value` is its extnValue; x509-parser reads its first DER value), have the
/// OBJECT IDENTIFIER tag: extended key usages, policy identifiers and their qualifiers'
/// IDs, policy mappings, access methods, otherName type IDs, and the attribute types of
/// directory names and of a distribution point's relative name.
pub(crate) fn extension(oid: &str, value: &[u8]) -> Result<(), String> {
    let Ok(value) = der::tlv(value) else {
        return Ok(());
    };
    extension_value(oid, &value)
        .map_err(|what| format!("extension {oid}: {what} is not an OBJECT IDENTIFIER"))
}

/// Whether `name` is `SEQUENCE OF SET OF SEQUENCE { OBJECT IDENTIFIER, value }`.
fn is_name(name: &Tlv<'_>) -> bool {
    name.tag == SEQUENCE && items_all(name.contents, |rdn| is_relative_name(&rdn))
}

fn is_relative_name(rdn: &Tlv<'_>) -> bool {
    rdn.tag == SET && attributes_are_named(rdn.contents)
}

/// Whether each of the TLVs of `contents` is `SEQUENCE { OBJECT IDENTIFIER, value }`.
fn attributes_are_named(contents: &[u8]) -> bool {
    items_all(contents, |attribute| {
        attribute.tag == SEQUENCE && starts_with_oid(attribute.contents)
    })
}

fn extension_value(oid: &str, value: &Tlv<'_>) -> Result<(), &'static str> {
    let list = items(value.contents);
    match oid {
        EXTENDED_KEY_USAGE if !list.iter().all(|usage| usage.tag == OID) => {
            return Err("a key purpose");
        }
        CERTIFICATE_POLICIES => {
            for policy in &list {
                let parts = items(policy.contents);
                if parts.first().is_some_and(|id| id.tag != OID) {
                    return Err("a policy identifier");
                }
                let qualifiers = parts.get(1).map(|q| items(q.contents)).unwrap_or_default();
                if !qualifiers.iter().all(|q| starts_with_oid(q.contents)) {
                    return Err("a policy qualifier's ID");
                }
            }
        }
        POLICY_MAPPINGS
            if !list
                .iter()
                .all(|mapping| items_all(mapping.contents, |id| id.tag == OID)) =>
        {
            return Err("a mapped policy");
        }
        AUTHORITY_INFO_ACCESS | SUBJECT_INFO_ACCESS => {
            for access in &list {
                let parts = items(access.contents);
                if parts.first().is_some_and(|method| method.tag != OID) {
                    return Err("an access method");
                }
                if let Some(location) = parts.get(1) {
                    general_name(location)?;
                }
            }
        }
        SUBJECT_ALT_NAME | ISSUER_ALT_NAME => general_names(&list)?,
        AUTHORITY_KEY_IDENTIFIER => {
            // authorityCertIssuer [1] GeneralNames.
            for field in list.iter().filter(|f| f.tag == 0xa1) {
                general_names(&items(field.contents))?;
            }
        }
        CRL_DISTRIBUTION_POINTS => {
            for point in &list {
                for field in items(point.contents) {
                    match field.tag {
                        0xa0 => distribution_point_name(&field)?,
                        // cRLIssuer [2] GeneralNames.
                        0xa2 => general_names(&items(field.contents))?,
                        _ => {}
                    }
                }
            }
        }
        ISSUING_DISTRIBUTION_POINT => {
            for field in list.iter().filter(|f| f.tag == 0xa0) {
                distribution_point_name(field)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `[0] DistributionPointName`: `[0]` fullName (GeneralNames) or `[1]`
/// nameRelativeToCRLIssuer (a RelativeDistinguishedName).
fn distribution_point_name(field: &Tlv<'_>) -> Result<(), &'static str> {
    for name in items(field.contents) {
        match name.tag {
            0xa0 => general_names(&items(name.contents))?,
            0xa1 if !attributes_are_named(name.contents) => {
                return Err("an attribute type of a relative name");
            }
            _ => {}
        }
    }
    Ok(())
}

fn general_names(names: &[Tlv<'_>]) -> Result<(), &'static str> {
    names.iter().try_for_each(general_name)
}

fn general_name(name: &Tlv<'_>) -> Result<(), &'static str> {
    match name.tag {
        // otherName [0] { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
        0xa0 if !starts_with_oid(name.contents) => Err("an otherName's type"),
        // directoryName [4] EXPLICIT Name
        0xa4 if !der::tlv(name.contents).is_ok_and(|n| is_name(&n)) => {
            Err("an attribute type of a directory name")
        }
        _ => Ok(()),
    }
}

/// A value of the AlgorithmIdentifier SEQUENCE `field` whose algorithm must be an OID.
fn algorithm(field: &Tlv<'_>, which: &str) -> Result<(), String> {
    if field.tag == SEQUENCE && starts_with_oid(field.contents) {
        Ok(())
    } else {
        Err(format!(
            "the algorithm of {which} is not an OBJECT IDENTIFIER"
        ))
    }
}

fn starts_with_oid(contents: &[u8]) -> bool {
    der::tlv(contents).is_ok_and(|first| first.tag == OID)
}

/// The TLVs of `contents`, up to the first that does not read.
fn items(contents: &[u8]) -> Vec<Tlv<'_>> {
    der::items(contents).map_while(Result::ok).collect()
}

/// Whether every TLV of `contents` reads and satisfies `ok`.
fn items_all(contents: &[u8], ok: impl Fn(Tlv<'_>) -> bool) -> bool {
    der::items(contents).all(|item| item.is_ok_and(&ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER TLV of `tag` around `contents` (short lengths only).
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(contents.len()).expect("a short length")];
        out.extend_from_slice(contents);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(SEQUENCE, &parts.concat())
    }

    /// serverAuth (1.3.6.1.5.5.7.3.1) under `tag`.
    fn oid(tag: u8) -> Vec<u8> {
        tlv(tag, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01])
    }

    /// A Name of one attribute whose type is under `tag`.
    fn name(tag: u8) -> Vec<u8> {
        seq(&[tlv(SET, &seq(&[oid(tag), tlv(0x0c, b"a")]))])
    }

    /// An otherName whose type-id is under `tag`.
    fn other_name(tag: u8) -> Vec<u8> {
        tlv(0xa0, &[oid(tag), tlv(0xa0, &tlv(0x0c, b"v"))].concat())
    }

    #[test]
    fn identifiers_in_extension_values_have_the_identifier_tag() {
        // Each value holds one identifier under the tag given; the other ones are right.
        type Value = fn(u8) -> Vec<u8>;
        let cases: [(&str, Value); 13] = [
            (EXTENDED_KEY_USAGE, |t| seq(&[oid(OID), oid(t)])),
            (CERTIFICATE_POLICIES, |t| seq(&[seq(&[oid(t)])])),
            (CERTIFICATE_POLICIES, |t| {
                seq(&[seq(&[oid(OID), seq(&[seq(&[oid(t), tlv(0x16, b"x")])])])])
            }),
            (POLICY_MAPPINGS, |t| seq(&[seq(&[oid(OID), oid(t)])])),
            (AUTHORITY_INFO_ACCESS, |t| {
                seq(&[seq(&[oid(t), tlv(0x86, b"x")])])
            }),
            (SUBJECT_INFO_ACCESS, |t| {
                seq(&[seq(&[oid(OID), other_name(t)])])
            }),
            (SUBJECT_ALT_NAME, |t| {
                seq(&[tlv(0x86, b"x"), tlv(0xa4, &name(t))])
            }),
            (ISSUER_ALT_NAME, |t| seq(&[other_name(t)])),
            (AUTHORITY_KEY_IDENTIFIER, |t| {
                seq(&[tlv(0x80, &[1]), tlv(0xa1, &tlv(0xa4, &name(t)))])
            }),
            (CRL_DISTRIBUTION_POINTS, |t| {
                seq(&[seq(&[tlv(0xa0, &tlv(0xa0, &tlv(0xa4, &name(t))))])])
            }),
            (CRL_DISTRIBUTION_POINTS, |t| {
                seq(&[seq(&[tlv(
                    0xa0,
                    &tlv(0xa1, &seq(&[oid(t), tlv(0x0c, b"a")])),
                )])])
            }),
            (CRL_DISTRIBUTION_POINTS, |t| {
                seq(&[seq(&[tlv(0xa2, &other_name(t))])])
            }),
            (ISSUING_DISTRIBUTION_POINT, |t| {
                seq(&[tlv(0xa0, &tlv(0xa0, &other_name(t)))])
            }),
        ];
        for (extension_oid, value) in cases {
            assert_eq!(
                extension(extension_oid, &value(OID)),
                Ok(()),
                "{extension_oid}"
            );
            // An OCTET STRING, a primitive SEQUENCE tag, an INTEGER: x509-parser took all.
            for tag in [0x04, 0x10, 0x02] {
                let error = extension(extension_oid, &value(tag)).expect_err(extension_oid);
                assert!(error.contains("is not an OBJECT IDENTIFIER"), "{error}");
            }
        }
        // Extensions without identifiers are not looked into.
        assert_eq!(extension("2.5.29.14", &tlv(0x04, &[1])), Ok(()));
    }
}
