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

/// The entries a list returned, split by owner: ours by ID, and the leftovers' IDs.
pub(crate) fn classify(
    listed: Vec<Entry>,
    ownership: &Ownership,
) -> (BTreeMap<EntryId, EntrySpec>, Vec<EntryId>) {
    let mut ours = BTreeMap::new();
    let mut leftovers = Vec::new();
    for entry in listed {
        match ownership.of(&entry.spec.id) {
            Owner::Ours => {
                ours.insert(entry.spec.id.clone(), entry.spec);
            }
            Owner::Leftover => leftovers.push(entry.spec.id),
            Owner::Other => {}
        }
    }
    (ours, leftovers)
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
    known: &BTreeMap<EntryId, EntrySpec>,
) -> Plan<'d> {
    let mut plan = Plan::default();
    let mut wanted = std::collections::BTreeSet::new();
    for (id, want) in desired {
        wanted.insert(id);
        match known.get(id) {
            None => plan.create.push(want),
            Some(have) if differs(want, have) => plan.update.push(want),
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

/// Compares the fields the controller sets; the server fills in others.
fn differs(want: &EntrySpec, have: &EntrySpec) -> bool {
    want.spiffe_id != have.spiffe_id
        || want.parent_id != have.parent_id
        || want.selectors != have.selectors
        || want.x509_svid_ttl != have.x509_svid_ttl
        || want.hint != have.hint
        || want.expires_at != have.expires_at
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

    fn ownership(cleanup: Option<&str>) -> Ownership {
        Ownership {
            prefix: "ts.a.".into(),
            cleanup: cleanup.map(Into::into),
        }
    }

    #[test]
    fn missing_entries_are_created_and_stale_ones_deleted() {
        let want = map(&[spec("ts.a.1", "1"), spec("ts.a.2", "2")]);
        let have = map(&[spec("ts.a.2", "2"), spec("ts.a.3", "3")]);
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
        let (ours, leftovers) = classify(
            vec![
                stored(hintless.clone()),
                stored(ours_by_hint_only),
                stored(spec("manual-entry", "3")),
            ],
            &ownership(None),
        );
        assert_eq!(ours, map(&[hintless]));
        assert!(leftovers.is_empty());
        // And what is ours but not desired is deleted.
        let nothing = BTreeMap::new();
        let p = plan(&nothing, &ours);
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
        let p = plan(&want, &map(&[spec("ts.a.1", "1")]));
        assert_eq!(p.update, vec![&changed]);
        assert!(p.create.is_empty() && p.delete.is_empty());
        let mut later = spec("ts.a.1", "1");
        later.expires_at = Some(1_900_000_600);
        assert_eq!(
            plan(&map(&[later.clone()]), &map(&[spec("ts.a.1", "1")])).update,
            vec![&later]
        );
    }

    #[test]
    fn a_converged_state_plans_nothing() {
        let want = map(&[spec("ts.a.1", "1")]);
        assert!(plan(&want, &want.clone()).is_empty());
    }
}
