//! The ingest pipeline: it opens the captures (`input`), decodes their chunks
//! in parallel (`decode`: frames to messages, TCP segments and fragments),
//! merges the decoded items of all captures into one stream in time order
//! (`merge`), reassembles and routes them to the pairing shards (`router`),
//! pairs them in shards, and writes the dataset with its captures table
//! (`report`). What an ingest is asked and what it reports are in `config`.
//! This file wires the stages.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::capture::{Capture, Chunk, Problem, StreamPiece, StreamReader};
use super::correlate::{Correlator, Logged, Observed, Status, Transaction};
use super::ip::{Defragmenter, OwnedFragment};
use super::link::{Packet, Skip, Transport};
use super::tcp_stream::{StreamMessage, TcpReassembler, TcpSegment};
use super::{capture, dns, dnstap, link, write};
use crate::dataset;
use crate::dataset::schema;
use crate::error::{Error, Result};

mod config;
mod decode;
mod input;
mod merge;
mod report;
mod router;

pub use config::*;
use decode::*;
use input::*;
use merge::*;
pub use report::describe_problem;
use report::{captures_batch, out_of_range_warning};
use router::*;

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Runs one ingest; see the module documentation.
pub fn run(cfg: &IngestConfig) -> Result<IngestReport> {
    let started = Instant::now();
    let mut report = IngestReport::default();
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::io(&cfg.out, std::io::Error::other(e)))?;
    pool.install(|| run_in_pool(cfg, threads, &mut report))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What is known of a capture before it is read.
struct Input {
    name: String,
    format: capture::Format,
    compression: capture::Compression,
    file_size: u64,
    /// Known up front for a mapped file; a stream's comes at its end.
    sha256: Option<String>,
    problem: Option<Problem>,
}

fn run_in_pool(cfg: &IngestConfig, threads: usize, report: &mut IngestReport) -> Result<()> {
    // the captures open first: input that is not a capture writes nothing
    let opened = open_inputs(&cfg.inputs, cfg.chunk_bytes, &mut report.not_captures)?;
    let mut writer = dataset::Writer::open(&cfg.out)?;
    report.notes = std::mem::take(&mut writer.notes);
    if let Err(e) = writer.require_anonymization(cfg.anonymize.as_ref().map(|a| a.describe())) {
        writer.abandon();
        return Err(e);
    }
    if writer.removed > 0 {
        report.notes.push(format!(
            "removed {} file(s) interrupted ingests left uncommitted",
            writer.removed
        ));
    }
    match ingest_opened(cfg, threads, opened, &mut writer, report) {
        Ok(()) => {
            writer.release();
            Ok(())
        }
        // another dnsq committed every capture of this one meanwhile: nothing to add
        Err(Error::AlreadyThere) => {
            writer.abandon();
            Ok(())
        }
        Err(e) => {
            writer.abandon();
            Err(e)
        }
    }
}

fn ingest_opened(
    cfg: &IngestConfig,
    threads: usize,
    opened: Vec<Opened>,
    writer: &mut dataset::Writer,
    report: &mut IngestReport,
) -> Result<()> {
    // A lone mapped capture (`dnsq ingest dns.pcap`) is hashed on a thread of
    // its own beside the decoding, and left when its hash shows it ingested
    // already: hashing it first kept one of two threads idle for the hash's
    // whole pass (0.14 s of a 3.2 s 2 M-packet ingest). Several captures are
    // hashed first, side by side, so that one already ingested is left out
    // before the others are read. A stream's hash comes at its end, from its
    // reading thread.
    let mut opened = opened;
    let beside = threads > 1 && matches!(opened.as_slice(), [Opened::Mapped(..)]);
    if !beside {
        opened.par_iter_mut().for_each(|o| {
            if let Opened::Mapped(c, _, h) = o {
                *h = Some(content_hash(c));
            }
        });
    }
    let mut hashing = Hashing::default();
    let hashes: Vec<Option<String>> = opened
        .iter()
        .map(|o| match o {
            Opened::Mapped(_, _, sha256) => sha256.clone(),
            Opened::Stream(..) => None,
        })
        .collect();
    let mut inputs = Vec::new();
    let mut sources = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut total_bytes = 0;
    let mut any_stream = false;
    for (o, h) in opened.into_iter().zip(hashes) {
        if let Some(h) = &h {
            if writer.holds(h)? || !seen.insert(h.clone()) {
                report.already_ingested.push(o.path().to_path_buf());
                continue;
            }
        }
        let name = o.path().display().to_string();
        let (input, pieces) = match o {
            Opened::Mapped(c, w, _) => {
                total_bytes += c.bytes.len() as u64;
                let input = Input {
                    name,
                    format: c.format,
                    compression: c.compression,
                    file_size: c.file_size,
                    sha256: h,
                    problem: w.problem,
                };
                let cap = Arc::new(c);
                if beside {
                    hashing = Hashing::start(cap.clone());
                }
                let pieces = Pieces::Mapped {
                    cap,
                    chunks: w.chunks.into_iter(),
                };
                (input, pieces)
            }
            Opened::Stream(r, first) => {
                // a stream's size is unknown until its end: count it as large
                total_bytes += SHARD_INPUT_BYTES;
                any_stream = true;
                let file_size = std::fs::metadata(r.path()).map_or(0, |m| m.len());
                let input = Input {
                    name,
                    format: r.format,
                    compression: r.compression,
                    file_size,
                    sha256: None,
                    problem: None,
                };
                let pieces = Pieces::Stream {
                    rx: spawn_reader(r, first),
                    end: None,
                    failed: None,
                };
                (input, pieces)
            }
        };
        inputs.push(input);
        sources.push(Source::new(pieces));
    }
    if inputs.is_empty() {
        return Ok(());
    }
    let rows = Arc::new(super::batch::Rows {
        captures: inputs.iter().map(|i| i.name.clone()).collect(),
        enrich: cfg.enrich.clone(),
        anonymize: cfg.anonymize.clone(),
    });

    let shards = match cfg.shards {
        0 if total_bytes >= SHARD_INPUT_BYTES => SHARDS,
        0 => 1,
        n => n,
    };
    let mut shard_state: Vec<Shard> = (0..shards)
        .map(|s| Shard {
            correlator: Correlator::shard(
                cfg.match_timeout.min(MAX_MATCH_TIMEOUT).as_nanos() as i64,
                shards,
            ),
            spool: write::Spool::new(
                writer.root(),
                format!("{}-{s}", writer.file_prefix()),
                cfg.spool_rows / shards,
                rows.clone(),
            )
            .staggered(s, shards),
            by_status: Vec::new(),
        })
        .collect();
    let mut router = Router {
        ports: cfg.ports.clone(),
        defrag: Defragmenter::new(),
        tcp: TcpReassembler::new(),
        stream_msgs: Vec::new(),
        counts: vec![Counts::default(); inputs.len()],
        pos: 0,
        held: Vec::new(),
        latest_ts: i64::MIN,
        inputs: (0..shards).map(|_| Vec::new()).collect(),
        gap_max: vec![i64::MIN; shards],
    };

    let progress = progress_bar(cfg.progress, (!any_stream).then_some(total_bytes));
    // the lone capture hashed beside the decoding: checked once its hash is in
    let mut check = || -> Result<()> {
        if let Some(h) = hashing.done() {
            if writer.holds(&h)? {
                return Err(Error::AlreadyThere);
            }
            inputs[0].sha256 = Some(h);
        }
        Ok(())
    };
    let result = stream(
        cfg,
        threads,
        &mut sources,
        &mut router,
        &mut shard_state,
        &progress,
        &mut check,
    )
    .and_then(|()| streams_ended(&mut sources, &mut inputs));
    match &result {
        Ok(()) => {
            if let Some(h) = hashing.wait() {
                inputs[0].sha256 = Some(h);
            }
        }
        Err(Error::AlreadyThere) => report.already_ingested.push(PathBuf::from(&inputs[0].name)),
        Err(_) => {}
    }
    // every frame is decoded by now: the counts of times out of range are whole
    for (input, n) in inputs.iter().zip(&router.counts) {
        if let Some((frame, raw)) = n.first_out_of_range {
            let w = out_of_range_warning(&input.name, frame, raw, n.ts_out_of_range);
            report.warnings.push(w);
        }
    }
    let staged = match result {
        Ok(()) => finish(router, shard_state),
        Err(e) => {
            for s in shard_state {
                s.spool.staged.abandon();
            }
            Err(e)
        }
    };
    let (counts, by_status, staged) = staged?;

    // a stream whose content turns out to be in the dataset already
    let mut repeated = Vec::new();
    for i in 0..inputs.len() {
        let h = inputs[i].sha256.as_deref().unwrap_or_default();
        if writer.holds(h)? || inputs[..i].iter().any(|o| o.sha256.as_deref() == Some(h)) {
            repeated.push(i);
        }
    }
    if !repeated.is_empty() {
        staged.abandon();
        if repeated.len() < inputs.len() {
            return Err(Error::io(
                &cfg.out,
                std::io::Error::other(format!(
                    "{} is already in the dataset; ingest the other captures without it",
                    inputs[repeated[0]].name
                )),
            ));
        }
        for i in repeated {
            report.already_ingested.push(PathBuf::from(&inputs[i].name));
        }
        return Ok(());
    }

    for (i, input) in inputs.into_iter().enumerate() {
        let n = counts[i];
        let st = by_status.get(i).copied().unwrap_or_default();
        report.captures.push(CaptureReport {
            path: input.name,
            sha256: input.sha256.unwrap_or_default(),
            format: describe_format(input.format, input.compression),
            file_size: input.file_size,
            first_ts_ns: n.first_ts,
            last_ts_ns: n.last_ts,
            packets: n.packets,
            dns_messages: n.dns_messages,
            malformed: n.malformed,
            malformed_by: n.malformed_by,
            not_decoded: n.not_decoded,
            answered: st[0],
            unanswered: st[1],
            response_only: st[2],
            problem: input.problem,
        });
    }
    let hashes: Vec<String> = report.captures.iter().map(|c| c.sha256.clone()).collect();
    let files = captures_batch(&report.captures, cfg)
        .and_then(|b| writer.write_captures(&b))
        .and_then(|()| {
            dataset::crash_point("before-place");
            staged.place()
        })?;
    report.files_written = files
        .iter()
        .map(|f| cfg.out.join(write::TRANSACTIONS_DIR).join(&f.rel))
        .collect();
    let summary = summarize(writer, &files, threads);
    dataset::crash_point("before-commit");
    dataset::test_delay();
    dataset::check_interrupt()?;
    match writer.commit_with(&files, &hashes, summary)? {
        dataset::Committed::Version(v) => report.version = Some(v),
        dataset::Committed::AlreadyThere(_) => {
            // another dnsq committed the same captures while this one ran
            report.files_written.clear();
            for c in std::mem::take(&mut report.captures) {
                report.already_ingested.push(PathBuf::from(c.path));
            }
            return Err(Error::AlreadyThere);
        }
    }
    Ok(())
}

/// What the dataset will hold after the commit, for queries not to scan for
/// it (`query::summary`): on a local disk, over the table the commit builds on
/// and the files it adds. Without it (an object store, a large dataset a
/// small ingest adds to, or it failed) the
/// commit goes as it is and queries find the same answers by scanning.
fn summarize(
    writer: &dataset::Writer,
    files: &[dataset::DataFile],
    threads: usize,
) -> Option<(Option<u64>, serde_json::Value)> {
    if writer.is_remote() {
        return None;
    }
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| writer.root().join(write::TRANSACTIONS_DIR).join(&f.rel))
        .collect();
    let added = files.iter().map(|f| f.rows).sum();
    // a runtime of the ingest's threads, its blocking pool (file reads) too:
    // grown to 57 threads, their heaps took the 20 M-packet ingest's peak RSS
    // from 460 to 750 MiB; so bounded, the summary stays at 200-310 MiB
    let summary = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .max_blocking_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::io(writer.root(), e))
        .and_then(|rt| {
            rt.block_on(crate::query::summary::at_commit(
                writer.root(),
                writer.table(),
                &paths,
                added,
                threads,
            ))
        });
    match summary {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "dnsq: note: the dataset's summary was not kept ({e}); queries will scan for it"
            );
            None
        }
    }
}

/// Decodes window after window of pieces in parallel while the previous
/// window is merged, reassembled and paired: memory holds a few windows, not
/// the capture.
fn stream(
    cfg: &IngestConfig,
    threads: usize,
    sources: &mut [Source],
    router: &mut Router,
    shards: &mut [Shard],
    progress: &indicatif::ProgressBar,
    each_window: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let window = threads * 2;
    let mut ready: Option<Vec<(usize, Decoded)>> = None;
    let started = Instant::now();
    let mut packets = 0u64;
    loop {
        dataset::check_interrupt()?;
        each_window()?;
        let pieces = next_window(sources, window);
        if pieces.is_empty() && ready.is_none() {
            progress.finish_and_clear();
            return Ok(());
        }
        let ports = &cfg.ports;
        let (decoded, paired) = rayon::join(
            || {
                pieces
                    .par_iter()
                    .map(|(i, p)| {
                        let d = decode_chunk(&p.cap, *i as u32, &p.chunk, ports);
                        p.cap.release(p.chunk.start, p.chunk.end);
                        (*i, d)
                    })
                    .collect::<Vec<_>>()
            },
            || match ready.take() {
                Some(d) => pair_window(d, sources, router, shards),
                None => Ok(()),
            },
        );
        paired?;
        let bytes: usize = pieces
            .iter()
            .map(|(_, p)| p.chunk.end - p.chunk.start)
            .sum();
        packets += decoded.iter().map(|(_, d)| d.counts.packets).sum::<u64>();
        progress.inc(bytes as u64);
        let rate = packets as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.set_message(format!("{packets} packets, {rate:.0} packets/s"));
        ready = (!pieces.is_empty()).then_some(decoded);
    }
}

/// The progress bar on stderr: bytes and packets done, rate, time left
/// (hidden unless asked for, i.e. unless stderr is a terminal).
fn progress_bar(show: bool, total_bytes: Option<u64>) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !show {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total_bytes {
        Some(t) => (
            ProgressBar::new(t),
            "{bar:30} {bytes}/{total_bytes} · {msg} · {bytes_per_sec} · {eta} left",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} · {msg} · {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    bar
}

/// Merges one decoded window into the stream, routes it and pairs it.
fn pair_window(
    decoded: Vec<(usize, Decoded)>,
    sources: &mut [Source],
    router: &mut Router,
    shards: &mut [Shard],
) -> Result<()> {
    for (i, d) in decoded {
        router.counts[i] += d.counts;
        sources[i].in_flight.pop_front();
        sources[i].queue.extend(d.items);
    }
    merge_ready(sources, |it| router.item(it));
    router.release(false);
    run_shards(router, shards)
}

/// Hands each shard its messages and pairs them, the shards in parallel.
fn run_shards(router: &mut Router, shards: &mut [Shard]) -> Result<()> {
    shards
        .par_iter_mut()
        .zip(router.inputs.par_iter_mut())
        .zip(router.gap_max.par_iter_mut())
        .map(|((s, inp), g)| s.run(inp, std::mem::replace(g, i64::MIN)))
        .collect::<Result<Vec<()>>>()?;
    Ok(())
}

type Finished = (Vec<Counts>, Vec<[u64; 3]>, write::Staged);

/// Ends the input: what reassembly could not use is counted, every
/// outstanding query becomes `unanswered`, and the spools write what is left.
fn finish(mut router: Router, mut shards: Vec<Shard>) -> Result<Finished> {
    router.release(true);
    if let Err(e) = run_shards(&mut router, &mut shards) {
        for s in shards {
            s.spool.staged.abandon();
        }
        return Err(e);
    }
    for (cap, lost) in std::mem::take(&mut router.defrag).finish() {
        router.counts[cap as usize].not_decoded += lost;
    }
    for (cap, loss) in std::mem::take(&mut router.tcp).finish() {
        router.counts[cap as usize].not_decoded += loss.gaps + loss.partial;
    }
    // a shard's counts by status, its staged files, and the responses found
    // malformed as their rows were built
    type Ended = (Vec<[u64; 3]>, write::Staged, Vec<dns::MalformedCounts>);
    let results: Vec<Result<Ended>> = shards
        .into_par_iter()
        .map(|mut s| {
            let rest = std::mem::replace(&mut s.correlator, Correlator::new(0)).finish();
            if let Err(e) = spill(&mut s.by_status, &mut s.spool, rest) {
                s.spool.staged.abandon();
                return Err(e);
            }
            let by_status = s.by_status;
            let (staged, malformed) = s.spool.finish()?;
            Ok((by_status, staged, malformed))
        })
        .collect();
    let mut by_status: Vec<[u64; 3]> = vec![[0; 3]; router.counts.len()];
    let mut staged = write::Staged::default();
    let mut first_err = None;
    for r in results {
        match r {
            Ok((b, st, malformed)) => {
                for (acc, x) in by_status.iter_mut().zip(b) {
                    for k in 0..3 {
                        acc[k] += x[k];
                    }
                }
                staged.absorb(st);
                // responses checked as their rows were built
                for (n, m) in router.counts.iter_mut().zip(malformed) {
                    n.malformed_by += m;
                    n.malformed += m.total();
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        staged.abandon();
        return Err(e);
    }
    Ok((router.counts, by_status, staged))
}
