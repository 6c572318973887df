use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ecr_fleet::cli::{Cli, GlobalArgs};
use ecr_fleet::commands::run;
use ecr_fleet::exit::ExitStatus;
use tracing_subscriber::EnvFilter;

fn init_logging(g: &GlobalArgs) {
    // The SDK's own warnings (every crate whose target starts with `aws`: aws_config,
    // aws_smithy_*, aws_sdk_*) repeat, as debug dumps, what the error line says in words: they
    // show from -v on. A directive's target matches by prefix.
    let default = if g.quiet {
        "error,aws=off"
    } else {
        match g.verbose {
            0 => "warn,aws=off",
            1 => "warn,ecr_fleet=info",
            2 => "info,ecr_fleet=debug",
            _ => "debug,ecr_fleet=trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: CI logs get plain text.
        .with_ansi(std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitStatus::Failure as u8);
        }
    };
    let status = match runtime.block_on(run(cli)) {
        Ok(status) => status,
        Err(fatal) => {
            eprintln!("error: {:#}", fatal.error());
            fatal.status()
        }
    };
    ExitCode::from(status as u8)
}
