//! npm's `overrides` (the root `package.json`'s only), as npm 11's arborist reads and applies
//! them (`override-set.js`, `edge.js`): a tree of rules, one per key (`foo`, `foo@^2`,
//! `parent` holding `{ ".": "1.2.0", "child": "x" }`). Every node of the ideal tree carries
//! the rule it is governed by (the root rule at the top); each of its edges takes the first
//! rule of the node's *ruleset* (its own children, then each ancestor's children and the
//! ancestor itself) that names the dependency and whose key range intersects the edge's own
//! spec, else the node's rule. Where that rule names the dependency and has a value, the
//! edge asks for the value instead (`$name` is the root's own spec for `name`).
//!
//! What a node inherits is the rule of the edge that reached it; a node reached by several
//! edges keeps the more specific of their rules (arborist's `findSpecificOverrideSet`), and
//! an edge whose rule and its target's rule genuinely conflict is not satisfied by it, so the
//! package is placed again. The lockfile records none of it: npm 11 writes the packages'
//! own specs and no `overrides` (the project's `package.json` is read again each time).

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use super::error::OverrideError;
use super::project::{DepKind, Project};
use super::request::{self, Request, VersionSpec};
use super::semver;

/// A rule in an [`Overrides`] tree; [`Overrides::ROOT`] is the set of the whole project.
pub type RuleId = usize;

/// One key of `overrides` and what is below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// The package the key names (empty for the root).
    name: String,
    /// The key as written (`foo@^2`); keys are unique among siblings.
    key: String,
    /// The key's range (`*` when the key is a bare name).
    key_spec: String,
    /// What the edge asks for instead: `*` leaves it alone.
    value: String,
    parent: Option<RuleId>,
    children: Vec<RuleId>,
}

/// The project's override rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overrides {
    rules: Vec<Rule>,
    /// The root's own dependency specs, for `$name` values (devDependencies first, then
    /// optional, prod and peer: arborist's order).
    refs: BTreeMap<String, String>,
}

impl Overrides {
    /// The rule of the whole project.
    pub const ROOT: RuleId = 0;

    /// The project's `overrides`: `None` when it has none (a missing, empty or non-object
    /// field is none, as npm reads it).
    pub fn from_project(project: &Project) -> Result<Option<Self>, OverrideError> {
        let Some(value) = project.field("overrides") else { return Ok(None) };
        let mut refs = BTreeMap::new();
        for kind in [DepKind::Peer, DepKind::Prod, DepKind::Optional, DepKind::Dev] {
            for (name, spec) in project.dependencies(kind) {
                refs.insert(name.to_owned(), spec.to_owned());
            }
        }
        Self::parse(&value, refs)
    }

    /// Read an `overrides` value, with the root's dependency specs for `$name` references.
    pub fn parse(value: &Value, refs: BTreeMap<String, String>) -> Result<Option<Self>, OverrideError> {
        let Value::Object(map) = value else { return Ok(None) };
        if map.is_empty() {
            return Ok(None);
        }
        let root = Rule {
            name: String::new(),
            key: String::new(),
            key_spec: String::new(),
            value: String::new(),
            parent: None,
            children: Vec::new(),
        };
        let mut set = Overrides { rules: vec![root], refs };
        set.add_children(Self::ROOT, map, "overrides")?;
        Ok(Some(set))
    }

    fn add_children(
        &mut self,
        parent: RuleId,
        map: &serde_json::Map<String, Value>,
        at: &str,
    ) -> Result<(), OverrideError> {
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let path = format!("{at}.{key}");
            let (name, range) = request::split_name(key);
            if name.is_empty() || indexer::names::validate(name).is_err() {
                return Err(OverrideError::BadKey {
                    path,
                    reason: format!("{name:?} is not a package name"),
                });
            }
            let key_spec = match range.map(str::trim) {
                None | Some("") => "*".to_owned(),
                Some(r) => r.to_owned(),
            };
            let value = match child {
                Value::String(s) => s.clone(),
                Value::Object(m) => match m.get(".") {
                    None => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => {
                        return Err(OverrideError::BadValue {
                            path: format!("{path}.\".\""),
                            reason: "it must be a string".into(),
                        });
                    }
                },
                Value::Null => {
                    return Err(OverrideError::BadValue {
                        path,
                        reason: "null is neither a spec nor an object of overrides".into(),
                    });
                }
                // npm reads a number or a boolean as an object with no keys: no override.
                _ => String::new(),
            };
            // An empty value is `*` for `.`, and a key without `.` overrides nothing itself.
            let value = match value.trim() {
                "" if matches!(child, Value::String(_))
                    || matches!(child, Value::Object(m) if m.contains_key(".")) =>
                {
                    "*".to_owned()
                }
                "" => key_spec.clone(),
                v => v.to_owned(),
            };
            let id = self.rules.len();
            self.rules.push(Rule {
                name: name.to_owned(),
                key: key.clone(),
                key_spec,
                value,
                parent: Some(parent),
                children: Vec::new(),
            });
            if self.rules[parent].children.iter().any(|&c| self.rules[c].key == *key) {
                return Err(OverrideError::BadKey { path, reason: "the key is given twice".into() });
            }
            self.rules[parent].children.push(id);
            if let Value::Object(m) = child {
                self.add_children(id, m, &path)?;
            }
        }
        Ok(())
    }

    /// `rule` and its ancestors, nearest first.
    fn ancestry(&self, rule: RuleId) -> impl Iterator<Item = RuleId> + '_ {
        std::iter::successors(Some(rule), move |&r| self.rules[r].parent)
    }

    /// The rules that apply below `rule`, first match first: its children, then each
    /// ancestor's children and the ancestor itself (the first rule of each key wins).
    fn ruleset(&self, rule: RuleId) -> Vec<RuleId> {
        let mut out: Vec<RuleId> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for a in self.ancestry(rule) {
            for &kid in &self.rules[a].children {
                if seen.insert(self.rules[kid].key.as_str()) {
                    out.push(kid);
                }
            }
            if a != Self::ROOT && seen.insert(self.rules[a].key.as_str()) {
                out.push(a);
            }
        }
        out
    }

    /// The rule an edge `name@raw` out of a node governed by `set` takes (arborist's
    /// `getEdgeRule`): the first rule of the ruleset naming `name` whose key range is `*` or
    /// intersects the edge's range (a tag, folder, file or URL spec takes any such rule; a git
    /// spec only through its `#semver:` range), else `set` itself.
    pub fn edge_rule(&self, set: RuleId, raw: &Request) -> RuleId {
        for rule in self.ruleset(set) {
            let r = &self.rules[rule];
            if r.name != raw.name {
                continue;
            }
            if r.key_spec == "*" {
                return rule;
            }
            let matches = match &raw.spec {
                VersionSpec::Version(v) => intersects(&v.to_string(), &r.key_spec),
                VersionSpec::Range { raw, .. } => intersects(raw, &r.key_spec),
                VersionSpec::Git(url) => match url.split_once("#semver:") {
                    Some((_, range)) => intersects(range, &r.key_spec),
                    None => false,
                },
                _ => true,
            };
            if matches {
                return rule;
            }
        }
        set
    }

    /// What an edge named `name` governed by `rule` asks for instead of its own spec (`None`:
    /// its own). `$ref` values are the root's spec for `ref`, else `local`'s (the dependent's
    /// own dependency of that name), else [`OverrideError::UnresolvedReference`].
    pub fn replacement(
        &self,
        rule: RuleId,
        name: &str,
        local: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, OverrideError> {
        let r = &self.rules[rule];
        if rule == Self::ROOT || r.name != name || r.value == "*" {
            return Ok(None);
        }
        match r.value.strip_prefix('$') {
            Some(reference) => match self.refs.get(reference).cloned().or_else(|| local(reference)) {
                Some(spec) => Ok(Some(spec)),
                None => Err(OverrideError::UnresolvedReference {
                    reference: r.value.clone(),
                    key: self.path(rule),
                }),
            },
            None => Ok(Some(r.value.clone())),
        }
    }

    /// Whether `rule` is a rule for the package folder `name` (not the root's).
    pub fn names(&self, rule: RuleId, name: &str) -> bool {
        rule != Self::ROOT && self.rules[rule].name == name
    }

    /// The value of `rule` as written (`*` for none, `$name` unresolved).
    pub fn value(&self, rule: RuleId) -> &str {
        &self.rules[rule].value
    }

    /// The key range of `rule` (`*` for a bare name; empty for the root).
    pub fn key_spec(&self, rule: RuleId) -> &str {
        &self.rules[rule].key_spec
    }

    /// Where `rule` is written: `overrides.parent.child`.
    pub fn path(&self, rule: RuleId) -> String {
        let mut keys: Vec<&str> =
            self.ancestry(rule).filter(|&r| r != Self::ROOT).map(|r| self.rules[r].key.as_str()).collect();
        keys.reverse();
        std::iter::once("overrides").chain(keys).collect::<Vec<_>>().join(".")
    }

    /// The rule a node reached through edges governed by `first` and `second` keeps (arborist's
    /// `findSpecificOverrideSet`): the more specific one when one is inside the other, else
    /// their nearest common ancestor, or `None` when their rules conflict.
    pub fn specific(&self, first: RuleId, second: RuleId) -> Option<RuleId> {
        if self.ancestry(second).any(|a| a == first) {
            return Some(second);
        }
        if self.ancestry(first).any(|a| a == second) {
            return Some(first);
        }
        if self.conflicting(first, second) {
            return None;
        }
        self.ancestry(second).find(|s| self.ancestry(first).any(|f| f == *s))
    }

    /// Whether `a` and `b` ask for versions of one package that cannot agree (arborist's
    /// `haveConflictingRules`: two ranges that do not intersect; references and other specs
    /// never conflict).
    fn conflicting(&self, a: RuleId, b: RuleId) -> bool {
        let theirs = self.ruleset(b);
        for mine in self.ruleset(a) {
            let Some(&other) = theirs.iter().find(|&&t| self.rules[t].key == self.rules[mine].key) else {
                continue;
            };
            if other == mine {
                continue;
            }
            let (x, y) = (&self.rules[mine].value, &self.rules[other].value);
            if x.starts_with('$') || y.starts_with('$') {
                continue;
            }
            let registry = |v: &str| {
                matches!(VersionSpec::parse(v), Ok(VersionSpec::Version(_) | VersionSpec::Range { .. }))
            };
            if registry(x) && registry(y) && !intersects(x, y) {
                return true;
            }
        }
        false
    }
}

/// npm's `semver.intersects` (`false` when either side is not a range).
pub(crate) fn intersects(a: &str, b: &str) -> bool {
    match (semver::parse_range(a), semver::parse_range(b)) {
        (Some(x), Some(y)) => x.allows_any(&y),
        _ => false,
    }
}

/// How an override changed an edge: what the package asked for, and the override's key
/// range. A node that fits the raw request but not the key range still satisfies the edge
/// (arborist's `satisfiedBy`: `^8` overridden only at `8.23.0` takes `8.24.0`).
#[derive(Debug, Clone)]
pub struct Overridden {
    /// The request as the package wrote it.
    pub raw: Request,
    /// The override's key range (`*` for a bare key).
    pub key: String,
    /// The spec the edge asks for now, as written in `overrides` (a `$name` resolved).
    pub value: String,
}

/// The spec text `r` was written as (`npm:` for aliases).
pub(crate) fn spec_text(r: &Request) -> String {
    if r.name != r.package && !r.package.is_empty() {
        format!("npm:{}@{}", r.package, r.spec)
    } else {
        r.spec.to_string()
    }
}

/// What keeps a locked tree from being installed as is under `overrides` (npm ci builds the
/// ideal tree over the lockfile and compares): every registry dependency of each locked
/// package (the root's included) that resolves, by Node's lookup, to a locked package that
/// does not satisfy it as overridden — or, with no override left, as written. Peer edges,
/// bundled packages and missing optional packages are not looked at.
pub(crate) fn lock_problems(
    packages: &BTreeMap<String, serde_json::Map<String, Value>>,
    overrides: Option<&Overrides>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut sets: BTreeMap<String, RuleId> = BTreeMap::new();
    let mut queue: VecDeque<String> = VecDeque::from([String::new()]);
    sets.insert(String::new(), Overrides::ROOT);
    // The project's own folders (workspaces) are roots of their own dependencies.
    queue.extend(
        packages
            .keys()
            .filter(|l| !l.is_empty() && !l.starts_with("..") && !l.contains("node_modules"))
            .cloned(),
    );
    let mut visited = std::collections::BTreeSet::new();
    while let Some(loc) = queue.pop_front() {
        if !visited.insert(loc.clone()) {
            continue;
        }
        // A folder outside the project resolves from where it is, which the lockfile does not
        // describe.
        if loc.starts_with("..") {
            continue;
        }
        let Some(entry) = packages.get(&loc) else { continue };
        if entry.get("inBundle").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let set = sets.get(&loc).copied().unwrap_or(Overrides::ROOT);
        let mut sections = vec!["dependencies", "optionalDependencies"];
        if loc.is_empty() {
            sections.push("devDependencies");
        }
        for section in sections {
            let Some(deps) = entry.get(section).and_then(Value::as_object) else { continue };
            for (name, spec) in deps {
                let Some(spec) = spec.as_str() else { continue };
                let Ok(raw) = Request::from_dependency(name, spec) else { continue };
                let Some(target) = lock_resolve(packages, &loc, name) else { continue };
                let Some(to) = packages.get(&target) else { continue };
                let (to_loc, to) = match to.get("resolved").and_then(Value::as_str) {
                    Some(t) if to.get("link").and_then(Value::as_bool) == Some(true) => {
                        (t.to_owned(), packages.get(t).unwrap_or(to))
                    }
                    _ => (target.clone(), to),
                };
                let (rule, wanted) = match overrides {
                    Some(ov) => {
                        let rule = ov.edge_rule(set, &raw);
                        let wanted = ov.replacement(rule, name, |_| None).ok().flatten();
                        (Some(rule), wanted)
                    }
                    None => (None, None),
                };
                if let Some(rule) = rule {
                    let merged = match sets.get(&to_loc) {
                        None => Some(rule),
                        Some(&cur) => overrides.and_then(|ov| ov.specific(cur, rule)),
                    };
                    if let Some(m) = merged {
                        sets.insert(to_loc.clone(), m);
                    }
                }
                queue.push_back(to_loc.clone());
                if !raw.spec.is_registry() {
                    continue;
                }
                let field = |k: &str| to.get(k).and_then(Value::as_str);
                let package = field("name").or(Some(name.as_str()));
                let version = field("version");
                let fits = |spec: &str| crate::actual::spec_satisfied(name, package, version, name, spec);
                let ok = match &wanted {
                    None => fits(spec),
                    Some(w) => {
                        let key =
                            overrides.zip(rule).map(|(ov, r)| ov.key_spec(r).to_owned()).unwrap_or_default();
                        fits(w) || (fits(spec) && !fits(&key))
                    }
                };
                if loc.is_empty()
                    && let Some(w) = &wanted
                    && w.as_str() != spec
                {
                    out.push(
                        OverrideError::Conflict { name: name.clone(), spec: spec.to_owned() }.to_string(),
                    );
                }
                if !ok {
                    out.push(format!(
                        "Invalid: lock file's {name}@{} does not satisfy {name}@{}",
                        version.unwrap_or(""),
                        wanted.as_deref().unwrap_or(spec)
                    ));
                }
            }
        }
    }
    out
}

/// Node's lookup of `name` from the locked package at `from`: its own `node_modules`, then
/// each enclosing one's, then the root's.
fn lock_resolve(
    packages: &BTreeMap<String, serde_json::Map<String, Value>>,
    from: &str,
    name: &str,
) -> Option<String> {
    let mut base = from.to_owned();
    loop {
        let candidate = if base.is_empty() {
            format!("node_modules/{name}")
        } else {
            format!("{base}/node_modules/{name}")
        };
        if packages.contains_key(&candidate) {
            return Some(candidate);
        }
        if base.is_empty() {
            return None;
        }
        base = match base.rfind("/node_modules/") {
            Some(i) => base[..i].to_owned(),
            None => String::new(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: Value) -> Overrides {
        Overrides::parse(&v, BTreeMap::from([("leaf".to_owned(), "^2.0.0".to_owned())])).unwrap().unwrap()
    }

    fn req(name: &str, spec: &str) -> Request {
        Request::from_dependency(name, spec).unwrap()
    }

    fn spec(ov: &Overrides, set: RuleId, name: &str, raw: &str) -> Option<String> {
        let rule = ov.edge_rule(set, &req(name, raw));
        ov.replacement(rule, name, |_| None).unwrap()
    }

    #[test]
    fn a_bare_key_overrides_every_edge_of_that_name() {
        let ov = set(json!({"leaf": "1.2.0"}));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "^1.0.0").as_deref(), Some("1.2.0"));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "latest").as_deref(), Some("1.2.0"));
        assert_eq!(spec(&ov, Overrides::ROOT, "other", "^1.0.0"), None);
        // Below the overridden package the same rules hold.
        let leaf = ov.edge_rule(Overrides::ROOT, &req("leaf", "1"));
        assert_eq!(spec(&ov, leaf, "leaf", "^3").as_deref(), Some("1.2.0"));
    }

    #[test]
    fn a_key_range_applies_where_it_intersects_the_edge() {
        let ov = set(json!({"leaf@1.0.0": "1.1.0"}));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "1.0.0").as_deref(), Some("1.1.0"));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "^1.0.0").as_deref(), Some("1.1.0"));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "^1.1.0"), None);
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "git+https://h/r.git#semver:^2"), None);
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "git+https://h/r.git#semver:^1"), Some("1.1.0".into()));
    }

    #[test]
    fn nested_keys_apply_below_their_parent_only() {
        let ov = set(json!({"top": {"leaf": "1.0.0"}, "mid": {".": "2.0.0", "leaf": "2.1.0"}}));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "^1.1.0"), None);
        let top = ov.edge_rule(Overrides::ROOT, &req("top", "^1"));
        assert_eq!(spec(&ov, Overrides::ROOT, "top", "^1"), None, "a key without . keeps the parent's spec");
        assert_eq!(spec(&ov, top, "leaf", "^1.1.0").as_deref(), Some("1.0.0"));
        // Deeper below top, through a package no rule names.
        let other = ov.edge_rule(top, &req("other", "^1"));
        assert_eq!(other, top);
        assert_eq!(spec(&ov, other, "leaf", "^1.1.0").as_deref(), Some("1.0.0"));
        assert_eq!(spec(&ov, Overrides::ROOT, "mid", "^1.0.0").as_deref(), Some("2.0.0"));
        let mid = ov.edge_rule(Overrides::ROOT, &req("mid", "^1"));
        assert_eq!(spec(&ov, mid, "leaf", "^2.0.0").as_deref(), Some("2.1.0"));
        assert_eq!(ov.path(mid + 1), "overrides.mid.leaf");
    }

    #[test]
    fn references_are_the_roots_own_specs() {
        let ov = set(json!({"leaf": "$leaf", "gone": "$gone"}));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "1.0.0").as_deref(), Some("^2.0.0"));
        let rule = ov.edge_rule(Overrides::ROOT, &req("gone", "1"));
        let err = ov.replacement(rule, "gone", |_| None).unwrap_err();
        assert!(err.to_string().contains("$gone"), "{err}");
        // The dependent's own dependency of that name is the fallback, as in arborist.
        assert_eq!(ov.replacement(rule, "gone", |_| Some("3".into())).unwrap().as_deref(), Some("3"));
    }

    #[test]
    fn the_more_specific_rule_wins_and_siblings_that_disagree_conflict() {
        let ov = set(json!({"a": {"leaf": "1.0.0"}, "b": {"leaf": "2.0.0"}, "c": {"x": "1"}}));
        let a = ov.edge_rule(Overrides::ROOT, &req("a", "1"));
        let b = ov.edge_rule(Overrides::ROOT, &req("b", "1"));
        let c = ov.edge_rule(Overrides::ROOT, &req("c", "1"));
        assert_eq!(ov.specific(Overrides::ROOT, a), Some(a));
        assert_eq!(ov.specific(a, Overrides::ROOT), Some(a));
        assert_eq!(ov.specific(a, b), None, "leaf 1.0.0 and 2.0.0 cannot agree");
        assert_eq!(ov.specific(a, c), Some(Overrides::ROOT), "compatible siblings meet at the root");
    }

    #[test]
    fn odd_values_are_read_as_npm_reads_them_or_named() {
        assert!(Overrides::parse(&json!("x"), BTreeMap::new()).unwrap().is_none());
        assert!(Overrides::parse(&json!({}), BTreeMap::new()).unwrap().is_none());
        assert!(Overrides::parse(&json!([1]), BTreeMap::new()).unwrap().is_none());
        let ov = set(json!({"leaf": 5, "x": ""}));
        assert_eq!(spec(&ov, Overrides::ROOT, "leaf", "1"), None);
        assert_eq!(spec(&ov, Overrides::ROOT, "x", "1"), None);
        let err = Overrides::parse(&json!({"a": {"": "1"}}), BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("overrides.a"), "{err}");
        let err = Overrides::parse(&json!({"leaf": null}), BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("overrides.leaf"), "{err}");
        assert!(Overrides::parse(&json!({"Not Valid": "1"}), BTreeMap::new()).is_err());
        assert!(Overrides::parse(&json!({"a": {".": 3}}), BTreeMap::new()).is_err());
    }

    #[test]
    fn a_locked_tree_is_checked_as_overridden() {
        let lock = |leaf: &str| -> BTreeMap<String, serde_json::Map<String, Value>> {
            let v = json!({
                "": {"dependencies": {"pin": "1.0.0", "top": "^1"}},
                "node_modules/pin": {"version": "1.0.0", "dependencies": {"leaf": "1.0.0"}},
                "node_modules/top": {"version": "1.0.0", "dependencies": {"leaf": "^1.0.0"}},
                "node_modules/leaf": {"version": leaf},
            });
            serde_json::from_value(v).unwrap()
        };
        let ov = set(json!({"leaf": "1.2.0"}));
        assert!(lock_problems(&lock("1.2.0"), Some(&ov)).is_empty());
        assert_eq!(
            lock_problems(&lock("1.0.0"), Some(&ov)),
            vec![
                "Invalid: lock file's leaf@1.0.0 does not satisfy leaf@1.2.0",
                "Invalid: lock file's leaf@1.0.0 does not satisfy leaf@1.2.0"
            ]
        );
        // The override gone: pin's own spec no longer fits.
        assert_eq!(
            lock_problems(&lock("1.2.0"), None),
            vec!["Invalid: lock file's leaf@1.2.0 does not satisfy leaf@1.0.0"]
        );
        // Nested: only below top.
        let ov = set(json!({"top": {"leaf": "1.0.0"}}));
        assert!(lock_problems(&lock("1.0.0"), Some(&ov)).is_empty());
    }
}
