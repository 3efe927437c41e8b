//! The default upstream registry, taken from npm's own configuration in npm's order (spec
//! `npm-registry-and-installers.md` §1.1; DESIGN.md §The command line): `--registry`, then
//! `NPM_CONFIG_REGISTRY` / `npm_config_registry`, then `registry=` in the project's `.npmrc`,
//! the user's (`$NPM_CONFIG_USERCONFIG` or `~/.npmrc`) and the global one
//! (`$NPM_CONFIG_GLOBALCONFIG` or `$PREFIX/etc/npmrc`), and last `npm config get registry`
//! run with a short timeout. ims never names a public registry itself: when none of these
//! answers, [`NpmrcError::NoRegistry`] tells the user to pass `--registry`.
//!
//! The global prefix of `ims install -g` is found the same way ([`NpmConfig::global_prefix`]):
//! `--prefix`, `NPM_CONFIG_PREFIX`, `prefix=` in the user's or the global `.npmrc`, `npm config
//! get prefix`, and last npm's own default, the folder above the `bin/` holding `node`.
//!
//! The `.npmrc` reading is hand-written: only the `registry` and `prefix` keys are needed, and
//! npm's format for them is one `key = value` line (`;`/`#` comments, optional quotes, `${VAR}`
//! expansion).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indexer::upstream::{ExtraRoot, ProxyConfig, RegistryUrl, TlsConfig};

/// How long `npm config get registry` may take before it is given up on.
pub const NPM_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no registry could be chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpmrcError {
    /// Nothing configured one and npm did not answer.
    #[error(
        "no upstream registry is configured (no --registry, NPM_CONFIG_REGISTRY, `registry=` in an .npmrc, and `npm config get registry` gave no answer)"
    )]
    NoRegistry,
    /// No global prefix could be found for `-g`.
    #[error(
        "cannot tell where global packages go (no --prefix, NPM_CONFIG_PREFIX, `prefix=` in an .npmrc, no answer from `npm config get prefix`, and no `node` on PATH)"
    )]
    NoPrefix,
    /// A configured value is not an http(s) URL.
    #[error("the registry {value:?} from {origin} is not an http:// or https:// URL")]
    NotUrl {
        /// The value found.
        value: String,
        /// Where it came from (`--registry`, a variable name or a file path).
        origin: String,
    },
    /// A CA file (`cafile=`, `NODE_EXTRA_CA_CERTS`) cannot be read.
    #[error("cannot read the CA file {path} (from {origin})")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Where it was named.
        origin: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CA file or `ca=` value holds no PEM certificate.
    #[error("{what} (from {origin}) holds no PEM certificate")]
    NoPem {
        /// The file, or `ca=`.
        what: String,
        /// Where it was named.
        origin: String,
    },
}

impl NpmrcError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            NpmrcError::CaFile { .. } => {
                "point it at a readable PEM file of your CA (as npm's `cafile=` in .npmrc), or remove the setting"
            }
            NpmrcError::NoPem { .. } => {
                "a CA file holds `-----BEGIN CERTIFICATE-----` blocks (PEM); export your CA in that form"
            }
            NpmrcError::NoRegistry => "pass --registry URL, e.g. --registry http://127.0.0.1:4873/",
            NpmrcError::NoPrefix => "pass --prefix DIR with -g",
            NpmrcError::NotUrl { .. } => "fix it there or pass --registry URL",
        }
    }
}

/// The inputs npm's configuration is read from; [`NpmConfig::from_env`] fills it from the
/// process, tests fill it by hand.
#[derive(Debug, Clone, Default)]
pub struct NpmConfig {
    /// `--registry`.
    pub flag: Option<String>,
    /// The environment: `NPM_CONFIG_*` / `npm_config_*`, `HOME`, `PREFIX`, and what
    /// `${VAR}` in an `.npmrc` expands to.
    pub env: BTreeMap<String, String>,
    /// The `npm` program asked last (`None`: do not ask).
    pub npm: Option<PathBuf>,
    /// How long npm may take.
    pub npm_timeout: Duration,
    /// npm's global mode (`-g`): the project's `.npmrc` is not read, as npm ignores it then
    /// ("global mode enabled, ignored"); only the user's and the global one are.
    pub global: bool,
}

impl NpmConfig {
    /// From the process environment, asking the `npm` on `PATH` last.
    #[allow(clippy::disallowed_methods)] // the binary is where the environment is read
    pub fn from_env(flag: Option<String>) -> Self {
        NpmConfig {
            flag,
            env: std::env::vars().collect(),
            npm: Some(PathBuf::from("npm")),
            npm_timeout: NPM_TIMEOUT,
            global: false,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        // npm reads its variables case-insensitively; both spellings are common.
        let lower = name.to_ascii_lowercase();
        self.env.get(name).or_else(|| self.env.get(&lower)).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The `.npmrc` files in npm's order of precedence for `project` (not the project's own
    /// in [global](Self::global) mode).
    pub fn rc_files(&self, project: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if !self.global {
            files.push(project.join(".npmrc"));
        }
        match self.var("NPM_CONFIG_USERCONFIG") {
            Some(u) => files.push(PathBuf::from(u)),
            None => files.extend(self.var("HOME").map(|h| Path::new(h).join(".npmrc"))),
        }
        match self.var("NPM_CONFIG_GLOBALCONFIG") {
            Some(g) => files.push(PathBuf::from(g)),
            None => {
                // npm's global prefix: the variables, else the folder above the `bin/` holding
                // node (`/usr` for `/usr/bin/node`, so `/usr/etc/npmrc`).
                let prefix = self
                    .var("NPM_CONFIG_PREFIX")
                    .or_else(|| self.var("PREFIX"))
                    .map(PathBuf::from)
                    .or_else(|| self.node_prefix());
                files.extend(prefix.map(|p| p.join("etc").join("npmrc")));
            }
        }
        files
    }

    /// The first `program` on `PATH`.
    fn on_path(&self, program: &Path) -> Option<PathBuf> {
        self.var("PATH")
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(program))
            .find(|n| n.is_file())
    }

    /// The folder above the `bin/` that holds the `node` on `PATH`.
    fn node_prefix(&self) -> Option<PathBuf> {
        let node = std::fs::canonicalize(self.on_path(Path::new("node"))?).ok()?;
        node.parent()?.parent().map(Path::to_path_buf)
    }

    /// What `npm config get registry`'s answer depends on, as one line.
    fn npm_fingerprint(&self, npm: &Path, project: &Path) -> String {
        let stamp = |p: &Path| match std::fs::metadata(p) {
            Ok(m) => format!("{}:{}:{:?}", p.display(), m.len(), m.modified().ok()),
            Err(_) => format!("{}:-", p.display()),
        };
        let found = self.on_path(npm).unwrap_or_else(|| npm.to_path_buf());
        let mut parts = vec![stamp(&found)];
        parts.extend(self.rc_files(project).iter().map(|p| stamp(p)));
        parts.extend(
            self.env
                .iter()
                .filter(|(k, _)| k.to_ascii_uppercase().starts_with("NPM_CONFIG_"))
                .map(|(k, v)| format!("{k}={v}")),
        );
        parts.join("|").replace('\n', " ")
    }

    /// The registry URL for an install in `project`.
    pub fn registry(&self, project: &Path) -> Result<RegistryUrl, NpmrcError> {
        self.registry_from(project, None)
    }

    /// [`registry`](Self::registry), keeping the answer of `npm config get registry` in
    /// `cache`: asking npm costs a Node start (~330 ms here) on every run. The answer is
    /// reused while the `npm` found, the `.npmrc` files and `NPM_CONFIG_*` variables are
    /// what they were when it was given (paths, sizes and modification times).
    pub fn registry_cached(&self, project: &Path, cache: &Path) -> Result<RegistryUrl, NpmrcError> {
        self.registry_from(project, Some(cache))
    }

    /// Where npm is asked from in global mode: the home folder, so no project's `.npmrc`
    /// is in reach of its `npm config get`.
    fn home_dir(&self) -> PathBuf {
        self.var("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
    }

    fn registry_from(&self, project: &Path, cache: Option<&Path>) -> Result<RegistryUrl, NpmrcError> {
        let home;
        let project = if self.global {
            home = self.home_dir();
            home.as_path()
        } else {
            project
        };
        if let Some(r) = &self.flag {
            return checked(r, "--registry");
        }
        if let Some(r) = self.var("NPM_CONFIG_REGISTRY") {
            return checked(r, "NPM_CONFIG_REGISTRY");
        }
        for rc in self.rc_files(project) {
            let Ok(text) = std::fs::read_to_string(&rc) else { continue };
            if let Some(r) = registry_in_rc(&text, &self.env) {
                return checked(&r, &rc.display().to_string());
            }
        }
        let Some(npm) = &self.npm else { return Err(NpmrcError::NoRegistry) };
        let Some(cache) = cache else {
            let r = ask_npm(npm, project, self.npm_timeout).ok_or(NpmrcError::NoRegistry)?;
            return checked(&r, "`npm config get registry`");
        };
        let key = self.npm_fingerprint(npm, project);
        if let Ok(text) = std::fs::read_to_string(cache)
            && let Some((k, r)) = text.split_once('\n')
            && k == key
            && let Ok(url) = checked(r.trim(), "`npm config get registry` (remembered)")
        {
            return Ok(url);
        }
        let r = ask_npm(npm, project, self.npm_timeout).ok_or(NpmrcError::NoRegistry)?;
        let url = checked(&r, "`npm config get registry`")?;
        // Best effort: without the cache the next run asks npm again.
        let tmp = cache.with_extension("tmp");
        if std::fs::write(&tmp, format!("{key}\n{r}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, cache);
        }
        Ok(url)
    }
}

impl NpmConfig {
    /// Where `-g` installs go: `lib/node_modules` and `bin` below it. `flag` is `--prefix`.
    /// The project's own `.npmrc` is not read (npm ignores it for the global prefix).
    pub fn global_prefix(&self, flag: Option<&Path>) -> Result<PathBuf, NpmrcError> {
        if let Some(p) = flag {
            return Ok(p.to_path_buf());
        }
        if let Some(p) = self.var("NPM_CONFIG_PREFIX") {
            return Ok(PathBuf::from(p));
        }
        let dir = self.home_dir();
        let user_and_global = NpmConfig { global: true, ..self.clone() };
        for rc in user_and_global.rc_files(&dir) {
            let Ok(text) = std::fs::read_to_string(&rc) else { continue };
            if let Some(p) = key_in_rc(&text, "prefix", &self.env) {
                return Ok(PathBuf::from(p));
            }
        }
        if let Some(npm) = &self.npm
            && let Some(p) = ask_npm_key(npm, &dir, "prefix", self.npm_timeout)
        {
            return Ok(PathBuf::from(p));
        }
        // npm's default: the folder above the `bin/` that holds the running node.
        self.node_prefix().ok_or(NpmrcError::NoPrefix)
    }
}

impl NpmConfig {
    /// The value of npm setting `key` for `project`, with where it came from: the environment
    /// (`NPM_CONFIG_KEY` / `npm_config_key`, `-` as `_`), then the `.npmrc` chain.
    pub fn setting(&self, project: &Path, key: &str) -> Option<(String, String)> {
        let var = format!("NPM_CONFIG_{}", key.replace('-', "_").to_ascii_uppercase());
        if let Some(v) = self.var(&var) {
            return Some((v.to_owned(), var));
        }
        self.rc_files(project).into_iter().find_map(|rc| {
            let text = std::fs::read_to_string(&rc).ok()?;
            key_in_rc(&text, key, &self.env).map(|v| (v, rc.display().to_string()))
        })
    }

    /// A variable of the environment in any case (`HTTPS_PROXY`, `https_proxy`).
    fn var_any_case(&self, name: &str) -> Option<(String, String)> {
        self.env
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(k, v)| (v.clone(), k.clone()))
    }

    /// npm's TLS trust settings for `project`: `cafile`, `ca` (a string or `ca[]=` lines),
    /// `strict-ssl`, and `NODE_EXTRA_CA_CERTS`; the platform store (with `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`) is read by the client itself.
    pub fn tls(&self, project: &Path) -> Result<TlsConfig, NpmrcError> {
        let mut extra_roots = Vec::new();
        let mut file = |path: &str, origin: String, label: &str| -> Result<(), NpmrcError> {
            let path = PathBuf::from(path);
            let pem = std::fs::read(&path).map_err(|source| NpmrcError::CaFile {
                path: path.clone(),
                origin: origin.clone(),
                source,
            })?;
            if !has_pem_certificate(&pem) {
                return Err(NpmrcError::NoPem { what: path.display().to_string(), origin });
            }
            extra_roots.push(ExtraRoot { origin: format!("{label} {}", path.display()), pem });
            Ok(())
        };
        if let Some((path, origin)) = self.setting(project, "cafile") {
            file(&path, origin, "cafile")?;
        }
        if let Some(path) = self.var("NODE_EXTRA_CA_CERTS") {
            file(path, "NODE_EXTRA_CA_CERTS".into(), "NODE_EXTRA_CA_CERTS")?;
        }
        if let Some((values, origin)) = self.ca(project) {
            // `\n` in a one-line value is how npm users write a PEM on one line.
            let pem = values.iter().map(|v| v.replace("\\n", "\n")).collect::<Vec<_>>().join("\n");
            if !has_pem_certificate(pem.as_bytes()) {
                return Err(NpmrcError::NoPem { what: "ca=".into(), origin });
            }
            extra_roots.push(ExtraRoot { origin: format!("ca= in {origin}"), pem: pem.into_bytes() });
        }
        let strict = match self.setting(project, "strict-ssl") {
            Some((v, _)) => v.trim() != "false",
            None => true,
        };
        Ok(TlsConfig { extra_roots, platform: true, strict })
    }

    /// `ca`: from the environment, else the first `.npmrc` that sets it (`ca=` or `ca[]=`).
    fn ca(&self, project: &Path) -> Option<(Vec<String>, String)> {
        if let Some(v) = self.var("NPM_CONFIG_CA") {
            return Some((vec![v.to_owned()], "NPM_CONFIG_CA".into()));
        }
        self.rc_files(project).into_iter().find_map(|rc| {
            let text = std::fs::read_to_string(&rc).ok()?;
            let values = ca_in_rc(&text, &self.env);
            (!values.is_empty()).then(|| (values, rc.display().to_string()))
        })
    }

    /// npm's proxy settings for `project`: for https:// targets `https-proxy`, then `proxy`,
    /// then `HTTPS_PROXY`; for http:// targets `proxy`, then `HTTP_PROXY`; `noproxy`, then
    /// `NO_PROXY` (variables in any case). Nothing configured: no proxy at all.
    pub fn proxy(&self, project: &Path) -> ProxyConfig {
        let proxy = self.setting(project, "proxy");
        let https = self
            .setting(project, "https-proxy")
            .or_else(|| proxy.clone())
            .or_else(|| self.var_any_case("HTTPS_PROXY"));
        let http = proxy.or_else(|| self.var_any_case("HTTP_PROXY"));
        let no_proxy = self.setting(project, "noproxy").or_else(|| self.var_any_case("NO_PROXY"));
        let value = |v: Option<(String, String)>| v.map(|(v, _)| v).filter(|v| v != "null" && v != "false");
        ProxyConfig { https: value(https), http: value(http), no_proxy: value(no_proxy) }
    }
}

fn has_pem_certificate(pem: &[u8]) -> bool {
    pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----")
}

/// The `ca` values of an `.npmrc` text: a `ca=` string (the last wins) or `ca[]=` lines (all of
/// them, in order; a later `ca=` replaces them, as in npm's ini reader).
pub fn ca_in_rc(text: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = unquote(v.trim());
        match expand(k.trim(), env).as_str() {
            "ca" => found = vec![expand(v, env)],
            "ca[]" => found.push(expand(v, env)),
            _ => continue,
        }
    }
    found.retain(|v| !v.is_empty());
    found
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v)
}

fn checked(value: &str, origin: &str) -> Result<RegistryUrl, NpmrcError> {
    RegistryUrl::parse(value)
        .map_err(|_| NpmrcError::NotUrl { value: value.trim().to_owned(), origin: origin.to_owned() })
}

/// The `registry` value of an `.npmrc` text (the last one wins, as in npm's ini reader).
pub fn registry_in_rc(text: &str, env: &BTreeMap<String, String>) -> Option<String> {
    key_in_rc(text, "registry", env)
}

/// The value of `key` in an `.npmrc` text (the last one wins, as in npm's ini reader).
pub fn key_in_rc(text: &str, key: &str, env: &BTreeMap<String, String>) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        // npm expands variables in keys too.
        if expand(k.trim(), env) != key {
            continue;
        }
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        found = Some(expand(v, env));
    }
    found.filter(|v| !v.is_empty())
}

/// npm's variable expansion in `.npmrc` keys and values (`@npmcli/config`'s `env-replace`),
/// and nothing more: `${NAME}` becomes the variable's value (kept as written when it is not
/// set), `${NAME?}` becomes it or nothing, and a backslash before the `$` escapes it (`\${X}`
/// stays `${X}`; backslashes pair up, as npm's regex counts them). `$NAME` without braces, `~`
/// and anything else are left alone. NAME is any text without `$`, `{`, `}` and `?`.
fn expand(v: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find(['$', '{', '}', '?']);
        let (name, closing) = match end {
            Some(i) if i > 0 && after[i..].starts_with('}') => (&after[..i], i + 1),
            Some(i) if i > 0 && after[i..].starts_with("?}") => (&after[..i], i + 2),
            // Not a variable here: keep the `$` and look again after it.
            _ => {
                out.push_str(&rest[..start + 1]);
                rest = &rest[start + 1..];
                continue;
            }
        };
        let optional = closing == name.len() + 2;
        // The backslashes right before `${`: npm's `(?<!\\)(\\*)`.
        let before = &rest[..start];
        let slashes = before.len() - before.trim_end_matches('\\').len();
        out.push_str(&before[..before.len() - slashes]);
        let original = &rest[start..start + 2 + closing];
        if slashes % 2 == 1 {
            // Escaped: half the backslashes (rounded down) and the text as written.
            out.push_str(&"\\".repeat(slashes / 2));
            out.push_str(original);
        } else {
            out.push_str(&"\\".repeat(slashes / 2));
            match env.get(name) {
                Some(val) => out.push_str(val),
                None if optional => {}
                None => out.push_str(&format!("${{{name}}}")),
            }
        }
        rest = &rest[start + 2 + closing..];
    }
    out.push_str(rest);
    out
}

/// `npm config get registry` in `project`, or `None` when npm is missing, fails, prints
/// nothing useful or takes longer than `timeout` (then it is killed).
pub fn ask_npm(npm: &Path, project: &Path, timeout: Duration) -> Option<String> {
    ask_npm_key(npm, project, "registry", timeout)
}

/// `npm config get KEY` in `project` (see [`ask_npm`]).
pub fn ask_npm_key(npm: &Path, project: &Path, key: &str, timeout: Duration) -> Option<String> {
    let dir = if project.is_dir() { project } else { Path::new(".") };
    let mut child = Command::new(npm)
        .args(["config", "get", key])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if started.elapsed() >= timeout => {
                tracing::warn!(npm = %npm.display(), key, "`npm config get` timed out");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let out = child.wait_with_output().ok()?;
    // One short line; anything longer is not a URL npm printed.
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty() && line.len() < 2048 && line != "undefined").then(|| line.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(env: &[(&str, &str)]) -> NpmConfig {
        NpmConfig {
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            // Generous: a loaded CI machine can take a while to start `/bin/sh`. Only the hang
            // test shortens it.
            npm_timeout: Duration::from_secs(20),
            ..NpmConfig::default()
        }
    }

    #[test]
    fn precedence_flag_env_project_user_global() {
        let dir = tempfile::tempdir().unwrap();
        let (project, home, prefix) = (dir.path().join("p"), dir.path().join("h"), dir.path().join("g"));
        std::fs::create_dir_all(prefix.join("etc")).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let env = [("HOME", home.to_str().unwrap()), ("PREFIX", prefix.to_str().unwrap()), ("PORT", "9")];
        let mut c = cfg(&env);
        assert!(matches!(c.registry(&project), Err(NpmrcError::NoRegistry)));
        std::fs::write(prefix.join("etc/npmrc"), "registry=http://global.test\n").unwrap();
        assert_eq!(c.registry(&project).unwrap(), "http://global.test/");
        std::fs::write(home.join(".npmrc"), "; comment\nregistry = \"http://127.0.0.1:${PORT}/user/\"\n")
            .unwrap();
        assert_eq!(c.registry(&project).unwrap(), "http://127.0.0.1:9/user/");
        std::fs::write(project.join(".npmrc"), "@s:registry=http://scoped\nregistry=http://project\n")
            .unwrap();
        assert_eq!(c.registry(&project).unwrap(), "http://project/");
        c.env.insert("npm_config_registry".into(), "http://env".into());
        assert_eq!(c.registry(&project).unwrap(), "http://env/");
        c.flag = Some("http://flag/".into());
        assert_eq!(c.registry(&project).unwrap(), "http://flag/");
        c.flag = Some("ftp://nope".into());
        assert!(matches!(c.registry(&project), Err(NpmrcError::NotUrl { .. })));
    }

    /// An executable `/bin/sh` script, returned only once it can be started.
    ///
    /// A file just written cannot be exec'd while any process still holds a writable descriptor
    /// to it (`ETXTBSY`), and a child forked by a concurrently running test holds a copy of ours
    /// until it execs. So the script is started with `--probe` (which exits at once) until the
    /// kernel lets it run.
    #[cfg(unix)]
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        const ETXTBSY: i32 = 26;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n[ \"$1\" = --probe ] && exit 0\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        for _ in 0..500 {
            match Command::new(&p).arg("--probe").status() {
                Err(e) if e.raw_os_error() == Some(ETXTBSY) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("cannot run {}: {e}", p.display()),
                Ok(status) => {
                    assert!(status.success(), "{} --probe: {status}", p.display());
                    return p;
                }
            }
        }
        panic!("{} stayed busy (ETXTBSY)", p.display());
    }

    #[cfg(unix)]
    #[test]
    fn npm_is_asked_last_and_a_hung_npm_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(&[]);
        c.npm = Some(script(dir.path(), "npm-ok", "echo http://from-npm.test/"));
        assert_eq!(c.registry(dir.path()).unwrap(), "http://from-npm.test/");
        c.npm = Some(script(dir.path(), "npm-hang", "exec sleep 30"));
        c.npm_timeout = Duration::from_millis(300);
        assert!(matches!(c.registry(dir.path()), Err(NpmrcError::NoRegistry)));
        c.npm = Some(dir.path().join("missing-npm"));
        let err = c.registry(dir.path()).unwrap_err().to_string();
        assert!(err.contains("--registry"), "{err}");
    }

    /// A `HOME` under `dir` with a `node` in `HOME/nodejs/bin` on `PATH`, and a config of them.
    #[cfg(unix)]
    fn home_with_node(dir: &Path) -> (PathBuf, NpmConfig) {
        let home = dir.join("h");
        std::fs::create_dir_all(home.join("nodejs/bin")).unwrap();
        let node = script(&home.join("nodejs/bin"), "node", "true");
        let path = node.parent().unwrap().to_str().unwrap().to_owned();
        let c = cfg(&[("HOME", home.to_str().unwrap()), ("PATH", &path)]);
        (home, c)
    }

    #[cfg(unix)]
    #[test]
    fn npms_answer_is_remembered_until_an_npmrc_changes_and_the_global_npmrc_is_found_by_node() {
        let dir = tempfile::tempdir().unwrap();
        let (home, mut c) = home_with_node(dir.path());
        let calls = dir.path().join("calls");
        let body = format!("echo x >> {}\necho http://from-npm.test/", calls.display());
        c.npm = Some(script(dir.path(), "npm-counting", &body));
        let cache = dir.path().join("npm-registry");
        let asked = || std::fs::read_to_string(&calls).map(|t| t.lines().count()).unwrap_or(0);
        assert_eq!(c.registry_cached(&home, &cache).unwrap(), "http://from-npm.test/");
        assert_eq!(c.registry_cached(&home, &cache).unwrap(), "http://from-npm.test/");
        assert_eq!(asked(), 1, "npm was asked again while nothing changed");
        std::fs::write(home.join(".npmrc"), "fund=false\n").unwrap();
        assert_eq!(c.registry_cached(&home, &cache).unwrap(), "http://from-npm.test/");
        assert_eq!(asked(), 2, "a changed .npmrc did not make npm be asked again");
        // npm's global npmrc sits in the prefix above node's bin/: its registry wins over npm.
        let etc = std::fs::canonicalize(home.join("nodejs")).unwrap().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("npmrc"), "registry=http://global-rc.test/\n").unwrap();
        assert_eq!(c.registry_cached(&home, &cache).unwrap(), "http://global-rc.test/");
        assert_eq!(asked(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn global_prefix_in_npm_order() {
        let dir = tempfile::tempdir().unwrap();
        let (home, mut c) = home_with_node(dir.path());
        assert_eq!(c.global_prefix(None).unwrap(), std::fs::canonicalize(home.join("nodejs")).unwrap());
        c.npm = Some(script(dir.path(), "npm-prefix", "echo /from/npm"));
        assert_eq!(c.global_prefix(None).unwrap(), Path::new("/from/npm"));
        std::fs::write(home.join(".npmrc"), "prefix = ${HOME}/global\n").unwrap();
        assert_eq!(c.global_prefix(None).unwrap(), home.join("global"));
        c.env.insert("NPM_CONFIG_PREFIX".into(), "/env/prefix".into());
        assert_eq!(c.global_prefix(None).unwrap(), Path::new("/env/prefix"));
        assert_eq!(c.global_prefix(Some(Path::new("/flag"))).unwrap(), Path::new("/flag"));
        let none = cfg(&[("HOME", dir.path().to_str().unwrap())]);
        assert!(matches!(none.global_prefix(None), Err(NpmrcError::NoPrefix)));
    }

    #[test]
    fn variables_expand_only_as_npm_expands_them() {
        let env: BTreeMap<String, String> =
            [("TOKEN".to_owned(), "s3cret".to_owned()), ("PORT".to_owned(), "9".to_owned())].into();
        let x = |v: &str| expand(v, &env);
        assert_eq!(x("http://h:${PORT}/"), "http://h:9/");
        assert_eq!(x("$TOKEN and $PORT"), "$TOKEN and $PORT", "no expansion without braces");
        assert_eq!(x("${MISSING}/${MISSING?}/"), "${MISSING}//");
        assert_eq!(x("\\${TOKEN}"), "${TOKEN}", "an escaped variable stays as written");
        assert_eq!(x("\\\\${PORT}"), "\\9");
        assert_eq!(x("\\\\\\${PORT}"), "\\${PORT}");
        assert_eq!(x("${}${a b}${PORT"), "${}${a b}${PORT");
        assert_eq!(x("${a${PORT}}"), "${a9}");
        assert_eq!(x("~/${HOME_NOT_SET}"), "~/${HOME_NOT_SET}");
        // npm expands keys too.
        assert_eq!(
            key_in_rc("${KEY}=http://k/\n", "registry", &[("KEY".into(), "registry".into())].into()),
            Some("http://k/".into())
        );
    }

    #[test]
    fn global_mode_reads_no_project_npmrc() {
        let dir = tempfile::tempdir().unwrap();
        let (project, home) = (dir.path().join("p"), dir.path().join("h"));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(project.join(".npmrc"), "registry=http://project/\nstrict-ssl=false\n").unwrap();
        std::fs::write(home.join(".npmrc"), "registry=http://user/\n").unwrap();
        let mut c = cfg(&[("HOME", home.to_str().unwrap()), ("PREFIX", dir.path().to_str().unwrap())]);
        assert_eq!(c.registry(&project).unwrap(), "http://project/");
        c.global = true;
        assert_eq!(c.registry(&project).unwrap(), "http://user/");
        assert!(c.tls(&project).unwrap().strict, "the project's strict-ssl=false is not read");
        assert!(!c.rc_files(&project).contains(&project.join(".npmrc")));
    }

    #[test]
    fn ca_arrays_quotes_and_variables() {
        let env: BTreeMap<String, String> = [("CA".to_owned(), "PEM-B".to_owned())].into();
        assert_eq!(ca_in_rc("ca[]=\"PEM-A\"\n; ca[]=no\nca[] = ${CA}\n", &env), ["PEM-A", "PEM-B"]);
        assert_eq!(ca_in_rc("ca[]=PEM-A\nca='PEM-C'\n", &env), ["PEM-C"]);
        assert!(ca_in_rc("cafile=/x\n", &env).is_empty());
    }

    #[test]
    fn tls_and_proxy_settings_in_npm_order() {
        let dir = tempfile::tempdir().unwrap();
        let (project, home) = (dir.path().join("p"), dir.path().join("h"));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").unwrap();
        let mut c =
            cfg(&[("HOME", home.to_str().unwrap()), ("HTTPS_PROXY", "http://env:1"), ("no_proxy", "a")]);
        let p = c.proxy(&project);
        assert_eq!(
            (p.https.as_deref(), p.http, p.no_proxy.as_deref()),
            (Some("http://env:1"), None, Some("a"))
        );
        std::fs::write(home.join(".npmrc"), "proxy=http://user:2\nstrict-ssl=false\ncafile=${HOME}/nope\n")
            .unwrap();
        std::fs::write(
            project.join(".npmrc"),
            format!("https-proxy=\"http://project:3\"\ncafile={}\n", ca.display()),
        )
        .unwrap();
        let p = c.proxy(&project);
        assert_eq!(
            (p.https.as_deref(), p.http.as_deref()),
            (Some("http://project:3"), Some("http://user:2"))
        );
        let tls = c.tls(&project).unwrap();
        assert!(!tls.strict);
        assert_eq!(tls.extra_roots.len(), 1);
        assert!(tls.extra_roots[0].origin.contains("ca.pem"), "{:?}", tls.extra_roots[0].origin);
        c.env.insert("npm_config_https_proxy".into(), "http://env-config:4".into());
        c.env.insert("NPM_CONFIG_CAFILE".into(), dir.path().join("missing").display().to_string());
        assert_eq!(c.proxy(&project).https.as_deref(), Some("http://env-config:4"));
        let err = c.tls(&project).unwrap_err();
        assert!(matches!(err, NpmrcError::CaFile { .. }) && err.to_string().contains("missing"), "{err}");
        c.env.insert("NPM_CONFIG_CAFILE".into(), home.join(".npmrc").display().to_string());
        assert!(matches!(c.tls(&project), Err(NpmrcError::NoPem { .. })));
    }
}
