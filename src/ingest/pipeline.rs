//! The ingest pipeline: it opens the captures, decodes their chunks in
//! parallel (rayon: `decode_chunk` and `route` turn frames into messages and
//! TCP segments), merges the messages of all captures into one stream in time
//! order (the `Router`: IP defragmentation, TCP reassembly, sharding), pairs
//! them in shards, and writes the dataset.

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
use super::{capture, dns, dnstap, link, schema, write};
use crate::dataset;
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
    /// Pairing shards; 0 chooses by input size (see `SHARD_INPUT_BYTES`).
    pub shards: usize,
    /// Rows held in memory, in all shards, before they are written as files.
    pub spool_rows: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// GeoIP and ASN databases (`--geoip`, `--asn`).
    pub enrich: Option<Arc<crate::enrich::Enricher>>,
    /// Pseudonymisation of addresses (`--anonymize`).
    pub anonymize: Option<Arc<crate::anonymize::Anonymizer>>,
}

/// The longest `--match-timeout`: one day. Longer ones are refused on the
/// command line and cut to this here, so that timeouts in nanoseconds never
/// overflow.
pub const MAX_MATCH_TIMEOUT: Duration = Duration::from_secs(86_400);

impl IngestConfig {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        IngestConfig {
            inputs,
            out,
            threads: 0,
            match_timeout: Duration::from_secs(10),
            ports: vec![53],
            chunk_bytes: capture::CHUNK_BYTES,
            shards: 0,
            spool_rows: SPOOL_ROWS,
            progress: false,
            enrich: None,
            anonymize: None,
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
    /// What was read but not as the capture gave it (times out of range).
    pub warnings: Vec<String>,
    /// Captures skipped because the dataset already holds their content.
    pub already_ingested: Vec<PathBuf>,
    /// Files in an input directory that are not captures.
    pub not_captures: Vec<String>,
    pub files_written: Vec<PathBuf>,
    /// The Delta table version that holds this ingest (none when nothing was new).
    pub version: Option<i64>,
    /// What the dataset said on opening (an upgrade, an interrupted ingest's files removed).
    pub notes: Vec<String>,
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
    /// Frames whose time lies outside the years dnsq stores (kept clamped).
    ts_out_of_range: u64,
    /// The first of them: frame number and time as read (ns since 1970).
    first_out_of_range: Option<(u64, i128)>,
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
        self.ts_out_of_range += o.ts_out_of_range;
        self.first_out_of_range = match (self.first_out_of_range, o.first_out_of_range) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }
}

/// A capture ready to be read: a mapped file already walked into chunks, or
/// a stream (standard input, a compressed file) read piece by piece.
enum Opened {
    Mapped(Capture, capture::Walk),
    Stream(Box<StreamReader>, Option<StreamPiece>),
}

impl Opened {
    fn open(p: &Path, chunk_bytes: usize) -> Result<Opened> {
        // a pipe given by name (`<(tcpdump -w - …)`) is read as a stream
        let regular = p.as_os_str() != "-" && std::fs::metadata(p).is_ok_and(|m| m.is_file());
        if regular && !is_compressed(p)? {
            let c = Capture::open(p)?;
            let w = c.walk(chunk_bytes);
            return Ok(Opened::Mapped(c, w));
        }
        let mut r = StreamReader::open(p, chunk_bytes)?;
        let first = r.next_piece()?;
        Ok(Opened::Stream(Box::new(r), first))
    }

    /// Time of the first packet: only the first chunk is read.
    fn first_timestamp(&self) -> Option<i64> {
        let (c, chunks) = match self {
            Opened::Mapped(c, w) => (c, &w.chunks),
            Opened::Stream(_, p) => {
                let p = p.as_ref()?;
                (&p.capture, &p.chunks)
            }
        };
        chunks.iter().find_map(|chunk| c.first_ts(chunk))
    }

    fn path(&self) -> &Path {
        match self {
            Opened::Mapped(c, _) => &c.path,
            Opened::Stream(r, _) => r.path(),
        }
    }
}

/// Whether a file starts with the magic of gzip, zstd or xz.
fn is_compressed(p: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 6];
    let mut f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let n = f.read(&mut head).map_err(|e| Error::io(p, e))?;
    Ok(capture::Compression::of(&head[..n]) != capture::Compression::None)
}

/// Expands directories into the captures they hold (files that are not
/// captures are listed in `not_captures`) and opens each: a mapped file is
/// walked into chunks of `chunk_bytes`, once.
fn open_inputs(
    inputs: &[PathBuf],
    chunk_bytes: usize,
    not_captures: &mut Vec<String>,
) -> Result<Vec<Opened>> {
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
                match Opened::open(&f, chunk_bytes) {
                    Ok(o) => caps.push(o),
                    Err(e @ (Error::UnknownCapture { .. } | Error::EmptyCapture { .. })) => {
                        not_captures.push(e.to_string())
                    }
                    Err(e) => return Err(e),
                }
            }
            // a directory of rotated files: in order of their first packet
            caps.sort_by_cached_key(Opened::first_timestamp);
            out.extend(caps);
        } else {
            out.push(Opened::open(input, chunk_bytes)?);
        }
    }
    Ok(out)
}

fn describe_format(format: capture::Format, compression: capture::Compression) -> String {
    let base = match format {
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
        capture::Format::Dnstap => "dnstap".to_string(),
    };
    match compression {
        capture::Compression::None => base,
        capture::Compression::Gzip => format!("{base} (gzip)"),
        capture::Compression::Zstd => format!("{base} (zstd)"),
        capture::Compression::Xz => format!("{base} (xz)"),
    }
}

/// What a frame holds for DNS, kept in its capture's frame order: a message
/// (UDP), a segment for TCP reassembly, or a fragment for IP reassembly.
// Nearly every item is a message: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Item {
    Msg(Observed),
    Seg(TcpSegment),
    Frag(OwnedFragment),
}

impl Item {
    fn ts(&self) -> i64 {
        match self {
            Item::Msg(o) => o.ts_ns,
            Item::Seg(s) => s.ts_ns,
            Item::Frag(f) => f.ts_ns,
        }
    }
}

/// What one chunk decodes to.
struct Decoded {
    items: Vec<Item>,
    counts: Counts,
}

/// Decodes a DNS message, counting it (and why it is malformed, if it is).
fn observe(bytes: &[u8], n: &mut Counts, cut: bool) -> Option<Box<dns::DnsMessage>> {
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
    Some(Box::new(msg))
}

/// A UDP payload is decoded into a message now; a TCP segment is kept whole
/// for stream reassembly.
fn route(
    seg: &link::Segment<'_>,
    ts_ns: i64,
    capture: u32,
    frame: u64,
    n: &mut Counts,
) -> Option<Item> {
    match seg.tcp {
        None => observe(seg.payload, n, seg.cut).map(|msg| {
            Item::Msg(Observed {
                ts_ns,
                capture,
                frame,
                src: seg.src,
                dst: seg.dst,
                sport: seg.sport,
                dport: seg.dport,
                transport: Transport::Udp,
                tunnels: seg.tunnels,
                msg,
                logged: None,
            })
        }),
        Some(t) => Some(Item::Seg(TcpSegment {
            ts_ns,
            capture,
            frame,
            // set when the segment takes its place in the merged stream
            pos: 0,
            src: seg.src,
            dst: seg.dst,
            sport: seg.sport,
            dport: seg.dport,
            seq: t.seq,
            syn: t.syn,
            fin: t.fin,
            rst: t.rst,
            payload: seg.payload.to_vec(),
            tunnels: seg.tunnels,
        })),
    }
}

/// Decodes one chunk into its items, in frame order.
fn decode_chunk(cap: &Capture, cap_idx: u32, chunk: &Chunk, ports: &[u16]) -> Decoded {
    if cap.format == capture::Format::Dnstap {
        return decode_dnstap_chunk(cap, cap_idx, chunk);
    }
    let mut items = Vec::new();
    let mut n = Counts::default();
    cap.frames(chunk, |frame| {
        n.packets += 1;
        if let Some(raw) = frame.ts_out_of_range {
            n.ts_out_of_range += 1;
            if n.first_out_of_range.is_none() {
                n.first_out_of_range = Some((frame.number, raw));
            }
        }
        n.first_ts = Some(n.first_ts.map_or(frame.ts_ns, |t| t.min(frame.ts_ns)));
        n.last_ts = Some(n.last_ts.map_or(frame.ts_ns, |t| t.max(frame.ts_ns)));
        match link::decode_frame(&frame, ports) {
            Ok(Packet::Whole(seg)) => {
                items.extend(route(&seg, frame.ts_ns, cap_idx, frame.number, &mut n));
            }
            Ok(Packet::Fragment(f)) => items.push(Item::Frag(OwnedFragment::new(
                &f,
                frame.ts_ns,
                cap_idx,
                frame.number,
            ))),
            Err(Skip::OtherPort | Skip::NotIp) => {}
            Err(Skip::UnknownLink(_) | Skip::Malformed) => n.not_decoded += 1,
        }
    });
    Decoded { items, counts: n }
}

/// Decodes one chunk of a dnstap log: each message its server logged is a
/// message seen at the time logged for its side, between the addresses and
/// ports logged, whatever its port (a log holds only DNS). A message without
/// its DNS bytes or its time is counted as not decoded.
fn decode_dnstap_chunk(cap: &Capture, cap_idx: u32, chunk: &Chunk) -> Decoded {
    let mut items = Vec::new();
    let mut n = Counts::default();
    // nearly every message of a log carries the same identity: one copy
    let mut identity: Option<(&[u8], u32)> = None;
    cap.dnstap_frames(chunk, |number, frame| {
        n.packets += 1;
        let Ok(e) = dnstap::Entry::of(frame) else {
            n.not_decoded += 1;
            return;
        };
        let (ts_ns, raw) = capture::clamp_ts(e.time);
        if let Some(raw) = raw {
            n.ts_out_of_range += 1;
            if n.first_out_of_range.is_none() {
                n.first_out_of_range = Some((number, raw));
            }
        }
        n.first_ts = Some(n.first_ts.map_or(ts_ns, |t| t.min(ts_ns)));
        n.last_ts = Some(n.last_ts.map_or(ts_ns, |t| t.max(ts_ns)));
        let Some(msg) = observe(e.dns, &mut n, false) else {
            return;
        };
        let server = match (e.identity, identity) {
            (None, _) => 0,
            (Some(id), Some((bytes, number))) if bytes == id => number,
            (Some(id), _) => {
                let number = dnstap::server_number(id);
                identity = Some((id, number));
                number
            }
        };
        items.push(Item::Msg(Observed {
            ts_ns,
            capture: cap_idx,
            frame: number,
            src: e.src.0,
            dst: e.dst.0,
            sport: e.src.1,
            dport: e.dst.1,
            transport: Transport::of_dnstap(e.protocol),
            tunnels: Default::default(),
            msg,
            logged: Some(Logged {
                kind: e.kind,
                server,
                query_ts_ns: e.query_time.map(|t| capture::clamp_ts(t).0),
            }),
        }));
    });
    Decoded { items, counts: n }
}

/// A run of whole records of one capture, waiting to be decoded.
struct Piece {
    cap: Arc<Capture>,
    chunk: Chunk,
    /// Time of its first record (`i64::MIN` when it holds none).
    first_ts: i64,
}

impl Piece {
    fn new(cap: Arc<Capture>, chunk: Chunk) -> Piece {
        let first_ts = cap.first_ts(&chunk).unwrap_or(i64::MIN);
        Piece {
            cap,
            chunk,
            first_ts,
        }
    }
}

/// What a stream's reading thread hands on.
enum Feed {
    Piece(Arc<Capture>, Chunk),
    /// The end of the stream: its content hash, size and what stopped it early.
    End(StreamEnd),
    Failed(Error),
}

#[derive(Clone)]
struct StreamEnd {
    sha256: String,
    bytes: u64,
    problem: Option<Problem>,
}

/// Pieces read ahead of the decoders by a stream's own thread.
const STREAM_AHEAD: usize = 2;

/// Reads a stream on a thread of its own (decompressing it there), handing
/// on pieces while the rest of the ingest works.
fn spawn_reader(
    mut r: Box<StreamReader>,
    first: Option<StreamPiece>,
) -> std::sync::mpsc::Receiver<Feed> {
    let (tx, rx) = std::sync::mpsc::sync_channel(STREAM_AHEAD);
    std::thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut next = first;
        loop {
            let Some(p) = next.take() else { break };
            hash.update(&p.capture.bytes[p.new_bytes.clone()]);
            let cap = Arc::new(p.capture);
            for chunk in p.chunks {
                if tx.send(Feed::Piece(cap.clone(), chunk)).is_err() {
                    return;
                }
            }
            next = match r.next_piece() {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Feed::Failed(e));
                    return;
                }
            };
        }
        hash.update(r.tail());
        let _ = tx.send(Feed::End(StreamEnd {
            sha256: hex(&hash.finalize()),
            bytes: r.bytes_read(),
            problem: r.problem.take(),
        }));
    });
    rx
}

/// Where a capture's pieces come from.
enum Pieces {
    Mapped {
        cap: Arc<Capture>,
        chunks: std::vec::IntoIter<Chunk>,
    },
    Stream {
        rx: std::sync::mpsc::Receiver<Feed>,
        end: Option<StreamEnd>,
        failed: Option<Error>,
    },
}

/// One capture on its way through: pieces not yet decoded, pieces being
/// decoded, and items decoded but not yet merged into the stream.
struct Source {
    pieces: Pieces,
    peeked: Option<Piece>,
    /// First times of the pieces handed out and not yet back.
    in_flight: VecDeque<i64>,
    queue: VecDeque<Item>,
}

impl Source {
    fn new(pieces: Pieces) -> Source {
        Source {
            pieces,
            peeked: None,
            in_flight: VecDeque::new(),
            queue: VecDeque::new(),
        }
    }

    fn peek_ts(&mut self) -> Option<i64> {
        if self.peeked.is_none() {
            let (cap, chunk) = match &mut self.pieces {
                Pieces::Mapped { cap, chunks } => (cap.clone(), chunks.next()?),
                Pieces::Stream { rx, end, failed } => {
                    if end.is_some() || failed.is_some() {
                        return None;
                    }
                    match rx.recv() {
                        Ok(Feed::Piece(cap, chunk)) => (cap, chunk),
                        Ok(Feed::End(e)) => {
                            *end = Some(e);
                            return None;
                        }
                        Ok(Feed::Failed(e)) => {
                            *failed = Some(e);
                            return None;
                        }
                        Err(_) => return None,
                    }
                }
            };
            self.peeked = Some(Piece::new(cap, chunk));
        }
        self.peeked.as_ref().map(|p| p.first_ts)
    }

    /// Time of the next item this source will give, and whether it is decoded.
    fn head(&mut self) -> Option<(i64, bool)> {
        if let Some(it) = self.queue.front() {
            return Some((it.ts(), true));
        }
        if let Some(&ts) = self.in_flight.front() {
            return Some((ts, false));
        }
        self.peek_ts().map(|ts| (ts, false))
    }
}

/// The next pieces to decode: across captures, earliest first piece first.
fn next_window(sources: &mut [Source], size: usize) -> Vec<(usize, Piece)> {
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let mut best: Option<(i64, usize)> = None;
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(ts) = s.peek_ts() {
                if best.is_none_or(|b| (ts, i) < b) {
                    best = Some((ts, i));
                }
            }
        }
        let Some((ts, i)) = best else { break };
        let Some(p) = sources[i].peeked.take() else {
            break;
        };
        sources[i].in_flight.push_back(ts);
        out.push((i, p));
    }
    out
}

/// Merges the decoded items of every capture into one stream in time order
/// (each capture keeps its own frame order; ties go to the capture given
/// first) as far as the decoded items allow, handing each to `f`.
fn merge_ready(sources: &mut [Source], mut f: impl FnMut(Item)) {
    if let [only] = sources {
        only.queue.drain(..).for_each(f);
        return;
    }
    loop {
        let mut best: Option<(i64, usize, bool)> = None;
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some((ts, ready)) = s.head() {
                if best.is_none_or(|(bt, bi, _)| (ts, i) < (bt, bi)) {
                    best = Some((ts, i, ready));
                }
            }
        }
        match best {
            Some((_, i, true)) => {
                if let Some(it) = sources[i].queue.pop_front() {
                    f(it);
                }
            }
            // the earliest item is still to be decoded (or there is none)
            _ => return,
        }
    }
}

/// The sequential stage: IP and TCP reassembly, then each message, in the
/// order of the frames that carry it, to the pairing shard of its endpoints.
struct Router {
    ports: Vec<u16>,
    defrag: Defragmenter,
    tcp: TcpReassembler,
    stream_msgs: Vec<StreamMessage>,
    counts: Vec<Counts>,
    /// Items merged so far: the position of the next one in the stream.
    pos: u64,
    /// Messages not yet sent to a shard, with the position of their frame. A
    /// TCP message that waited behind a hole in its stream comes out after
    /// frames that follow it; it goes back in its place here.
    held: Vec<(u64, Observed)>,
    /// Latest time of an item seen.
    latest_ts: i64,
    /// Per shard: (time to expire to first, message).
    inputs: Vec<Vec<(i64, Observed)>>,
    /// Per shard: latest time among the messages other shards got since its last one.
    gap_max: Vec<i64>,
}

impl Router {
    fn item(&mut self, it: Item) {
        self.pos += 1;
        let pos = self.pos;
        // a hole in a TCP stream older than HOLD_NS is given up on, at the
        // same place in the stream whatever the chunking
        self.latest_ts = self.latest_ts.max(it.ts());
        self.tcp.skip_stale_gaps(
            self.latest_ts.saturating_sub(HOLD_NS),
            &mut self.stream_msgs,
        );
        if !self.stream_msgs.is_empty() {
            self.take_stream_msgs();
        }
        match it {
            Item::Msg(o) => self.held.push((pos, o)),
            Item::Seg(s) => self.segment(s, pos),
            Item::Frag(mut f) => loop {
                let Some(d) = self.defrag.push(f) else { return };
                let decoded = link::decode_datagram(
                    d.src,
                    d.dst,
                    d.proto,
                    &d.payload,
                    false,
                    &self.ports,
                    d.tunnels,
                );
                match decoded {
                    Ok(Packet::Whole(seg)) => {
                        let n = &mut self.counts[d.capture as usize];
                        match route(&seg, d.ts_ns, d.capture, d.frame, n) {
                            Some(Item::Msg(o)) => self.held.push((pos, o)),
                            Some(Item::Seg(s)) => self.segment(s, pos),
                            _ => {}
                        }
                        return;
                    }
                    // a tunnel reassembled from fragments whose inner packet is a fragment too
                    Ok(Packet::Fragment(inner)) => {
                        f = OwnedFragment::new(&inner, d.ts_ns, d.capture, d.frame);
                    }
                    Err(_) => return,
                }
            },
        }
    }

    fn segment(&mut self, mut s: TcpSegment, pos: u64) {
        s.pos = pos;
        self.tcp.push(s, &mut self.stream_msgs);
        self.take_stream_msgs();
    }

    /// Decodes the messages TCP reassembly gave and holds them for `release`.
    fn take_stream_msgs(&mut self) {
        let mut msgs = std::mem::take(&mut self.stream_msgs);
        for m in msgs.drain(..) {
            let n = &mut self.counts[m.capture as usize];
            if let Some(msg) = observe(&m.bytes, n, false) {
                self.held.push((
                    m.pos,
                    Observed {
                        ts_ns: m.ts_ns,
                        capture: m.capture,
                        frame: m.frame,
                        src: m.src,
                        dst: m.dst,
                        sport: m.sport,
                        dport: m.dport,
                        transport: Transport::Tcp,
                        tunnels: m.tunnels,
                        msg,
                        logged: None,
                    },
                ));
            }
        }
        self.stream_msgs = msgs;
    }

    /// Sends on, in frame order, every held message that no message still
    /// inside TCP reassembly can precede; at the end of the input, all.
    fn release(&mut self, all: bool) {
        let limit = match self.tcp.min_pending_pos() {
            Some(p) if !all => p,
            _ => u64::MAX,
        };
        self.held.sort_by_key(|(p, _)| *p);
        let ready = self.held.partition_point(|(p, _)| *p < limit);
        // taken out and put back, so that its capacity serves the next window
        let mut held = std::mem::take(&mut self.held);
        for (_, o) in held.drain(..ready) {
            self.dispatch(o);
        }
        self.held = held;
    }

    /// Both directions of a conversation go to the same shard.
    fn dispatch(&mut self, o: Observed) {
        let shards = self.inputs.len();
        let s = if shards == 1 {
            0
        } else {
            use std::hash::BuildHasher;
            let (a, b) = ((o.src, o.sport), (o.dst, o.dport));
            // a fixed seed: the same conversation goes to the same shard in every run
            let h = foldhash::fast::FixedState::with_seed(0).hash_one((a.min(b), a.max(b)));
            (h % shards as u64) as usize
        };
        let ts = o.ts_ns;
        self.inputs[s].push((std::mem::replace(&mut self.gap_max[s], i64::MIN), o));
        if shards > 1 {
            for (i, g) in self.gap_max.iter_mut().enumerate() {
                if i != s && ts > *g {
                    *g = ts;
                }
            }
        }
    }
}

/// One shard of the pairing: its correlator and where its rows go.
struct Shard {
    correlator: Correlator,
    spool: write::Spool,
    /// Per capture: answered, unanswered, response only.
    by_status: Vec<[u64; 3]>,
}

impl Shard {
    /// Pairs one window's messages; `expire_to` is the latest time the other
    /// shards saw after this shard's last message. `input` is left empty with
    /// its capacity, for the next window.
    fn run(&mut self, input: &mut Vec<(i64, Observed)>, expire_to: i64) -> Result<()> {
        let mut now = i64::MIN;
        for (expire, o) in input.drain(..) {
            if expire != i64::MIN {
                self.correlator.expire(expire);
            }
            now = now.max(o.ts_ns).max(expire);
            self.correlator.push(o);
        }
        if expire_to != i64::MIN {
            self.correlator.expire(expire_to);
            now = now.max(expire_to);
        }
        let done = self.correlator.take_done(now);
        spill(&mut self.by_status, &mut self.spool, done)
    }
}

/// Counts finished transactions by capture and status and spools them.
fn spill(
    by_status: &mut Vec<[u64; 3]>,
    spool: &mut write::Spool,
    txs: impl IntoIterator<Item = Transaction>,
) -> Result<()> {
    for t in txs {
        let s = match t.status {
            Status::Answered => 0,
            Status::Unanswered => 1,
            Status::ResponseOnly => 2,
        };
        let c = t.first().capture as usize;
        if by_status.len() <= c {
            by_status.resize(c + 1, [0; 3]);
        }
        by_status[c][s] += 1;
        spool.push(t)?;
    }
    Ok(())
}

/// How long out-of-order TCP data may hold later messages back (a hole not
/// filled by then is a gap): bounds the messages held to this much traffic.
const HOLD_NS: i64 = 2_000_000_000;

/// Captures of at least this many bytes in all are paired in `SHARDS` shards
/// (and written as that many files per day); smaller ingests in one. The
/// count depends on the input only, so rows and file names do not depend on
/// the thread count.
const SHARD_INPUT_BYTES: u64 = 64 << 20;
const SHARDS: usize = 4;
/// Rows spooled in memory, in all shards, before they are written out: a
/// row takes about 350 bytes in Arrow form. With 384 Ki rows a 20 M-packet
/// ingest peaked at 879 and 914 MiB in two runs (512 Ki: 998 and 1041 MiB),
/// for 0.05% more output.
pub const SPOOL_ROWS: usize = 384 << 10;

/// SHA-256 of a capture's (decompressed) bytes, read a slice at a time so
/// that a mapped file's pages do not stay in memory.
fn content_hash(c: &Capture) -> String {
    const SLICE: usize = 16 << 20;
    let mut h = Sha256::new();
    for start in (0..c.bytes.len()).step_by(SLICE) {
        let end = (start + SLICE).min(c.bytes.len());
        h.update(&c.bytes[start..end]);
        c.release(start, end);
    }
    hex(&h.finalize())
}

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
    let mapped: Vec<Option<&Capture>> = opened
        .iter()
        .map(|o| match o {
            Opened::Mapped(c, _) => Some(c),
            Opened::Stream(..) => None,
        })
        .collect();
    let hashes: Vec<Option<String>> = mapped.par_iter().map(|c| c.map(content_hash)).collect();
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
            Opened::Mapped(c, w) => {
                total_bytes += c.bytes.len() as u64;
                let input = Input {
                    name,
                    format: c.format,
                    compression: c.compression,
                    file_size: c.file_size,
                    sha256: h,
                    problem: w.problem,
                };
                let pieces = Pieces::Mapped {
                    cap: Arc::new(c),
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
            ),
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
    let result = stream(
        cfg,
        threads,
        &mut sources,
        &mut router,
        &mut shard_state,
        &progress,
    )
    .and_then(|()| streams_ended(&mut sources, &mut inputs));
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
    dataset::crash_point("before-commit");
    dataset::test_delay();
    dataset::check_interrupt()?;
    report.files_written = files
        .iter()
        .map(|f| cfg.out.join(write::TRANSACTIONS_DIR).join(&f.rel))
        .collect();
    match writer.commit(&files, &hashes)? {
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

/// Takes each stream's content hash, size and problem from its end; a
/// stream that failed fails the ingest.
fn streams_ended(sources: &mut [Source], inputs: &mut [Input]) -> Result<()> {
    for (s, input) in sources.iter_mut().zip(inputs) {
        if let Pieces::Stream { end, failed, .. } = &mut s.pieces {
            if let Some(e) = failed.take() {
                return Err(e);
            }
            let end = end.take().ok_or_else(|| {
                Error::io(&input.name, std::io::Error::other("the stream ended early"))
            })?;
            input.sha256 = Some(end.sha256);
            input.problem = end.problem;
            if input.file_size == 0 {
                input.file_size = end.bytes;
            }
        }
    }
    Ok(())
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
) -> Result<()> {
    let window = threads * 2;
    let mut ready: Option<Vec<(usize, Decoded)>> = None;
    let started = Instant::now();
    let mut packets = 0u64;
    loop {
        dataset::check_interrupt()?;
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
    let results: Vec<Result<(Vec<[u64; 3]>, write::Staged)>> = shards
        .into_par_iter()
        .map(|mut s| {
            let rest = std::mem::replace(&mut s.correlator, Correlator::new(0)).finish();
            if let Err(e) = spill(&mut s.by_status, &mut s.spool, rest) {
                s.spool.staged.abandon();
                return Err(e);
            }
            let by_status = s.by_status;
            Ok((by_status, s.spool.finish()?))
        })
        .collect();
    let mut by_status: Vec<[u64; 3]> = vec![[0; 3]; router.counts.len()];
    let mut staged = write::Staged::default();
    let mut first_err = None;
    for r in results {
        match r {
            Ok((b, st)) => {
                for (acc, x) in by_status.iter_mut().zip(b) {
                    for k in 0..3 {
                        acc[k] += x[k];
                    }
                }
                staged.absorb(st);
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

fn captures_batch(caps: &[CaptureReport], cfg: &IngestConfig) -> Result<RecordBatch> {
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
    let mut columns = vec![
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
    let same = |v: Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(caps.iter().map(|_| v.clone())))
    };
    let enrich = cfg.enrich.as_deref();
    columns.push(same(
        enrich.and_then(|e| e.geoip.as_ref()).map(|d| d.describe()),
    ));
    columns.push(same(
        enrich.and_then(|e| e.asn.as_ref()).map(|d| d.describe()),
    ));
    columns.push(same(cfg.anonymize.as_deref().map(|a| a.describe())));
    Ok(RecordBatch::try_new(schema::CAPTURES.clone(), columns)?)
}

/// `f.pcapng: frame 3: timestamp 16725225600 (seconds since 1970) is outside
/// 1900-2200, stored as 2200-01-01T00:00:00Z (2 frames in all)`.
fn out_of_range_warning(name: &str, frame: u64, raw_ns: i128, frames: u64) -> String {
    let bound = if raw_ns < 0 {
        "1900-01-01T00:00:00Z"
    } else {
        "2200-01-01T00:00:00Z"
    };
    format!(
        "{name}: frame {frame}: timestamp {} (seconds since 1970) is outside 1900-2200, \
         stored as {bound} ({frames} frame{} in all)",
        raw_ns.div_euclid(1_000_000_000),
        if frames == 1 { "" } else { "s" }
    )
}

pub fn describe_problem(p: &Problem) -> String {
    match p {
        Problem::Truncated { offset } => format!("cut off mid-record at byte offset {offset}; packets before it were ingested"),
        Problem::Corrupt { offset, what } => format!("corrupt record header at byte offset {offset} ({what}); packets before it were ingested"),
        Problem::Damaged { offset, what, cut } => format!(
            "compressed data {} ({what}); packets before byte offset {offset} of the decompressed capture were ingested",
            if *cut { "cut off" } else { "damaged" }
        ),
    }
}

/// The directory a dataset lives in: `-o`/`-d`, else `$DNSQ_DATA`, else `./dnsq-data`.
pub fn dataset_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DNSQ_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("dnsq-data"))
}
