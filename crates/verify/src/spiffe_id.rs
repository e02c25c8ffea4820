//! SPIFFE IDs and trust domain names, parsed strictly as the SPIFFE ID specification says.

use std::fmt;

/// Longest SPIFFE ID the specification allows, in bytes.
const MAX_ID_LEN: usize = 2048;
/// Longest trust domain name the specification allows, in bytes.
const MAX_TRUST_DOMAIN_LEN: usize = 255;
const SCHEME: &str = "spiffe://";

/// Why a string is not a SPIFFE ID or trust domain name. Not worth retrying: the input is wrong.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The input was empty.
    #[error("SPIFFE ID is empty")]
    Empty,
    /// The input was longer than the specification allows.
    #[error("SPIFFE ID is {len} bytes long, more than the allowed {MAX_ID_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The input did not start with `spiffe://`.
    #[error("SPIFFE ID must start with 'spiffe://'")]
    WrongScheme,
    /// The trust domain part was empty.
    #[error("SPIFFE ID has an empty trust domain")]
    EmptyTrustDomain,
    /// The trust domain name was too long.
    #[error("trust domain name is longer than {MAX_TRUST_DOMAIN_LEN} bytes")]
    TrustDomainTooLong,
    /// The trust domain had a character outside `[a-z0-9._-]`.
    #[error(
        "trust domain may only contain lowercase letters, digits, '.', '-' and '_' (found {found:?})"
    )]
    BadTrustDomainChar {
        /// The offending character.
        found: char,
    },
    /// A path segment was empty, `.` or `..`.
    #[error("SPIFFE ID path segments must not be empty, '.' or '..'")]
    BadPathSegment,
    /// A trust domain was given as a SPIFFE ID with a path (a workload's ID).
    #[error(
        "found a SPIFFE ID with a path; expected a trust domain name (example.org) or its SPIFFE ID (spiffe://example.org)"
    )]
    TrustDomainHasPath,
    /// The path had a character outside `[a-zA-Z0-9._-]`.
    #[error("SPIFFE ID path may only contain letters, digits, '.', '-' and '_' (found {found:?})")]
    BadPathChar {
        /// The offending character.
        found: char,
    },
}

/// A trust domain name such as `example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Parses a trust domain given as its name (`example.org`) or as its SPIFFE ID
    /// (`spiffe://example.org`, as go-spiffe accepts it); an ID with a path is refused,
    /// since it names a workload, not a trust domain.
    ///
    /// # Errors
    /// When the name is empty, too long, or has a character the specification forbids,
    /// or when a SPIFFE ID is given with a path.
    pub fn new(name_or_id: &str) -> Result<Self, IdError> {
        if name_or_id.starts_with(SCHEME) {
            let id = SpiffeId::parse(name_or_id)?;
            if !id.path.is_empty() {
                return Err(IdError::TrustDomainHasPath);
            }
            return Ok(id.trust_domain);
        }
        Self::from_name(name_or_id)
    }

    fn from_name(name: &str) -> Result<Self, IdError> {
        if name.is_empty() {
            return Err(IdError::EmptyTrustDomain);
        }
        if name.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(IdError::TrustDomainTooLong);
        }
        if let Some(found) = name
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
        {
            return Err(IdError::BadTrustDomainChar { found });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name, without scheme.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SPIFFE ID: a trust domain and a path (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    path: String,
}

impl SpiffeId {
    /// Parses `spiffe://<trust-domain><path>`.
    ///
    /// # Errors
    /// When the string breaks any rule of the SPIFFE ID specification (scheme, length,
    /// characters, empty or dot segments, trailing slash, query, fragment, port, user info).
    pub fn parse(id: &str) -> Result<Self, IdError> {
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id.len() > MAX_ID_LEN {
            return Err(IdError::TooLong { len: id.len() });
        }
        let rest = id.strip_prefix(SCHEME).ok_or(IdError::WrongScheme)?;
        let (domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let trust_domain = TrustDomain::from_name(domain)?;
        if !path.is_empty() {
            for segment in path[1..].split('/') {
                if segment.is_empty() || segment == "." || segment == ".." {
                    return Err(IdError::BadPathSegment);
                }
                if let Some(found) = segment
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
                {
                    return Err(IdError::BadPathChar { found });
                }
            }
        }
        Ok(Self {
            trust_domain,
            path: path.to_owned(),
        })
    }

    /// The ID Tekton and tekton-spire give a TaskRun: `spiffe://<td>/ns/<namespace>/taskrun/<name>`.
    ///
    /// # Errors
    /// When the namespace or name contains characters a SPIFFE ID path cannot hold.
    pub fn for_taskrun(
        trust_domain: &TrustDomain,
        namespace: &str,
        name: &str,
    ) -> Result<Self, IdError> {
        // A '/' would add a segment and so name another workload; Kubernetes names have none.
        if namespace.contains('/') || name.contains('/') {
            return Err(IdError::BadPathChar { found: '/' });
        }
        Self::parse(&format!(
            "{SCHEME}{trust_domain}/ns/{namespace}/taskrun/{name}"
        ))
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path, starting with `/`, or empty.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}{}", self.trust_domain, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taskrun_id_round_trips() {
        let id = SpiffeId::parse("spiffe://example.org/ns/default/taskrun/build-1").unwrap();
        assert_eq!(id.trust_domain().as_str(), "example.org");
        assert_eq!(id.path(), "/ns/default/taskrun/build-1");
        assert_eq!(
            id.to_string(),
            "spiffe://example.org/ns/default/taskrun/build-1"
        );
    }

    #[test]
    fn a_trust_domain_id_has_an_empty_path() {
        let id = SpiffeId::parse("spiffe://example.org").unwrap();
        assert_eq!(id.path(), "");
    }

    #[test]
    fn every_rule_of_the_specification_is_enforced() {
        let cases = [
            ("", IdError::Empty),
            ("http://example.org/a", IdError::WrongScheme),
            ("SPIFFE://example.org/a", IdError::WrongScheme),
            ("spiffe:///a", IdError::EmptyTrustDomain),
            (
                "spiffe://Example.org/a",
                IdError::BadTrustDomainChar { found: 'E' },
            ),
            (
                "spiffe://example.org:443/a",
                IdError::BadTrustDomainChar { found: ':' },
            ),
            (
                "spiffe://user@example.org/a",
                IdError::BadTrustDomainChar { found: '@' },
            ),
            ("spiffe://example.org/", IdError::BadPathSegment),
            ("spiffe://example.org//a", IdError::BadPathSegment),
            ("spiffe://example.org/a/./b", IdError::BadPathSegment),
            ("spiffe://example.org/a/..", IdError::BadPathSegment),
            (
                "spiffe://example.org/a?b",
                IdError::BadPathChar { found: '?' },
            ),
            (
                "spiffe://example.org/a#b",
                IdError::BadPathChar { found: '#' },
            ),
            (
                "spiffe://example.org/a%20b",
                IdError::BadPathChar { found: '%' },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(SpiffeId::parse(input), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn an_overlong_id_is_refused_before_it_is_scanned() {
        let id = format!("spiffe://example.org/{}", "a".repeat(MAX_ID_LEN));
        assert!(matches!(SpiffeId::parse(&id), Err(IdError::TooLong { .. })));
    }

    #[test]
    fn a_trust_domain_is_given_as_its_name_or_its_spiffe_id() {
        for given in ["example.org", "spiffe://example.org"] {
            assert_eq!(TrustDomain::new(given).unwrap().as_str(), "example.org");
        }
        assert_eq!(
            TrustDomain::new("spiffe://example.org/ns/a"),
            Err(IdError::TrustDomainHasPath)
        );
        assert!(TrustDomain::new("spiffe://example.org/").is_err());
        assert!(TrustDomain::new("spiffe://Example.org").is_err());
    }

    #[test]
    fn a_taskrun_name_with_a_slash_cannot_forge_another_path() {
        let td = TrustDomain::new("example.org").unwrap();
        assert!(SpiffeId::for_taskrun(&td, "default", "a/b").is_err());
        assert!(SpiffeId::for_taskrun(&td, "a/taskrun", "b").is_err());
    }
}
