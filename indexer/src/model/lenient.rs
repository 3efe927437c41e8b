//! Field deserialisers that never fail: they take whatever JSON value is there and keep it only
//! when it has a usable shape (module docs of [`crate::model`] list the normalisations).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserialise `T` from whatever is there; a value of another shape becomes `T::default()`.
///
/// The value is buffered as a [`Value`] first so that a mismatch can be recovered from: serde
/// cannot rewind a streaming deserialiser. Only known, small fields go through here; unknown
/// (and typically large) fields such as `readme` are skipped without buffering.
pub(crate) fn any<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    Ok(T::deserialize(v).unwrap_or_default())
}

/// An optional string: anything that is not a string is `None`.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// An optional boolean: anything that is not a boolean is `None`.
pub(crate) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        _ => None,
    })
}

/// An optional non-negative integer (`fileCount`, `unpackedSize`).
pub(crate) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(d)?.as_u64())
}

/// A list of strings; a single string becomes a one-element list, non-strings are dropped.
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// A map of string to string; entries whose value is not a string are dropped.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// An optional JSON object, kept verbatim (`directories`, `peerDependenciesMeta`, ...).
pub(crate) fn object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Map<String, Value>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => Some(m),
        _ => None,
    })
}

/// An optional JSON value, kept verbatim unless it is `null` (`license`, `funding`).
pub(crate) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        v => Some(v),
    })
}

/// A dependency map in any of the shapes npm has accepted over the years.
///
/// Objects keep their string entries. Arrays (`["a", "b@1"]`) and whitespace- or
/// comma-separated strings are turned into objects the way npm's normalize-package-data
/// `depObjectify` does: `name[@range]`, with `*` for a missing range.
pub(crate) fn dep_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).filter_map(split_spec).collect(),
        Value::String(s) => s.split(|c: char| c.is_whitespace() || c == ',').filter_map(split_spec).collect(),
        _ => BTreeMap::new(),
    })
}

/// `"name@range"` -> `(name, range)`; a leading `@` belongs to a scope, not a separator.
fn split_spec(spec: &str) -> Option<(String, String)> {
    let spec = spec.trim();
    if spec.is_empty() {
        return None;
    }
    let at = spec.char_indices().skip(1).find(|&(_, c)| c == '@').map(|(i, _)| i);
    Some(match at {
        Some(i) if i + 1 < spec.len() => (spec[..i].to_owned(), spec[i + 1..].to_owned()),
        Some(i) => (spec[..i].to_owned(), "*".to_owned()),
        None => (spec.to_owned(), "*".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::split_spec;

    #[test]
    fn split_spec_keeps_scopes() {
        assert_eq!(split_spec("a"), Some(("a".into(), "*".into())));
        assert_eq!(split_spec("a@^1"), Some(("a".into(), "^1".into())));
        assert_eq!(split_spec("@s/a@~2"), Some(("@s/a".into(), "~2".into())));
        assert_eq!(split_spec("@s/a"), Some(("@s/a".into(), "*".into())));
        assert_eq!(split_spec("  "), None);
    }
}
