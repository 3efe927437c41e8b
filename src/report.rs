//! The one error printer, and logging setup. Only the binary prints.

use std::process::ExitCode;

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

/// Print an error with its causes and return the exit code. A closed pipe is not an error.
#[allow(clippy::print_stderr)]
pub fn report(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let mut lines = err.to_string();
    let mut hint = None;
    // A message may carry its hint after a "\nhint: " line; print it last.
    if let Some((msg, h)) = lines.clone().split_once("\nhint: ") {
        lines = msg.to_string();
        hint = Some(h.to_string());
    }
    eprintln!("error: {lines}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    ExitCode::FAILURE
}
