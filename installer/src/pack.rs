//! Packing a folder as npm packs it (`npm pack`, npm-packlist 10 over ignore-walk 8): which
//! files go in — `files` in `package.json`, else everything but what `.npmignore` (or, without
//! one, `.gitignore`) leaves out, always `package.json`, the readme, licence, `main` and bins,
//! never `.git`, `node_modules` or lockfiles — and the gzipped tarball under `package/`.
//!
//! Used for git dependencies: a checkout is packed, and the tarball is what the store keeps.
//!
//! The rules are minimatch globs evaluated the way ignore-walk evaluates them (each folder's
//! rule files in order, a parent's verdict first, "partial" matches to decide which folders to
//! walk), not gitignore's: no crate implements ignore-walk's semantics, and a gitignore
//! matcher would pack other files than npm for the same repository. The matcher here is
//! minimatch's subset those files use: `*`, `?`, `[...]`, `**`, `{a,b}`, `!`, case-insensitive,
//! dot files matched.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The most files a packed folder may hold.
const MAX_FILES: usize = 100_000;
/// The deepest folder nesting walked.
const MAX_DEPTH: usize = 64;
/// The biggest ignore file read.
const MAX_IGNORE_FILE: u64 = 1 << 20;
/// npm's fixed mtime for every entry (1985-10-26T08:15:00Z), so a pack is reproducible.
const NPM_MTIME: u64 = 499_162_500;

/// Why a folder cannot be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A read failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was read.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `package.json` is missing or not a JSON object.
    #[error("{0}")]
    Manifest(String),
    /// More files, or a deeper tree, than a package may hold.
    #[error("{0}")]
    TooLarge(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io { path: path.to_path_buf(), source }
}

/// One minimatch pattern (after brace expansion, split on `/`; `""` parts where the pattern
/// had a leading or trailing slash).
#[derive(Debug, Clone)]
struct Rule {
    negate: bool,
    /// Each brace alternative, as its `/`-separated parts.
    set: Vec<Vec<String>>,
}

impl Rule {
    fn parse(line: &str) -> Option<Rule> {
        let mut p = line.trim();
        if p.is_empty() || p.starts_with('#') {
            return None;
        }
        let mut negate = false;
        while let Some(rest) = p.strip_prefix('!') {
            negate = !negate;
            p = rest;
        }
        let set =
            expand_braces(p).into_iter().map(|alt| alt.split('/').map(str::to_owned).collect()).collect();
        Some(Rule { negate, set })
    }

    /// minimatch's `match(file, partial)` with `matchBase`, `dot`, `nocase`, `flipNegate`:
    /// whether the pattern (its `!` aside) matches.
    fn matches(&self, file: &str, partial: bool) -> bool {
        let parts: Vec<&str> = file.split('/').collect();
        let basename = parts.iter().rev().find(|p| !p.is_empty()).copied().unwrap_or("");
        self.set.iter().any(|pattern| {
            if pattern.len() == 1 {
                match_parts(&[basename], pattern, partial)
            } else {
                match_parts(&parts, pattern, partial)
            }
        })
    }

    /// ignore-walk's "relative rule": a single segment (optionally with a trailing slash).
    fn is_relative(&self) -> bool {
        self.set.iter().any(|p| p.len() <= if p.last().is_some_and(|s| !s.is_empty()) { 1 } else { 2 })
    }
}

/// `{a,b}` alternatives (nested ones too), as minimatch's brace-expansion does; a `{` with no
/// `,` inside stays literal.
fn expand_braces(p: &str) -> Vec<String> {
    let bytes = p.as_bytes();
    let Some(open) = p.find('{') else { return vec![p.to_owned()] };
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let (Some(close), false) = (close, commas.is_empty()) else {
        // Literal `{`: expand what follows it.
        return expand_braces(&p[open + 1..])
            .into_iter()
            .map(|rest| format!("{}{rest}", &p[..=open]))
            .collect();
    };
    let (head, tail) = (&p[..open], &p[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        for alt in expand_braces(&p[w[0] + 1..w[1]]) {
            for rest in expand_braces(tail) {
                if out.len() < 256 {
                    out.push(format!("{head}{alt}{rest}"));
                }
            }
        }
    }
    out
}

/// minimatch's `matchOne` over `/`-separated parts, `**` spanning any number of them.
fn match_parts(file: &[&str], pattern: &[String], partial: bool) -> bool {
    let (mut fi, mut pi) = (0, 0);
    while fi < file.len() && pi < pattern.len() {
        let p = pattern[pi].as_str();
        let f = file[fi];
        if p == "**" {
            if pi + 1 == pattern.len() {
                // A trailing `**` swallows the rest (not `.`/`..` parts).
                return file[fi..].iter().all(|f| *f != "." && *f != "..");
            }
            let mut fr = fi;
            while fr < file.len() {
                if match_parts(&file[fr..], &pattern[pi + 1..], partial) {
                    return true;
                }
                if file[fr] == "." || file[fr] == ".." {
                    break;
                }
                fr += 1;
            }
            // Ran out of file inside a `**`: a partial match.
            return partial && fr == file.len();
        }
        if !match_segment(f, p) {
            return false;
        }
        fi += 1;
        pi += 1;
    }
    if fi == file.len() && pi == pattern.len() {
        true
    } else if fi == file.len() {
        partial
    } else {
        // Pattern exhausted: matches only a trailing slash in the file.
        fi == file.len() - 1 && file[fi].is_empty()
    }
}

/// One path segment against one glob segment (case-insensitive; `*` and `?` need a
/// character, and never match `.` or `..` whole).
fn match_segment(f: &str, p: &str) -> bool {
    if !p.contains(['*', '?', '[']) {
        return f.eq_ignore_ascii_case(p);
    }
    if f.is_empty() || f == "." || f == ".." {
        return false;
    }
    let f: Vec<char> = f.chars().flat_map(char::to_lowercase).collect();
    let p: Vec<char> = p.chars().flat_map(char::to_lowercase).collect();
    glob_chars(&f, &p)
}

fn glob_chars(f: &[char], p: &[char]) -> bool {
    let Some(&c) = p.first() else { return f.is_empty() };
    match c {
        '*' => (0..=f.len()).any(|i| glob_chars(&f[i..], &p[1..])),
        '?' => !f.is_empty() && glob_chars(&f[1..], &p[1..]),
        '[' => {
            let Some(end) = p.iter().skip(2).position(|&c| c == ']').map(|i| i + 2) else {
                return f.first() == Some(&'[') && glob_chars(&f[1..], &p[1..]);
            };
            let Some(&ch) = f.first() else { return false };
            let class = &p[1..end];
            let (negated, class) = match class.first() {
                Some('!' | '^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= ch && ch <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == ch;
                    i += 1;
                }
            }
            hit != negated && glob_chars(&f[1..], &p[end + 1..])
        }
        '\\' if p.len() > 1 => f.first() == Some(&p[1]) && glob_chars(&f[1..], &p[2..]),
        c => f.first() == Some(&c) && glob_chars(&f[1..], &p[1..]),
    }
}

fn rules(lines: &str) -> Vec<Rule> {
    lines.lines().filter_map(Rule::parse).collect()
}

/// npm-packlist's default rules, applied in every folder.
const DEFAULTS: &[&str] = &[
    ".npmignore",
    ".gitignore",
    "**/.git",
    "**/.svn",
    "**/.hg",
    "**/CVS",
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/CVS/**",
    "/.lock-wscript",
    "/.wafpickle-*",
    "/build/config.gypi",
    "npm-debug.log",
    "**/.npmrc",
    ".*.swp",
    ".DS_Store",
    "**/.DS_Store/**",
    "._*",
    "**/._*/**",
    "*.orig",
    "/archived-packages/**",
];

/// One folder being walked: its rule sets in ignore-walk's order, and its parent.
struct Level<'a> {
    basename: String,
    sets: Vec<Vec<Rule>>,
    parent: Option<&'a Level<'a>>,
    exact: bool,
}

impl Level<'_> {
    /// ignore-walk's `filterEntry`.
    fn filter(&self, entry: &str, partial: bool, entry_basename: Option<&str>) -> bool {
        let mut included = true;
        if let Some(parent) = self.parent {
            let parent_entry = format!("{}/{entry}", self.basename);
            included = parent.filter(&parent_entry, partial, Some(entry_basename.unwrap_or(entry)));
            if !included && !self.exact {
                return false;
            }
        }
        for rule in self.sets.iter().flatten() {
            if rule.negate == included {
                continue;
            }
            let relative = entry_basename.is_some() && rule.is_relative();
            let slash = format!("/{entry}");
            let hit = rule.matches(&slash, false)
                || rule.matches(entry, false)
                || partial
                    && (rule.matches(&format!("/{entry}/"), false)
                        || rule.matches(&format!("{entry}/"), false)
                        || rule.negate && (rule.matches(&slash, true) || rule.matches(entry, true))
                        || relative && {
                            let b = entry_basename.unwrap_or(entry);
                            rule.matches(&format!("/{b}/"), false)
                                || rule.matches(&format!("{b}/"), false)
                                || rule.negate
                                    && (rule.matches(&format!("/{b}"), true) || rule.matches(b, true))
                        });
            if hit {
                included = rule.negate;
            }
        }
        included
    }
}

fn read_small(path: &Path) -> Result<String, PackError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_IGNORE_FILE {
        return Err(PackError::TooLarge(format!(
            "{} is larger than {MAX_IGNORE_FILE} bytes",
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(io(path))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The files `npm pack` would put in the package at `dir`, relative and `/`-separated,
/// sorted.
pub fn packlist(dir: &Path) -> Result<Vec<String>, PackError> {
    let manifest_path = dir.join("package.json");
    let text = read_small(&manifest_path)?;
    let manifest: Value = serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text))
        .map_err(|e| PackError::Manifest(format!("{} is not valid JSON: {e}", manifest_path.display())))?;
    if !manifest.is_object() {
        return Err(PackError::Manifest(format!("{} is not a JSON object", manifest_path.display())));
    }
    let mut strict: Vec<String> = [
        "/.git",
        "!/package.json",
        "!/readme{,.*[^~$]}",
        "!/copying{,.*[^~$]}",
        "!/license{,.*[^~$]}",
        "!/licence{,.*[^~$]}",
        "/.git",
        "/node_modules",
        ".npmrc",
        "/package-lock.json",
        "/yarn.lock",
        "/pnpm-lock.yaml",
        "/bun.lockb",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut required: Vec<String> = Vec::new();
    let mut files_rules: Option<Vec<String>> = None;
    if let Some(Value::Array(files)) = manifest.get("files") {
        let mut ignores = vec!["*".to_owned()];
        for file in files.iter().filter_map(Value::as_str) {
            let mut file = file.strip_prefix("./").map_or_else(|| file.to_owned(), |f| format!("/{f}"));
            if file.ends_with("/*") {
                file.push('*');
            }
            let inverse = format!("!{file}");
            let on_disk = dir.join(file.trim_start_matches('!').trim_start_matches('/'));
            match fs::symlink_metadata(&on_disk) {
                Ok(m) if m.is_file() => {
                    strict.insert(0, inverse);
                    required.push(file.strip_prefix('/').unwrap_or(&file).to_owned());
                }
                Ok(m) if m.is_dir() => {
                    ignores.push(inverse.clone());
                    ignores.push(format!("{inverse}/**"));
                }
                Ok(_) => {}
                Err(_) => ignores.push(inverse),
            }
        }
        files_rules = Some(ignores);
    }
    if let Some(browser) = manifest.get("browser").and_then(Value::as_str) {
        strict.push(format!("!/{browser}"));
    }
    if let Some(main) = manifest.get("main").and_then(Value::as_str) {
        strict.push(format!("!/{main}"));
    }
    match manifest.get("bin") {
        Some(Value::String(b)) => strict.push(format!("!/{b}")),
        Some(Value::Object(bins)) => {
            strict.extend(bins.values().filter_map(Value::as_str).map(|b| format!("!/{b}")))
        }
        _ => {}
    }
    let mut out = Vec::new();
    let mut sets = vec![rules(&DEFAULTS.join("\n"))];
    match &files_rules {
        // `files` means no .npmignore or .gitignore at the root.
        Some(f) => sets.push(rules(&f.join("\n"))),
        None => sets.extend(ignore_file(dir)?),
    }
    sets.push(rules(&strict.join("\n")));
    let root = Level { basename: String::new(), sets, parent: None, exact: false };
    walk(dir, "", &root, &required, 0, &mut out)?;
    out.sort();
    Ok(out)
}

/// The rules of the folder's own ignore file: its `.npmignore`, else its `.gitignore`.
fn ignore_file(dir: &Path) -> Result<Option<Vec<Rule>>, PackError> {
    for name in [".npmignore", ".gitignore"] {
        let p = dir.join(name);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            return read_small(&p).map(|text| Some(rules(&text)));
        }
    }
    Ok(None)
}

/// Walk the folder `dir` (`rel` from the package root) under `level`'s rules.
fn walk(
    dir: &Path,
    rel: &str,
    level: &Level<'_>,
    required: &[String],
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), PackError> {
    if depth > MAX_DEPTH {
        return Err(PackError::TooLarge(format!(
            "{} is nested more than {MAX_DEPTH} folders deep",
            dir.display()
        )));
    }
    let mut entries: Vec<(String, fs::FileType)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        entries.push((name, kind));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in entries {
        // Symbolic links, sockets and the like never go in; nor names tar cannot carry.
        if !(kind.is_file() || kind.is_dir()) || name.contains('*') {
            continue;
        }
        let pass_file = level.filter(&name, false, None);
        let pass_dir = level.filter(&name, true, None);
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        if kind.is_file() {
            if pass_file {
                if out.len() >= MAX_FILES {
                    return Err(PackError::TooLarge(format!("more than {MAX_FILES} files to pack")));
                }
                out.push(path);
            }
            continue;
        }
        if !pass_dir {
            continue;
        }
        let child_dir = dir.join(&name);
        // npm-packlist hands a child walker the required files directly inside it.
        let child_required: Vec<String> = required
            .iter()
            .filter_map(|f| f.strip_prefix(&format!("{name}/")))
            .filter(|f| !f.contains('/'))
            .map(str::to_owned)
            .collect();
        let mut strict = vec!["/.git".to_owned()];
        strict.extend(child_required.iter().map(|f| format!("!{f}")));
        let mut sets = vec![rules(&DEFAULTS.join("\n"))];
        sets.extend(ignore_file(&child_dir)?);
        sets.push(rules(&strict.join("\n")));
        let exact = pass_file || level.filter(&format!("{name}/"), false, None);
        let child = Level { basename: name.clone(), sets, parent: Some(level), exact };
        walk(&child_dir, &path, &child, &child_required, depth + 1, out)?;
    }
    Ok(())
}

/// Pack the folder `dir` as `npm pack` would choose its files: a gzipped tar of
/// `package/<file>` entries, each with npm's fixed mtime, owner 0 and mode 0644 (0755 when
/// executable). Bounded by `max_bytes` (the store's tarball cap).
pub fn pack(dir: &Path, max_bytes: u64) -> Result<Vec<u8>, PackError> {
    let files = packlist(dir)?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut total: u64 = 0;
    for file in &files {
        let path = dir.join(file);
        let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
        total += meta.len();
        if total > max_bytes {
            return Err(PackError::TooLarge(format!("the files to pack are larger than {max_bytes} bytes")));
        }
        let data = fs::read(&path).map_err(io(&path))?;
        let mut header = tar::Header::new_ustar();
        #[cfg(unix)]
        let executable = {
            use std::os::unix::fs::PermissionsExt as _;
            meta.permissions().mode() & 0o111 != 0
        };
        #[cfg(not(unix))]
        let executable = false;
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_mtime(NPM_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("package/{file}"), data.as_slice()).map_err(io(&path))?;
    }
    let gz = tar.into_inner().map_err(io(dir))?;
    let mut bytes = gz.finish().map_err(io(dir))?;
    bytes.flush().map_err(io(dir))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, body) in files {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        }
    }

    #[test]
    fn minimatch_subset() {
        let r = |p: &str| Rule::parse(p).unwrap();
        assert!(r("*.orig").matches("lib/a.orig", false));
        assert!(r("/lib").matches("/lib", false) && !r("/lib").matches("/x/lib/a", false));
        assert!(r("lib/**").matches("lib/a/b.js", false));
        assert!(r("!lib/index.js").matches("lib", true), "a negation walks into lib");
        assert!(!r("!lib/index.js").matches("src", true));
        assert!(r("test/").matches("test/", false) && !r("test/").matches("test", false));
        assert!(r("/readme{,.*[^~$]}").matches("/README.md", false));
        assert!(!r("/readme{,.*[^~$]}").matches("/readme.md~", false));
        assert!(r("*").matches(".hidden", false), "dot: true");
        assert!(r("[ab].js").matches("b.js", false) && !r("[!ab].js").matches("a.js", false));
    }

    #[test]
    fn files_field_readme_license_main_bin_and_defaults() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[
                (
                    "package.json",
                    r#"{"name":"p","version":"1.0.0","main":"main.js","bin":{"p":"bin/cli.js"},"files":["lib","bin/cli.js"]}"#,
                ),
                ("main.js", ""),
                ("lib/index.js", ""),
                ("lib/sub/a.js", ""),
                ("lib/a.orig", ""),
                ("bin/cli.js", ""),
                ("bin/other.js", ""),
                ("test/t.js", ""),
                ("README.md", ""),
                ("LICENSE", ""),
                ("notes.txt", ""),
                ("package-lock.json", "{}"),
                (".npmrc", ""),
                ("node_modules/x/index.js", ""),
            ],
        );
        assert_eq!(
            packlist(d.path()).unwrap(),
            ["LICENSE", "README.md", "bin/cli.js", "lib/index.js", "lib/sub/a.js", "main.js", "package.json"]
        );
    }

    #[test]
    fn npmignore_wins_over_gitignore_and_applies_per_folder() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[
                ("package.json", r#"{"name":"p","version":"1.0.0"}"#),
                (".npmignore", "test/\n*.log\n"),
                (".gitignore", "dist\n"),
                ("dist/out.js", ""),
                ("test/t.js", ""),
                ("debug.log", ""),
                ("src/.npmignore", "secret.js\n"),
                ("src/secret.js", ""),
                ("src/ok.js", ""),
                (".git/config", ""),
                (".DS_Store", ""),
            ],
        );
        assert_eq!(packlist(d.path()).unwrap(), ["dist/out.js", "package.json", "src/ok.js"]);
    }

    #[test]
    fn gitignore_is_used_without_npmignore() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[
                ("package.json", r#"{"name":"p","version":"1.0.0"}"#),
                (".gitignore", "dist\n"),
                ("dist/out.js", ""),
                ("index.js", ""),
            ],
        );
        assert_eq!(packlist(d.path()).unwrap(), ["index.js", "package.json"]);
    }

    #[test]
    fn packed_tarball_extracts_to_the_packlist() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &[("package.json", r#"{"name":"p","version":"1.0.0"}"#), ("a/b.js", "b")]);
        let bytes = pack(d.path(), 1 << 20).unwrap();
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), NPM_MTIME);
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["package/a/b.js", "package/package.json"]);
        assert!(pack(d.path(), 3).is_err(), "the size bound holds");
    }

    #[test]
    fn not_a_package() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(packlist(d.path()), Err(PackError::Io { .. })));
        fs::write(d.path().join("package.json"), "[1]").unwrap();
        assert!(matches!(packlist(d.path()), Err(PackError::Manifest(_))));
    }
}
