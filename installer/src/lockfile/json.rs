//! JSON written the way npm writes `package-lock.json` (`json-stringify-nice`): at every level
//! scalars (arrays count as scalars) before objects, preferred keys first in their order, the
//! rest by `localeCompare`; 2-space indent as `JSON.stringify`.

use std::cmp::Ordering;

use serde_json::Value;

use crate::project::locale_compare;

/// The preferred key order of npm's lockfile (`swKeyOrder` in arborist's `shrinkwrap.js`).
pub(crate) const LOCK_KEY_ORDER: [&str; 8] =
    ["name", "version", "lockfileVersion", "resolved", "integrity", "requires", "packages", "dependencies"];

fn is_obj(v: &Value) -> bool {
    v.is_object()
}

fn compare(a: &str, b: &str, pref: &[&str]) -> Ordering {
    match (pref.iter().position(|k| *k == a), pref.iter().position(|k| *k == b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => locale_compare(a, b),
    }
}

/// Serialise `value` like `stringify(value, pref, 2)` + `\n`.
pub(crate) fn stringify_nice(value: &Value, pref: &[&str]) -> String {
    let mut out = String::new();
    write(&mut out, value, pref, 0);
    out.push('\n');
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write(out: &mut String, value: &Value, pref: &[&str], level: usize) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(ak, av), (bk, bv)| match (is_obj(av), is_obj(bv)) {
                (false, true) => Ordering::Less,
                (true, false) => Ordering::Greater,
                _ => compare(ak, bk, pref),
            });
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                write(out, v, pref, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                write(out, v, pref, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_first_then_objects_pref_keys_first() {
        let v = json!({"engines": {"node": ">=8"}, "os": ["darwin"], "license": "MIT", "version": "1.0.0", "integrity": "x", "resolved": "u"});
        assert_eq!(
            stringify_nice(&v, &LOCK_KEY_ORDER),
            "{\n  \"version\": \"1.0.0\",\n  \"resolved\": \"u\",\n  \"integrity\": \"x\",\n  \"license\": \"MIT\",\n  \"os\": [\n    \"darwin\"\n  ],\n  \"engines\": {\n    \"node\": \">=8\"\n  }\n}\n"
        );
    }
}
