//! `dnsq ingest`: runs the write side and prints its summary on stderr.

use std::process::ExitCode;

use anyhow::Context;

use clap::CommandFactory;

use crate::cli::{thousands, Cli, IngestArgs, MAX_THREADS};
use crate::ingest::dns::DecodeError;
use crate::ingest::{self, describe_problem, IngestConfig};

pub fn run(a: IngestArgs) -> anyhow::Result<ExitCode> {
    let out = ingest::dataset_dir(a.out.as_deref());
    let mut cfg = IngestConfig::new(a.captures.clone(), out.clone());
    cfg.threads = threads(a.threads, a.force_threads);
    cfg.chunk_bytes = a.chunk_bytes.max(1);
    cfg.shards = a.shards;
    cfg.spool_rows = a.spool_rows.max(1);
    cfg.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    cfg.match_timeout = a.match_timeout;
    for p in a.ports {
        if !cfg.ports.contains(&p) {
            cfg.ports.push(p);
        }
    }
    let report = ingest::run(&cfg).with_context(|| format!("ingesting into {}", out.display()))?;

    for msg in &report.not_captures {
        eprintln!("dnsq: warning: skipped {msg}");
    }
    for p in &report.already_ingested {
        eprintln!(
            "dnsq: {}: already in {}, skipped",
            p.display(),
            out.display()
        );
    }
    for msg in &report.warnings {
        eprintln!("dnsq: warning: {msg}");
    }
    let mut corrupt = false;
    for c in &report.captures {
        if let Some(p) = &c.problem {
            let level = if p.is_error() {
                corrupt = true;
                "error"
            } else {
                "warning"
            };
            eprintln!("dnsq: {level}: {}: {}", c.path, describe_problem(p));
        }
    }
    let packets = report.total(|c| c.packets);
    let secs = report.elapsed.as_secs_f64();
    eprintln!(
        "dnsq: {} packets → {} DNS messages → {} transactions ({} answered, {} unanswered, {} response only; {} malformed{}{}) in {:.2} s ({} packets/s)",
        thousands(packets),
        thousands(report.total(|c| c.dns_messages)),
        thousands(report.total(|c| c.answered + c.unanswered + c.response_only)),
        thousands(report.total(|c| c.answered)),
        thousands(report.total(|c| c.unanswered)),
        thousands(report.total(|c| c.response_only)),
        thousands(report.total(|c| c.malformed)),
        malformed_reasons(&report),
        not_decoded(&report),
        secs,
        thousands((packets as f64 / secs.max(1e-9)) as u64),
    );
    Ok(if corrupt {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `: truncated 2, bad_pointer 1` after the malformed count, when there are any.
fn malformed_reasons(report: &ingest::IngestReport) -> String {
    let names = DecodeError::ALL
        .iter()
        .map(|e| e.name())
        .chain(["too_short", "cut"]);
    let parts: Vec<String> = names
        .enumerate()
        .filter_map(|(i, name)| {
            let n = report.total(|c| c.malformed_by[i]);
            (n > 0).then(|| format!("{name} {}", thousands(n)))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

fn not_decoded(report: &ingest::IngestReport) -> String {
    match report.total(|c| c.not_decoded) {
        0 => String::new(),
        n => format!("; {} not decoded", thousands(n)),
    }
}

/// The worker threads to start: `--threads`, capped at the machine's cores
/// (with a message) unless `--force-threads` is given; forced, at most
/// `MAX_THREADS` (beyond that a usage error, exit 2).
fn threads(asked: usize, force: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if force {
        if asked > MAX_THREADS {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("--threads {asked}: --force-threads starts at most {MAX_THREADS}"),
                )
                .exit();
        }
        return asked;
    }
    if asked > cores {
        eprintln!(
            "dnsq: --threads {asked} is more than the {cores} cores here: using {cores} \
             (--force-threads to start more)"
        );
        return cores;
    }
    asked
}
