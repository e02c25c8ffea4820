//! The difference between the entries the cluster needs and the entries this controller
//! owns on the server: what to create, update and delete. Pure.

use std::collections::BTreeMap;

use crate::spire::{Entry, EntryId, EntrySpec};

/// The changes that make the owned entries equal the desired ones: what to create and
/// update borrowed from the desired entries (a cold start's 10,000 creates are not
/// copied).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan<'d> {
    pub(crate) create: Vec<&'d EntrySpec>,
    pub(crate) update: Vec<&'d EntrySpec>,
    pub(crate) delete: Vec<EntryId>,
}

impl Plan<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Which entries on the server are this controller's.
#[derive(Debug, Clone)]
pub(crate) struct Ownership {
    /// Entries under it are ours: kept equal to the desired ones.
    pub(crate) prefix: String,
    /// Entries under it, in the shapes the controller writes, are left from a previous
    /// prefix: deleted, never created.
    pub(crate) cleanup: Option<String>,
}

/// What an entry on the server is to this controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Under our prefix.
    Ours,
    /// Under the cleanup prefix: to be deleted.
    Leftover,
    /// Someone else's: never touched, whatever it contains (its hint included).
    Other,
}

impl Ownership {
    /// Only the ID decides: an entry under our prefix is ours whatever its hint or
    /// contents, and nothing else ever is.
    pub(crate) fn of(&self, id: &EntryId) -> Owner {
        let id = id.as_str();
        if id.starts_with(&self.prefix) {
            return Owner::Ours;
        }
        match &self.cleanup {
            Some(cleanup) if id.strip_prefix(cleanup.as_str()).is_some_and(written_shape) => {
                Owner::Leftover
            }
            _ => Owner::Other,
        }
    }
}

/// Whether the part after a prefix has a shape the controller writes: a pod UID, or
/// `node.<node name>`. Another cluster's entries under a longer prefix that starts with
/// the cleanup prefix (`<cleanup><cluster>.<uid>`) have neither shape.
fn written_shape(rest: &str) -> bool {
    let uid = rest.len() == 36
        && rest.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        });
    uid || rest.strip_prefix("node.").is_some_and(|n| !n.is_empty())
}

/// A digest of the fields of an entry that the controller sets, which is all a plan
/// compares: what is known of 10,000 entries between passes is their IDs and these, not
/// their specs (a 32-byte digest instead of about 700 bytes of strings each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// SHA-256 over the compared fields, each length-prefixed, so that no two different
    /// sets of fields encode alike; the server fills in the others.
    pub(crate) fn of(spec: &EntrySpec) -> Self {
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        let mut text = |s: &str| {
            digest.update(&(s.len() as u64).to_le_bytes());
            digest.update(s.as_bytes());
        };
        for id in [&spec.spiffe_id, &spec.parent_id] {
            text(id.trust_domain_name());
            text(id.path());
        }
        text(&spec.hint);
        for selector in &spec.selectors {
            text(selector.kind());
            text(selector.value());
        }
        digest.update(&(spec.selectors.len() as u64).to_le_bytes());
        for number in [
            spec.x509_svid_ttl.map(|ttl| ttl.as_secs() as i64),
            spec.expires_at,
        ] {
            match number {
                Some(n) => {
                    digest.update(&[1]);
                    digest.update(&n.to_le_bytes());
                }
                None => digest.update(&[0]),
            }
        }
        let mut out = [0; 32];
        out.copy_from_slice(digest.finish().as_ref());
        Self(out)
    }
}

/// What is known of the server's entries: ours by ID, and the leftovers' IDs.
#[derive(Debug, Default)]
pub(crate) struct Classified {
    pub(crate) ours: BTreeMap<EntryId, Fingerprint>,
    pub(crate) leftovers: Vec<EntryId>,
}

impl Classified {
    /// Files one listed entry by its owner.
    pub(crate) fn add(&mut self, entry: Entry, ownership: &Ownership) {
        match ownership.of(&entry.spec.id) {
            Owner::Ours => {
                let fingerprint = Fingerprint::of(&entry.spec);
                self.ours.insert(entry.spec.id, fingerprint);
            }
            Owner::Leftover => self.leftovers.push(entry.spec.id),
            Owner::Other => {}
        }
    }
}

/// Plans a pass. Entries are keyed by their deterministic ID (the prefix and the pod
/// UID), so a pod's entry is found again after any restart.
///
/// # Assumptions
/// `known` holds every entry under our prefix, from a complete list and the outcomes of
/// our own changes since; a partial list would turn into deletions, so the caller
/// abandons the pass when listing fails.
pub(crate) fn plan<'d>(
    desired: impl IntoIterator<Item = (&'d EntryId, &'d EntrySpec)>,
    known: &BTreeMap<EntryId, Fingerprint>,
) -> Plan<'d> {
    let mut plan = Plan::default();
    let mut wanted = std::collections::BTreeSet::new();
    for (id, want) in desired {
        wanted.insert(id);
        match known.get(id) {
            None => plan.create.push(want),
            Some(have) if Fingerprint::of(want) != *have => plan.update.push(want),
            Some(_) => {}
        }
    }
    plan.delete = known
        .keys()
        .filter(|id| !wanted.contains(id))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spire::Selector;
    use std::time::Duration;

    fn spec(id: &str, pod: &str) -> EntrySpec {
        let mut s = EntrySpec::new(
            EntryId::new(id).unwrap(),
            "spiffe://example.org/ns/a/taskrun/b".parse().unwrap(),
            "spiffe://example.org/tekton-node/n".parse().unwrap(),
            [Selector::new("k8s", format!("pod-uid:{pod}")).unwrap()],
        );
        s.hint = "tekton-spire".into();
        s.x509_svid_ttl = Some(Duration::from_secs(3600));
        s.expires_at = Some(1_900_000_000);
        s
    }

    fn stored(spec: EntrySpec) -> Entry {
        Entry {
            spec,
            revision_number: 0,
            created_at: 0,
        }
    }

    fn map(specs: &[EntrySpec]) -> BTreeMap<EntryId, EntrySpec> {
        specs.iter().map(|s| (s.id.clone(), s.clone())).collect()
    }

    fn known(specs: &[EntrySpec]) -> BTreeMap<EntryId, Fingerprint> {
        specs
            .iter()
            .map(|s| (s.id.clone(), Fingerprint::of(s)))
            .collect()
    }

    fn ownership(cleanup: Option<&str>) -> Ownership {
        Ownership {
            prefix: "ts.a.".into(),
            cleanup: cleanup.map(Into::into),
        }
    }

    #[test]
    fn missing_entries_are_created_and_stale_ones_deleted() {
        let want = map(&[spec("ts.a.1", "1"), spec("ts.a.2", "2")]);
        let have = known(&[spec("ts.a.2", "2"), spec("ts.a.3", "3")]);
        let p = plan(&want, &have);
        assert_eq!(p.create, vec![&spec("ts.a.1", "1")]);
        assert!(p.update.is_empty());
        assert_eq!(p.delete, vec![EntryId::new("ts.a.3").unwrap()]);
    }

    #[test]
    fn only_the_id_prefix_decides_ownership_not_the_hint() {
        let mut hintless = spec("ts.a.1", "1");
        hintless.hint = String::new();
        let mut ours_by_hint_only = spec("someone-else", "2");
        ours_by_hint_only.hint = "tekton-spire".into();
        let mut listed = Classified::default();
        for entry in [
            stored(hintless.clone()),
            stored(ours_by_hint_only),
            stored(spec("manual-entry", "3")),
        ] {
            listed.add(entry, &ownership(None));
        }
        assert_eq!(listed.ours, known(&[hintless]));
        assert!(listed.leftovers.is_empty());
        // And what is ours but not desired is deleted.
        let nothing = BTreeMap::new();
        let p = plan(&nothing, &listed.ours);
        assert_eq!(p.delete, vec![EntryId::new("ts.a.1").unwrap()]);
    }

    #[test]
    fn another_clusters_entries_are_never_ours_nor_leftovers() {
        let uid = "0b5b8d1e-3c39-4b7e-9a43-5b0d2c1e9f00";
        let own = ownership(Some("ts."));
        assert_eq!(
            own.of(&EntryId::new(format!("ts.a.{uid}")).unwrap()),
            Owner::Ours
        );
        // The old default prefix's shapes are leftovers ...
        assert_eq!(
            own.of(&EntryId::new(format!("ts.{uid}")).unwrap()),
            Owner::Leftover
        );
        assert_eq!(
            own.of(&EntryId::new("ts.node.n-1").unwrap()),
            Owner::Leftover
        );
        // ... but cluster b's entries, under ts.b., are not, though ts. is their prefix too.
        assert_eq!(
            own.of(&EntryId::new(format!("ts.b.{uid}")).unwrap()),
            Owner::Other
        );
        assert_eq!(
            own.of(&EntryId::new("ts.b.node.n-1").unwrap()),
            Owner::Other
        );
        assert_eq!(
            ownership(None).of(&EntryId::new(format!("ts.{uid}")).unwrap()),
            Owner::Other
        );
        assert_eq!(
            own.of(&EntryId::new(format!("ts.{}", uid.to_uppercase())).unwrap()),
            Owner::Other
        );
    }

    #[test]
    fn a_changed_field_is_updated_in_place() {
        let mut changed = spec("ts.a.1", "1");
        changed.x509_svid_ttl = Some(Duration::from_secs(60));
        let want = map(&[changed.clone()]);
        let p = plan(&want, &known(&[spec("ts.a.1", "1")]));
        assert_eq!(p.update, vec![&changed]);
        assert!(p.create.is_empty() && p.delete.is_empty());
        let mut later = spec("ts.a.1", "1");
        later.expires_at = Some(1_900_000_600);
        assert_eq!(
            plan(&map(&[later.clone()]), &known(&[spec("ts.a.1", "1")])).update,
            vec![&later]
        );
    }

    #[test]
    fn every_compared_field_changes_the_fingerprint_and_nothing_else_does() {
        let base = spec("ts.a.1", "1");
        let changes: [fn(&mut EntrySpec); 6] = [
            |s| s.spiffe_id = "spiffe://example.org/ns/a/taskrun/c".parse().unwrap(),
            |s| s.parent_id = "spiffe://example.org/tekton-node/m".parse().unwrap(),
            |s| s.selectors.push(Selector::new("k8s", "ns:a").unwrap()),
            |s| s.x509_svid_ttl = None,
            |s| s.hint = "tekton-spire-".into(),
            |s| s.expires_at = None,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(
                Fingerprint::of(&changed),
                Fingerprint::of(&base),
                "change {i}"
            );
        }
        // What the server fills in, or the controller does not set, is not compared.
        let mut filled = base.clone();
        filled.dns_names = vec!["a.example".into()];
        filled.jwt_svid_ttl = Some(Duration::from_secs(60));
        assert_eq!(Fingerprint::of(&filled), Fingerprint::of(&base));
    }

    #[test]
    fn a_converged_state_plans_nothing() {
        let want = map(&[spec("ts.a.1", "1")]);
        assert!(plan(&want, &known(&[spec("ts.a.1", "1")])).is_empty());
    }
}
