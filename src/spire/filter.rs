//! Which entries a list returns: the server-side filters of `ListEntries`.

use spiffe::SpiffeId;

use super::entry::{Selector, selectors_to_proto, spiffe_id_to_proto};
use super::proto::spire::api::server::entry::v1::list_entries_request;
use super::proto::spire::api::types as pb;

/// How an entry's selectors must relate to the requested ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectorMatch {
    /// The same set.
    Exact,
    /// The entry's selectors are all among the requested ones.
    Subset,
    /// The entry has every requested selector, and maybe more.
    Superset,
    /// The entry has at least one of the requested selectors.
    Any,
}

/// Conditions an entry must all meet to be listed; the default lists every entry.
///
/// # Example
/// ```
/// use tekton_spire::spire::ListFilter;
/// let ours = ListFilter::default().by_hint("tekton-spire");
/// # let _ = ours;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListFilter {
    spiffe_id: Option<SpiffeId>,
    parent_id: Option<SpiffeId>,
    selectors: Option<(Vec<Selector>, SelectorMatch)>,
    hint: Option<String>,
}

impl ListFilter {
    /// Only entries with exactly this SPIFFE ID. The server refuses the whole list with
    /// `INVALID_ARGUMENT` for an ID outside its trust domain.
    #[must_use]
    pub fn by_spiffe_id(mut self, id: SpiffeId) -> Self {
        self.spiffe_id = Some(id);
        self
    }

    /// Only entries with exactly this parent.
    #[must_use]
    pub fn by_parent_id(mut self, id: SpiffeId) -> Self {
        self.parent_id = Some(id);
        self
    }

    /// Only entries whose selectors relate to `selectors` as `how` says. The server
    /// refuses an empty set.
    #[must_use]
    pub fn by_selectors(
        mut self,
        selectors: impl IntoIterator<Item = Selector>,
        how: SelectorMatch,
    ) -> Self {
        self.selectors = Some((selectors.into_iter().collect(), how));
        self
    }

    /// Only entries whose hint is exactly `hint`.
    #[must_use]
    pub fn by_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn to_proto(&self) -> list_entries_request::Filter {
        use pb::selector_match::MatchBehavior;
        list_entries_request::Filter {
            by_spiffe_id: self.spiffe_id.as_ref().map(spiffe_id_to_proto),
            by_parent_id: self.parent_id.as_ref().map(spiffe_id_to_proto),
            by_selectors: self.selectors.as_ref().map(|(selectors, how)| {
                let behavior = match how {
                    SelectorMatch::Exact => MatchBehavior::MatchExact,
                    SelectorMatch::Subset => MatchBehavior::MatchSubset,
                    SelectorMatch::Superset => MatchBehavior::MatchSuperset,
                    SelectorMatch::Any => MatchBehavior::MatchAny,
                };
                pb::SelectorMatch {
                    selectors: selectors_to_proto(selectors),
                    r#match: behavior.into(),
                }
            }),
            by_federates_with: None,
            by_hint: self.hint.clone(),
            by_downstream: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_sets_nothing() {
        assert_eq!(
            ListFilter::default().to_proto(),
            list_entries_request::Filter::default()
        );
    }

    #[test]
    fn every_condition_reaches_the_message() {
        let id = SpiffeId::new("spiffe://example.org/a").unwrap();
        let filter = ListFilter::default()
            .by_spiffe_id(id.clone())
            .by_parent_id(id)
            .by_selectors(["k8s:ns:x".parse().unwrap()], SelectorMatch::Superset)
            .by_hint("h")
            .to_proto();
        assert_eq!(filter.by_hint.as_deref(), Some("h"));
        assert_eq!(filter.by_spiffe_id.unwrap().path, "/a");
        assert_eq!(filter.by_parent_id.unwrap().trust_domain, "example.org");
        let selectors = filter.by_selectors.unwrap();
        assert_eq!(selectors.r#match, 2);
        assert_eq!(selectors.selectors[0].value, "ns:x");
    }
}
