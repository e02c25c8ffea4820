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

const ENUMERATED: u8 = 0x0a;
const IA5_STRING: u8 = 0x16;

/// The processed and understood extensions (docs/seal-format.md, 9.2 step 7), whose
/// values x509-parser reads.
const SUBJECT_KEY_IDENTIFIER: &str = "2.5.29.14";
const KEY_USAGE: &str = "2.5.29.15";
const BASIC_CONSTRAINTS: &str = "2.5.29.19";
const CRL_NUMBER: &str = "2.5.29.20";
const REASON_CODE: &str = "2.5.29.21";
const INVALIDITY_DATE: &str = "2.5.29.24";
const POLICY_CONSTRAINTS: &str = "2.5.29.36";
const INHIBIT_ANY_POLICY: &str = "2.5.29.54";
const SIGNED_CERTIFICATE_TIMESTAMPS: &str = "1.3.6.1.4.1.11129.2.4.2";
const NETSCAPE_CERTIFICATE_TYPE: &str = "2.16.840.1.113730.1.1";
const NETSCAPE_COMMENT: &str = "2.16.840.1.113730.1.13";
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
    // v3; v1 is the DEFAULT, left out in DER (X.690, 11.5); v2 is refused, as
    // cryptography refuses it (no SPIRE CA writes one).
    if let Some(version) = fields.next_if(|f| f.tag == 0xa0)
        && !matches!(&items(version.contents)[..], [v] if v.tag == INTEGER && v.contents == [2])
    {
        return Err(malformed(
            "the version is written and is not v3 ([0] { INTEGER 2 })",
        ));
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
        let parts = items(extension.contents);
        let tags: Vec<u8> = parts.iter().map(|p| p.tag).collect();
        if extension.tag != SEQUENCE
            || !matches!(tags[..], [OID, OCTET_STRING] | [OID, BOOLEAN, OCTET_STRING])
        {
            return Err(malformed(
                "an extension is not SEQUENCE { OID, [BOOLEAN,] OCTET STRING }",
            ));
        }
        if parts.len() == 3 && parts[1].contents != [0xff] {
            return Err(malformed(
                "an extension's critical FALSE is written out (DER leaves a DEFAULT out)",
            ));
        }
    }
    Ok(())
}

/// Checks that the value of the extension `oid`, one x509-parser has read (`value` is
/// its extnValue, of which x509-parser reads the first DER value), has the tags of that
/// extension's type (RFC 5280, 4.2), whole: x509-parser reads a value by its tag number
/// whatever its class, and an identifier whatever its tag. Types without a rule here are
/// not looked into.
pub(crate) fn extension(oid: &str, value: &[u8]) -> Result<(), String> {
    let Ok(value) = der::tlv(value) else {
        return Ok(());
    };
    extension_value(oid, &value).map_err(|problem| format!("extension {oid}: {problem}"))
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
    let tags: Vec<u8> = list.iter().map(|t| t.tag).collect();
    let sequence = value.tag == SEQUENCE;
    match oid {
        BASIC_CONSTRAINTS => {
            ensure(
                sequence && in_order(&tags, &[BOOLEAN, INTEGER]),
                "not SEQUENCE { BOOLEAN (optional), INTEGER (optional) }",
            )?;
            ensure(
                list.first()
                    .is_none_or(|ca| ca.tag != BOOLEAN || ca.contents == [0xff]),
                "cA FALSE is written out (DER leaves a DEFAULT out)",
            )
        }
        KEY_USAGE | NETSCAPE_CERTIFICATE_TYPE => {
            ensure(value.tag == BIT_STRING, "not a BIT STRING")
        }
        SUBJECT_KEY_IDENTIFIER | SIGNED_CERTIFICATE_TIMESTAMPS => {
            ensure(value.tag == OCTET_STRING, "not an OCTET STRING")
        }
        INHIBIT_ANY_POLICY | CRL_NUMBER => ensure(value.tag == INTEGER, "not an INTEGER"),
        REASON_CODE => ensure(value.tag == ENUMERATED, "not an ENUMERATED"),
        INVALIDITY_DATE => ensure(value.tag == GENERALIZED_TIME, "not a GeneralizedTime"),
        NETSCAPE_COMMENT => ensure(value.tag == IA5_STRING, "not an IA5String"),
        POLICY_CONSTRAINTS => ensure(
            sequence && in_order(&tags, &[0x80, 0x81]),
            "not SEQUENCE { [0] (optional), [1] (optional) }",
        ),
        EXTENDED_KEY_USAGE => ensure(
            sequence && tags.iter().all(|t| *t == OID),
            "a key purpose is not an OBJECT IDENTIFIER",
        ),
        CERTIFICATE_POLICIES => {
            ensure(sequence, "not a SEQUENCE")?;
            for policy in &list {
                let parts = items(policy.contents);
                let qualifiers = match &parts[..] {
                    [id] if id.tag == OID => Vec::new(),
                    [id, qualifiers] if id.tag == OID && qualifiers.tag == SEQUENCE => {
                        items(qualifiers.contents)
                    }
                    _ => return Err("a policy identifier is not an OBJECT IDENTIFIER"),
                };
                let named = qualifiers
                    .iter()
                    .all(|q| q.tag == SEQUENCE && starts_with_oid(q.contents));
                ensure(
                    policy.tag == SEQUENCE && named,
                    "a policy qualifier's ID is not an OBJECT IDENTIFIER",
                )?;
            }
            Ok(())
        }
        POLICY_MAPPINGS => ensure(
            sequence
                && list.iter().all(|mapping| {
                    mapping.tag == SEQUENCE
                        && matches!(&items(mapping.contents)[..], [a, b] if a.tag == OID && b.tag == OID)
                }),
            "a mapped policy is not an OBJECT IDENTIFIER",
        ),
        AUTHORITY_INFO_ACCESS | SUBJECT_INFO_ACCESS => {
            ensure(sequence, "not a SEQUENCE")?;
            for access in &list {
                let parts = items(access.contents);
                let [method, location] = &parts[..] else {
                    return Err("an access description is not two values");
                };
                ensure(
                    access.tag == SEQUENCE && method.tag == OID,
                    "an access method is not an OBJECT IDENTIFIER",
                )?;
                general_name(location)?;
            }
            Ok(())
        }
        SUBJECT_ALT_NAME | ISSUER_ALT_NAME => {
            ensure(sequence, "not a SEQUENCE")?;
            general_names(&list)
        }
        AUTHORITY_KEY_IDENTIFIER => {
            ensure(
                sequence && in_order(&tags, &[0x80, 0xa1, 0x82]),
                "not SEQUENCE { [0], [1], [2] } (each optional)",
            )?;
            // authorityCertIssuer [1] GeneralNames.
            list.iter()
                .filter(|f| f.tag == 0xa1)
                .try_for_each(|f| general_names(&items(f.contents)))
        }
        CRL_DISTRIBUTION_POINTS => {
            ensure(sequence, "not a SEQUENCE")?;
            for point in &list {
                let fields = items(point.contents);
                let tags: Vec<u8> = fields.iter().map(|f| f.tag).collect();
                ensure(
                    point.tag == SEQUENCE && in_order(&tags, &[0xa0, 0x81, 0xa2]),
                    "a distribution point is not SEQUENCE { [0], [1], [2] } (each optional)",
                )?;
                for field in &fields {
                    match field.tag {
                        0xa0 => distribution_point_name(field)?,
                        // cRLIssuer [2] GeneralNames.
                        0xa2 => general_names(&items(field.contents))?,
                        _ => {}
                    }
                }
            }
            Ok(())
        }
        ISSUING_DISTRIBUTION_POINT => {
            ensure(
                sequence && in_order(&tags, &[0xa0, 0x81, 0x82, 0x83, 0x84, 0x85]),
                "not SEQUENCE { [0], [1], [2], [3], [4], [5] } (each optional)",
            )?;
            // [1], [2], [4] and [5] are BOOLEANs DEFAULT FALSE.
            ensure(
                list.iter()
                    .filter(|f| matches!(f.tag, 0x81 | 0x82 | 0x84 | 0x85))
                    .all(|f| f.contents == [0xff]),
                "a FALSE is written out (DER leaves a DEFAULT out)",
            )?;
            list.iter()
                .filter(|f| f.tag == 0xa0)
                .try_for_each(distribution_point_name)
        }
        _ => Ok(()),
    }
}

/// `Ok` if `holds`, else the problem.
fn ensure(holds: bool, problem: &'static str) -> Result<(), &'static str> {
    if holds { Ok(()) } else { Err(problem) }
}

/// Whether `tags` are some of `allowed`, each at most once, in that order.
fn in_order(tags: &[u8], allowed: &[u8]) -> bool {
    let mut rest = allowed;
    tags.iter()
        .all(|tag| match rest.iter().position(|a| a == tag) {
            Some(i) => {
                rest = &rest[i + 1..];
                true
            }
            None => false,
        })
}

/// `[0] DistributionPointName`: one of `[0]` fullName (GeneralNames) and `[1]`
/// nameRelativeToCRLIssuer (a RelativeDistinguishedName).
fn distribution_point_name(field: &Tlv<'_>) -> Result<(), &'static str> {
    match &items(field.contents)[..] {
        [name] if name.tag == 0xa0 => general_names(&items(name.contents)),
        [name] if name.tag == 0xa1 => ensure(
            attributes_are_named(name.contents),
            "an attribute type of a relative name is not an OBJECT IDENTIFIER",
        ),
        _ => Err("a distribution point's name is neither [0] nor [1]"),
    }
}

fn general_names(names: &[Tlv<'_>]) -> Result<(), &'static str> {
    names.iter().try_for_each(general_name)
}

fn general_name(name: &Tlv<'_>) -> Result<(), &'static str> {
    match name.tag {
        // otherName [0] { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
        0xa0 if !starts_with_oid(name.contents) => {
            Err("an otherName's type is not an OBJECT IDENTIFIER")
        }
        // directoryName [4] EXPLICIT Name
        0xa4 if !der::tlv(name.contents).is_ok_and(|n| is_name(&n)) => {
            Err("an attribute type of a directory name is not an OBJECT IDENTIFIER")
        }
        // otherName, rfc822Name, dNSName, x400Address, directoryName, ediPartyName,
        // uniformResourceIdentifier, iPAddress, registeredID.
        0xa0 | 0x81 | 0x82 | 0xa3 | 0xa4 | 0xa5 | 0x86 | 0x87 | 0x88 => Ok(()),
        _ => Err("a GeneralName has a tag of no GeneralName form"),
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
        // Types without a rule are not looked into.
        assert_eq!(extension("1.2.3.4", &tlv(0x44, &[1])), Ok(()));
    }

    #[test]
    fn a_default_written_out_is_refused() {
        // X.690, 11.5; cryptography refuses each of these too.
        let with_critical = |flag: u8| {
            tlv(
                0xa3,
                &seq(&[seq(&[
                    tlv(OID, &[0x55, 0x1d, 0x0f]),
                    tlv(BOOLEAN, &[flag]),
                    tlv(OCTET_STRING, &tlv(BIT_STRING, &[7, 0x80])),
                ])]),
            )
        };
        let read = |field: Vec<u8>| extensions(&der::tlv(&field).expect("a TLV"));
        assert_eq!(read(with_critical(0xff)), Ok(()));
        let error = read(with_critical(0x00)).expect_err("critical FALSE");
        assert!(error.contains("critical FALSE"), "{error}");
        let ca = |flag: u8| seq(&[tlv(BOOLEAN, &[flag])]);
        assert_eq!(extension(BASIC_CONSTRAINTS, &ca(0xff)), Ok(()));
        assert!(extension(BASIC_CONSTRAINTS, &ca(0x00)).is_err());
        let idp = |flag: u8| seq(&[tlv(0x81, &[flag])]);
        assert_eq!(extension(ISSUING_DISTRIBUTION_POINT, &idp(0xff)), Ok(()));
        assert!(extension(ISSUING_DISTRIBUTION_POINT, &idp(0x00)).is_err());
    }

    #[test]
    fn extension_values_have_their_types_tags_class_included() {
        // (extension, its value, the same with one tag of the same number in another
        // class or form, or out of order, as x509-parser reads it)
        for (extension_oid, good, bad) in [
            (
                BASIC_CONSTRAINTS,
                seq(&[tlv(BOOLEAN, &[0xff])]),
                seq(&[tlv(0x41, &[0xff])]),
            ),
            (
                BASIC_CONSTRAINTS,
                seq(&[tlv(BOOLEAN, &[0xff]), tlv(INTEGER, &[0])]),
                seq(&[tlv(INTEGER, &[0]), tlv(BOOLEAN, &[0xff])]),
            ),
            (
                KEY_USAGE,
                tlv(BIT_STRING, &[7, 0x80]),
                tlv(0x43, &[7, 0x80]),
            ),
            (
                SUBJECT_KEY_IDENTIFIER,
                tlv(OCTET_STRING, &[1]),
                tlv(0x84, &[1]),
            ),
            (
                SUBJECT_ALT_NAME,
                seq(&[tlv(0x86, b"spiffe://example.org/a")]),
                seq(&[tlv(0x46, b"spiffe://example.org/a")]),
            ),
            (
                SUBJECT_ALT_NAME,
                seq(&[tlv(0x82, b"example.org")]),
                seq(&[tlv(0xa2, &tlv(0x16, b"example.org"))]),
            ),
            (
                AUTHORITY_KEY_IDENTIFIER,
                seq(&[tlv(0x80, &[1])]),
                seq(&[tlv(OCTET_STRING, &[1])]),
            ),
            (
                CRL_DISTRIBUTION_POINTS,
                seq(&[seq(&[tlv(0xa0, &tlv(0xa0, &tlv(0x86, b"x")))])]),
                seq(&[seq(&[tlv(0xa0, &tlv(0xa2, &tlv(0x86, b"x")))])]),
            ),
            (REASON_CODE, tlv(ENUMERATED, &[1]), tlv(INTEGER, &[1])),
            (INHIBIT_ANY_POLICY, tlv(INTEGER, &[0]), tlv(0x42, &[0])),
            (
                POLICY_CONSTRAINTS,
                seq(&[tlv(0x80, &[0])]),
                seq(&[tlv(0xa0, &tlv(INTEGER, &[0]))]),
            ),
        ] {
            assert_eq!(extension(extension_oid, &good), Ok(()), "{extension_oid}");
            assert!(extension(extension_oid, &bad).is_err(), "{extension_oid}");
        }
    }
}
