//! `package.json` read and save as npm does it (`@npmcli/package-json`): the dependency
//! sections become install requests; saving (`-D`, `-E`, `--no-save` is simply not calling
//! [`Project::save`]) keeps every other field byte for byte and in order, re-indents with the
//! file's own indent and newline, and sorts the dependency sections (DESIGN.md §Install).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::value::RawValue;

use super::error::ProjectError;
use super::request::Request;

/// The dependency sections of `package.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DepKind {
    /// `dependencies`.
    Prod,
    /// `devDependencies` (`-D`).
    Dev,
    /// `optionalDependencies` (`-O`).
    Optional,
    /// `peerDependencies`.
    Peer,
}

impl DepKind {
    /// The `package.json` key.
    pub fn key(self) -> &'static str {
        match self {
            DepKind::Prod => "dependencies",
            DepKind::Dev => "devDependencies",
            DepKind::Optional => "optionalDependencies",
            DepKind::Peer => "peerDependencies",
        }
    }

    const ALL: [DepKind; 4] = [DepKind::Prod, DepKind::Dev, DepKind::Optional, DepKind::Peer];
}

/// A project's `package.json`, kept as npm needs it for a faithful save.
#[derive(Debug, Clone)]
pub struct Project {
    path: PathBuf,
    /// Top-level fields in file order, each value's original text.
    fields: IndexMap<String, Box<RawValue>>,
    /// The dependency sections, parsed (string values only, file order).
    deps: BTreeMap<DepKind, IndexMap<String, String>>,
    indent: String,
    newline: String,
    changed: bool,
}

impl Project {
    /// Read `<dir>/package.json`; a missing file is an empty project (npm creates one).
    pub fn load(dir: &Path) -> Result<Self, ProjectError> {
        let path = dir.join("package.json");
        match fs::read_to_string(&path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Project {
                path,
                fields: IndexMap::new(),
                deps: BTreeMap::new(),
                indent: "  ".to_owned(),
                newline: "\n".to_owned(),
                changed: false,
            }),
            Err(source) => Err(ProjectError::Io { path, source }),
        }
    }

    /// Parse `package.json` text (kept for saving to `path`).
    pub fn parse(path: PathBuf, text: &str) -> Result<Self, ProjectError> {
        let invalid = |reason: String| ProjectError::Invalid { path: path.clone(), reason };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let fields: IndexMap<String, Box<RawValue>> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut deps = BTreeMap::new();
        for kind in DepKind::ALL {
            let Some(raw) = fields.get(kind.key()) else { continue };
            // npm tolerates odd sections; a non-object one is treated as empty, and
            // non-string values are dropped, as normalize-package-data does.
            let map: IndexMap<String, serde_json::Value> =
                serde_json::from_str(raw.get()).unwrap_or_default();
            let map = map.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect();
            deps.insert(kind, map);
        }
        let (indent, newline) = detect_format(text);
        Ok(Project { path, fields, deps, indent, newline, changed: false })
    }

    /// Where this `package.json` lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `name` field, if any.
    pub fn name(&self) -> Option<String> {
        self.fields.get("name").and_then(|r| serde_json::from_str(r.get()).ok())
    }

    /// A top-level field, parsed (`version`, `license`, ...).
    pub fn field(&self, key: &str) -> Option<serde_json::Value> {
        self.fields.get(key).and_then(|r| serde_json::from_str(r.get()).ok())
    }

    /// One dependency section, in file order.
    pub fn dependencies(&self, kind: DepKind) -> impl Iterator<Item = (&str, &str)> {
        self.deps.get(&kind).into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// What an install with no SPEC asks for: `dependencies`, `optionalDependencies` and
    /// (unless `omit_dev`) `devDependencies`, as requests. A name in both `dependencies` and
    /// `optionalDependencies` is optional (npm's rule); peer dependencies of the root are
    /// installed like regular ones by npm 7+ only when nothing else provides them, so they are
    /// returned too, last.
    pub fn requests(&self, omit_dev: bool) -> Result<Vec<(DepKind, Request)>, ProjectError> {
        let mut out: IndexMap<String, (DepKind, Request)> = IndexMap::new();
        let order = [DepKind::Peer, DepKind::Dev, DepKind::Prod, DepKind::Optional];
        for kind in order {
            if kind == DepKind::Dev && omit_dev {
                continue;
            }
            for (name, spec) in self.dependencies(kind) {
                let req = Request::from_dependency(name, spec).map_err(|source| {
                    ProjectError::BadDependency { path: self.path.clone(), name: name.to_owned(), source }
                })?;
                out.insert(name.to_owned(), (kind, req));
            }
        }
        let mut v: Vec<_> = out.into_values().collect();
        v.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        Ok(v)
    }

    /// Record `name: spec` in section `kind`, removing it from the other installable sections
    /// (npm moves a dependency between `dependencies`, `devDependencies` and
    /// `optionalDependencies`; `peerDependencies` entries stay).
    pub fn add(&mut self, kind: DepKind, name: &str, spec: &str) {
        for other in [DepKind::Prod, DepKind::Dev, DepKind::Optional] {
            if other != kind
                && let Some(map) = self.deps.get_mut(&other)
            {
                map.shift_remove(name);
            }
        }
        self.deps.entry(kind).or_default().insert(name.to_owned(), spec.to_owned());
        self.changed = true;
    }

    /// Drop `name` from every dependency section (npm's `uninstall` does, peers included);
    /// whether it was listed anywhere.
    pub fn remove(&mut self, name: &str) -> bool {
        let mut found = false;
        for map in self.deps.values_mut() {
            found |= map.shift_remove(name).is_some();
        }
        self.changed |= found;
        found
    }

    /// Whether [`add`](Project::add) or [`remove`](Project::remove) changed anything since
    /// loading.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// The file's new text: fields in their original order and spelling, dependency sections
    /// sorted as npm sorts them, new sections appended, the detected indent and newline, and a
    /// final newline.
    pub fn render(&self) -> String {
        let nl = &self.newline;
        let ind = &self.indent;
        let mut entries: Vec<(String, String)> = Vec::new();
        for (key, raw) in &self.fields {
            let kind = DepKind::ALL.into_iter().find(|k| k.key() == key);
            match kind {
                Some(kind) if self.changed => entries.push((key.clone(), self.render_deps(kind))),
                _ => entries.push((key.clone(), raw.get().to_owned())),
            }
        }
        if self.changed {
            for kind in DepKind::ALL {
                let present = self.fields.contains_key(kind.key());
                if !present && self.deps.get(&kind).is_some_and(|m| !m.is_empty()) {
                    entries.push((kind.key().to_owned(), self.render_deps(kind)));
                }
            }
        }
        let mut out = String::from("{");
        let sep = if ind.is_empty() { ":" } else { ": " };
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if !ind.is_empty() {
                out.push_str(nl);
                out.push_str(ind);
            }
            out.push_str(&json_string(k));
            out.push_str(sep);
            out.push_str(v);
        }
        if !ind.is_empty() && !entries.is_empty() {
            out.push_str(nl);
        }
        out.push('}');
        out.push_str(nl);
        out
    }

    fn render_deps(&self, kind: DepKind) -> String {
        let mut items: Vec<(&String, &String)> = self.deps.get(&kind).into_iter().flatten().collect();
        items.sort_by(|a, b| locale_compare(a.0, b.0));
        if items.is_empty() {
            return "{}".to_owned();
        }
        let (nl, ind) = (&self.newline, &self.indent);
        let sep = if ind.is_empty() { ":" } else { ": " };
        let mut out = String::from("{");
        for (i, (k, v)) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if !ind.is_empty() {
                out.push_str(nl);
                out.push_str(ind);
                out.push_str(ind);
            }
            out.push_str(&json_string(k));
            out.push_str(sep);
            out.push_str(&json_string(v));
        }
        if !ind.is_empty() {
            out.push_str(nl);
            out.push_str(ind);
        }
        out.push('}');
        out
    }

    /// Write the file if anything changed (atomically: temp file, then rename).
    pub fn save(&self) -> Result<bool, ProjectError> {
        if !self.changed {
            return Ok(false);
        }
        let io = |source| ProjectError::Io { path: self.path.clone(), source };
        // A committed link at the temporary name is replaced, never written through.
        crate::safe_fs::write_replacing(&self.path, self.render().as_bytes()).map_err(io)?;
        Ok(true)
    }
}

fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// npm's json-parse-even-better-errors: the newline and indent are whatever follows the
/// opening brace; a file with none is written compact.
fn detect_format(text: &str) -> (String, String) {
    let rest = text.trim_start();
    let Some(rest) = rest.strip_prefix('{').or_else(|| rest.strip_prefix('[')) else {
        return ("  ".to_owned(), "\n".to_owned());
    };
    let newline_len = rest.len() - rest.trim_start_matches(['\r', '\n']).len();
    if newline_len == 0 {
        // npm writes a compact file back with no newline at all, not even a final one.
        return (String::new(), String::new());
    }
    let newline = if rest[..newline_len].contains("\r\n") { "\r\n" } else { "\n" };
    let after = &rest[newline_len..];
    let indent: String = after.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    (indent, newline.to_owned())
}

/// An approximation of JavaScript's `localeCompare` (ICU root collation) for package names:
/// case-insensitive first, `_` before `-` before `.`, then byte order as the tie-break.
pub(crate) fn locale_compare(a: &str, b: &str) -> Ordering {
    fn key(s: &str) -> Vec<u32> {
        s.chars()
            .map(|c| match c {
                '_' => 1,
                '-' => 2,
                '.' => 3,
                '@' => 4,
                '/' => 5,
                c => c.to_ascii_lowercase() as u32 + 16,
            })
            .collect()
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Project {
        Project::parse(PathBuf::from("package.json"), text).unwrap()
    }

    #[test]
    fn unchanged_file_renders_the_same_modulo_reindent() {
        let text = "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\",\n  \"dependencies\": {\n    \"b\": \"^1\",\n    \"a\": \"2\"\n  }\n}\n";
        let p = parse(text);
        assert_eq!(p.render(), text);
    }

    #[test]
    fn add_sorts_keeps_order_and_indent() {
        let text = "{\n\t\"name\": \"app\",\n\t\"scripts\": {\"t\": \"x\"},\n\t\"dependencies\": {\n\t\t\"z\": \"1\"\n\t},\n\t\"private\": true\n}";
        let mut p = parse(text);
        p.add(DepKind::Prod, "a", "^2.0.0");
        let out = p.render();
        assert_eq!(
            out,
            "{\n\t\"name\": \"app\",\n\t\"scripts\": {\"t\": \"x\"},\n\t\"dependencies\": {\n\t\t\"a\": \"^2.0.0\",\n\t\t\"z\": \"1\"\n\t},\n\t\"private\": true\n}\n"
        );
    }

    #[test]
    fn save_dev_moves_and_appends_section() {
        let mut p = parse("{\r\n    \"dependencies\": {\"x\": \"1\"}\r\n}\r\n");
        p.add(DepKind::Dev, "x", "2");
        assert_eq!(
            p.render(),
            "{\r\n    \"dependencies\": {},\r\n    \"devDependencies\": {\r\n        \"x\": \"2\"\r\n    }\r\n}\r\n"
        );
    }

    #[test]
    fn compact_file_stays_compact() {
        let mut p = parse("{\"name\":\"a\"}");
        p.add(DepKind::Prod, "@s/b", "^1.0.0");
        // As npm writes it: compact, and without a final newline (checked with npm 11).
        assert_eq!(p.render(), "{\"name\":\"a\",\"dependencies\":{\"@s/b\":\"^1.0.0\"}}");
    }

    #[test]
    fn requests_skip_dev_when_omitted() {
        let p = parse(
            r#"{"dependencies":{"a":"1"},"devDependencies":{"b":"2"},"optionalDependencies":{"a":"^1"}}"#,
        );
        let all = p.requests(false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, DepKind::Optional, "optional wins over dependencies");
        assert_eq!(p.requests(true).unwrap().len(), 1);
    }

    #[test]
    fn bad_json_is_named() {
        let err = Project::parse(PathBuf::from("/x/package.json"), "{").unwrap_err();
        assert!(err.to_string().contains("/x/package.json"));
    }

    #[test]
    fn locale_order() {
        let mut v = vec!["b", "@babel/core", "a-b", "a_b", "ab", "A"];
        v.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(v, ["@babel/core", "A", "a_b", "a-b", "ab", "b"]);
    }
}
