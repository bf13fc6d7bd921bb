//! The `monitor-server` executable: parses the command line, starts logging, hands over to the
//! library. Usage errors and unusable databases end with one line on stderr and exit code 2.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use monitor_server::commands::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli.into_command() {
        Command::Serve(args) => match monitor_server::server::serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err, 2),
        },
        Command::Backup(args) => {
            match monitor_server::commands::backup::backup(&args.db, &args.out) {
                Ok(pages) => {
                    log::info!(
                        "copied {} ({pages} pages) to {}",
                        args.db.display(),
                        args.out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&err, 1),
            }
        }
        Command::Import(args) => ExitCode::from(monitor_server::commands::import::run(&args)),
        Command::Compare(args) => ExitCode::from(monitor_server::commands::compare::run(&args)),
        Command::Prune(args) => ExitCode::from(monitor_server::commands::prune::run(&args)),
    }
}

fn fail(err: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("monitor-server: {err}");
    ExitCode::from(code)
}
