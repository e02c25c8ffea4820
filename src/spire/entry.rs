//! Registration entries as the controller sees them, and their mapping to and from the
//! SPIRE API's messages.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use spiffe::SpiffeId;

use super::error::Error;
use super::proto::spire::api::types as pb;

/// A registration entry ID that SPIRE accepts from a client: 1 to 255 bytes of ASCII
/// letters, digits, `-`, `.` and `_` (SPIRE v1.13 `validateRegistrationEntry`).
///
/// The controller derives entry IDs from a fixed prefix and the pod UID, so a create is
/// idempotent and its entries are recognised by the prefix alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(String);

impl EntryId {
    /// The longest ID SPIRE accepts, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Checks an ID against SPIRE's rules.
    ///
    /// # Errors
    /// [`Error::InvalidEntryId`] when it is empty, too long or has another character.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        let rule = if id.is_empty() {
            Some("must not be empty")
        } else if id.len() > Self::MAX_LEN {
            Some("must be at most 255 bytes")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            Some("may only contain ASCII letters, digits, '-', '.' and '_'")
        } else {
            None
        };
        match rule {
            Some(rule) => Err(Error::InvalidEntryId { id, rule }),
            None => Ok(Self(id)),
        }
    }

    /// An ID the server reported; the server's own IDs are not re-checked.
    pub(crate) fn from_server(id: String) -> Self {
        Self(id)
    }

    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EntryId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl AsRef<str> for EntryId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One workload attestation property, written `type:value` (`k8s:pod-uid:1234` has type
/// `k8s` and value `pod-uid:1234`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    kind: String,
    value: String,
}

impl Selector {
    /// A selector of attestor `kind` (`k8s`, `unix`, ...) with `value`.
    ///
    /// # Errors
    /// [`Error::InvalidSelector`] when either part is empty or `kind` contains `:`, which
    /// the server would refuse.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Result<Self, Error> {
        let (kind, value) = (kind.into(), value.into());
        if kind.is_empty() || value.is_empty() || kind.contains(':') {
            return Err(Error::InvalidSelector {
                selector: format!("{kind}:{value}"),
            });
        }
        Ok(Self { kind, value })
    }

    /// The attestor name, the part before the first `:`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The attestor-specific value, the part after the first `:`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromStr for Selector {
    type Err = Error;

    /// Parses `type:value`, splitting at the first `:`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (kind, value) = s.split_once(':').ok_or_else(|| Error::InvalidSelector {
            selector: s.to_owned(),
        })?;
        Self::new(kind, value)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The fields of a registration entry that this client writes and reads.
///
/// Fields it does not model (federates_with, downstream, store_svid) are sent unset on
/// create, left alone on update, and dropped when reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySpec {
    /// The entry ID, chosen by the caller.
    pub id: EntryId,
    /// The identity issued to matching workloads.
    pub spiffe_id: SpiffeId,
    /// The agent, or node alias entry, under which the selectors are evaluated.
    pub parent_id: SpiffeId,
    /// Every one of these must be attested for a workload to match. Sent and read back
    /// sorted and without duplicates.
    pub selectors: Vec<Selector>,
    /// X509-SVID lifetime in whole seconds (capped at `i32::MAX`); `None` for the
    /// server's default.
    pub x509_svid_ttl: Option<Duration>,
    /// JWT-SVID lifetime, as `x509_svid_ttl`.
    pub jwt_svid_ttl: Option<Duration>,
    /// A label, at most 1024 bytes; empty for none. The controller marks its entries
    /// with it so that one filtered list returns exactly them.
    pub hint: String,
    /// DNS SANs of the X509-SVID; the first one is also its subject's common name. Sent
    /// without duplicates.
    pub dns_names: Vec<String>,
    /// Whether the SVID may call the server's admin APIs.
    pub admin: bool,
    /// When the server may prune the entry, in seconds since the Unix epoch; `None` for
    /// never. SPIRE keeps serving an expired entry until its next pruning (every 5 minutes
    /// in v1.13).
    pub expires_at: Option<i64>,
}

impl EntrySpec {
    /// An entry with the given identity and selectors and default settings otherwise.
    pub fn new(
        id: EntryId,
        spiffe_id: SpiffeId,
        parent_id: SpiffeId,
        selectors: impl IntoIterator<Item = Selector>,
    ) -> Self {
        let mut spec = Self {
            id,
            spiffe_id,
            parent_id,
            selectors: selectors.into_iter().collect(),
            x509_svid_ttl: None,
            jwt_svid_ttl: None,
            hint: String::new(),
            dns_names: Vec::new(),
            admin: false,
            expires_at: None,
        };
        canonical_selectors(&mut spec.selectors);
        spec
    }
}

/// An entry as stored by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its modelled fields.
    pub spec: EntrySpec,
    /// Bumped by the server on every change.
    pub revision_number: i64,
    /// Creation time in seconds since the Unix epoch; 0 when the server did not say.
    pub created_at: i64,
}

/// The mask selecting the fields [`EntrySpec`] models, for updates.
pub(crate) fn spec_mask() -> pb::EntryMask {
    pb::EntryMask {
        spiffe_id: true,
        parent_id: true,
        selectors: true,
        x509_svid_ttl: true,
        jwt_svid_ttl: true,
        hint: true,
        dns_names: true,
        admin: true,
        expires_at: true,
        ..pb::EntryMask::default()
    }
}

fn canonical_selectors(selectors: &mut Vec<Selector>) {
    selectors.sort();
    selectors.dedup();
}

fn ttl_to_proto(ttl: Option<Duration>) -> i32 {
    ttl.map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
}

fn ttl_from_proto(seconds: i32) -> Option<Duration> {
    u64::try_from(seconds)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

fn id_to_proto(id: &SpiffeId) -> pb::Spiffeid {
    pb::Spiffeid {
        trust_domain: id.trust_domain_name().to_owned(),
        path: id.path().to_owned(),
    }
}

fn id_from_proto(
    entry_id: &str,
    field: &'static str,
    id: Option<pb::Spiffeid>,
) -> Result<SpiffeId, Error> {
    let invalid = |source| Error::InvalidEntry {
        id: entry_id.to_owned(),
        field,
        source,
    };
    let id = id.ok_or_else(|| invalid(None))?;
    SpiffeId::new(format!("spiffe://{}{}", id.trust_domain, id.path)).map_err(|e| invalid(Some(e)))
}

pub(crate) fn selectors_to_proto(selectors: &[Selector]) -> Vec<pb::Selector> {
    selectors
        .iter()
        .map(|s| pb::Selector {
            r#type: s.kind.clone(),
            value: s.value.clone(),
        })
        .collect()
}

pub(crate) fn spiffe_id_to_proto(id: &SpiffeId) -> pb::Spiffeid {
    id_to_proto(id)
}

impl EntrySpec {
    pub(crate) fn to_proto(&self) -> pb::Entry {
        let mut selectors = self.selectors.clone();
        canonical_selectors(&mut selectors);
        let mut dns_names: Vec<String> = Vec::with_capacity(self.dns_names.len());
        for name in &self.dns_names {
            if !dns_names.contains(name) {
                dns_names.push(name.clone());
            }
        }
        pb::Entry {
            id: self.id.0.clone(),
            spiffe_id: Some(id_to_proto(&self.spiffe_id)),
            parent_id: Some(id_to_proto(&self.parent_id)),
            selectors: selectors_to_proto(&selectors),
            x509_svid_ttl: ttl_to_proto(self.x509_svid_ttl),
            jwt_svid_ttl: ttl_to_proto(self.jwt_svid_ttl),
            hint: self.hint.clone(),
            dns_names,
            admin: self.admin,
            expires_at: self.expires_at.unwrap_or(0),
            ..pb::Entry::default()
        }
    }
}

impl Entry {
    pub(crate) fn from_proto(entry: pb::Entry) -> Result<Self, Error> {
        let spiffe_id = id_from_proto(&entry.id, "spiffe_id", entry.spiffe_id)?;
        let parent_id = id_from_proto(&entry.id, "parent_id", entry.parent_id)?;
        let mut selectors: Vec<Selector> = entry
            .selectors
            .into_iter()
            .map(|s| Selector {
                kind: s.r#type,
                value: s.value,
            })
            .collect();
        canonical_selectors(&mut selectors);
        Ok(Self {
            spec: EntrySpec {
                id: EntryId::from_server(entry.id),
                spiffe_id,
                parent_id,
                selectors,
                x509_svid_ttl: ttl_from_proto(entry.x509_svid_ttl),
                jwt_svid_ttl: ttl_from_proto(entry.jwt_svid_ttl),
                hint: entry.hint,
                dns_names: entry.dns_names,
                admin: entry.admin,
                expires_at: (entry.expires_at > 0).then_some(entry.expires_at),
            },
            revision_number: entry.revision_number,
            created_at: entry.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::new(s).unwrap()
    }

    #[test]
    fn entry_ids_follow_spires_rules() {
        assert!(EntryId::new("tekton-spire.v1_0-abc").is_ok());
        assert!(EntryId::new("a".repeat(255)).is_ok());
        for bad in ["", "has space", "slash/", "colon:", "ü", &"a".repeat(256)] {
            assert!(
                matches!(EntryId::new(bad), Err(Error::InvalidEntryId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn selectors_split_at_the_first_colon() {
        let s: Selector = "k8s:pod-uid:1234".parse().unwrap();
        assert_eq!((s.kind(), s.value()), ("k8s", "pod-uid:1234"));
        assert_eq!(s.to_string(), "k8s:pod-uid:1234");
        for bad in ["k8s", ":x", "k8s:", ""] {
            assert!(bad.parse::<Selector>().is_err(), "{bad:?}");
        }
        assert!(Selector::new("a:b", "c").is_err());
    }

    #[test]
    fn a_spec_round_trips_through_the_proto_message() {
        let mut spec = EntrySpec::new(
            EntryId::new("tsp-1").unwrap(),
            id("spiffe://example.org/ns/default/taskrun/build"),
            id("spiffe://example.org/spire/agent/join_token/x"),
            [
                "k8s:pod-uid:1".parse().unwrap(),
                "k8s:ns:default".parse().unwrap(),
                "k8s:pod-uid:1".parse().unwrap(),
            ],
        );
        spec.x509_svid_ttl = Some(Duration::from_secs(600));
        spec.hint = "tekton-spire".into();
        spec.dns_names = vec!["b.example".into(), "a.example".into(), "b.example".into()];
        spec.expires_at = Some(1_900_000_000);
        let message = spec.to_proto();
        assert_eq!(message.expires_at, 1_900_000_000);
        assert_eq!(message.selectors.len(), 2);
        assert_eq!(message.dns_names, ["b.example", "a.example"]);
        assert_eq!(message.x509_svid_ttl, 600);
        assert_eq!(message.jwt_svid_ttl, 0);
        let back = Entry::from_proto(message).unwrap();
        spec.dns_names.pop();
        assert_eq!(back.spec, spec);
    }

    #[test]
    fn a_server_entry_without_a_spiffe_id_is_reported() {
        let message = pb::Entry {
            id: "x".into(),
            parent_id: Some(id_to_proto(&id("spiffe://example.org/a"))),
            ..pb::Entry::default()
        };
        assert!(matches!(
            Entry::from_proto(message),
            Err(Error::InvalidEntry {
                field: "spiffe_id",
                source: None,
                ..
            })
        ));
    }

    #[test]
    fn huge_ttls_are_capped_and_zero_means_default() {
        assert_eq!(ttl_to_proto(Some(Duration::from_secs(u64::MAX))), i32::MAX);
        assert_eq!(ttl_to_proto(None), 0);
        assert_eq!(ttl_from_proto(0), None);
        assert_eq!(ttl_from_proto(-5), None);
    }
}
