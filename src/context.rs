//! Global options, as parsed ([`GlobalArgs`]) and resolved once into what commands use
//! ([`Context`]; ripgrep's low args -> high args): typed fields, each parsed and checked
//! here, so a command never re-reads a raw flag.

use std::path::{Path, PathBuf};

use clap::Args;

use hypercore::PublicKey;
use indexer::Index;
use indexer::remote::RemoteConfig;
pub use indexer::source::Open;
use indexer::source::{LocalIndexError, Network, open_index};
use indexer::upstream::{FetchError, Registry, RegistryOptions, RegistryUrl};
use swarm::{HandshakeConfig, Identity};

use crate::home::Home;
use crate::npmrc::NpmConfig;
use crate::report::Failure;

/// Options every command understands; each may also come from the environment.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where ims keeps its keys, index, replicas and tarball store [default: ~/.ims]
    #[arg(long, env = "IMS_HOME", global = true)]
    pub home: Option<PathBuf>,
    /// The index to follow: its public key (64 hex characters)
    #[arg(long, env = "IMS_KEY", global = true)]
    pub key: Option<String>,
    /// Peers to connect to directly, skipping discovery (HOST:PORT, comma-separated in the env)
    #[arg(long = "peer", env = "IMS_PEERS", value_delimiter = ',', global = true)]
    pub peers: Vec<String>,
    /// DHT bootstrap nodes (HOST:PORT) [default: the public Mainline bootstrap nodes]
    #[arg(long = "bootstrap", env = "IMS_BOOTSTRAP", value_delimiter = ',', global = true)]
    pub bootstrap: Vec<String>,
    /// Do not use the DHT at all
    #[arg(long, env = "IMS_NO_DHT", global = true)]
    pub no_dht: bool,
    /// Talk to JS hypercore peers over their unauthenticated XSalsa20 transport (by default
    /// only peers that authenticate every frame, as ims nodes do, are used)
    #[arg(long, env = "IMS_ALLOW_JS_PEERS", global = true)]
    pub allow_js_peers: bool,
    /// The upstream npm registry [default: what npm's own configuration says]
    #[arg(long, env = "IMS_REGISTRY", global = true)]
    pub registry: Option<String>,
    /// Use only what is local; never touch the network
    #[arg(long, env = "IMS_OFFLINE", global = true)]
    pub offline: bool,
    /// Use what the local index has without revalidating it; ask the registry only for what
    /// is missing
    #[arg(long, env = "IMS_PREFER_OFFLINE", global = true)]
    pub prefer_offline: bool,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// How peers are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// `--no-dht`: only the `--peer` addresses.
    Off,
    /// The DHT, through these bootstrap nodes (empty: the public Mainline ones).
    Dht {
        /// `--bootstrap HOST:PORT` nodes.
        bootstrap: Vec<String>,
    },
}

/// What every command needs, resolved once from the global options.
#[derive(Debug, Clone)]
pub struct Context {
    /// The `IMS_HOME` layout.
    pub home: Home,
    /// `--key`: the index to follow.
    pub key: Option<PublicKey>,
    /// `--peer`: peers to connect to directly.
    pub peers: Vec<String>,
    /// How peers are found beyond `--peer`.
    pub discovery: Discovery,
    /// `--allow-js-peers`: XSalsa20 with peers that offer nothing else.
    pub allow_js_peers: bool,
    /// How much the network may be used (`--offline`, `--prefer-offline`).
    pub network: Network,
    /// `--registry`, when given (else npm's configuration decides, per project).
    pub registry: Option<RegistryUrl>,
}

impl Context {
    /// Resolve the global options.
    pub fn from_args(args: &GlobalArgs) -> anyhow::Result<Self> {
        let root = match &args.home {
            Some(dir) => dir.clone(),
            None => default_home().ok_or_else(|| {
                Failure::usage("cannot find a home directory", "pass --home DIR or set IMS_HOME")
            })?,
        };
        let key = match &args.key {
            Some(hex) => Some(parse_key(hex)?),
            None => None,
        };
        let registry = match &args.registry {
            Some(url) => Some(RegistryUrl::parse(url).map_err(|e| {
                Failure::usage(format!("--registry: {e}"), "pass an http:// or https:// URL")
            })?),
            None => None,
        };
        Ok(Self {
            home: Home::new(root),
            key,
            peers: args.peers.iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
            allow_js_peers: args.allow_js_peers,
            discovery: if args.no_dht {
                Discovery::Off
            } else {
                Discovery::Dht { bootstrap: args.bootstrap.clone() }
            },
            network: match (args.offline, args.prefer_offline) {
                (true, _) => Network::Offline,
                (false, true) => Network::PreferOffline,
                (false, false) => Network::Online,
            },
            registry,
        })
    }

    /// `--offline`.
    pub fn offline(&self) -> bool {
        self.network == Network::Offline
    }

    /// npm's configuration as read for a command run in `project`; `None` is npm's global
    /// mode (`-g`): the user's and the global `.npmrc` only, never a project's.
    fn npm_config(project: Option<&Path>) -> (NpmConfig, &Path) {
        let mut npm = NpmConfig::from_env(None);
        npm.global = project.is_none();
        (npm, project.unwrap_or(Path::new(".")))
    }

    /// Whether npm's boolean setting `key` is on for a command run in `project` (`None`: a
    /// global install): `true` in the environment or the `.npmrc` chain.
    pub fn npm_flag(&self, project: Option<&Path>, key: &str) -> bool {
        let (npm, dir) = Self::npm_config(project);
        npm.setting(dir, key).is_some_and(|(v, _)| v.trim() == "true")
    }

    /// The upstream registry for a command run in `project` (`None`: a global install):
    /// `--registry`, else npm's own configuration (`.npmrc` files, `NPM_CONFIG_REGISTRY`,
    /// `npm config get registry`).
    pub fn registry_for(&self, project: Option<&Path>) -> anyhow::Result<RegistryUrl> {
        if let Some(url) = &self.registry {
            return Ok(url.clone());
        }
        let (npm, dir) = Self::npm_config(project);
        let cache = self.home.root().join(if npm.global { "npm-registry-global" } else { "npm-registry" });
        Ok(npm.registry_cached(dir, &cache)?)
    }

    /// The registry client's options for a command run in `project` (`None`: a global
    /// install): npm's TLS trust (`cafile`, `ca`, `strict-ssl`, `NODE_EXTRA_CA_CERTS`; the
    /// platform store), proxies (`https-proxy`, `proxy`, `noproxy`, `HTTPS_PROXY`,
    /// `NO_PROXY`) and deadlines (`fetch-timeout`, `fetch-retries`).
    pub fn registry_options(&self, project: Option<&Path>) -> anyhow::Result<RegistryOptions> {
        let (npm, dir) = Self::npm_config(project);
        let tls = npm.tls(dir)?;
        let mut options = RegistryOptions { tls, proxy: npm.proxy(dir), ..RegistryOptions::default() };
        deadlines(&npm, dir, &mut options)?;
        Ok(options)
    }

    /// A registry client for `url` with [`Context::registry_options`].
    pub fn registry(&self, url: RegistryUrl, project: Option<&Path>) -> anyhow::Result<Registry> {
        Registry::new(url, self.registry_options(project)?).map_err(|e| match e {
            FetchError::Config(_) => {
                let hint = e.hint().unwrap_or_default();
                Failure::usage("the TLS or proxy settings cannot be used", hint).caused_by(e).into()
            }
            e => anyhow::Error::new(e).context("cannot create the HTTP client"),
        })
    }

    /// The local index (`$IMS_HOME/index`), through the one opener.
    pub async fn local_index(&self, open: Open) -> anyhow::Result<Index> {
        open_index(&self.home.index_dir(), open).await.map_err(|e| match e {
            LocalIndexError::Missing { .. } => Failure::other(
                format!("there is no local index under {}", self.home.root().display()),
                "build one with `ims index --from-registry URL NAME...`",
            )
            .into(),
            e => anyhow::Error::new(e),
        })
    }

    /// The node's identity (created on first use).
    pub async fn identity(&self) -> anyhow::Result<Identity> {
        let file = self.home.identity_file();
        Identity::load_or_create(&file).await.map_err(|e| {
            anyhow::Error::new(e).context(format!("loading the node identity {}", file.display()))
        })
    }

    /// Where the replica of `key` lives and which peers to dial for it.
    pub async fn remote_config(&self, key: &PublicKey) -> anyhow::Result<RemoteConfig> {
        Ok(RemoteConfig {
            replica_dir: self.home.replica_dir(&key.to_hex()),
            identity: self.identity().await?,
            peers: self.peers.clone(),
            handshake: self.handshake_config(),
        })
    }

    /// The Noise handshake's options: JS peers' XSalsa20 only with `--allow-js-peers`.
    pub fn handshake_config(&self) -> HandshakeConfig {
        HandshakeConfig::default().allow_xsalsa20(self.allow_js_peers)
    }
}

/// The longest any deadline may be set to (a project's `.npmrc` cannot switch them off).
const MAX_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

/// npm's `fetch-timeout` (ms, the whole request) and `fetch-retries`, and ims's
/// `IMS_FETCH_IDLE_TIMEOUT` (ms without a byte) and `IMS_CONNECT_TIMEOUT` (ms), into `options`.
fn deadlines(npm: &NpmConfig, project: &Path, options: &mut RegistryOptions) -> anyhow::Result<()> {
    let ms = |value: &str, origin: &str| -> anyhow::Result<std::time::Duration> {
        let n: u64 = value.trim().parse().map_err(|_| {
            Failure::usage(
                format!("{origin}: {value:?} is not a number of milliseconds"),
                "set it to a whole number of milliseconds, e.g. 300000",
            )
        })?;
        Ok(std::time::Duration::from_millis(n.max(1)).min(MAX_DEADLINE))
    };
    if let Some((v, origin)) = npm.setting(project, "fetch-timeout") {
        options.total_timeout = ms(&v, &format!("fetch-timeout (from {origin})"))?;
    }
    if let Some((v, origin)) = npm.setting(project, "fetch-retries") {
        options.retries = v.trim().parse::<u32>().map_err(|_| {
            Failure::usage(
                format!("fetch-retries (from {origin}): {v:?} is not a number"),
                "e.g. fetch-retries=2",
            )
        })?;
        options.retries = options.retries.min(10);
    }
    for (var, field) in [
        ("IMS_FETCH_IDLE_TIMEOUT", &mut options.read_timeout),
        ("IMS_CONNECT_TIMEOUT", &mut options.connect_timeout),
    ] {
        if let Some(v) = npm.env.get(var).filter(|v| !v.is_empty()) {
            *field = ms(v, var)?;
        }
    }
    Ok(())
}

fn parse_key(hex_key: &str) -> anyhow::Result<PublicKey> {
    let bad = || {
        Failure::usage(
            format!("--key {hex_key} is not a public key"),
            "pass the 64 hex characters `ims key` prints",
        )
    };
    let bytes = hex::decode(hex_key.trim()).map_err(|_| bad())?;
    Ok(PublicKey::from_bytes(&bytes).map_err(|_| bad())?)
}

#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn default_home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ims"))
}
