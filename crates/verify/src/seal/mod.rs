//! The tekton-spire seal: one result that signs a TaskRun's identity, signing time and
//! every result at once. docs/seal-format.md specifies it byte for byte.
//!
//! The seal's value is
//! `sealv2.<attempt>.<signed-at>.<signature>.<certificate>[.<certificate>…]`: the attempt
//! (Tekton's zero-based retry count), the signing time as `YYYY-MM-DDTHH:MM:SSZ`, then
//! base64url (no padding) of the signature and of each DER certificate, leaf first.
//! `sealv1` seals, which bind no attempt, have no attempt field; they are still read so
//! that old TaskRuns can be audited. The signed message is rebuilt from the TaskRun's
//! status by [`message`], so the seal does not grow with the results.

mod message;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

pub use message::{PAYLOAD_TYPE, PAYLOAD_TYPE_V1, TaskRunIdentity, message};

/// The name of the result that carries the seal. A Task declares it once.
pub const RESULT_NAME: &str = "TEKTON_SPIRE_SEAL";
/// Longest seal value accepted, in bytes.
pub const MAX_SEAL_LEN: usize = 16 * 1024;
/// Most certificates a seal may carry.
pub const MAX_CERTIFICATES: usize = 8;

/// Highest attempt a seal may carry: nine decimal digits.
pub const MAX_ATTEMPT: u32 = 999_999_999;

const TAG: &str = "sealv2";
const TAG_V1: &str = "sealv1";
const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Why a seal value does not parse. Not worth retrying: the value is wrong.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Longer than [`MAX_SEAL_LEN`].
    #[error("the seal is longer than {MAX_SEAL_LEN} bytes")]
    TooLong,
    /// Does not start with a version tag this verifier knows.
    #[error(
        "the seal does not start with '{TAG}.' or '{TAG_V1}.' (is it a seal of another version?)"
    )]
    Tag,
    /// Too few or too many dot-separated fields.
    #[error(
        "the seal must have a tag, an attempt ({TAG} only), a time, a signature and 1 to {MAX_CERTIFICATES} certificates separated by '.'"
    )]
    FieldCount,
    /// The attempt is not a decimal number without leading zeros, at most [`MAX_ATTEMPT`].
    #[error(
        "the seal's attempt is not a decimal number from 0 to {MAX_ATTEMPT} without leading zeros"
    )]
    Attempt,
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

/// A seal's version: what its tag says, and so what its signed body binds.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `sealv1`: binds no attempt, so it is verified only for a TaskRun that was never
    /// retried. Read for audits of old TaskRuns, never written.
    V1,
    /// `sealv2`: binds the attempt it was made in.
    V2 {
        /// Tekton's zero-based retry count, `$(context.task.retry-count)`: the number of
        /// entries of `status.retriesStatus` when the attempt's pod was made.
        attempt: u32,
    },
}

/// A parsed seal: well formed, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    version: Version,
    signed_at: OffsetDateTime,
    signature: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl Seal {
    /// Assembles a `sealv2` from its parts; the signing time is truncated to whole
    /// seconds. `attempt` is the one the signature's [`message`] names.
    pub fn new(
        attempt: u32,
        signed_at: OffsetDateTime,
        signature: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Self {
        Self {
            version: Version::V2 { attempt },
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
        let tag = fields.next();
        let fields: Vec<&str> = fields.collect();
        let (version, rest) = match (tag, &fields[..]) {
            (Some(TAG), [attempt, rest @ ..]) => (
                Version::V2 {
                    attempt: parse_attempt(attempt)?,
                },
                rest,
            ),
            (Some(TAG), []) => return Err(Error::FieldCount),
            (Some(TAG_V1), rest) => (Version::V1, rest),
            _ => return Err(Error::Tag),
        };
        let [time, signature, certificates @ ..] = rest else {
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
            version,
            signed_at,
            signature,
            chain,
        })
    }

    /// The seal value, as the signing step writes it to the seal result.
    pub fn encode(&self) -> String {
        let head = match self.version {
            Version::V1 => format!("{TAG_V1}."),
            Version::V2 { attempt } => format!("{TAG}.{attempt}."),
        };
        let mut out = format!(
            "{head}{}.{}",
            format_time(self.signed_at),
            URL_SAFE_NO_PAD.encode(&self.signature)
        );
        for cert in &self.chain {
            out.push('.');
            out.push_str(&URL_SAFE_NO_PAD.encode(cert));
        }
        out
    }

    /// The seal's version, and the attempt it binds.
    pub fn version(&self) -> Version {
        self.version
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

/// Reads an attempt as a seal writes it, and as Tekton writes `$(context.task.retry-count)`
/// (Go's `strconv.Itoa`): `0`, or a digit 1-9 followed by up to eight digits. One text per
/// number, so the seal has one form (`u32::from_str` would also take `+1` and `01`).
///
/// # Errors
/// [`Error::Attempt`] for any other text.
pub fn parse_attempt(text: &str) -> Result<u32, Error> {
    let canonical = !text.is_empty()
        && text.len() <= 9
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical {
        text.parse().map_err(|_| Error::Attempt)
    } else {
        Err(Error::Attempt)
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
            1,
            datetime!(2025-06-01 12:03:04.987 UTC),
            vec![1, 2, 3],
            vec![vec![4, 5], vec![6]],
        )
    }

    #[test]
    fn a_seal_round_trips_through_its_text_form() {
        let text = sample().encode();
        assert_eq!(text, "sealv2.1.2025-06-01T12:03:04Z.AQID.BAU.Bg");
        assert_eq!(Seal::parse(&text).unwrap(), sample());
        assert_eq!(sample().version(), Version::V2 { attempt: 1 });
    }

    #[test]
    fn a_version_1_seal_is_read_without_an_attempt_and_written_back_as_it_was() {
        let text = "sealv1.2025-06-01T12:03:04Z.AQID.BAU";
        let seal = Seal::parse(text).unwrap();
        assert_eq!(seal.version(), Version::V1);
        assert_eq!(seal.encode(), text);
    }

    #[test]
    fn an_attempt_has_exactly_one_text() {
        for (attempt, expected) in [("0", Ok(0)), ("7", Ok(7)), ("999999999", Ok(MAX_ATTEMPT))] {
            let text = format!("sealv2.{attempt}.2025-06-01T12:03:04Z.AQID.BAU");
            assert_eq!(
                Seal::parse(&text).map(|s| s.version()),
                expected.map(|attempt| Version::V2 { attempt }),
                "{text}"
            );
        }
        for attempt in [
            "",
            "01",
            "00",
            "+1",
            "-1",
            " 1",
            "1000000000",
            "4294967296",
            "١",
        ] {
            let text = format!("sealv2.{attempt}.2025-06-01T12:03:04Z.AQID.BAU");
            assert_eq!(Seal::parse(&text), Err(Error::Attempt), "{text}");
        }
    }

    #[test]
    fn each_malformation_is_named() {
        let cases = [
            ("sealv3.0.2025-06-01T12:03:04Z.AQID.BAU", Error::Tag),
            ("sealv2", Error::FieldCount),
            ("sealv2.0.2025-06-01T12:03:04Z.AQID", Error::FieldCount),
            ("sealv1.2025-06-01T12:03:04Z.AQID", Error::FieldCount),
            // A version 1 seal retagged: its time is read as the attempt.
            ("sealv2.2025-06-01T12:03:04Z.AQID.BAU", Error::Attempt),
            // A version 2 seal retagged: its attempt is read as the time.
            ("sealv1.0.2025-06-01T12:03:04Z.AQID.BAU", Error::Time),
            ("sealv2.0.2025-06-01T12:03:04+00:00.AQID.BAU", Error::Time),
            ("sealv2.0.2025-06-01 12:03:04Z.AQID.BAU", Error::Time),
            ("sealv2.0.+2025-06-01T12:03:04Z.AQID.BAU", Error::Time),
            (
                "sealv2.0.2025-06-01T12:03:04Z.AQID=.BAU",
                Error::Base64 {
                    field: "signature".into(),
                },
            ),
            (
                "sealv2.0.2025-06-01T12:03:04Z.AQ+D.BAU",
                Error::Base64 {
                    field: "signature".into(),
                },
            ),
            (
                "sealv2.0.2025-06-01T12:03:04Z.AQID.",
                Error::Base64 {
                    field: "certificate 1".into(),
                },
            ),
            (
                "sealv2.0.2025-06-01T12:03:04Z..BAU",
                Error::Base64 {
                    field: "signature".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Seal::parse(text), Err(expected), "{text}");
        }
        for tag in ["sealv2.0", "sealv1"] {
            let too_many = format!(
                "{tag}.2025-06-01T12:03:04Z.AQID{}",
                ".BAU".repeat(MAX_CERTIFICATES + 1)
            );
            assert_eq!(Seal::parse(&too_many), Err(Error::FieldCount), "{tag}");
        }
        assert_eq!(
            Seal::parse(&"a".repeat(MAX_SEAL_LEN + 1)),
            Err(Error::TooLong)
        );
    }
}
