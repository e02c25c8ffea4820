//! Trust bundles: the root certificates of one trust domain, loaded strictly, from
//! whatever form they come in: PEM, DER, a SPIFFE bundle (JWKS), SPIRE's own bundle JSON,
//! or a directory of such files.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::document::{self, Node, Select, SyntaxError};

/// Largest bundle file read, in bytes: a bundle holds a handful of CA certificates.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

/// What a bundle file is expected to be, for messages.
const EXPECTED: &str = "expected PEM CERTIFICATE blocks, DER certificates, a SPIFFE bundle \
    ('spire-server bundle show -format spiffe') or SPIRE's bundle JSON \
    ('spire-server bundle show -output json')";

/// Why a trust bundle could not be loaded. Not worth retrying: fix the file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is larger than [`MAX_BUNDLE_BYTES`].
    #[error("the bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    /// The file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of a bundle directory could not be used.
    #[error("in {path}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// Why it could not be used.
        #[source]
        source: Box<Error>,
    },
    /// A directory holds something that is not a bundle file.
    #[error("the bundle directory {path} {problem}")]
    Directory {
        /// The directory, or the entry in it.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The file is none of the known forms.
    #[error("found {found}; {EXPECTED}")]
    Unrecognized {
        /// What the file starts with.
        found: Found,
    },
    /// The file is of a known form but yields no certificate.
    #[error("found {found} but no certificate in it; {EXPECTED}")]
    Empty {
        /// What was found.
        found: Found,
    },
    /// The PEM could not be parsed, or held a block other than CERTIFICATE.
    #[error("the bundle's PEM is malformed: {problem}")]
    Pem {
        /// What is wrong with it.
        problem: String,
    },
    /// DER certificates that do not split into whole certificates.
    #[error("the bundle's DER is malformed: {problem}")]
    Der {
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The bundle's JSON could not be read (syntax, a member given twice, ...).
    #[error("the bundle's JSON is malformed")]
    Json(#[source] SyntaxError),
    /// A JSON bundle is not shaped as its format says.
    #[error("the {format} is malformed: {problem}")]
    Shape {
        /// `SPIFFE bundle` or `SPIRE bundle JSON`.
        format: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A key of a SPIFFE bundle has no usable `x5c` certificate.
    #[error("key {index} of the SPIFFE bundle is not an X.509-SVID authority: {problem}")]
    Key {
        /// Position of the key in `keys`.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A certificate does not parse as X.509 DER, or has an extension that does not
    /// parse or a critical one that is not processed.
    #[error("certificate {index} of the bundle is not valid X.509: {problem}")]
    Certificate {
        /// Position of the certificate in the bundle.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// What a bundle file turned out to hold, for messages.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing but white space.
    Nothing,
    /// Text without a PEM block.
    TextWithoutPem,
    /// PEM blocks.
    Pem,
    /// DER.
    Der,
    /// A SPIFFE bundle.
    SpiffeBundle,
    /// SPIRE's bundle JSON.
    SpireJson,
    /// A JSON object of another kind, with these members (the first few).
    JsonObject(Vec<String>),
    /// JSON that is not an object.
    JsonOther,
    /// Bytes that are not text.
    Binary(u8),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nothing => f.write_str("an empty file"),
            Self::TextWithoutPem => f.write_str("text without a PEM block"),
            Self::Pem => f.write_str("PEM"),
            Self::Der => f.write_str("DER"),
            Self::SpiffeBundle => f.write_str("a SPIFFE bundle"),
            Self::SpireJson => f.write_str("SPIRE's bundle JSON"),
            Self::JsonObject(members) => {
                write!(f, "a JSON object with the members {members:?}")
            }
            Self::JsonOther => f.write_str("JSON that is not an object"),
            Self::Binary(byte) => write!(f, "binary data starting with byte 0x{byte:02x}"),
        }
    }
}

/// Root certificates trusted for one trust domain. Several bundle files (CA rotation)
/// are merged into one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    roots: Vec<Vec<u8>>,
}

impl TrustBundle {
    /// Loads a bundle file: PEM `CERTIFICATE` blocks, one or more DER certificates one
    /// after the other, a SPIFFE bundle (a JWKS whose keys with `"use": "x509-svid"` carry
    /// the CA in `x5c`; JWT authorities are skipped), or SPIRE's bundle JSON (its
    /// `x509_authorities`). docs/seal-format.md, section 9.1.5, says how each is read.
    ///
    /// # Errors
    /// On anything malformed, including one bad certificate among good ones or a JSON
    /// member given twice: trust material is loaded strictly.
    pub fn load(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Error::TooLarge);
        }
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        let (found, roots) = match bytes[start..] {
            [] => {
                return Err(Error::Empty {
                    found: Found::Nothing,
                });
            }
            [b'{' | b'[', ..] => from_json(bytes)?,
            // A DER certificate is a SEQUENCE longer than 127 bytes: 0x30, then a long
            // length form. No text starts so (0x81-0x84 is no character on its own).
            [0x30, 0x81..=0x84, ..] => (Found::Der, from_der(&bytes[start..])?),
            _ => from_pem(bytes).map_err(|e| match e {
                Error::Unrecognized { .. } if !is_text(bytes) => Error::Unrecognized {
                    found: Found::Binary(bytes[start]),
                },
                e => e,
            })?,
        };
        if roots.is_empty() {
            return Err(Error::Empty { found });
        }
        for (index, der) in roots.iter().enumerate() {
            crate::verify::parse_certificate(der)
                .map_err(|problem| Error::Certificate { index, problem })?;
        }
        Ok(Self { roots })
    }

    /// Reads a bundle file, or every file of a directory (in the order of their names,
    /// skipping those whose name starts with `.`, as Kubernetes' `..data` links in a
    /// mounted ConfigMap; symbolic links are followed), each as [`TrustBundle::load`]
    /// says, and merges their roots.
    ///
    /// # Errors
    /// When the path or a file cannot be read, a directory holds no bundle file or a
    /// subdirectory, or a file cannot be loaded.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let read_error = |source| Error::Read {
            path: path.to_owned(),
            source,
        };
        if !std::fs::metadata(path).map_err(read_error)?.is_dir() {
            return read_file(path);
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let file = entry.path();
            let metadata = std::fs::metadata(&file).map_err(|source| Error::Read {
                path: file.clone(),
                source,
            })?;
            if metadata.is_dir() {
                return Err(Error::Directory {
                    path: file,
                    problem: "is a directory: a bundle directory holds bundle files only",
                });
            }
            files.push(file);
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::Directory {
                path: path.to_owned(),
                problem: "holds no bundle file (names starting with '.' are skipped)",
            });
        }
        let mut bundle = Self::default();
        for file in files {
            let loaded = read_file(&file).map_err(|source| Error::InFile {
                path: file,
                source: Box::new(source),
            })?;
            bundle.extend(loaded);
        }
        Ok(bundle)
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

/// UTF-8 without control characters other than white space: for messages only.
fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        !text
            .chars()
            .any(|c| c.is_control() && !c.is_ascii_whitespace())
    })
}

fn read_file(path: &Path) -> Result<TrustBundle, Error> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    TrustBundle::load(&bytes)
}

fn from_pem(bytes: &[u8]) -> Result<(Found, Vec<Vec<u8>>), Error> {
    let blocks = pem::parse_many(bytes).map_err(|e| Error::Pem {
        problem: e.to_string(),
    })?;
    if blocks.is_empty() {
        return Err(Error::Unrecognized {
            found: Found::TextWithoutPem,
        });
    }
    let roots = blocks
        .into_iter()
        .map(|block| {
            if block.tag() == "CERTIFICATE" {
                Ok(block.into_contents())
            } else {
                Err(Error::Pem {
                    problem: format!(
                        "found a {} block; expected CERTIFICATE blocks only",
                        block.tag()
                    ),
                })
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((Found::Pem, roots))
}

/// Splits DER certificates written one after the other by their outer lengths; each is
/// parsed strictly later.
fn from_der(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut roots = Vec::new();
    while !bytes.is_empty() {
        let (len, header) = match bytes {
            [0x30, 0x81, a, ..] => (usize::from(*a), 3),
            [0x30, 0x82, a, b, ..] => (usize::from(*a) << 8 | usize::from(*b), 4),
            [0x30, 0x83, a, b, c, ..] => (
                usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c),
                5,
            ),
            _ => {
                return Err(Error::Der {
                    problem: "a certificate does not start with a DER SEQUENCE of definite length",
                });
            }
        };
        let end = header + len;
        let Some(cert) = bytes.get(..end) else {
            return Err(Error::Der {
                problem: "the last certificate is cut short",
            });
        };
        roots.push(cert.to_vec());
        bytes = &bytes[end..];
    }
    Ok(roots)
}

fn from_json(bytes: &[u8]) -> Result<(Found, Vec<Vec<u8>>), Error> {
    static ALL: Select = Select::All;
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Unrecognized {
        found: Found::Binary(0xff),
    })?;
    let doc = document::read(text, &ALL)
        .map_err(Error::Json)?
        .unwrap_or(Node::Null);
    let Node::Object(members) = &doc else {
        return Err(Error::Unrecognized {
            found: Found::JsonOther,
        });
    };
    if doc.get("keys").is_some() {
        Ok((Found::SpiffeBundle, from_spiffe(&doc)?))
    } else if doc.get("x509_authorities").is_some() || doc.get("trust_domain").is_some() {
        Ok((Found::SpireJson, from_spire_json(&doc)?))
    } else {
        Err(Error::Unrecognized {
            found: Found::JsonObject(members.iter().take(8).map(|(k, _)| k.clone()).collect()),
        })
    }
}

fn base64_der(text: &str) -> Result<Vec<u8>, &'static str> {
    STANDARD
        .decode(text)
        .map_err(|_| "the certificate is not standard base64")
}

fn from_spiffe(doc: &Node) -> Result<Vec<Vec<u8>>, Error> {
    let shape = |problem: &str| Error::Shape {
        format: "SPIFFE bundle",
        problem: problem.into(),
    };
    let Some(Node::Array(keys)) = doc.get("keys") else {
        return Err(shape("\"keys\" is not an array"));
    };
    let mut roots = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let problem = |p: &str| Error::Key {
            index,
            problem: p.into(),
        };
        let Node::Object(_) = key else {
            return Err(problem("it is not an object"));
        };
        let key_use = match key.get("use") {
            None | Some(Node::Null) => None,
            Some(Node::String(s)) => Some(s.as_str()),
            Some(_) => return Err(problem("its \"use\" is not a string")),
        };
        let x5c = match key.get("x5c") {
            None | Some(Node::Null) => Vec::new(),
            Some(Node::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Node::String(s) => Ok(s.as_str()),
                    _ => Err(problem("its \"x5c\" holds something other than a string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(problem("its \"x5c\" is not an array")),
        };
        match key_use {
            Some("x509-svid") => {}
            // The SPIFFE bundle format says keys of other uses are ignored.
            Some(_) => continue,
            None => return Err(problem("it has no \"use\" (x509-svid or jwt-svid)")),
        }
        // The SPIFFE bundle format requires exactly one certificate per X.509 authority.
        let [cert] = x5c[..] else {
            return Err(problem(
                "an X.509-SVID authority must carry exactly one certificate in x5c",
            ));
        };
        roots.push(base64_der(cert).map_err(problem)?);
    }
    Ok(roots)
}

/// SPIRE's bundle as its API and `-output json` write it:
/// `{"trust_domain": …, "x509_authorities": [{"asn1": "<base64 DER>"}, …], …}`.
fn from_spire_json(doc: &Node) -> Result<Vec<Vec<u8>>, Error> {
    let shape = |problem: String| Error::Shape {
        format: "SPIRE bundle JSON",
        problem,
    };
    let authorities = match doc.get("x509_authorities") {
        None | Some(Node::Null) => return Ok(Vec::new()),
        Some(Node::Array(items)) => items,
        Some(_) => return Err(shape("\"x509_authorities\" is not an array".into())),
    };
    authorities
        .iter()
        .enumerate()
        .map(|(index, authority)| match authority.get("asn1") {
            Some(Node::String(text)) => {
                base64_der(text).map_err(|p| shape(format!("x509_authorities[{index}]: {p}")))
            }
            _ => Err(shape(format!(
                "x509_authorities[{index}] has no \"asn1\" string"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_blank_file_is_refused_with_a_hint() {
        for input in [&b""[..], b" \n"] {
            let err = TrustBundle::load(input).unwrap_err();
            assert!(matches!(err, Error::Empty { .. }));
            assert!(err.to_string().contains("spire-server bundle show"));
        }
    }

    #[test]
    fn a_private_key_block_is_not_trust_material() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = TrustBundle::load(pem.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::Pem { .. }));
        assert!(
            err.to_string().contains("found a PRIVATE KEY block"),
            "{err}"
        );
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
        assert!(matches!(
            TrustBundle::load(json),
            Err(Error::Empty {
                found: Found::SpiffeBundle
            })
        ));
    }

    #[test]
    fn a_spiffe_key_with_two_certificates_is_refused() {
        let json = br#"{"keys":[{"use":"x509-svid","x5c":["AAAA","AAAA"]}]}"#;
        assert!(matches!(
            TrustBundle::load(json),
            Err(Error::Key { index: 0, .. })
        ));
    }

    #[test]
    fn a_member_given_twice_anywhere_in_a_json_bundle_is_refused() {
        for json in [
            r#"{"keys":[{"use":"jwt-svid"}],"keys":[]}"#,
            r#"{"keys":[{"use":"jwt-svid","use":"x509-svid"}]}"#,
            r#"{"keys":[{"use":"jwt-svid","kty":"EC","kty":"RSA"}]}"#,
            r#"{"keys":[{"use":"jwt-svid"}],"spiffe_sequence":1,"spiffe_sequence":2}"#,
        ] {
            let err = TrustBundle::load(json.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::Json(_)), "{json}: {err}");
        }
    }

    #[test]
    fn what_cannot_be_used_is_named_beside_what_is_expected() {
        let cases: [(&[u8], &str); 4] = [
            (b"hello\n", "found text without a PEM block; expected PEM"),
            (b"\x00\x01", "found binary data starting with byte 0x00"),
            (
                br#"{"foo": 1}"#,
                "found a JSON object with the members [\"foo\"]",
            ),
            (b"[1]", "found JSON that is not an object"),
        ];
        for (input, message) in cases {
            let err = TrustBundle::load(input).unwrap_err().to_string();
            assert!(err.starts_with(message), "{err}");
        }
    }

    #[test]
    fn der_certificates_must_split_into_whole_certificates() {
        assert!(matches!(
            TrustBundle::load(&[0x30, 0x82, 0x01, 0x00, 0x00]),
            Err(Error::Der { .. })
        ));
    }

    const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/seal/pki/");

    fn root_der() -> Vec<u8> {
        let pem = std::fs::read(format!("{PKI}root.pem")).unwrap();
        pem::parse(pem).unwrap().into_contents()
    }

    #[test]
    fn der_and_spire_json_give_the_same_root_as_pem() {
        let from_pem = TrustBundle::read(Path::new(&format!("{PKI}root.pem"))).unwrap();
        let der = root_der();
        assert_eq!(TrustBundle::load(&der).unwrap(), from_pem);
        let two = [der.clone(), der.clone()].concat();
        assert_eq!(TrustBundle::load(&two).unwrap().roots().count(), 2);
        let spire = format!(
            r#"{{"trust_domain":"example.org","x509_authorities":[{{"asn1":"{}"}}],"jwt_authorities":[],"sequence_number":"1"}}"#,
            STANDARD.encode(&der)
        );
        assert_eq!(TrustBundle::load(spire.as_bytes()).unwrap(), from_pem);
    }

    #[test]
    fn a_directory_merges_its_files_and_skips_hidden_ones() {
        let dir = std::env::temp_dir().join(format!("bundle-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("..2025_06_01")).unwrap();
        std::fs::copy(format!("{PKI}root.pem"), dir.join("a.pem")).unwrap();
        std::fs::copy(format!("{PKI}other-root.pem"), dir.join("b.pem")).unwrap();
        std::fs::write(dir.join(".hidden"), "not a bundle").unwrap();
        let bundle = TrustBundle::read(&dir).unwrap();
        assert_eq!(bundle.roots().count(), 2);

        std::fs::write(dir.join("c.txt"), "not a bundle").unwrap();
        let err = TrustBundle::read(&dir).unwrap_err();
        assert!(matches!(err, Error::InFile { .. }), "{err}");
        std::fs::remove_file(dir.join("c.txt")).unwrap();

        std::fs::create_dir(dir.join("sub")).unwrap();
        assert!(matches!(
            TrustBundle::read(&dir),
            Err(Error::Directory { .. })
        ));
        let empty = dir.join("sub");
        assert!(matches!(
            TrustBundle::read(&empty),
            Err(Error::Directory { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
