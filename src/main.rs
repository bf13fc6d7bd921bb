//! The `monitor-server` executable: parses the command line, starts logging, hands over to the
//! library. Usage errors and unusable databases end with one line on stderr and exit code 2.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use monitor_server::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = match cli.into_command() {
        Command::Serve(args) => monitor_server::serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("monitor-server: {err}");
            ExitCode::from(2)
        }
    }
}
