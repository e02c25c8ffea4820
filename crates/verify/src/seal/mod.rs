//! The tekton-spire seal: one result that signs a TaskRun's identity, signing time and
//! every result at once. docs/seal-format.md specifies it byte for byte.
//!
//! The seal's value is `sealv1.<signed-at>.<signature>.<certificate>[.<certificate>…]`:
//! the signing time as `YYYY-MM-DDTHH:MM:SSZ`, then base64url (no padding) of the
//! signature and of each DER certificate, leaf first. The signed message is rebuilt
//! from the TaskRun's status by [`message`], so the seal does not grow with the results.

mod message;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

pub use message::{PAYLOAD_TYPE, TaskRunIdentity, message};

/// The name of the result that carries the seal. A Task declares it once.
pub const RESULT_NAME: &str = "TEKTON_SPIRE_SEAL";
/// Longest seal value accepted, in bytes.
pub const MAX_SEAL_LEN: usize = 16 * 1024;
/// Most certificates a seal may carry.
pub const MAX_CERTIFICATES: usize = 8;

const TAG: &str = "sealv1";
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Why a seal value does not parse. Not worth retrying: the value is wrong.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Longer than [`MAX_SEAL_LEN`].
    #[error("the seal is longer than {MAX_SEAL_LEN} bytes")]
    TooLong,
    /// Does not start with the version tag.
    #[error("the seal does not start with '{TAG}.' (is it a seal of another version?)")]
    Tag,
    /// Fewer than four or more than `3 + MAX_CERTIFICATES` dot-separated fields.
    #[error(
        "the seal must have a tag, a time, a signature and 1 to {MAX_CERTIFICATES} certificates separated by '.'"
    )]
    FieldCount,
    /// The signing time is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("the seal's signing time is not of the form YYYY-MM-DDTHH:MM:SSZ")]
    Time,
    /// A field is not canonical unpadded base64url, or is empty.
    #[error("the seal's {field} is not unpadded base64url")]
    Base64 {
        /// Which field: `signature` or `certificate N`.
        field: String,
    },
}

/// A parsed seal: well formed, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    signed_at: OffsetDateTime,
    signature: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl Seal {
    /// Assembles a seal from its parts; the signing time is truncated to whole seconds.
    pub fn new(signed_at: OffsetDateTime, signature: Vec<u8>, chain: Vec<Vec<u8>>) -> Self {
        Self {
            signed_at: truncate_to_seconds(signed_at),
            signature,
            chain,
        }
    }

    /// Parses a seal value.
    ///
    /// # Errors
    /// When the value breaks the grammar in docs/seal-format.md.
    pub fn parse(value: &str) -> Result<Self, Error> {
        if value.len() > MAX_SEAL_LEN {
            return Err(Error::TooLong);
        }
        let mut fields = value.split('.');
        if fields.next() != Some(TAG) {
            return Err(Error::Tag);
        }
        let fields: Vec<&str> = fields.collect();
        let [time, signature, certificates @ ..] = &fields[..] else {
            return Err(Error::FieldCount);
        };
        if certificates.is_empty() || certificates.len() > MAX_CERTIFICATES {
            return Err(Error::FieldCount);
        }
        let signed_at = parse_time(time)?;
        let signature = decode(signature, || "signature".into())?;
        let chain = certificates
            .iter()
            .enumerate()
            .map(|(i, c)| decode(c, || format!("certificate {}", i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            signed_at,
            signature,
            chain,
        })
    }

    /// The seal value, as the signing step writes it to the seal result.
    pub fn encode(&self) -> String {
        let mut out = format!(
            "{TAG}.{}.{}",
            format_time(self.signed_at),
            URL_SAFE_NO_PAD.encode(&self.signature)
        );
        for cert in &self.chain {
            out.push('.');
            out.push_str(&URL_SAFE_NO_PAD.encode(cert));
        }
        out
    }

    /// When the seal was signed (whole seconds, UTC).
    pub fn signed_at(&self) -> OffsetDateTime {
        self.signed_at
    }

    /// The signature over [`message`].
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The certificates, DER, leaf first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}

fn truncate_to_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.replace_nanosecond(0).unwrap_or(utc)
}

/// Formats a signing time as the seal and the signed message carry it.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    // The format has only numeric fields of a UTC time: it cannot fail for years 0..=9999.
    truncate_to_seconds(t)
        .format(TIME_FORMAT)
        .unwrap_or_default()
}

/// Parses the signing time; only the canonical form is accepted (the `time` crate would
/// also take a signed year such as `+2025`).
fn parse_time(text: &str) -> Result<OffsetDateTime, Error> {
    let t = time::PrimitiveDateTime::parse(text, TIME_FORMAT)
        .map(|t| t.assume_utc())
        .map_err(|_| Error::Time)?;
    if format_time(t) == text {
        Ok(t)
    } else {
        Err(Error::Time)
    }
}

fn decode(field: &str, name: impl Fn() -> String) -> Result<Vec<u8>, Error> {
    match URL_SAFE_NO_PAD.decode(field) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(Error::Base64 { field: name() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> Seal {
        Seal::new(
            datetime!(2025-06-01 12:03:04.987 UTC),
            vec![1, 2, 3],
            vec![vec![4, 5], vec![6]],
        )
    }

    #[test]
    fn a_seal_round_trips_through_its_text_form() {
        let text = sample().encode();
        assert_eq!(text, "sealv1.2025-06-01T12:03:04Z.AQID.BAU.Bg");
        assert_eq!(Seal::parse(&text).unwrap(), sample());
    }

    #[test]
    fn each_malformation_is_named() {
        let cases = [
            ("sealv2.2025-06-01T12:03:04Z.AQID.BAU", Error::Tag),
            ("sealv1.2025-06-01T12:03:04Z.AQID", Error::FieldCount),
            ("sealv1.2025-06-01T12:03:04+00:00.AQID.BAU", Error::Time),
            ("sealv1.2025-06-01 12:03:04Z.AQID.BAU", Error::Time),
            ("sealv1.+2025-06-01T12:03:04Z.AQID.BAU", Error::Time),
            (
                "sealv1.2025-06-01T12:03:04Z.AQID=.BAU",
                Error::Base64 {
                    field: "signature".into(),
                },
            ),
            (
                "sealv1.2025-06-01T12:03:04Z.AQ+D.BAU",
                Error::Base64 {
                    field: "signature".into(),
                },
            ),
            (
                "sealv1.2025-06-01T12:03:04Z.AQID.",
                Error::Base64 {
                    field: "certificate 1".into(),
                },
            ),
            (
                "sealv1.2025-06-01T12:03:04Z..BAU",
                Error::Base64 {
                    field: "signature".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Seal::parse(text), Err(expected), "{text}");
        }
        let too_many = format!(
            "sealv1.2025-06-01T12:03:04Z.AQID{}",
            ".BAU".repeat(MAX_CERTIFICATES + 1)
        );
        assert_eq!(Seal::parse(&too_many), Err(Error::FieldCount));
        assert_eq!(
            Seal::parse(&"a".repeat(MAX_SEAL_LEN + 1)),
            Err(Error::TooLong)
        );
    }
}
