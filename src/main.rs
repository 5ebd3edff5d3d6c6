//! dnsq's entry point: parse the command line, run it, map errors to exit codes
//! (0 success, 1 runtime failure, 2 usage error).

use std::process::ExitCode;

use clap::Parser;

// Ingest allocates and frees millions of small strings from several threads;
// with glibc's allocator, malloc and free took about a sixth of the ingest profile.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = dnsq::cli::Cli::parse();
    match dnsq::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // the chain of causes, each once (an error's own text often quotes its source)
            let mut msg = err.to_string();
            for cause in err.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("dnsq: {msg}");
            ExitCode::FAILURE
        }
    }
}
