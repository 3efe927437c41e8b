//! The `ims` command line: parse, set up logging, run one command, report errors once.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ims::cli::Cli::parse();
    ims::report::init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            return ims::report::report(&anyhow::Error::new(err).context("starting the async runtime"));
        }
    };
    match runtime.block_on(ims::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ims::report::report(&err),
    }
}
