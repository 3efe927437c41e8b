//! Git dependencies as npm 11 reads and records them: npm-package-arg's git specs
//! (`git+https://`, `git+ssh://`, `git+file://`, `git://`, `github:u/r`, `u/r`, scp-like
//! `git@host:path`, each with `#ref` or `#semver:RANGE`), hosted-git-info's canonical URLs,
//! the ref resolved to a commit from `git ls-remote`, the commit checked out with the system
//! `git`, and the lockfile's `resolved` (`<repository>#<commit>`).
//!
//! The system `git` rather than the `gix` crate: it is what npm runs, so a user's credential
//! helpers, SSH setup, `insteadOf` rewrites and proxies work unchanged, and it keeps a large
//! dependency out of the tree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nodejs_semver::{Range, Version};

/// A parsed git spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSpec {
    /// The URLs `git` is asked, in order (a hosted repository: HTTPS, then SSH).
    pub fetch: Vec<String>,
    /// What the lockfile's `resolved` is before `#<commit>` (`git+ssh://git@github.com/u/r.git`
    /// for GitHub, else the spec's repository as written with its `git+`).
    pub base: String,
    /// The ref, tag or commit asked for (`#v1.2.0`, `#main`, `#<sha>`); `None`: HEAD.
    pub committish: Option<String>,
    /// `#semver:RANGE`: the highest tag whose version fits.
    pub range: Option<String>,
}

/// Why a git dependency cannot be resolved or fetched.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The spec is not a git URL ims understands.
    #[error("{0}")]
    BadSpec(String),
    /// No ref of that name, no tag in the range.
    #[error("{0}")]
    NoSuchRef(String),
    /// `git` failed or could not be run.
    #[error("{0}")]
    Command(String),
}

/// hosted-git-info's hosts: `(shorthand, domain)`.
const HOSTS: &[(&str, &str)] =
    &[("github", "github.com"), ("gitlab", "gitlab.com"), ("bitbucket", "bitbucket.org")];

impl GitSpec {
    /// Parse a git spec (see [`VersionSpec::Git`](crate::request::VersionSpec::Git)).
    pub fn parse(raw: &str) -> Result<GitSpec, GitError> {
        let raw = raw.trim();
        let (repo, fragment) = match raw.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (raw, None),
        };
        let (mut committish, mut range) = (None, None);
        if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
            for attr in fragment.split("::") {
                if let Some(r) = attr.strip_prefix("semver:") {
                    if crate::semver::parse_range(r).is_none() {
                        return Err(GitError::BadSpec(format!("{raw}: `semver:{r}` is not a valid range")));
                    }
                    range = Some(r.to_owned());
                } else if attr.starts_with("path:") {
                    return Err(GitError::BadSpec(format!(
                        "{raw}: a package in a subfolder of a repository (`#path:`) is not supported"
                    )));
                } else if !attr.is_empty() {
                    committish = Some(attr.to_owned());
                }
            }
        }
        if committish.is_some() && range.is_some() {
            return Err(GitError::BadSpec(format!("{raw}: a ref and a semver range cannot both be given")));
        }
        let bad = || GitError::BadSpec(format!("{raw} is not a git repository URL ims understands"));
        let lower = repo.to_ascii_lowercase();
        // Hosted shorthands: `github:u/r`, `u/r`.
        for (short, domain) in HOSTS {
            if let Some(path) = repo.strip_prefix(&format!("{short}:")) {
                return hosted(domain, path, committish, range).ok_or_else(bad);
            }
        }
        if lower.starts_with("gist:") {
            return Err(GitError::BadSpec(format!("{raw}: gists are not supported")));
        }
        if !repo.contains(':') {
            return hosted("github.com", repo, committish, range).ok_or_else(bad);
        }
        // URLs: `git+scheme://…`, `git://…`, `https://github.com/u/r`.
        if let Some((scheme, rest)) = repo.split_once("://") {
            let scheme_l = scheme.to_ascii_lowercase();
            let transport = scheme_l.strip_prefix("git+").unwrap_or(&scheme_l);
            if !matches!(transport, "https" | "http" | "ssh" | "file" | "git") {
                return Err(bad());
            }
            let authority = rest.split('/').next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("").split(':').next().unwrap_or("");
            if let Some((_, domain)) = HOSTS.iter().find(|(_, d)| host.eq_ignore_ascii_case(d))
                && let Some(path) = rest.split_once('/').map(|(_, p)| p)
                && let Some(spec) = hosted(domain, path, committish.clone(), range.clone())
            {
                return Ok(spec);
            }
            if transport == "file" && !rest.starts_with('/') {
                return Err(GitError::BadSpec(format!("{raw}: a git+file URL needs an absolute path")));
            }
            if rest.is_empty() || authority.is_empty() && transport != "file" {
                return Err(bad());
            }
            let url = format!("{transport}://{rest}");
            let base = if scheme_l.starts_with("git+") || transport == "git" {
                repo.to_owned()
            } else {
                format!("git+{repo}")
            };
            return Ok(GitSpec { fetch: vec![url], base, committish, range });
        }
        // scp-like `user@host:path`.
        if let Some((user_host, path)) = repo.split_once(':')
            && let Some((_, host)) = user_host.split_once('@')
            && !path.is_empty()
        {
            if let Some((_, domain)) = HOSTS.iter().find(|(_, d)| host.eq_ignore_ascii_case(d))
                && let Some(spec) = hosted(domain, path, committish.clone(), range.clone())
            {
                return Ok(spec);
            }
            return Ok(GitSpec {
                fetch: vec![repo.to_owned()],
                base: format!("git+ssh://{repo}"),
                committish,
                range,
            });
        }
        Err(bad())
    }

    /// The lockfile's `resolved` for `commit`.
    pub fn resolved(&self, commit: &str) -> String {
        format!("{}#{commit}", self.base)
    }
}

/// A hosted repository `user/repo[.git]` on `domain`.
fn hosted(domain: &str, path: &str, committish: Option<String>, range: Option<String>) -> Option<GitSpec> {
    let path = path.trim_matches('/');
    let (user, repo) = path.split_once('/')?;
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok(user) || !ok(repo) || user.starts_with('.') {
        return None;
    }
    Some(GitSpec {
        fetch: vec![
            format!("https://{domain}/{user}/{repo}.git"),
            format!("ssh://git@{domain}/{user}/{repo}.git"),
        ],
        base: format!("git+ssh://git@{domain}/{user}/{repo}.git"),
        committish,
        range,
    })
}

/// A commit of a repository's `ls-remote` listing, with the ref that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    /// The commit.
    pub commit: String,
    /// The branch or tag (short name) that names it, for a shallow clone; `None` for HEAD
    /// or a commit asked for by its hash.
    pub branch: Option<String>,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether `s` is a full commit hash (40 hex digits).
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && is_hex(s)
}

/// Pick the commit `spec` names from `git ls-remote` output (`<sha>\t<ref>` lines), as
/// npm's `@npmcli/git` does: a full commit hash as is; a ref by its full or short name (a
/// tag's peeled commit); a hash prefix of an advertised commit; `semver:` the highest tag in
/// the range; nothing: HEAD.
pub fn pick(spec: &GitSpec, ls_remote: &str) -> Result<Picked, GitError> {
    let mut refs: Vec<(String, String)> = Vec::new();
    for line in ls_remote.lines() {
        let Some((sha, name)) = line.split_once('\t') else { continue };
        if is_commit(sha) {
            refs.push((sha.to_ascii_lowercase(), name.trim().to_owned()));
        }
    }
    // A tag's commit: its peeled `^{}` entry when the tag is annotated.
    let commit_of = |name: &str| -> Option<String> {
        let peeled = format!("{name}^{{}}");
        refs.iter()
            .find(|(_, n)| *n == peeled)
            .or_else(|| refs.iter().find(|(_, n)| n == name))
            .map(|(s, _)| s.clone())
    };
    let short = |name: &str| -> Option<String> {
        name.strip_prefix("refs/heads/").or_else(|| name.strip_prefix("refs/tags/")).map(str::to_owned)
    };
    if let Some(range) = &spec.range {
        let range: Range = crate::semver::parse_range(range)
            .ok_or_else(|| GitError::BadSpec(format!("semver:{range} is not a valid range")))?;
        let mut best: Option<(Version, String)> = None;
        for (_, name) in &refs {
            let Some(tag) = name.strip_prefix("refs/tags/").filter(|t| !t.ends_with("^{}")) else { continue };
            let Some(v) = crate::semver::parse_version(tag.strip_prefix('v').unwrap_or(tag)) else {
                continue;
            };
            if range.satisfies(&v) && best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, tag.to_owned()));
            }
        }
        let Some((_, tag)) = best else {
            return Err(GitError::NoSuchRef(format!("no tag of the repository fits semver:{range}")));
        };
        let commit = commit_of(&format!("refs/tags/{tag}")).unwrap_or_default();
        return Ok(Picked { commit, branch: Some(tag) });
    }
    match spec.committish.as_deref() {
        None => {
            let commit =
                commit_of("HEAD").ok_or_else(|| GitError::NoSuchRef("the repository has no HEAD".into()))?;
            Ok(Picked { commit, branch: None })
        }
        Some(c) if is_commit(c) => Ok(Picked { commit: c.to_ascii_lowercase(), branch: None }),
        Some(c) => {
            for full in [c.to_owned(), format!("refs/tags/{c}"), format!("refs/heads/{c}")] {
                if let Some(commit) = commit_of(&full) {
                    return Ok(Picked { commit, branch: short(&full).or_else(|| short(c)) });
                }
            }
            if c.len() >= 7 && is_hex(c) {
                let lower = c.to_ascii_lowercase();
                if let Some((sha, _)) = refs.iter().find(|(s, _)| s.starts_with(&lower)) {
                    return Ok(Picked { commit: sha.clone(), branch: None });
                }
            }
            Err(GitError::NoSuchRef(format!("the repository has no branch, tag or commit named {c}")))
        }
    }
}

/// The system `git`, run with a deadline, no prompts and no repository hooks.
#[derive(Debug, Clone)]
pub struct Git {
    program: PathBuf,
    timeout: Duration,
}

impl Default for Git {
    fn default() -> Self {
        Git { program: PathBuf::from("git"), timeout: Duration::from_secs(300) }
    }
}

impl Git {
    /// `git` with every command bounded by `timeout`.
    pub fn new(program: impl Into<PathBuf>, timeout: Duration) -> Self {
        Git { program: program.into(), timeout }
    }

    async fn run(&self, cwd: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
        let mut cmd = tokio::process::Command::new(&self.program);
        // No hooks or `ext::` transports from anyone's config; never wait for a password.
        cmd.args(["-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "echo")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let what = format!("git {}", args.join(" "));
        let child = cmd.spawn().map_err(|e| {
            GitError::Command(format!("cannot run {}: {e} (is git installed?)", self.program.display()))
        })?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| GitError::Command(format!("`{what}` took longer than {}s", self.timeout.as_secs())))?
            .map_err(|e| GitError::Command(format!("`{what}` failed: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // git's own verdict (`fatal: …`, ssh's `ssh: …`), not its advice lines.
            let line = err
                .lines()
                .map(str::trim)
                .find(|l| ["fatal:", "error:", "ssh:"].iter().any(|p| l.starts_with(p)))
                .or_else(|| err.trim().lines().last())
                .unwrap_or("");
            let err: String = line.chars().take(400).collect();
            return Err(GitError::Command(format!("`{what}` failed: {err}")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The commit `spec` names, and the URL that answered.
    pub async fn resolve(&self, spec: &GitSpec) -> Result<(Picked, String), GitError> {
        let mut failed = Vec::new();
        for url in &spec.fetch {
            match self.run(None, &["ls-remote", "--", url]).await {
                Ok(listing) => return Ok((pick(spec, &listing)?, url.clone())),
                Err(e) => failed.push(e.to_string()),
            }
        }
        Err(GitError::Command(if failed.is_empty() { "no URL to fetch".into() } else { failed.join("; ") }))
    }

    /// Check out `picked` of `url` into `dest` (which must not exist): a shallow clone of its
    /// branch or tag when it has one, else a full clone; the checkout's HEAD must be the commit.
    pub async fn checkout(&self, url: &str, picked: &Picked, dest: &Path) -> Result<(), GitError> {
        let dest_s = dest.to_string_lossy().into_owned();
        let shallow = match &picked.branch {
            Some(b) => self
                .run(None, &["clone", "--quiet", "--depth=1", "--branch", b, "--", url, &dest_s])
                .await
                .is_ok(),
            None => false,
        };
        let head = if shallow { self.run(Some(dest), &["rev-parse", "HEAD"]).await? } else { String::new() };
        if !shallow || head.trim() != picked.commit {
            if dest.exists() {
                std::fs::remove_dir_all(dest)
                    .map_err(|e| GitError::Command(format!("cannot clean {dest_s}: {e}")))?;
            }
            self.run(None, &["clone", "--quiet", "--no-checkout", "--", url, &dest_s]).await?;
            self.run(Some(dest), &["checkout", "--quiet", "--detach", &picked.commit, "--"]).await.map_err(
                |_| GitError::NoSuchRef(format!("the repository has no commit {}", picked.commit)),
            )?;
        }
        let head = self.run(Some(dest), &["rev-parse", "HEAD"]).await?;
        if head.trim() != picked.commit {
            return Err(GitError::Command(format!(
                "the checkout is at {} rather than {}",
                head.trim(),
                picked.commit
            )));
        }
        if dest.join(".gitmodules").is_file() {
            self.run(Some(dest), &["submodule", "update", "--quiet", "--init", "--recursive"]).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(raw: &str) -> GitSpec {
        GitSpec::parse(raw).unwrap()
    }

    #[test]
    fn specs_as_npm_package_arg_reads_them() {
        // What `npm-package-arg` and hosted-git-info make of each (checked against npm 11).
        let s = spec("git+file:///tmp/a.git#v1");
        assert_eq!(
            (s.fetch, s.base.as_str(), s.committish.as_deref()),
            (vec!["file:///tmp/a.git".to_owned()], "git+file:///tmp/a.git", Some("v1"))
        );
        let s = spec("git://127.0.0.1:9418/r.git#semver:^1");
        assert_eq!((s.base.as_str(), s.range.as_deref()), ("git://127.0.0.1:9418/r.git", Some("^1")));
        assert_eq!(s.resolved("abc"), "git://127.0.0.1:9418/r.git#abc");
        for raw in [
            "github:u/r#dev",
            "u/r#dev",
            "git+ssh://git@github.com/u/r.git#dev",
            "git@github.com:u/r.git#dev",
            "https://github.com/u/r#dev",
            "git+https://github.com/u/r.git#dev",
        ] {
            let s = spec(raw);
            assert_eq!(s.base, "git+ssh://git@github.com/u/r.git", "{raw}");
            assert_eq!(s.fetch, ["https://github.com/u/r.git", "ssh://git@github.com/u/r.git"], "{raw}");
            assert_eq!(s.committish.as_deref(), Some("dev"), "{raw}");
        }
        assert_eq!(spec("gitlab:u/r").base, "git+ssh://git@gitlab.com/u/r.git");
        let s = spec("git+ssh://git@host.xz:2222/path/r.git");
        assert_eq!(
            (s.fetch[0].as_str(), s.base.as_str()),
            ("ssh://git@host.xz:2222/path/r.git", "git+ssh://git@host.xz:2222/path/r.git")
        );
        for bad in [
            "git+ftp://x/y",
            "git+file://relative/x",
            "gist:abc",
            "git+https://h/r#semver:nope",
            "git+https://h/r#a::semver:^1",
            "git+https://h/r#path:sub",
        ] {
            assert!(GitSpec::parse(bad).is_err(), "{bad}");
        }
    }

    const LS: &str = "1111111111111111111111111111111111111111\tHEAD\n\
        1111111111111111111111111111111111111111\trefs/heads/main\n\
        2222222222222222222222222222222222222222\trefs/heads/dev\n\
        3333333333333333333333333333333333333333\trefs/tags/v1.2.0\n\
        4444444444444444444444444444444444444444\trefs/tags/v1.3.0\n\
        5555555555555555555555555555555555555555\trefs/tags/v1.3.0^{}\n\
        6666666666666666666666666666666666666666\trefs/tags/v2.0.0\n";

    #[test]
    fn refs_are_picked_as_npm_picks_them() {
        let p = |raw: &str| pick(&spec(raw), LS);
        assert_eq!(p("git+file:///r").unwrap(), Picked { commit: "1".repeat(40), branch: None });
        assert_eq!(
            p("git+file:///r#dev").unwrap(),
            Picked { commit: "2".repeat(40), branch: Some("dev".into()) }
        );
        // An annotated tag: its peeled commit.
        assert_eq!(p("git+file:///r#v1.3.0").unwrap().commit, "5".repeat(40));
        assert_eq!(
            p("git+file:///r#semver:^1.2.0").unwrap(),
            Picked { commit: "5".repeat(40), branch: Some("v1.3.0".into()) }
        );
        assert_eq!(p("git+file:///r#semver:~1.2").unwrap().commit, "3".repeat(40));
        assert_eq!(p("git+file:///r#2222222").unwrap().commit, "2".repeat(40));
        let full = "a".repeat(40);
        assert_eq!(p(&format!("git+file:///r#{full}")).unwrap().commit, full);
        assert!(matches!(p("git+file:///r#nope"), Err(GitError::NoSuchRef(_))));
        assert!(matches!(p("git+file:///r#semver:^3"), Err(GitError::NoSuchRef(_))));
    }
}
