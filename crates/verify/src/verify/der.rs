//! Strict DER (X.690, section 10) for certificates: x509-parser accepts some BER forms,
//! and a certificate that two parsers read differently must not reach the path checks.

/// One TLV: its tag byte, contents, and what follows it.
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) contents: &'a [u8],
    pub(crate) rest: &'a [u8],
}

const CONSTRUCTED: u8 = 0x20;
const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const NUMERIC_STRING: u8 = 0x12;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const VISIBLE_STRING: u8 = 0x1a;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Reads one TLV with a tag of the low-number form and a definite length in its
/// shortest form.
pub(crate) fn tlv(input: &[u8]) -> Result<Tlv<'_>, &'static str> {
    let [tag, first, after @ ..] = input else {
        return Err("a value is cut short");
    };
    if tag & 0x1f == 0x1f {
        return Err("a tag of the high-number form");
    }
    let (len, after) = match *first {
        n if n < 0x80 => (usize::from(n), after),
        0x80 => return Err("an indefinite length"),
        n => {
            let count = usize::from(n & 0x7f);
            if count > 4 || after.len() < count {
                return Err("a length that does not fit");
            }
            let (bytes, after) = after.split_at(count);
            if bytes[0] == 0 {
                return Err("a length with a leading zero byte");
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            if len < 0x80 {
                return Err("a long-form length below 128");
            }
            (len, after)
        }
    };
    if after.len() < len {
        return Err("a value is cut short");
    }
    let (contents, rest) = after.split_at(len);
    Ok(Tlv {
        tag: *tag,
        contents,
        rest,
    })
}

/// The TLVs one after another in `contents`; reading stops at the first that is not one.
pub(crate) fn items(mut contents: &[u8]) -> impl Iterator<Item = Result<Tlv<'_>, &'static str>> {
    std::iter::from_fn(move || {
        if contents.is_empty() {
            return None;
        }
        let item = tlv(contents);
        contents = item.as_ref().map_or(&[][..], |t| t.rest);
        Some(item)
    })
}

/// Checks that `input` is exactly one DER value: every TLV in it (constructed values
/// are descended into) has a shortest definite length, BOOLEAN, INTEGER, BIT STRING,
/// NULL and OBJECT IDENTIFIER values have their one DER form, and the character strings
/// of names hold only characters of their type's alphabet.
pub(crate) fn check(input: &[u8]) -> Result<(), &'static str> {
    let value = tlv(input)?;
    if !value.rest.is_empty() {
        return Err("bytes after the value");
    }
    check_value(value.tag, value.contents, 0)
}

/// Checks that `input` starts with one DER value, as [`check`] does; bytes after it are
/// not looked at.
pub(crate) fn check_first(input: &[u8]) -> Result<(), &'static str> {
    let value = tlv(input)?;
    check_value(value.tag, value.contents, 0)
}

/// Deepest nesting descended into; a certificate nests about 8 deep.
const MAX_NESTING: usize = 32;

fn check_value(tag: u8, contents: &[u8], nesting: usize) -> Result<(), &'static str> {
    if tag & CONSTRUCTED != 0 {
        if nesting >= MAX_NESTING {
            return Err("values nested too deep");
        }
        let mut rest = contents;
        while !rest.is_empty() {
            let inner = tlv(rest)?;
            check_value(inner.tag, inner.contents, nesting + 1)?;
            rest = inner.rest;
        }
        return Ok(());
    }
    match tag {
        BOOLEAN if !matches!(contents, [0x00] | [0xff]) => Err("a BOOLEAN other than 00 or FF"),
        INTEGER => match contents {
            [] => Err("an empty INTEGER"),
            [0x00, next, ..] if next & 0x80 == 0 => Err("an INTEGER with a superfluous 00"),
            [0xff, next, ..] if next & 0x80 != 0 => Err("an INTEGER with a superfluous FF"),
            _ => Ok(()),
        },
        BIT_STRING => match contents {
            [] => Err("an empty BIT STRING"),
            [unused, ..] if *unused > 7 => Err("a BIT STRING with more than 7 unused bits"),
            [unused] if *unused != 0 => Err("an empty BIT STRING with unused bits"),
            [unused, .., last] if last & ((1u8 << unused) - 1) != 0 => {
                Err("a BIT STRING whose unused bits are not zero")
            }
            _ => Ok(()),
        },
        NULL if !contents.is_empty() => Err("a NULL with contents"),
        UTF8_STRING if std::str::from_utf8(contents).is_err() => {
            Err("a UTF8String that is not UTF-8")
        }
        NUMERIC_STRING if !contents.iter().all(|b| b.is_ascii_digit() || *b == b' ') => {
            Err("a NumericString with a character outside its alphabet")
        }
        PRINTABLE_STRING
            if !contents
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(b)) =>
        {
            Err("a PrintableString with a character outside its alphabet")
        }
        IA5_STRING if !contents.is_ascii() => Err("an IA5String with a byte above 7F"),
        VISIBLE_STRING if !contents.iter().all(|b| (0x20..=0x7e).contains(b)) => {
            Err("a VisibleString with a character outside its alphabet")
        }
        // X.690, 11.7-11.8 and RFC 5280, 4.1.2.5: seconds, no fraction, Z.
        UTC_TIME if !is_time(contents, 12) => Err("a UTCTime other than YYMMDDHHMMSSZ"),
        GENERALIZED_TIME if !is_time(contents, 14) => {
            Err("a GeneralizedTime other than YYYYMMDDHHMMSSZ")
        }
        OID => match contents {
            [] => Err("an empty OBJECT IDENTIFIER"),
            [.., last] if last & 0x80 != 0 => Err("an OBJECT IDENTIFIER cut short"),
            _ if contents
                .iter()
                .zip(std::iter::once(&0u8).chain(contents))
                .any(|(b, prev)| *b == 0x80 && prev & 0x80 == 0) =>
            {
                Err("an OBJECT IDENTIFIER arc with a leading 80")
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// `digits` ASCII digits, then `Z`.
fn is_time(contents: &[u8], digits: usize) -> bool {
    contents.len() == digits + 1
        && contents[..digits].iter().all(u8::is_ascii_digit)
        && contents[digits] == b'Z'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ber_forms_der_forbids_are_refused() {
        for (input, problem) in [
            (&[0x30, 0x80, 0x00, 0x00][..], "an indefinite length"),
            (&[0x30, 0x81, 0x01, 0x05], "a long-form length below 128"),
            (
                &[0x04, 0x82, 0x00, 0x81],
                "a length with a leading zero byte",
            ),
            (
                &[0x30, 0x03, 0x01, 0x01, 0x01],
                "a BOOLEAN other than 00 or FF",
            ),
            (
                &[0x02, 0x02, 0x00, 0x01],
                "an INTEGER with a superfluous 00",
            ),
            (
                &[0x02, 0x02, 0xff, 0x80],
                "an INTEGER with a superfluous FF",
            ),
            (
                &[0x03, 0x02, 0x01, 0x01],
                "a BIT STRING whose unused bits are not zero",
            ),
            (
                &[0x06, 0x02, 0x80, 0x01],
                "an OBJECT IDENTIFIER arc with a leading 80",
            ),
            (&[0x05, 0x00, 0x00], "bytes after the value"),
            (&[0x1f, 0x01, 0x00], "a tag of the high-number form"),
            (
                &[0x13, 0x01, b';'],
                "a PrintableString with a character outside its alphabet",
            ),
            (&[0x16, 0x01, 0x80], "an IA5String with a byte above 7F"),
            (b"\x17\x0b2506011200Z", "a UTCTime other than YYMMDDHHMMSSZ"),
            (
                b"\x17\x11250601120000+0000",
                "a UTCTime other than YYMMDDHHMMSSZ",
            ),
            (
                b"\x18\x1120250601120000.5Z",
                "a GeneralizedTime other than YYYYMMDDHHMMSSZ",
            ),
        ] {
            assert_eq!(check(input), Err(problem), "{input:02x?}");
        }
        assert_eq!(
            check(&[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x80]),
            Ok(())
        );
        assert_eq!(check(b"\x17\x0d250601120000Z"), Ok(()));
        assert_eq!(check(b"\x18\x0f20500601120000Z"), Ok(()));
    }
}
