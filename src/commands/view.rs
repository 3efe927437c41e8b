//! `ims view NAME[@RANGE] [--json]`: what the local index knows about a package — its tags
//! and versions, or the version npm would pick for a range.

use anyhow::{Context as _, bail};
use clap::Args;

use installer::resolve::pick;
use installer::{PickOptions, VersionSpec};

use crate::context::{Context, Open};
use crate::report::fail;

/// `ims view NAME[@RANGE]`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// `name`, `name@range`, `name@version` or `name@tag`
    pub spec: String,
    /// Print JSON: the version's manifest (install superset), or the whole packument when no
    /// range is given
    #[arg(long)]
    pub json: bool,
}

/// Split `name@range` (a leading `@` belongs to a scope).
fn split(spec: &str) -> (&str, Option<&str>) {
    match spec.char_indices().skip(1).find(|&(_, c)| c == '@') {
        Some((i, _)) => (&spec[..i], Some(&spec[i + 1..])),
        None => (spec, None),
    }
}

/// Run `ims view`.
#[allow(clippy::print_stdout)]
pub async fn run(args: ViewArgs, ctx: &Context) -> anyhow::Result<()> {
    let index = ctx.local_index(Open::Existing).await?;
    let (name, range) = split(&args.spec);
    indexer::names::validate(name).with_context(|| format!("{name:?} is not a package name"))?;
    let Some(packument) = index.packument(name).await? else {
        return Err(fail(
            format!("{name} is not in the index"),
            format!("add it with `ims index --from-registry URL {name}`"),
        ));
    };
    if packument.versions.is_empty() {
        match packument.unpublished.as_ref().and_then(|u| u.time.as_deref()) {
            Some(t) => bail!("{name} was unpublished ({t})"),
            None => bail!("{name} has no versions in the index"),
        }
    }
    let Some(range) = range else {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&packument.to_json())?);
            return Ok(());
        }
        println!("{name}");
        for (tag, v) in &packument.dist_tags {
            println!("  {tag}: {v}");
        }
        println!(
            "  {} versions, modified {}",
            packument.versions.len(),
            packument.time.get("modified").map_or("?", String::as_str)
        );
        if let Some(d) = &packument.description {
            println!("  {d}");
        }
        return Ok(());
    };
    let spec =
        VersionSpec::parse(range).with_context(|| format!("{range:?} is not a version, range or tag"))?;
    let m = pick(&packument, &spec, &PickOptions::default())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(m)?);
        return Ok(());
    }
    println!("{}@{}", m.name, m.version);
    if let Some(d) = &m.deprecated {
        println!("  DEPRECATED: {d}");
    }
    if let Some(t) = packument.time.get(&m.version) {
        println!("  published {t}");
    }
    if let Some(i) = m.dist.best_integrity() {
        println!("  integrity {i}");
    }
    if let Some(t) = &m.dist.tarball {
        println!("  tarball {t}");
    }
    for (kind, deps) in [
        ("dependencies", &m.dependencies),
        ("optionalDependencies", &m.optional_dependencies),
        ("peerDependencies", &m.peer_dependencies),
    ] {
        if !deps.is_empty() {
            println!("  {kind}:");
            for (n, r) in deps {
                println!("    {n} {r}");
            }
        }
    }
    for (cmd, path) in m.bin_entries() {
        println!("  bin {cmd} -> {path}");
    }
    if m.has_install_script() {
        println!("  has install scripts");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_scoped_specs() {
        assert_eq!(split("a"), ("a", None));
        assert_eq!(split("a@^1"), ("a", Some("^1")));
        assert_eq!(split("@s/a"), ("@s/a", None));
        assert_eq!(split("@s/a@next"), ("@s/a", Some("next")));
    }
}
