//! The JSON reader: serde_json's parser, with our visitor checking depth and duplicate
//! keys as it goes and keeping only the selected members.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{Keys, MAX_DEPTH, Node, Select, Strings, kind_only, string_members, too_deep};

pub(super) fn read(text: &str, select: &'static Select) -> Result<Option<Node>, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // Our visitor counts depth itself, to the limit of the specification (serde_json's
    // own limit stops one level short of it).
    deserializer.disable_recursion_limit();
    let node = Walk { select, depth: 0 }
        .deserialize(&mut deserializer)
        .map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(node)
}

/// Reads one value at `depth` (the number of containers around it).
struct Walk {
    select: &'static Select,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Option<Node>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Walk {
    fn scalar(&self, node: Node) -> Option<Node> {
        self.select.keeps().then_some(node)
    }

    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(E::custom(too_deep()));
        }
        Ok(depth)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Option<Node>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.scalar(Node::Scalar))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.scalar(Node::Scalar))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.scalar(Node::Scalar))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // serde_json refuses numbers beyond binary64 itself; this keeps it so.
        if !v.is_finite() {
            return Err(E::custom("a number is out of the range of binary64"));
        }
        Ok(self.scalar(Node::Scalar))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.scalar(Node::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(self.scalar(Node::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.scalar(Node::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let depth = self.enter()?;
        let item = self.select.item();
        if let Select::Value = self.select {
            let mut strings = Strings::default();
            loop {
                let select = if strings.other { &Select::Skip } else { item };
                match seq.next_element_seed(Walk { select, depth })? {
                    Some(node) => strings.push(node),
                    None => return Ok(Some(strings.into_node())),
                }
            }
        }
        let mut items = Vec::new();
        while let Some(node) = seq.next_element_seed(Walk {
            select: item,
            depth,
        })? {
            if let Some(node) = node {
                items.push(node);
            }
        }
        Ok(match self.select {
            Select::Skip => None,
            Select::All | Select::Items(_) => Some(Node::Array(items)),
            Select::Fields(_) => Some(kind_only(Node::Array(items))),
            Select::Value | Select::Scalar => Some(Node::Scalar),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = self.enter()?;
        let mut keys = Keys::default();
        let mut members = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let select = self.select.member(&key);
            let node = map.next_value_seed(Walk { select, depth })?;
            if let Some(node) = node {
                members.push((key.clone().into_owned(), node));
            }
            keys.insert(key);
        }
        keys.check().map_err(de::Error::custom)?;
        Ok(match self.select {
            Select::Skip => None,
            Select::All | Select::Fields(_) => Some(Node::Object(members)),
            Select::Items(_) => Some(kind_only(Node::Object(members))),
            Select::Value => Some(string_members(members)),
            Select::Scalar => Some(Node::Scalar),
        })
    }
}

/// An object key, borrowed from the text when it holds no escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}
