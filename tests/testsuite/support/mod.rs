//! What the tests share: the `ims` command with a clean environment, child processes
//! ([`child`]) and the JS reference packages ([`js`]).

use std::path::Path;
use std::process::{Command, Output};

pub(crate) mod child;
pub(crate) mod js;

/// `ims --home HOME`, without the ambient `IMS_*` and npm registry settings that would change
/// what it does (a developer's shell may set them).
pub(crate) fn ims(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims"));
    cmd.arg("--home").arg(home);
    for var in [
        "IMS_KEY",
        "IMS_PEERS",
        "IMS_REGISTRY",
        "IMS_OFFLINE",
        "IMS_PREFER_OFFLINE",
        "IMS_PACKUMENT_MAX_AGE",
        "IMS_ALLOW_JS_PEERS",
        "NPM_CONFIG_REGISTRY",
        "npm_config_registry",
        "NODE_ENV",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// `ims --home HOME --registry URL install --prefix PROJECT`.
pub(crate) fn ims_install(home: &Path, registry: &str, project: &Path) -> Command {
    let mut cmd = ims(home);
    cmd.arg("--registry").arg(registry).arg("install").arg("--prefix").arg(project);
    cmd
}

/// Run `cmd` from a multi-threaded tokio test: the fixture registry serves from the runtime's
/// other worker meanwhile.
pub(crate) fn output(cmd: &mut Command) -> Output {
    tokio::task::block_in_place(|| cmd.output().expect("run ims"))
}
