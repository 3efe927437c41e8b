//! `ims verify` (npm's `audit signatures`): for every installed registry package, its
//! `dist.signatures` against the registry's keys (`/-/npm/v1/keys`, remembered in the home
//! with their expiry, so `--offline` works), and its tarball in the store against its
//! integrity. Verified, missing and invalid counts as npm prints them; exit 1 on any missing
//! or invalid one.
//!
//! Online, each package's metadata comes from the registry itself (the signatures are the
//! registry's word, not a peer's); `--offline`, from the local index.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use futures_util::stream::{self, StreamExt as _};
use indexer::model::Packument;
use indexer::signatures::{RegistryKeys, SignatureCheck};
use indexer::source::Open;
use indexer::tarballs::{Integrity, TarballStore};
use indexer::upstream::{Registry, Revalidated};
use installer::actual::{ActualId, ActualTree, EdgeState};
use serde::Serialize;

use crate::context::Context;
use crate::report::{Failure, Silent};

/// `ims verify` options.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The project folder [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Print `{invalid, missing}` as JSON, as npm does
    #[arg(long)]
    pub json: bool,
    /// Leave out packages only needed for this: dev, optional, peer (repeatable)
    #[arg(long, value_name = "TYPE")]
    pub omit: Vec<String>,
}

/// One package that did not verify.
#[derive(Debug, Clone, Serialize)]
struct Problem {
    name: String,
    version: String,
    location: String,
    registry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    integrity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// The keys file in the home: registry base URL → its key set.
fn keys_file(ctx: &Context) -> PathBuf {
    ctx.home.root().join("registry-keys.json")
}

/// The registry's keys: fetched (and remembered), or with `--offline` the remembered ones.
async fn registry_keys(ctx: &Context, registry: &Registry) -> anyhow::Result<Option<RegistryKeys>> {
    let file = keys_file(ctx);
    let mut cached: BTreeMap<String, RegistryKeys> =
        std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let base = registry.base().to_owned();
    if ctx.offline() {
        return Ok(cached.remove(&base));
    }
    let url = format!("{}-/npm/v1/keys", base.trim_end_matches('/').to_owned() + "/");
    let doc = match registry.json(&url).await {
        Ok(Ok(doc)) => doc,
        Ok(Err(reason)) => {
            return Err(
                Failure::other(format!("{url}: {reason}"), "the registry's key set is not JSON").into()
            );
        }
        Err(indexer::upstream::FetchError::Status { status: 404 | 400, .. }) => return Ok(None),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("fetching the registry's keys from {url}")));
        }
    };
    let keys = RegistryKeys::parse(&doc).with_context(|| format!("reading {url}"))?;
    cached.insert(base, keys.clone());
    if let Ok(text) = serde_json::to_vec_pretty(&cached) {
        let tmp = file.with_extension("json.tmp");
        if std::fs::create_dir_all(ctx.home.root()).is_ok() && std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    Ok(Some(keys))
}

/// The installed packages npm audits: reached by an edge that resolves (not extraneous, not
/// missing), not links, with a version; minus the omitted kinds.
fn audited(tree: &ActualTree, omit: &[String]) -> Vec<ActualId> {
    let mut out: Vec<ActualId> = Vec::new();
    for id in tree.ids() {
        for edge in &tree.node(id).edges {
            let Some(to) = edge.to else { continue };
            if edge.state == EdgeState::Missing || out.contains(&to) {
                continue;
            }
            let node = tree.node(to);
            let f = node.flags;
            let omitted = omit.iter().any(|o| match o.as_str() {
                "dev" => f.dev,
                "optional" => f.optional,
                "peer" => f.peer,
                _ => false,
            });
            if node.is_link() || node.version().is_none() || omitted {
                continue;
            }
            out.push(to);
        }
    }
    out
}

/// Run `ims verify`.
#[allow(clippy::print_stdout)]
pub async fn run(args: VerifyArgs, ctx: &Context) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = args.prefix.clone().unwrap_or_else(|| PathBuf::from("."));
    let tree =
        ActualTree::load(&dir).with_context(|| format!("could not read the tree in {}", dir.display()))?;
    let ids = audited(&tree, &args.omit);
    if ids.is_empty() {
        return Err(
            Failure::other("found no installed dependencies to audit", "run `ims install` first").into()
        );
    }
    let url = ctx.registry_for(Some(&dir))?;
    let registry = ctx.registry(url, Some(&dir))?.offline(ctx.offline());
    let Some(keys) = registry_keys(ctx, &registry).await? else {
        return Err(Failure::other(
            format!("{} provides no signing keys (/-/npm/v1/keys)", registry.base()),
            if ctx.offline() {
                "run `ims verify` once online to remember the registry's keys"
            } else {
                "signatures can only be checked against a registry that publishes its keys"
            },
        )
        .into());
    };
    let index = if ctx.offline() { Some(ctx.local_index(Open::Existing).await?) } else { None };
    let store = TarballStore::open(ctx.home.store_dir()).ok();

    // One packument per name, fetched at most 16 at a time.
    let mut names: Vec<String> =
        ids.iter().filter_map(|&id| tree.node(id).package_name().map(str::to_owned)).collect();
    names.sort();
    names.dedup();
    let fetched: BTreeMap<String, Option<Packument>> = stream::iter(names)
        .map(|name| {
            let (registry, index) = (&registry, index.as_ref());
            async move {
                let doc = match index {
                    Some(index) => index.packument(&name).await.ok().flatten(),
                    None => match registry.packument(&name, None).await {
                        Ok(Revalidated::Modified { packument, .. }) => Some(*packument),
                        _ => None,
                    },
                };
                (name, doc)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let base = registry.base().to_owned();
    let (mut verified, mut missing, mut invalid, mut tampered) = (0usize, Vec::new(), Vec::new(), Vec::new());
    for &id in &ids {
        let node = tree.node(id);
        let (Some(name), Some(version)) = (node.package_name(), node.version()) else { continue };
        let problem = |code: Option<&'static str>,
                       message: Option<String>,
                       keyid: Option<String>,
                       integrity: Option<String>| Problem {
            name: name.to_owned(),
            version: version.to_owned(),
            location: node.location.clone(),
            registry: base.clone(),
            integrity,
            keyid,
            code,
            message,
        };
        let Some(manifest) = fetched.get(name).and_then(Option::as_ref).and_then(|p| p.versions.get(version))
        else {
            missing.push(problem(
                None,
                Some(format!("{name}@{version} is not in the registry's metadata")),
                None,
                None,
            ));
            continue;
        };
        let packument = fetched.get(name).and_then(Option::as_ref);
        let integrity = manifest.dist.integrity.clone().unwrap_or_default();
        let published = packument.and_then(|p| p.time.get(version)).map(String::as_str);
        match keys.check(name, version, &integrity, &manifest.dist.signatures, published) {
            SignatureCheck::Verified => verified += 1,
            SignatureCheck::Missing => missing.push(problem(None, None, None, Some(integrity.clone()))),
            SignatureCheck::Invalid { keyid, reason } => invalid.push(problem(
                Some("EINTEGRITYSIGNATURE"),
                Some(format!("{name}@{version} has an invalid registry signature: {reason}")),
                Some(keyid),
                Some(integrity.clone()),
            )),
        }
        // The store's copy of the tarball must still be what the registry signed.
        if let (Some(store), Ok(parsed)) = (&store, integrity.parse::<Integrity>())
            && let Some(message) = store_mismatch(store, &parsed)
        {
            tampered.push(problem(Some("EINTEGRITY"), Some(message), None, Some(integrity.clone())));
        }
    }
    let by_name = |a: &Problem, b: &Problem| a.name.cmp(&b.name).then(a.location.cmp(&b.location));
    missing.sort_by(by_name);
    invalid.sort_by(by_name);
    tampered.sort_by(by_name);
    let failed = !missing.is_empty() || !invalid.is_empty() || !tampered.is_empty();

    let mut out = String::new();
    if args.json {
        let all_invalid: Vec<&Problem> = invalid.iter().chain(&tampered).collect();
        let doc = serde_json::json!({ "invalid": all_invalid, "missing": missing });
        out = serde_json::to_string_pretty(&doc)? + "\n";
    } else {
        let n = ids.len();
        out.push_str(&format!("audited {n} package{} in {}s\n\n", plural(n), started.elapsed().as_secs()));
        if verified > 0 {
            out.push_str(&match verified {
                1 => "1 package has a verified registry signature\n\n".to_owned(),
                v => format!("{v} packages have verified registry signatures\n\n"),
            });
        }
        let list = |out: &mut String, items: &[Problem]| {
            for p in items {
                out.push_str(&format!("{}@{} ({})\n", p.name, p.version, p.registry));
            }
        };
        if !missing.is_empty() {
            out.push_str(&match missing.len() {
                1 => "1 package has a missing registry signature but the registry is providing signing keys:\n\n".to_owned(),
                m => format!("{m} packages have missing registry signatures but the registry is providing signing keys:\n\n"),
            });
            list(&mut out, &missing);
        }
        if !invalid.is_empty() || !tampered.is_empty() {
            if !missing.is_empty() {
                out.push('\n');
            }
            if !invalid.is_empty() {
                out.push_str(&match invalid.len() {
                    1 => "1 package has an invalid registry signature:\n\n".to_owned(),
                    i => format!("{i} packages have invalid registry signatures:\n\n"),
                });
                list(&mut out, &invalid);
                out.push('\n');
            }
            if !tampered.is_empty() {
                out.push_str(&match tampered.len() {
                    1 => "1 package has a tarball in the store that does not match its integrity:\n\n"
                        .to_owned(),
                    t => format!(
                        "{t} packages have tarballs in the store that do not match their integrity:\n\n"
                    ),
                });
                list(&mut out, &tampered);
                out.push('\n');
            }
            out.push_str(if invalid.len() + tampered.len() == 1 {
                "Someone might have tampered with this package since it was published on the registry!\n\n"
            } else {
                "Someone might have tampered with these packages since they were published on the registry!\n\n"
            });
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    if failed {
        return Err(Silent.into());
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Why the store's copy of a tarball does not match `integrity`, if it does not (a tarball the
/// store does not hold is not a mismatch: installs may keep only the unpacked folder).
fn store_mismatch(store: &TarballStore, integrity: &Integrity) -> Option<String> {
    let path: &Path = &store.tarball_path(integrity);
    let bytes = std::fs::read(path).ok()?;
    match indexer::tarballs::verify(integrity, &bytes) {
        Ok(_) => None,
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}
