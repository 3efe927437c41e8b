//! Package-name validation, npm's rules (validate-npm-package-name): every name the index
//! stores or a server is asked for passes through here once, and hostile names are rejected with
//! a reason.
//!
//! Two levels, as npm has them: names valid for *new* packages (lowercase, at most 214
//! characters, no `~'!()*`), and names that are only valid for *old* packages (uppercase
//! letters, `~'!()*`, core-module names) which still exist on the registry and must be
//! indexable. Everything else is an error.

use std::fmt;

/// The longest name npm accepts (enforced on the registry since 2015).
pub const MAX_NAME_LEN: usize = 214;

/// Names npm refuses outright.
const BLOCKED: [&str; 2] = ["node_modules", "favicon.ico"];

/// Why a name is not a valid npm package name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The empty string.
    #[error("the name is empty")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name is {0} bytes long (at most {MAX_NAME_LEN})")]
    TooLong(usize),
    /// Starts or ends with whitespace.
    #[error("the name has leading or trailing spaces")]
    Whitespace,
    /// Starts with `.` or `_` (which covers `.`, `..` and hidden files).
    #[error("the name starts with '{0}'")]
    LeadingChar(char),
    /// `node_modules` or `favicon.ico`.
    #[error("'{0}' is a blocked name")]
    Blocked(&'static str),
    /// A character that is not URL-safe (`/` outside `@scope/name`, `%`, `:`, control
    /// characters, spaces, non-ASCII, ...).
    #[error("the name contains the character {0:?}, which is not URL-safe")]
    BadChar(char),
    /// An `@scope/name` with an empty part or more than one `/`.
    #[error("the name is not of the form @scope/name")]
    BadScope,
}

/// What a valid name is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid for new and old packages.
    New,
    /// Valid only for packages published before npm tightened its rules; the reason says why.
    LegacyOnly(LegacyReason),
}

/// Why a name is valid only for old packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyReason {
    /// It has uppercase letters.
    Uppercase,
    /// It has one of `~'!()*`.
    SpecialChar,
}

impl fmt::Display for LegacyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uppercase => "uppercase letters",
            Self::SpecialChar => "one of ~'!()*",
        })
    }
}

/// Check a package name against npm's rules.
pub fn validate(name: &str) -> Result<Validity, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.trim() != name {
        return Err(NameError::Whitespace);
    }
    if let Some(c @ ('.' | '_')) = name.chars().next() {
        return Err(NameError::LeadingChar(c));
    }
    if let Some(b) = BLOCKED.iter().find(|b| name.eq_ignore_ascii_case(b)) {
        return Err(NameError::Blocked(b));
    }
    let parts: Vec<&str> = match name.strip_prefix('@') {
        Some(rest) => {
            let mut it = rest.splitn(2, '/');
            match (it.next(), it.next()) {
                (Some(scope), Some(pkg)) if !scope.is_empty() && !pkg.is_empty() && !pkg.contains('/') => {
                    vec![scope, pkg]
                }
                _ => return Err(NameError::BadScope),
            }
        }
        None => vec![name],
    };
    for part in &parts {
        if let Some(c) = part.chars().find(|c| !url_safe(*c)) {
            return Err(NameError::BadChar(c));
        }
        // `@scope/..` and `@../x` would escape a directory; npm's URL check allows dots, so
        // the leading-dot rule is applied to each part here, not only to the whole name.
        if part.starts_with('.') {
            return Err(NameError::LeadingChar('.'));
        }
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Ok(Validity::LegacyOnly(LegacyReason::Uppercase));
    }
    if name.chars().any(|c| "~'!()*".contains(c)) {
        return Ok(Validity::LegacyOnly(LegacyReason::SpecialChar));
    }
    Ok(Validity::New)
}

/// The characters JavaScript's `encodeURIComponent` leaves alone.
fn url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// The name as one URL path segment: `@scope/name` becomes `@scope%2fname` (what npm and Yarn
/// send); other valid names need no escaping.
pub fn url_segment(name: &str) -> String {
    name.replacen('/', "%2f", 1)
}

/// The tarball file name npm uses: `name-version.tgz`, without the scope.
pub fn tarball_file_name(name: &str, version: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    format!("{base}-{version}.tgz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        for n in ["lodash", "@babel/core", "ipaddr.js", "a-b_c", "@types/node", "x".repeat(214).as_str()] {
            assert_eq!(validate(n), Ok(Validity::New), "{n}");
        }
        assert_eq!(validate("JSONStream"), Ok(Validity::LegacyOnly(LegacyReason::Uppercase)));
        assert_eq!(validate("ok!"), Ok(Validity::LegacyOnly(LegacyReason::SpecialChar)));
    }

    #[test]
    fn hostile_names() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(validate(&"a".repeat(1 << 20)), Err(NameError::TooLong(1 << 20)));
        assert_eq!(validate(".."), Err(NameError::LeadingChar('.')));
        assert_eq!(validate("_x"), Err(NameError::LeadingChar('_')));
        assert_eq!(validate("../etc/passwd"), Err(NameError::LeadingChar('.')));
        assert_eq!(validate("a/b"), Err(NameError::BadChar('/')));
        assert_eq!(validate("@s/../x"), Err(NameError::BadScope));
        assert_eq!(validate("@s/.."), Err(NameError::LeadingChar('.')));
        assert_eq!(validate("@../x"), Err(NameError::LeadingChar('.')));
        assert_eq!(validate("@s/"), Err(NameError::BadScope));
        assert_eq!(validate("a\u{0}b"), Err(NameError::BadChar('\u{0}')));
        assert_eq!(validate("a\nb"), Err(NameError::BadChar('\n')));
        assert_eq!(validate(" a"), Err(NameError::Whitespace));
        assert_eq!(validate("a%2fb"), Err(NameError::BadChar('%')));
        assert_eq!(validate("caf\u{e9}"), Err(NameError::BadChar('\u{e9}')));
        assert_eq!(validate("node_modules"), Err(NameError::Blocked("node_modules")));
    }

    #[test]
    fn urls_and_files() {
        assert_eq!(url_segment("@babel/core"), "@babel%2fcore");
        assert_eq!(url_segment("ms"), "ms");
        assert_eq!(tarball_file_name("@babel/core", "7.0.0"), "core-7.0.0.tgz");
    }
}
