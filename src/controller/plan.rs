//! The difference between the entries the cluster needs and the entries this controller
//! owns on the server: what to create, update and delete. Pure.

use std::collections::BTreeMap;

use crate::spire::{Entry, EntryId, EntrySpec};

/// The changes that make the owned entries equal the desired ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) create: Vec<EntrySpec>,
    pub(crate) update: Vec<EntrySpec>,
    pub(crate) delete: Vec<EntryId>,
}

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Whether this controller owns an entry: only entries under its ID prefix are ever
/// updated or deleted, whatever else they share with ours.
pub(crate) fn owned(entry: &Entry, prefix: &str) -> bool {
    entry.spec.id.as_str().starts_with(prefix)
}

/// Plans the pass. Entries are keyed by their deterministic ID (the prefix and the pod
/// UID), so a pod's entry is found again after any restart.
///
/// # Assumptions
/// `actual` is the complete list of entries carrying our hint, from one successful
/// list; a partial list would turn into deletions, so the caller abandons the pass when
/// listing fails.
pub(crate) fn plan(desired: &BTreeMap<EntryId, EntrySpec>, actual: &[Entry], prefix: &str) -> Plan {
    let actual: BTreeMap<&EntryId, &Entry> = actual
        .iter()
        .filter(|e| owned(e, prefix))
        .map(|e| (&e.spec.id, e))
        .collect();
    let mut plan = Plan::default();
    for (id, want) in desired {
        match actual.get(id) {
            None => plan.create.push(want.clone()),
            Some(have) if differs(want, &have.spec) => plan.update.push(want.clone()),
            Some(_) => {}
        }
    }
    plan.delete = actual
        .keys()
        .filter(|id| !desired.contains_key(*id))
        .map(|id| (*id).clone())
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
        s
    }

    fn stored(spec: EntrySpec) -> Entry {
        Entry {
            spec,
            revision_number: 0,
            created_at: 0,
        }
    }

    fn desired(specs: &[EntrySpec]) -> BTreeMap<EntryId, EntrySpec> {
        specs.iter().map(|s| (s.id.clone(), s.clone())).collect()
    }

    #[test]
    fn missing_entries_are_created_and_stale_ones_deleted() {
        let want = desired(&[spec("ts.1", "1"), spec("ts.2", "2")]);
        let have = [stored(spec("ts.2", "2")), stored(spec("ts.3", "3"))];
        let p = plan(&want, &have, "ts.");
        assert_eq!(p.create, vec![spec("ts.1", "1")]);
        assert!(p.update.is_empty());
        assert_eq!(p.delete, vec![EntryId::new("ts.3").unwrap()]);
    }

    #[test]
    fn entries_of_others_are_never_touched_even_when_identical_to_ours() {
        let have = [
            stored(spec("someone-else", "1")),
            stored(spec("manual-entry", "2")),
        ];
        let p = plan(&BTreeMap::new(), &have, "ts.");
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_changed_field_is_updated_in_place() {
        let mut changed = spec("ts.1", "1");
        changed.x509_svid_ttl = Some(Duration::from_secs(60));
        let p = plan(
            &desired(&[changed.clone()]),
            &[stored(spec("ts.1", "1"))],
            "ts.",
        );
        assert_eq!(p.update, vec![changed]);
        assert!(p.create.is_empty() && p.delete.is_empty());
    }

    #[test]
    fn an_empty_cluster_deletes_every_owned_entry_and_nothing_else() {
        let have = [stored(spec("ts.1", "1")), stored(spec("other", "2"))];
        let p = plan(&BTreeMap::new(), &have, "ts.");
        assert_eq!(p.delete, vec![EntryId::new("ts.1").unwrap()]);
    }

    #[test]
    fn a_converged_state_plans_nothing() {
        let want = desired(&[spec("ts.1", "1")]);
        assert!(plan(&want, &[stored(spec("ts.1", "1"))], "ts.").is_empty());
    }
}
