//! The ingest pipeline: wires the stages and holds no decoding logic.
//!
//! It opens the captures, decodes their chunks in parallel (rayon), merges the
//! messages of all captures into one stream in time order, pairs them, and
//! writes the dataset.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::capture::{Capture, Chunk, Problem};
use super::correlate::{Correlator, Observed, Status};
use super::ip::{Defragmenter, OwnedFragment};
use super::link::{Packet, Skip, Transport};
use super::tcp_stream::{TcpReassembler, TcpSegment};
use super::{capture, correlate, dns, link, schema, write};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    pub match_timeout: Duration,
    /// Ports that carry DNS (either side), 53 included.
    pub ports: Vec<u16>,
    pub chunk_bytes: usize,
}

impl IngestConfig {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        IngestConfig {
            inputs,
            out,
            threads: 0,
            match_timeout: Duration::from_secs(10),
            ports: vec![53],
            chunk_bytes: capture::CHUNK_BYTES,
        }
    }
}

/// What one capture held and what became of it.
#[derive(Debug, Clone, Default)]
pub struct CaptureReport {
    pub path: String,
    pub sha256: String,
    pub format: String,
    pub file_size: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub packets: u64,
    pub dns_messages: u64,
    pub malformed: u64,
    /// Malformed messages by reason: the `DecodeError`s in `DecodeError::ALL`
    /// order, then messages shorter than a header, then UDP payloads cut short.
    pub malformed_by: [u64; 7],
    pub not_decoded: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub response_only: u64,
    pub problem: Option<Problem>,
}

#[derive(Debug, Default)]
pub struct IngestReport {
    /// Captures ingested by this run.
    pub captures: Vec<CaptureReport>,
    /// Captures skipped because the dataset already holds their content.
    pub already_ingested: Vec<PathBuf>,
    /// Files in an input directory that are not captures.
    pub not_captures: Vec<String>,
    pub files_written: Vec<PathBuf>,
    pub elapsed: Duration,
}

impl IngestReport {
    pub fn total(&self, f: impl Fn(&CaptureReport) -> u64) -> u64 {
        self.captures.iter().map(f).sum()
    }
}

/// Counters of one chunk's decoding; merged with `+=`.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    packets: u64,
    dns_messages: u64,
    malformed: u64,
    malformed_by: [u64; 7],
    not_decoded: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.packets += o.packets;
        self.dns_messages += o.dns_messages;
        self.malformed += o.malformed;
        for (a, b) in self.malformed_by.iter_mut().zip(o.malformed_by) {
            *a += b;
        }
        self.not_decoded += o.not_decoded;
        self.first_ts = match (self.first_ts, o.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = match (self.last_ts, o.last_ts) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Expands directories into the captures they hold (files that are not
/// captures are listed in `not_captures`), opens each and walks its record
/// headers into chunks of `chunk_bytes`, once.
fn open_inputs(
    inputs: &[PathBuf],
    chunk_bytes: usize,
    not_captures: &mut Vec<String>,
) -> Result<Vec<(Capture, capture::Walk)>> {
    let open = |p: &Path| -> Result<(Capture, capture::Walk)> {
        let c = Capture::open(p)?;
        let w = c.walk(chunk_bytes);
        Ok((c, w))
    };
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            let mut caps = Vec::new();
            for f in files {
                match open(&f) {
                    Ok(cw) => caps.push(cw),
                    Err(e @ (Error::UnknownCapture { .. } | Error::EmptyCapture { .. })) => {
                        not_captures.push(e.to_string())
                    }
                    Err(e) => return Err(e),
                }
            }
            // a directory of rotated files: in order of their first packet
            caps.sort_by_cached_key(|(c, w)| first_timestamp(c, w));
            out.extend(caps);
        } else {
            out.push(open(input)?);
        }
    }
    Ok(out)
}

/// Time of the first packet: only the first chunk is read.
fn first_timestamp(c: &Capture, walk: &capture::Walk) -> Option<i64> {
    let mut first = None;
    if let Some(chunk) = walk.chunks.first() {
        c.frames(chunk, |f| {
            first.get_or_insert(f.ts_ns);
        });
    }
    first
}

fn describe_format(c: &Capture) -> String {
    let base = match c.format {
        capture::Format::Pcap {
            big_endian,
            nanos,
            linktype,
            ..
        } => format!(
            "pcap {} {} linktype {linktype}",
            if big_endian { "BE" } else { "LE" },
            if nanos { "ns" } else { "us" }
        ),
        capture::Format::PcapNg => "pcapng".to_string(),
    };
    match c.compression {
        capture::Compression::None => base,
        capture::Compression::Gzip => format!("{base} (gzip)"),
        capture::Compression::Zstd => format!("{base} (zstd)"),
        capture::Compression::Xz => format!("{base} (xz)"),
    }
}

/// What one chunk decodes to: UDP messages, and TCP segments for reassembly.
struct Decoded {
    capture: usize,
    msgs: Vec<Observed>,
    segments: Vec<TcpSegment>,
    fragments: Vec<OwnedFragment>,
    counts: Counts,
}

/// Decodes a DNS message, counting it (and why it is malformed, if it is).
fn observe(bytes: &[u8], n: &mut Counts, cut: bool) -> Option<dns::DnsMessage> {
    let Some(mut msg) = dns::decode(bytes, true) else {
        n.malformed += 1;
        n.malformed_by[5] += 1;
        return None;
    };
    msg.malformed |= cut;
    if let Some(e) = msg.error {
        n.malformed_by[e as usize] += 1;
    } else if cut {
        n.malformed_by[6] += 1;
    }
    n.dns_messages += 1;
    n.malformed += msg.malformed as u64;
    Some(msg)
}

/// Sends a decoded segment on: a UDP payload is decoded into `udp` now, a TCP
/// segment is kept in `tcp` for stream reassembly.
fn route(
    seg: &link::Segment<'_>,
    ts_ns: i64,
    capture: u32,
    frame: u64,
    n: &mut Counts,
    udp: &mut Vec<Observed>,
    tcp: &mut Vec<TcpSegment>,
) {
    match seg.tcp {
        None => udp.extend(observe(seg.payload, n, seg.cut).map(|msg| Observed {
            ts_ns,
            capture,
            frame,
            src: seg.src,
            dst: seg.dst,
            sport: seg.sport,
            dport: seg.dport,
            transport: Transport::Udp,
            msg,
        })),
        Some(t) => tcp.push(TcpSegment {
            ts_ns,
            capture,
            frame,
            src: seg.src,
            dst: seg.dst,
            sport: seg.sport,
            dport: seg.dport,
            seq: t.seq,
            syn: t.syn,
            fin: t.fin,
            rst: t.rst,
            payload: seg.payload.to_vec(),
        }),
    }
}

/// Decodes one chunk into DNS messages (UDP) and segments (TCP).
fn decode_chunk(cap: &Capture, cap_idx: u32, chunk: &Chunk, ports: &[u16]) -> Decoded {
    let mut msgs = Vec::new();
    let mut segments = Vec::new();
    let mut fragments = Vec::new();
    let mut n = Counts::default();
    cap.frames(chunk, |frame| {
        n.packets += 1;
        n.first_ts = Some(n.first_ts.map_or(frame.ts_ns, |t| t.min(frame.ts_ns)));
        n.last_ts = Some(n.last_ts.map_or(frame.ts_ns, |t| t.max(frame.ts_ns)));
        let seg = match link::decode_frame(&frame, ports) {
            Ok(Packet::Whole(s)) => s,
            Ok(Packet::Fragment(f)) => {
                fragments.push(OwnedFragment {
                    ts_ns: frame.ts_ns,
                    capture: cap_idx,
                    frame: frame.number,
                    src: f.src,
                    dst: f.dst,
                    id: f.id,
                    proto: f.proto,
                    offset: f.offset,
                    more: f.more,
                    data: f.data.to_vec(),
                });
                return;
            }
            Err(Skip::OtherPort | Skip::NotIp) => return,
            Err(Skip::UnknownLink(_) | Skip::Malformed) => {
                n.not_decoded += 1;
                return;
            }
        };
        route(
            &seg,
            frame.ts_ns,
            cap_idx,
            frame.number,
            &mut n,
            &mut msgs,
            &mut segments,
        );
    });
    Decoded {
        capture: cap_idx as usize,
        msgs,
        segments,
        fragments,
        counts: n,
    }
}

/// Reassembles fragmented datagrams (all captures as one stream in time order)
/// and adds their DNS to the UDP messages and TCP segments of each capture.
fn defragment(
    frags: Vec<Vec<OwnedFragment>>,
    ports: &[u16],
    counts: &mut [Counts],
    udp: &mut [Vec<Observed>],
    tcp: &mut [Vec<TcpSegment>],
) {
    if frags.iter().all(Vec::is_empty) {
        return;
    }
    let mut defrag = Defragmenter::new();
    let mut touched = std::collections::BTreeSet::new();
    for f in correlate::merge_by_time(frags, |f: &OwnedFragment| f.ts_ns) {
        let Some(d) = defrag.push(f) else { continue };
        let i = d.capture as usize;
        let Ok(seg) = link::decode_transport(d.src, d.dst, d.proto, &d.payload, false, ports)
        else {
            continue;
        };
        touched.insert(i);
        route(
            &seg,
            d.ts_ns,
            d.capture,
            d.frame,
            &mut counts[i],
            &mut udp[i],
            &mut tcp[i],
        );
    }
    for (cap, lost) in defrag.finish() {
        counts[cap as usize].not_decoded += lost;
    }
    // reassembled datagrams join each capture's own frame order
    for i in touched {
        udp[i].sort_by_key(|o| o.frame);
        tcp[i].sort_by_key(|s| s.frame);
    }
}

/// Reassembles the TCP segments of all captures (one stream in time order, so
/// a connection may straddle rotated files) into DNS messages, per capture.
fn reassemble(segments: Vec<Vec<TcpSegment>>, counts: &mut [Counts]) -> Vec<Vec<Observed>> {
    let mut out: Vec<Vec<Observed>> = (0..segments.len()).map(|_| Vec::new()).collect();
    let mut reassembler = TcpReassembler::new();
    let mut messages = Vec::new();
    for seg in correlate::merge_by_time(segments, |s: &TcpSegment| s.ts_ns) {
        reassembler.push(seg, &mut messages);
    }
    for m in messages {
        let i = m.capture as usize;
        out[i].extend(
            observe(&m.bytes, &mut counts[i], false).map(|msg| Observed {
                ts_ns: m.ts_ns,
                capture: m.capture,
                frame: m.frame,
                src: m.src,
                dst: m.dst,
                sport: m.sport,
                dport: m.dport,
                transport: Transport::Tcp,
                msg,
            }),
        );
    }
    for (cap, loss) in reassembler.finish() {
        counts[cap as usize].not_decoded += loss.gaps + loss.partial;
    }
    // messages come out when their stream allows; each capture's stay in frame order
    for v in &mut out {
        v.sort_by_key(|o| o.frame);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    pool.install(|| run_in_pool(cfg, &mut report))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn run_in_pool(cfg: &IngestConfig, report: &mut IngestReport) -> Result<()> {
    let opened = open_inputs(&cfg.inputs, cfg.chunk_bytes, &mut report.not_captures)?;
    let hashes: Vec<String> = opened
        .par_iter()
        .map(|(c, _)| hex(&Sha256::digest(&c.bytes[..])))
        .collect();
    let known = write::ingested_hashes(&cfg.out)?;
    let mut caps = Vec::new();
    let mut walks = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for ((c, w), h) in opened.into_iter().zip(hashes) {
        if known.contains(&h) || !seen.insert(h.clone()) {
            report.already_ingested.push(c.path.clone());
        } else {
            caps.push((c, h));
            walks.push(w);
        }
    }
    if caps.is_empty() {
        return Ok(());
    }

    let jobs: Vec<(usize, &Chunk)> = walks
        .iter()
        .enumerate()
        .flat_map(|(i, w)| w.chunks.iter().map(move |c| (i, c)))
        .collect();
    let decoded: Vec<Decoded> = jobs
        .par_iter()
        .map(|&(i, chunk)| decode_chunk(&caps[i].0, i as u32, chunk, &cfg.ports))
        .collect();

    let mut counts = vec![Counts::default(); caps.len()];
    let mut udp: Vec<Vec<Observed>> = (0..caps.len()).map(|_| Vec::new()).collect();
    let mut tcp: Vec<Vec<TcpSegment>> = (0..caps.len()).map(|_| Vec::new()).collect();
    let mut frags: Vec<Vec<OwnedFragment>> = (0..caps.len()).map(|_| Vec::new()).collect();
    for d in decoded {
        counts[d.capture] += d.counts;
        udp[d.capture].extend(d.msgs);
        tcp[d.capture].extend(d.segments);
        frags[d.capture].extend(d.fragments);
    }
    defragment(frags, &cfg.ports, &mut counts, &mut udp, &mut tcp);
    let tcp = reassemble(tcp, &mut counts);
    // Each capture's UDP and TCP messages in frame order, then one stream in time
    // order across captures, each keeping its own frame order.
    let per_capture: Vec<Vec<Observed>> = udp
        .into_iter()
        .zip(tcp)
        .map(|(u, t)| correlate::merge_by_frame(u, t))
        .collect();
    let stream = correlate::merge_by_time(per_capture, |o: &Observed| o.ts_ns);

    let mut correlator = Correlator::new(cfg.match_timeout.as_nanos() as i64);
    for obs in stream {
        correlator.push(obs);
    }
    let txs = correlator.finish();

    let mut by_status = vec![[0u64; 3]; caps.len()];
    for t in &txs {
        let s = match t.status {
            Status::Answered => 0,
            Status::Unanswered => 1,
            Status::ResponseOnly => 2,
        };
        by_status[t.first().capture as usize][s] += 1;
    }
    let names: Vec<String> = caps
        .iter()
        .map(|(c, _)| c.path.display().to_string())
        .collect();
    for (i, ((c, h), w)) in caps.iter().zip(&walks).enumerate() {
        let n = counts[i];
        report.captures.push(CaptureReport {
            path: names[i].clone(),
            sha256: h.clone(),
            format: describe_format(c),
            file_size: c.file_size,
            first_ts_ns: n.first_ts,
            last_ts_ns: n.last_ts,
            packets: n.packets,
            dns_messages: n.dns_messages,
            malformed: n.malformed,
            malformed_by: n.malformed_by,
            not_decoded: n.not_decoded,
            answered: by_status[i][0],
            unanswered: by_status[i][1],
            response_only: by_status[i][2],
            problem: w.problem.clone(),
        });
    }

    let mut id_hash = Sha256::new();
    let mut sorted: Vec<&String> = caps.iter().map(|(_, h)| h).collect();
    sorted.sort();
    for h in sorted {
        id_hash.update(h.as_bytes());
    }
    let ingest_id = hex(&id_hash.finalize()[..8]);

    let mut staged = write::Staged::default();
    let result = write::stage_transactions(&mut staged, &cfg.out, &ingest_id, txs, &names)
        .and_then(|_| {
            write::stage_captures(
                &mut staged,
                &cfg.out,
                &ingest_id,
                captures_batch(&report.captures)?,
            )
        });
    match result {
        Ok(()) => {
            report.files_written = staged.commit()?;
            Ok(())
        }
        Err(e) => {
            staged.abandon();
            Err(e)
        }
    }
}

fn captures_batch(caps: &[CaptureReport]) -> Result<RecordBatch> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let s = |f: &dyn Fn(&CaptureReport) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(caps.iter().map(f)))
    };
    let i = |f: &dyn Fn(&CaptureReport) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            caps.iter().map(|c| f(c) as i64),
        ))
    };
    let t = |f: &dyn Fn(&CaptureReport) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                caps.iter().map(|c| f(c).map(|ns| ns.div_euclid(1000))),
            )
            .with_timezone("UTC"),
        )
    };
    let columns = vec![
        s(&|c| c.path.clone()),
        s(&|c| c.sha256.clone()),
        s(&|c| c.format.clone()),
        i(&|c| c.file_size),
        t(&|c| c.first_ts_ns),
        t(&|c| c.last_ts_ns),
        i(&|c| c.packets),
        i(&|c| c.dns_messages),
        i(&|c| c.malformed),
        i(&|c| c.malformed_by[0]),
        i(&|c| c.malformed_by[1]),
        i(&|c| c.malformed_by[2]),
        i(&|c| c.malformed_by[3]),
        i(&|c| c.malformed_by[4]),
        i(&|c| c.malformed_by[5]),
        i(&|c| c.malformed_by[6]),
        i(&|c| c.not_decoded),
        i(&|c| c.answered),
        i(&|c| c.unanswered),
        i(&|c| c.response_only),
        Arc::new(StringArray::from_iter(
            caps.iter()
                .map(|c| c.problem.as_ref().map(describe_problem)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(caps.iter().map(|_| now))
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(schema::CAPTURES.clone(), columns)?)
}

pub fn describe_problem(p: &Problem) -> String {
    match p {
        Problem::Truncated { offset } => format!("cut off mid-record at byte offset {offset}; packets before it were ingested"),
        Problem::Corrupt { offset, what } => format!("corrupt record header at byte offset {offset} ({what}); packets before it were ingested"),
    }
}

/// The directory a dataset lives in: `-o`/`-d`, else `$DNSQ_DATA`, else `./dnsq-data`.
pub fn dataset_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DNSQ_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("dnsq-data"))
}
