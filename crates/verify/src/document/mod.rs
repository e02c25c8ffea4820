//! Reading a JSON or YAML document with work linear in its size and memory bounded by
//! what is kept: nesting is checked as it is read, aliases are refused, and only the
//! members a caller selects are kept (the rest is checked, then dropped).
//!
//! Text that starts with `{` or `[` (after an optional byte order mark and JSON white
//! space) is JSON and nothing else; any other text is one YAML document read with the
//! profile of docs/seal-format.md, section 9.1.3. Both readers refuse duplicate keys,
//! nesting deeper than [`MAX_DEPTH`], and numbers JSON cannot hold, so no other reader
//! can see other values in a document this one accepts. YAML flow collections nest at
//! most [`MAX_FLOW_DEPTH`] deep: libyaml's scanner spends time proportional to the flow
//! nesting level on every token.

mod json;
mod yaml;

use std::fmt;

/// Deepest nesting of arrays and objects accepted; the document itself is level 1 when
/// it is an array or an object.
pub(crate) const MAX_DEPTH: usize = 128;

/// Deepest nesting of YAML flow collections (`[...]`, `{...}`) accepted, counting only
/// flow collections. libyaml's scanner walks one saved key per flow level on every token
/// (its `stale_simple_keys`), so 3 MiB nested 128 deep in flow style took 0.7 s; at 16
/// levels the walk costs about a third of the scanner's other work (docs/measurements.md).
/// Kubernetes writes flow style only for empty collections.
pub(crate) const MAX_FLOW_DEPTH: usize = 16;

/// Why a text is not a document (JSON or YAML as docs/seal-format.md, 9.1.2-9.1.3, read
/// them). Not worth retrying: the text is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    syntax: Syntax,
    problem: String,
}

/// Which reader reads (or refused) a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Json,
    Yaml,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.syntax {
            Syntax::Json => "JSON (it starts with '{' or '[')",
            Syntax::Yaml => "YAML",
        };
        write!(f, "read as {kind}: {}", self.problem)
    }
}

impl std::error::Error for SyntaxError {}

/// A value kept from a document. Numbers and booleans keep only their kind: nothing the
/// verifier reads may be one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Node {
    #[default]
    Null,
    /// A boolean or a number; or, under [`Select::Value`] and [`Select::Scalar`], any
    /// value that is not a string, array of strings or object of strings.
    Scalar,
    String(String),
    Array(Vec<Node>),
    /// An array of strings, kept under [`Select::Value`] (a third less memory than
    /// `Array` of `String` nodes: result values can be most of a document).
    Strings(Vec<String>),
    /// Members in document order; keys are unique.
    Object(Vec<(String, Node)>),
}

impl Node {
    /// The member `key` of an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Self::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Which parts of a document to keep. Parts not selected are read and checked like the
/// rest, then dropped, so that a large ignored member costs time but no memory.
#[derive(Debug)]
pub(crate) enum Select {
    /// Keep nothing.
    Skip,
    /// Keep the whole value.
    All,
    /// For an object, keep these members (each as its selector says). Any other value
    /// is kept as its kind only: an empty array, an empty object, or the scalar.
    Fields(&'static [(&'static str, Select)]),
    /// For an array, keep every item as the selector says; otherwise as for `Fields`.
    Items(&'static Select),
    /// A result's value: a string, an array of strings ([`Node::Strings`]) or an object
    /// of strings is kept; anything else as [`Node::Scalar`] only.
    Value,
    /// A string is kept; anything else as [`Node::Scalar`] only.
    Scalar,
}

impl Select {
    fn member(&self, key: &str) -> &Select {
        match self {
            Self::All => &Select::All,
            Self::Fields(fields) => fields
                .iter()
                .find(|(name, _)| *name == key)
                .map_or(&Select::Skip, |(_, select)| select),
            Self::Value => &Select::Scalar,
            Self::Skip | Self::Items(_) | Self::Scalar => &Select::Skip,
        }
    }

    fn item(&self) -> &Select {
        match self {
            Self::All => &Select::All,
            Self::Items(item) => item,
            Self::Value => &Select::Scalar,
            Self::Skip | Self::Fields(_) | Self::Scalar => &Select::Skip,
        }
    }

    fn keeps(&self) -> bool {
        !matches!(self, Self::Skip)
    }
}

/// Reads `text` as JSON or YAML, keeping what `select` selects. `Ok(None)` only when
/// `select` is [`Select::Skip`].
///
/// # Errors
/// When the text is neither JSON nor YAML as docs/seal-format.md reads them.
pub(crate) fn read(text: &str, select: &'static Select) -> Result<Option<Node>, SyntaxError> {
    // A byte order mark may start either; YAML allows it, RFC 8259 lets a JSON reader
    // ignore it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if syntax(text) == Syntax::Json {
        json::read(text, select).map_err(|problem| SyntaxError {
            syntax: Syntax::Json,
            problem,
        })
    } else {
        yaml::read(text, select).map_err(|problem| SyntaxError {
            syntax: Syntax::Yaml,
            problem,
        })
    }
}

/// The reader `text` goes to: JSON if its first character after an optional byte order
/// mark and JSON white space is `{` or `[`, YAML otherwise.
pub(crate) fn syntax(text: &str) -> Syntax {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .chars()
        .next();
    if matches!(first, Some('{' | '[')) {
        Syntax::Json
    } else {
        Syntax::Yaml
    }
}

/// Keys seen in one object, to refuse a second member of the same key. Sorted once the
/// object ends: faster than hashing each key, and as safe against chosen keys.
#[derive(Default)]
struct Keys<'a>(Vec<std::borrow::Cow<'a, str>>);

impl<'a> Keys<'a> {
    fn insert(&mut self, key: std::borrow::Cow<'a, str>) {
        self.0.push(key);
    }

    fn check(mut self) -> Result<(), String> {
        self.0.sort_unstable();
        match self.0.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(format!("the key {:?} appears twice in one object", pair[0])),
            None => Ok(()),
        }
    }
}

fn too_deep() -> String {
    format!("arrays and objects are nested more than {MAX_DEPTH} deep")
}

/// Collects the items of an array as [`Select::Value`] keeps them: strings, until the
/// first item that is not one.
#[derive(Default)]
struct Strings {
    items: Vec<String>,
    other: bool,
}

impl Strings {
    fn push(&mut self, node: Option<Node>) {
        match node {
            Some(Node::String(s)) if !self.other => self.items.push(s),
            _ => {
                self.other = true;
                self.items = Vec::new();
            }
        }
    }

    fn into_node(self) -> Node {
        if self.other {
            Node::Scalar
        } else {
            Node::Strings(self.items)
        }
    }
}

/// An object as [`Select::Value`] keeps it: its members if every one is a string.
fn string_members(members: Vec<(String, Node)>) -> Node {
    if members.iter().all(|(_, v)| matches!(v, Node::String(_))) {
        Node::Object(members)
    } else {
        Node::Scalar
    }
}

/// What a container becomes when the selector expected another shape: its kind only.
fn kind_only(container: Node) -> Node {
    match container {
        Node::Array(_) => Node::Array(Vec::new()),
        Node::Object(_) => Node::Object(Vec::new()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ALL: Select = Select::All;

    fn read_all(text: &str) -> Result<Node, SyntaxError> {
        read(text, &ALL).map(|node| node.unwrap_or(Node::Null))
    }

    fn s(v: &str) -> Node {
        Node::String(v.into())
    }

    #[test]
    fn json_and_yaml_read_to_the_same_nodes() {
        let json = read_all(r#"{"a": ["x", 1, null], "b": {"c": "d"}}"#).unwrap();
        let yaml = read_all("a: [x, 1, ~]\nb:\n  c: d\n").unwrap();
        assert_eq!(json, yaml);
        assert_eq!(
            json.get("a"),
            Some(&Node::Array(vec![s("x"), Node::Scalar, Node::Null]))
        );
    }

    #[test]
    fn nesting_of_exactly_the_limit_is_accepted_in_both_syntaxes() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(read_all(&deep(MAX_DEPTH)).is_ok());
        assert!(read_all(&deep(MAX_DEPTH + 1)).is_err());
        // YAML in block style, the innermost levels in flow style up to their limit.
        let yaml = |n: usize| {
            let block = n - 1 - MAX_FLOW_DEPTH;
            format!("a:\n{}{}\n", "- ".repeat(block), deep(MAX_FLOW_DEPTH))
        };
        assert!(read_all(&yaml(MAX_DEPTH)).is_ok());
        assert!(read_all(&yaml(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn a_tab_inside_a_yaml_plain_scalar_is_part_of_it() {
        // The differential fuzz target's finding: libyaml reads it so, PyYAML's
        // pure-Python scanner refused it.
        assert_eq!(
            read_all("v: a\tb\n").unwrap(),
            Node::Object(vec![("v".into(), s("a\tb"))])
        );
        assert_eq!(read_all("a\"1\"{\t^a").unwrap(), s("a\"1\"{\t^a"));
    }

    #[test]
    fn yaml_flow_collections_nest_to_their_own_limit() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(read_all(&format!("a: {}\n", deep(MAX_FLOW_DEPTH))).is_ok());
        let err = read_all(&format!("a: {}\n", deep(MAX_FLOW_DEPTH + 1))).unwrap_err();
        assert!(err.problem.contains("flow"), "{err}");
        // Mappings count as sequences do; block collections around them do not.
        let mixed = format!("a:\n  b: {}{}\n", "{c: [".repeat(8), "]}".repeat(8));
        assert!(read_all(&mixed).is_ok());
        let mixed = format!("a:\n  b: {}[]{}\n", "{c: [".repeat(8), "]}".repeat(8));
        assert!(read_all(&mixed).is_err());
        // JSON has no flow limit: it is read by another reader.
        assert!(read_all(&deep(MAX_FLOW_DEPTH + 1)).is_ok());
    }

    #[test]
    fn text_that_starts_like_json_is_read_as_json_only() {
        // A raw line break in a string, a number beyond binary64, a comment: YAML would
        // read each, a JSON reader would not.
        for text in [
            "{\"a\": \"x\ny\"}",
            r#"{"a": 1e400}"#,
            "[1, 2] # comment",
            "{a: b}",
            "\u{feff}{\"a\": \"x\ny\"}",
        ] {
            let err = read_all(text).unwrap_err();
            assert_eq!(err.syntax, Syntax::Json, "{text:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_may_start_json_block_yaml_or_a_directive() {
        for text in [
            "\u{feff}{\"a\": \"b\"}",
            "\u{feff}a: b\n",
            "\u{feff}%YAML 1.1\n---\na: b\n",
        ] {
            assert_eq!(
                read_all(text).unwrap(),
                Node::Object(vec![("a".into(), s("b"))]),
                "{text:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_refused_anywhere() {
        for text in [
            r#"{"a": {"b": 1, "b": 2}}"#,
            r#"{"a": 1, "\u0061": 2}"#,
            "a: {b: 1, b: 2}\n",
            "a: 1\n'a': 2\n",
        ] {
            assert!(read_all(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn yaml_aliases_and_merge_keys_are_refused() {
        for text in [
            "a: &x [1]\nb: *x\n",
            "a: &x {k: v}\nb: {<<: *x}\n",
            "a: {<<: {k: v}}\n",
            "a: {'<<': v}\n",
        ] {
            assert!(read_all(text).is_err(), "{text:?}");
        }
        // An anchor alone changes nothing.
        assert!(read_all("a: &x [1]\n").is_ok());
    }

    #[test]
    fn unselected_members_are_checked_but_not_kept() {
        static SELECT: Select = Select::Fields(&[("keep", Select::All)]);
        let node = read(r#"{"keep": "x", "drop": ["y"]}"#, &SELECT).unwrap();
        assert_eq!(node, Some(Node::Object(vec![("keep".into(), s("x"))])));
        assert!(read(r#"{"keep": "x", "drop": {"y": 1, "y": 2}}"#, &SELECT).is_err());
        // A value of another shape than selected is kept as its kind.
        static ITEMS: Select = Select::Items(&ALL);
        let node = read(r#"{"keep": "x"}"#, &ITEMS).unwrap();
        assert_eq!(node, Some(Node::Object(Vec::new())));
    }
}
