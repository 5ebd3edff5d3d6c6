//! `dnsq ingest`: runs the write side and prints its summary on stderr.

use std::process::ExitCode;

use anyhow::Context;

use clap::CommandFactory;

use crate::cli::{thousands, AnonymizeArgs, Cli, IngestArgs, MAX_THREADS};
use crate::ingest::dns::Malformed;
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
    if a.geoip.is_some() || a.asn.is_some() {
        let open = |p: &Option<std::path::PathBuf>| {
            p.as_deref().map(crate::enrich::Database::open).transpose()
        };
        cfg.enrich = Some(std::sync::Arc::new(crate::enrich::Enricher {
            geoip: open(&a.geoip)?,
            asn: open(&a.asn)?,
        }));
    }
    cfg.anonymize = a.privacy.anonymizer()?.map(std::sync::Arc::new);
    for p in a.ports {
        if !cfg.ports.contains(&p) {
            cfg.ports.push(p);
        }
    }
    watch_signals()?;
    crate::heap::release_freed_soon();
    let report = match ingest::run(&cfg) {
        Ok(r) => r,
        Err(e @ crate::error::Error::Interrupted(_)) => {
            eprintln!(
                "dnsq: {e}; {} is as it was before this ingest",
                out.display()
            );
            return Ok(ExitCode::from(130));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("ingesting into {}", out.display()));
        }
    };
    for note in &report.notes {
        eprintln!("dnsq: {note}");
    }

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
    if let Some(v) = report.version {
        eprintln!(
            "dnsq: committed as version {v} of {}",
            out.join(crate::dataset::TRANSACTIONS_DIR).display()
        );
    }
    if crate::dataset::check_interrupt().is_err() {
        eprintln!("dnsq: interrupted after the commit: what is above was committed");
        return Ok(ExitCode::from(130));
    }
    Ok(if corrupt {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `dnsq anonymize SRC DST --anonymize METHOD`.
pub fn anonymize(a: AnonymizeArgs) -> anyhow::Result<ExitCode> {
    let Some(anon) = a.privacy.anonymizer()? else {
        anyhow::bail!(
            "dnsq anonymize needs --anonymize METHOD ({})",
            crate::anonymize::METHODS
        );
    };
    watch_signals()?;
    let started = std::time::Instant::now();
    let done = crate::dataset::anonymize::rewrite(&a.src, &a.dst, &anon)
        .with_context(|| format!("rewriting {} into {}", a.src.display(), a.dst.display()))?;
    for note in &done.notes {
        eprintln!("dnsq: {note}");
    }
    match done.version {
        Some(v) => eprintln!(
            "dnsq: {} captures, {} transactions in {} files pseudonymised ({}) in {:.2} s; \
             committed as version {v} of {}",
            thousands(done.captures as u64),
            thousands(done.rows),
            thousands(done.files as u64),
            anon.describe(),
            started.elapsed().as_secs_f64(),
            a.dst.join(crate::dataset::TRANSACTIONS_DIR).display()
        ),
        None => eprintln!(
            "dnsq: {} already holds every capture of {}; nothing written",
            a.dst.display(),
            a.src.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT and SIGTERM ask the ingest to stop at its next safe point (it
/// removes its files and commits nothing); a second one ends it at once, and
/// the next ingest removes what it left.
fn watch_signals() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = crate::dataset::INTERRUPT.clone();
    let again = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, again.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register_usize(sig, flag.clone(), sig as usize)
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, again.clone()).context("installing signal handlers")?;
    }
    Ok(())
}

/// `: truncated 2, bad_pointer 1` after the malformed count, when there are any.
fn malformed_reasons(report: &ingest::IngestReport) -> String {
    let parts: Vec<String> = Malformed::ALL
        .iter()
        .filter_map(|&m| {
            let n = report.total(|c| c.malformed_by[m]);
            (n > 0).then(|| format!("{} {}", m.name(), thousands(n)))
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
