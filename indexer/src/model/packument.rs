//! The full packument (`GET /{name}` with `Accept: application/json`), parsed tolerantly: a
//! version object of the wrong shape is set aside (and named) instead of failing the document.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Manifest, lenient};

/// A full packument as the index keeps it: package-level fields plus every version's install
/// superset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packument {
    /// The package name.
    pub name: String,
    /// `dist-tags` (`latest` -> version, ...).
    pub dist_tags: BTreeMap<String, String>,
    /// Every version, keyed by the version string as upstream keys it.
    pub versions: BTreeMap<String, Manifest>,
    /// Upstream `time`, kept as is: `created`, `modified` and one entry per version. String
    /// entries only; `time.unpublished` is in [`Packument::unpublished`].
    pub time: BTreeMap<String, String>,
    /// `time.unpublished`: set when every version was unpublished.
    pub unpublished: Option<Unpublished>,
    /// A top-level `modified` (abbreviated documents carry it).
    pub modified: Option<String>,
    /// The latest version's description (for search).
    pub description: Option<String>,
    /// The latest version's keywords (for search).
    pub keywords: Vec<String>,
    /// Version keys whose value was not a JSON object; they are not in `versions`.
    pub invalid_versions: Vec<String>,
}

/// `time.unpublished`: when, and which versions were live at the time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpublished {
    /// When the package was unpublished.
    #[serde(default, deserialize_with = "lenient::string", skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The versions it had.
    #[serde(default, deserialize_with = "lenient::string_list", skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// Why a document could not be read as a packument at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or not a JSON object, or structurally broken (e.g. a duplicated key).
    #[error("not a packument: {0}")]
    Json(#[from] serde_json::Error),
    /// The document is JSON but not an object.
    #[error("the packument is not a JSON object")]
    NotAnObject,
    /// Neither `name` nor `_id` is a string.
    #[error("the packument has no name")]
    MissingName,
}

impl Packument {
    /// Parse a full (or abbreviated) packument from JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        // serde's derived structs also accept a JSON array (as a tuple); a packument never is one.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Err(e) => ParseError::Json(e),
                Ok(_) => ParseError::NotAnObject,
            });
        }
        let raw: RawPackument = serde_json::from_slice(bytes)?;
        raw.into_packument()
    }

    /// Parse from an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        if !value.is_object() {
            return Err(ParseError::NotAnObject);
        }
        let raw: RawPackument = serde_json::from_value(value)?;
        raw.into_packument()
    }

    /// The version `dist-tags.latest` points at, if it exists.
    pub fn latest(&self) -> Option<&Manifest> {
        self.dist_tags.get("latest").and_then(|v| self.versions.get(v))
    }

    /// The full form as JSON (`_id`, `name`, `dist-tags`, `versions`, `time`, ...), with the
    /// fields the index keeps.
    pub fn to_json(&self) -> Value {
        // Serialising plain maps and strings cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Packument {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("_id", &self.name)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("dist-tags", &self.dist_tags)?;
        m.serialize_entry("versions", &self.versions)?;
        if !self.time.is_empty() || self.unpublished.is_some() {
            m.serialize_entry("time", &TimeView(self))?;
        }
        if let Some(modified) = &self.modified {
            m.serialize_entry("modified", modified)?;
        }
        if let Some(d) = &self.description {
            m.serialize_entry("description", d)?;
        }
        if !self.keywords.is_empty() {
            m.serialize_entry("keywords", &self.keywords)?;
        }
        m.end()
    }
}

struct TimeView<'a>(&'a Packument);

impl Serialize for TimeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in &self.0.time {
            m.serialize_entry(k, v)?;
        }
        if let Some(u) = &self.0.unpublished {
            m.serialize_entry("unpublished", u)?;
        }
        m.end()
    }
}

#[derive(Deserialize)]
struct RawPackument {
    #[serde(default, rename = "_id", deserialize_with = "lenient::string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, rename = "dist-tags", deserialize_with = "lenient::string_map")]
    dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    versions: Versions,
    #[serde(default, deserialize_with = "time")]
    time: TimeParts,
    #[serde(default, deserialize_with = "lenient::string")]
    modified: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    keywords: Vec<String>,
}

impl RawPackument {
    fn into_packument(self) -> Result<Packument, ParseError> {
        let name = self.name.or(self.id).ok_or(ParseError::MissingName)?;
        let (time, unpublished) = self.time;
        Ok(Packument {
            name,
            dist_tags: self.dist_tags,
            versions: self.versions.good,
            time,
            unpublished,
            modified: self.modified,
            description: self.description,
            keywords: self.keywords,
            invalid_versions: self.versions.bad,
        })
    }
}

/// `time` split into its string entries and `time.unpublished`.
type TimeParts = (BTreeMap<String, String>, Option<Unpublished>);

fn time<'de, D: Deserializer<'de>>(d: D) -> Result<TimeParts, D::Error> {
    let Value::Object(map) = Value::deserialize(d)? else {
        return Ok(Default::default());
    };
    let mut times = BTreeMap::new();
    let mut unpublished = None;
    for (k, v) in map {
        match v {
            Value::String(s) => {
                times.insert(k, s);
            }
            v @ Value::Object(_) if k == "unpublished" => {
                unpublished = serde_json::from_value(v).ok();
            }
            _ => {}
        }
    }
    Ok((times, unpublished))
}

/// `versions`, streamed: objects become [`Manifest`]s, anything else is named in `bad`.
#[derive(Default)]
struct Versions {
    good: BTreeMap<String, Manifest>,
    bad: Vec<String>,
}

impl<'de> Deserialize<'de> for Versions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VersionsVisitor)
    }
}

struct VersionsVisitor;

impl<'de> Visitor<'de> for VersionsVisitor {
    type Value = Versions;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of versions")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Versions, A::Error> {
        let mut out = Versions::default();
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value::<MaybeManifest>()? {
                MaybeManifest(Some(m)) => {
                    out.good.insert(key, m);
                }
                MaybeManifest(None) => out.bad.push(key),
            }
        }
        Ok(out)
    }
    // `versions` of any other shape means "no versions".
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Versions, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Versions::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Versions, E> {
        Ok(Versions::default())
    }
}

/// A version value: a manifest when it is an object, `None` for any other JSON value.
struct MaybeManifest(Option<Manifest>);

impl<'de> Deserialize<'de> for MaybeManifest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MaybeManifestVisitor)
    }
}

struct MaybeManifestVisitor;

impl<'de> Visitor<'de> for MaybeManifestVisitor {
    type Value = MaybeManifest;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a version object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeManifest, A::Error> {
        Manifest::deserialize(de::value::MapAccessDeserializer::new(map)).map(|m| MaybeManifest(Some(m)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeManifest, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeManifest(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeManifest, E> {
        Ok(MaybeManifest(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeManifest, E> {
        Ok(MaybeManifest(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeManifest, E> {
        Ok(MaybeManifest(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeManifest, E> {
        Ok(MaybeManifest(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeManifest, E> {
        Ok(MaybeManifest(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<MaybeManifest, E> {
        Ok(MaybeManifest(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_versions_are_set_aside() {
        let p = Packument::from_slice(
            br#"{"_id":"a","dist-tags":{"latest":"1.0.0","bad":3},
                 "versions":{"1.0.0":{"name":"a","version":"1.0.0"},"2.0.0":"nope","3.0.0":[1,2]},
                 "time":{"created":"2020","unpublished":{"time":"2021","versions":["1.0.0"]},"x":1}}"#,
        )
        .unwrap();
        assert_eq!(p.name, "a");
        assert_eq!(p.versions.len(), 1);
        assert_eq!(p.invalid_versions, vec!["2.0.0", "3.0.0"]);
        assert_eq!(p.dist_tags.len(), 1);
        assert_eq!(p.time.len(), 1);
        assert_eq!(p.unpublished.as_ref().and_then(|u| u.time.as_deref()), Some("2021"));
        assert_eq!(p.latest().map(|m| m.version.as_str()), Some("1.0.0"));
    }

    #[test]
    fn no_name_and_not_json_are_errors() {
        assert!(matches!(Packument::from_slice(br#"{"versions":{}}"#), Err(ParseError::MissingName)));
        assert!(matches!(Packument::from_slice(br#"["x","y"]"#), Err(ParseError::NotAnObject)));
        assert!(matches!(Packument::from_slice(b"  nul"), Err(ParseError::Json(_))));
        assert!(matches!(Packument::from_slice(b"{\"name\":"), Err(ParseError::Json(_))));
    }

    #[test]
    fn full_form_round_trips() {
        let p = Packument::from_slice(
            br#"{"name":"a","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"a","version":"1.0.0",
                "dependencies":{"b":"^1"},"dist":{"integrity":"sha512-x","shasum":"ab","tarball":"http://t/a.tgz"}}},
                "time":{"1.0.0":"2020-01-01T00:00:00.000Z","unpublished":{"time":"2021"}}}"#,
        )
        .unwrap();
        let again = Packument::from_value(p.to_json()).unwrap();
        assert_eq!(p, again);
    }
}
