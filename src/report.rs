//! The one error printer, exit codes, and logging setup. Only the binary prints.
//!
//! A failure is printed as `error: …`, its causes as `  caused by: …`, and last what to do as
//! `hint: …`. Hints are typed: a [`Failure`] carries its own, and the library errors that
//! know one ([`installer::InstallError::hint`], [`indexer::upstream::FetchError::hint`],
//! [`indexer::remote::RemoteError::hint`]) are asked where they appear among the causes.

use std::fmt;
use std::process::ExitCode;

use installer::FailureKind;

/// Exit codes, documented in `ims --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Any other failure.
    Failure = 1,
    /// Bad arguments, options or input (clap uses 2 for its own usage errors too).
    Usage = 2,
    /// A registry or peer could not be reached, or kept failing.
    Network = 3,
    /// Bytes did not match their integrity.
    Integrity = 4,
    /// The dependency tree cannot be built as asked (npm's ERESOLVE).
    Conflict = 5,
}

impl From<FailureKind> for Exit {
    fn from(kind: FailureKind) -> Self {
        match kind {
            FailureKind::Usage => Exit::Usage,
            FailureKind::Network => Exit::Network,
            FailureKind::Integrity => Exit::Integrity,
            FailureKind::Conflict => Exit::Conflict,
            _ => Exit::Failure,
        }
    }
}

/// The exit codes as `--help` lists them.
pub const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure; 2 usage (bad arguments, SPEC or package.json); \
3 network (registry or peer unreachable); 4 integrity (bytes differ from their sha512); \
5 conflict (ERESOLVE: peer dependencies that cannot be placed)";

/// A failure the binary reports: what went wrong, what to do, and its exit code; its cause
/// ([`Failure::caused_by`]) is printed as `caused by:` lines.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: Option<String>,
    exit: Exit,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A failure with a hint and an exit code.
    pub fn new(message: impl Into<String>, hint: impl Into<String>, exit: Exit) -> Self {
        Failure { message: message.into(), hint: Some(hint.into()), exit, source: None }
    }

    /// The same failure, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A usage failure (exit 2) with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(message, hint, Exit::Usage)
    }

    /// Any other failure (exit 1) with a hint.
    pub fn other(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(message, hint, Exit::Failure)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A failure already told on stdout (npm's `ls` with a filter that matched nothing): exit 1,
/// print nothing more.
#[derive(Debug, thiserror::Error)]
#[error("nothing matched")]
pub struct Silent;

/// Shorthand: `Err(fail(message, hint))` in a command.
pub fn fail(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Failure::other(message, hint).into()
}

/// Set up `tracing` to stderr; `RUST_LOG` wins over `-v`.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// The hint and exit code of `err`: from the outermost [`Failure`] in its chain, else from
/// the library errors that know theirs.
fn hint_and_exit(err: &anyhow::Error) -> (Option<String>, Exit) {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return (f.hint.clone(), f.exit);
        }
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<indexer::upstream::FetchError>() {
            let exit = if e.is_unreachable() { Exit::Network } else { Exit::Failure };
            return (e.hint(), exit);
        }
        if let Some(e) = cause.downcast_ref::<indexer::remote::RemoteError>() {
            return (e.hint().map(str::to_owned), Exit::Network);
        }
        if let Some(e) = cause.downcast_ref::<crate::npmrc::NpmrcError>() {
            return (Some(e.hint().to_owned()), Exit::Usage);
        }
    }
    (None, Exit::Failure)
}

/// Print an error with its causes and its hint, and return the exit code. A closed pipe is
/// not an error.
#[allow(clippy::print_stderr)]
pub fn report(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    if err.downcast_ref::<Silent>().is_some() {
        return ExitCode::from(Exit::Failure as u8);
    }
    let (hint, exit) = hint_and_exit(err);
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    ExitCode::from(exit as u8)
}
