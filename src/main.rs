//! dnsq's entry point: parse the command line, run it, map errors to exit codes
//! (0 success, 1 runtime failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dnsq::cli::Cli::parse();
    match dnsq::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dnsq: {err:#}");
            ExitCode::FAILURE
        }
    }
}
