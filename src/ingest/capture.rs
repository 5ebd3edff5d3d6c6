//! Ingest stage 1: capture file → chunks of whole records → `Frame`s.
//!
//! In: a path (or standard input). The format is recognised by its magic
//! bytes, never its name: pcap (both byte orders, micro- and nanosecond),
//! pcapng (several sections and interfaces), and dnstap (Frame Streams of
//! content type `protobuf:dnstap.Dnstap`, see `dnstap.rs`), each optionally
//! compressed with gzip, zstd or xz. Plain files are memory-mapped; compressed ones are
//! decompressed into memory.
//!
//! Out: a `Walk`: the chunks (runs of whole records, cut on record boundaries
//! by a pass that reads only record headers) that workers decode in parallel,
//! and the problem that ended the walk early, if any (a record cut off by
//! the end of the file, or a corrupt record header).

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pcap_parser::pcapng::Block;

use crate::error::{Error, Result};

/// Bytes per chunk handed to one worker.
pub const CHUNK_BYTES: usize = 4 << 20;
/// Largest legacy pcap record dnsq reads (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD),
/// whatever the file header's snapshot length says: a record header claiming
/// more is corrupt, never a reason to buffer it.
pub const MAX_RECORD: u32 = 262_144;
/// Largest pcapng block dnsq reads (16 MiB): a packet block holds at most a
/// `MAX_RECORD` packet plus its options, so a longer one is corrupt.
pub const MAX_BLOCK: usize = 16 << 20;
/// Most bytes of pcapng header blocks (section header and the interface
/// blocks in force) a stream carries in front of each piece: far beyond what
/// real captures hold (an interface block is about 100 bytes).
pub const MAX_STREAM_PREFIX: usize = 1 << 20;
/// Pieces a stream is cut into are at most this long (and at least 64 KiB).
const MAX_PIECE: usize = 64 << 20;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OPB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
/// The link type a dnstap message is given as a `Frame` (one no capture uses).
pub const LINKTYPE_DNSTAP: u32 = u32::MAX;
/// Bytes a stream reads to recognise its format: a pcap header, or a Frame
/// Streams START frame of the longest size fstrm allows.
const HEAD_BYTES: u64 = 8 + 512;

/// The bytes of one capture: a memory map, or a decompressed buffer.
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: u32,
        snaplen: u32,
    },
    PcapNg,
    /// A dnstap log: its records are logged DNS messages, not packets.
    Dnstap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl Compression {
    /// The compression a file's first bytes announce (by magic, never by name).
    pub fn of(head: &[u8]) -> Compression {
        match head.get(..6) {
            Some([0x1f, 0x8b, ..]) => Compression::Gzip,
            Some([0x28, 0xb5, 0x2f, 0xfd, ..]) => Compression::Zstd,
            Some([0xfd, b'7', b'z', b'X', b'Z', 0x00]) => Compression::Xz,
            _ => Compression::None,
        }
    }
}

/// One pcapng interface (IDB): link type and timestamp scale.
#[derive(Debug, Clone, Copy)]
pub struct Interface {
    pub linktype: u32,
    /// Timestamp units per second (`if_tsresol`, default 10^6).
    pub units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    pub offset_secs: i64,
}

/// A run of whole records, `[start, end)` bytes of the capture.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    /// Frame number (1-based, as Wireshark counts) of the first packet record.
    pub first_frame: u64,
    /// pcapng: byte order of the section and the interfaces known at `start`.
    pub big_endian: bool,
    pub interfaces: Arc<Vec<Interface>>,
}

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The last record is cut off (a capture whose writer was killed).
    Truncated { offset: u64 },
    /// A record header that cannot be right; what follows is not read.
    Corrupt { offset: u64, what: String },
    /// The compressed data ends early (`cut`: a compressor killed mid-stream)
    /// or is damaged; `offset` is where the records kept end, in the
    /// decompressed capture.
    Damaged {
        offset: u64,
        what: String,
        cut: bool,
    },
}

impl Problem {
    /// Whether the capture is damaged rather than cut short: an error (exit
    /// 1), where a cut is a warning. Either way the records before it are kept.
    pub fn is_error(&self) -> bool {
        match self {
            Problem::Truncated { .. } => false,
            Problem::Corrupt { .. } => true,
            Problem::Damaged { cut, .. } => !cut,
        }
    }
}

pub struct Walk {
    pub chunks: Vec<Chunk>,
    pub records: u64,
    pub problem: Option<Problem>,
}

/// Earliest capture time dnsq stores, 1900-01-01T00:00:00Z (ns since 1970).
pub const TS_MIN_NS: i64 = -2_208_988_800 * 1_000_000_000;
/// Latest capture time dnsq stores, 2200-01-01T00:00:00Z (ns since 1970).
pub const TS_MAX_NS: i64 = 7_258_118_400 * 1_000_000_000;

/// A frame's time in ns, within `[TS_MIN_NS, TS_MAX_NS]`, and the time as
/// read when it lay outside (then the nearest bound is kept, see docs/DESIGN.md).
/// Times are computed in i128, where no field of any capture format overflows.
pub fn clamp_ts(ns: i128) -> (i64, Option<i128>) {
    if ns < TS_MIN_NS as i128 {
        (TS_MIN_NS, Some(ns))
    } else if ns > TS_MAX_NS as i128 {
        (TS_MAX_NS, Some(ns))
    } else {
        (ns as i64, None)
    }
}

/// One captured packet, borrowed from the capture's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, ns since 1970, clamped to `[TS_MIN_NS, TS_MAX_NS]`.
    pub ts_ns: i64,
    /// The time as the capture gives it (ns since 1970) when it lies outside
    /// the years dnsq stores and `ts_ns` holds the nearest bound.
    pub ts_out_of_range: Option<i128>,
    pub linktype: u32,
    pub number: u64,
    pub data: &'a [u8],
}

pub struct Capture {
    pub path: PathBuf,
    pub bytes: Bytes,
    pub format: Format,
    pub compression: Compression,
    /// Size on disk (before decompression).
    pub file_size: u64,
}

impl Capture {
    /// Opens `path` (`-` is standard input), decompresses it if needed and
    /// recognises the format.
    pub fn open(path: &Path) -> Result<Capture> {
        let (raw, file_size) = if path.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut v)
                .map_err(|e| Error::io(path, e))?;
            let n = v.len() as u64;
            (Bytes::Owned(v), n)
        } else {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let meta = file.metadata().map_err(|e| Error::io(path, e))?;
            if meta.is_dir() {
                return Err(Error::io(path, std::io::Error::other("is a directory")));
            }
            if meta.len() == 0 {
                return Err(Error::EmptyCapture { path: path.into() });
            }
            (
                Bytes::Mapped(map(&file).map_err(|e| Error::io(path, e))?),
                meta.len(),
            )
        };
        if raw.is_empty() {
            return Err(Error::EmptyCapture { path: path.into() });
        }
        let compression = Compression::of(&raw);
        let bytes = match compression {
            Compression::None => raw,
            c => Bytes::Owned(decompress(&raw, c).map_err(|e| Error::io(path, e))?),
        };
        let format = recognise(&bytes).ok_or_else(|| Error::UnknownCapture {
            path: path.into(),
            hint: describe(&bytes),
        })?;
        Ok(Capture {
            path: path.into(),
            bytes,
            format,
            compression,
            file_size,
        })
    }

    /// Reads only the record headers and cuts the capture into chunks of about
    /// `chunk_bytes` on record boundaries.
    /// The pages of a mapped file are let go chunk by chunk as the walk
    /// passes them, so that walking a large file does not keep it in memory.
    pub fn walk(&self, chunk_bytes: usize) -> Walk {
        let walk = match self.format {
            Format::Pcap {
                big_endian,
                snaplen,
                ..
            } => walk_pcap(&self.bytes, big_endian, snaplen, chunk_bytes, &|s, e| {
                self.release(s, e)
            }),
            Format::PcapNg => walk_pcapng(&self.bytes, chunk_bytes, &|s, e| self.release(s, e)),
            Format::Dnstap => walk_dnstap(&self.bytes, chunk_bytes, &|s, e| self.release(s, e)),
        };
        self.release(0, self.bytes.len());
        walk
    }

    /// Calls `f` for every packet record of `chunk`, in file order.
    pub fn frames<'a>(&'a self, chunk: &Chunk, mut f: impl FnMut(Frame<'a>)) {
        self.frames_while(chunk, |frame| {
            f(frame);
            true
        });
    }

    /// Time of the first packet record of `chunk`; only that record is read.
    pub fn first_ts(&self, chunk: &Chunk) -> Option<i64> {
        let mut first = None;
        self.frames_while(chunk, |frame| {
            first = Some(frame.ts_ns);
            false
        });
        first
    }

    /// Calls `f` with the number and bytes of every data frame of a dnstap
    /// `chunk`, in file order.
    pub fn dnstap_frames<'a>(&'a self, chunk: &Chunk, mut f: impl FnMut(u64, &'a [u8])) {
        let data: &'a [u8] = &self.bytes[..chunk.end];
        let frames = crate::ingest::dnstap::frames_at(data, chunk.start);
        for (i, frame) in frames.enumerate() {
            f(chunk.first_frame + i as u64, frame);
        }
    }

    /// Calls `f` for the packet records of `chunk` in file order, until it returns false.
    /// A dnstap message is a frame of link type `LINKTYPE_DNSTAP` whose data
    /// is the protobuf, at the time of its own side (messages without one are skipped).
    fn frames_while<'a>(&'a self, chunk: &Chunk, mut f: impl FnMut(Frame<'a>) -> bool) {
        let data: &'a [u8] = &self.bytes;
        match self.format {
            Format::Dnstap => {
                let frames = crate::ingest::dnstap::frames_at(&data[..chunk.end], chunk.start);
                for (i, bytes) in frames.enumerate() {
                    let Ok(e) = crate::ingest::dnstap::Entry::of(bytes) else {
                        continue;
                    };
                    let (ts_ns, ts_out_of_range) = clamp_ts(e.time);
                    let frame = Frame {
                        ts_ns,
                        ts_out_of_range,
                        linktype: LINKTYPE_DNSTAP,
                        number: chunk.first_frame + i as u64,
                        data: bytes,
                    };
                    if !f(frame) {
                        return;
                    }
                }
            }
            Format::Pcap {
                big_endian,
                nanos,
                linktype,
                ..
            } => {
                let mut pos = chunk.start;
                let mut number = chunk.first_frame;
                while pos + 16 <= chunk.end {
                    let rd = |i: usize| read_u32(data, pos + i, big_endian);
                    let caplen = rd(8) as usize;
                    let frac = rd(4) as i128;
                    let (ts_ns, ts_out_of_range) = clamp_ts(
                        rd(0) as i128 * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
                    );
                    let body = &data[pos + 16..(pos + 16 + caplen).min(chunk.end)];
                    if !f(Frame {
                        ts_ns,
                        ts_out_of_range,
                        linktype,
                        number,
                        data: body,
                    }) {
                        return;
                    }
                    number += 1;
                    pos += 16 + caplen;
                }
            }
            Format::PcapNg => {
                let be = chunk.big_endian;
                let mut pos = chunk.start;
                let mut number = chunk.first_frame;
                while pos + 12 <= chunk.end {
                    let btype = read_u32(data, pos, be);
                    let blen = read_u32(data, pos + 4, be) as usize;
                    let block = &data[pos..(pos + blen).min(chunk.end)];
                    if matches!(btype, PCAPNG_EPB | PCAPNG_SPB | PCAPNG_OPB) {
                        if let Some(frame) = pcapng_frame(block, be, &chunk.interfaces, number) {
                            if !f(frame) {
                                return;
                            }
                        }
                        number += 1;
                    }
                    pos += blen.max(12);
                }
            }
        }
    }
}

impl Capture {
    /// Says that bytes `[start, end)` are done with. The pages of a mapped
    /// file then leave this process (they stay in the page cache), so that
    /// memory does not grow with the size of the capture.
    #[allow(unsafe_code)]
    pub fn release(&self, start: usize, end: usize) {
        if let Bytes::Mapped(m) = &self.bytes {
            let end = end.min(m.len());
            if end > start {
                // SAFETY: the map is a read-only shared mapping of a file: a
                // page dropped with MADV_DONTNEED is read back from the file
                // when touched again (as by a neighbouring chunk sharing it),
                // so no byte anyone reads ever changes.
                let _ = unsafe {
                    m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
                };
            }
        }
    }
}

#[allow(unsafe_code)]
pub(crate) fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and dnsq never writes to a capture (or a
    // GeoIP database, `enrich.rs`); a file truncated by another process while
    // mapped is outside what we can guard.
    unsafe { memmap2::Mmap::map(file) }
}

/// A capture read as it arrives (standard input, or a compressed file),
/// cut into pieces of whole records as it is read.
///
/// Each piece is a small capture of its own: the file's header blocks (the
/// pcap header, or the pcapng section header and interface blocks in force)
/// followed by whole records, with frame numbers continued from the pieces
/// before it. Memory holds one piece being read and the ones being decoded,
/// never the whole capture.
pub struct StreamReader {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    pub format: Format,
    pub compression: Compression,
    piece_bytes: usize,
    /// Header blocks that go before each later piece.
    prefix: Vec<u8>,
    /// Bytes read past the last whole record.
    carry: Vec<u8>,
    /// Offset in the (decompressed) stream of `carry[0]`.
    offset: u64,
    frames: u64,
    pcapng_be: bool,
    done: bool,
    /// Set when reading the file itself failed (not decompressing it).
    source_failed: Arc<AtomicBool>,
    /// What the decompressor said when it stopped, not yet reported.
    damage: Option<std::io::Error>,
    pub problem: Option<Problem>,
}

/// One piece of a stream: a capture of whole records and its chunks (more
/// than one where a pcapng section or interface list changes in it).
pub struct StreamPiece {
    pub capture: Capture,
    pub chunks: Vec<Chunk>,
    /// The bytes read from the stream for it (for a content hash).
    pub new_bytes: std::ops::Range<usize>,
}

/// The file under a decompressor: notes its own read errors, so that an I/O
/// error is told apart from damaged compressed data.
struct Source {
    inner: Box<dyn Read + Send>,
    failed: Arc<AtomicBool>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        if r.as_ref()
            .is_err_and(|e| e.kind() != std::io::ErrorKind::Interrupted)
        {
            self.failed.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl StreamReader {
    /// Opens `path` (`-` is standard input) for reading as a stream; the
    /// format is recognised from its first bytes.
    pub fn open(path: &Path, piece_bytes: usize) -> Result<StreamReader> {
        let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
        };
        let source_failed = Arc::new(AtomicBool::new(false));
        let raw = Source {
            inner: raw,
            failed: source_failed.clone(),
        };
        let mut raw = std::io::BufReader::with_capacity(1 << 20, raw);
        let head = std::io::BufRead::fill_buf(&mut raw).map_err(|e| Error::io(path, e))?;
        if head.is_empty() {
            return Err(Error::EmptyCapture { path: path.into() });
        }
        let compression = Compression::of(head);
        let mut reader: Box<dyn Read + Send> = match compression {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::io(path, e))?,
            ),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
            Compression::None => Box::new(raw),
        };
        // enough of the start to recognise the format
        let mut carry = Vec::with_capacity(HEAD_BYTES as usize);
        let damage = match (&mut reader).take(HEAD_BYTES).read_to_end(&mut carry) {
            Ok(_) => None,
            // damaged after the header: the records before the damage are kept
            Err(e) if compression != Compression::None && recognise(&carry).is_some() => Some(e),
            Err(e) => return Err(Error::io(path, e)),
        };
        let format = recognise(&carry).ok_or_else(|| Error::UnknownCapture {
            path: path.into(),
            hint: describe(&carry),
        })?;
        Ok(StreamReader {
            path: path.into(),
            reader,
            format,
            compression,
            piece_bytes: piece_bytes.clamp(64 << 10, MAX_PIECE),
            prefix: Vec::new(),
            carry,
            offset: 0,
            frames: 0,
            pcapng_be: false,
            done: false,
            source_failed,
            damage,
            problem: None,
        })
    }

    /// Reads the next piece; `None` at the end of the stream (or after a
    /// corrupt record or damaged compressed data, which `problem` then names).
    ///
    /// Memory: a piece holds the header blocks, the bytes carried over from
    /// the last one and `piece_bytes` more; a record longer than a piece is
    /// read into one piece, which record length caps (`MAX_RECORD`,
    /// `MAX_BLOCK`) and `MAX_STREAM_PREFIX` bound.
    pub fn next_piece(&mut self) -> Result<Option<StreamPiece>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(piece) = self.read_piece()? {
                return Ok(Some(piece));
            }
        }
    }

    /// One read of the stream: a piece, or `None` when no record was
    /// completed by it (read on, unless `done`).
    fn read_piece(&mut self) -> Result<Option<StreamPiece>> {
        let skip = self.prefix.len();
        let mut data = Vec::with_capacity(skip + self.carry.len() + self.piece_bytes);
        data.extend_from_slice(&self.prefix);
        data.append(&mut self.carry);
        let want = (data.len() + self.piece_bytes) as u64;
        let before = data.len();
        if self.damage.is_none() {
            if let Err(e) = (&mut self.reader)
                .take(want - data.len() as u64)
                .read_to_end(&mut data)
            {
                // what was decompressed before the error is in `data`
                if self.compression == Compression::None
                    || self.source_failed.load(Ordering::Relaxed)
                {
                    return Err(Error::io(&self.path, e));
                }
                self.damage = Some(e);
            }
        }
        let damage = self.damage.take();
        let eof = damage.is_some() || data.len() == before || (data.len() as u64) < want;
        if data.len() == skip {
            self.done = true;
            if let Some(e) = damage {
                self.problem = Some(damaged(self.offset, &e));
            }
            return Ok(None);
        }
        let capture = Capture {
            path: self.path.clone(),
            bytes: Bytes::Owned(data),
            format: self.format,
            compression: self.compression,
            file_size: 0,
        };
        let mut walk = capture.walk(usize::MAX);
        let base = self.offset;
        let at = |o: usize| base + (o - skip) as u64;
        let mut end = match walk.problem.take() {
            Some(Problem::Truncated { offset }) if !eof => offset as usize,
            None if damage.is_none() => capture.bytes.len(),
            p => {
                // the end of what can be read: the walk stopped at `end`
                self.done = true;
                let end = match &p {
                    Some(Problem::Truncated { offset } | Problem::Corrupt { offset, .. }) => {
                        *offset as usize
                    }
                    _ => capture.bytes.len(),
                };
                self.problem = Some(match (p, damage) {
                    (Some(Problem::Corrupt { what, .. }), _) => Problem::Corrupt {
                        offset: at(end),
                        what,
                    },
                    (_, Some(e)) => damaged(at(end), &e),
                    _ => Problem::Truncated { offset: at(end) },
                });
                end
            }
        };
        let d: &[u8] = &capture.bytes;
        // the header blocks every later piece starts with
        match self.format {
            Format::Pcap { .. } => {
                if self.prefix.is_empty() {
                    self.prefix = d[..24].to_vec();
                }
            }
            Format::Dnstap => {
                // the START frame (its length checked when it was recognised)
                if self.prefix.is_empty() {
                    self.prefix = d[..8 + read_u32(d, 4, true) as usize].to_vec();
                }
            }
            Format::PcapNg => {
                let mut pos = skip;
                while pos + 12 <= end {
                    let btype = read_u32(d, pos, self.pcapng_be);
                    if btype == PCAPNG_SHB {
                        self.pcapng_be = read_u32(d, pos + 8, false) != PCAPNG_BOM;
                    }
                    let blen = (read_u32(d, pos + 4, self.pcapng_be) as usize).max(12);
                    let block = &d[pos..(pos + blen).min(end)];
                    let grown = match btype {
                        PCAPNG_SHB => block.len(),
                        PCAPNG_IDB => self.prefix.len() + block.len(),
                        _ => 0,
                    };
                    if grown > MAX_STREAM_PREFIX {
                        self.done = true;
                        self.problem = Some(Problem::Corrupt {
                            offset: at(pos),
                            what: format!(
                                "section and interface blocks take over {MAX_STREAM_PREFIX} bytes"
                            ),
                        });
                        end = pos;
                        break;
                    }
                    if btype == PCAPNG_SHB {
                        self.prefix = block.to_vec();
                    } else if btype == PCAPNG_IDB {
                        self.prefix.extend_from_slice(block);
                    }
                    pos += blen;
                }
            }
        }
        self.carry = d[end..].to_vec();
        let new_bytes = skip..end;
        self.offset += (end - skip) as u64;
        let mut chunks = walk.chunks;
        chunks.retain(|c| c.start < end);
        if chunks.is_empty() {
            // nothing whole yet: read on
            return Ok(None);
        }
        for c in &mut chunks {
            c.end = c.end.min(end);
            c.first_frame += self.frames;
        }
        // (cut short above, the stream is done: no later frame is numbered)
        self.frames += walk.records;
        Ok(Some(StreamPiece {
            capture,
            chunks,
            new_bytes,
        }))
    }

    /// Bytes of the stream read so far.
    pub fn bytes_read(&self) -> u64 {
        self.offset + self.carry.len() as u64
    }

    /// What was read after the last whole record (at the end: a cut-off record).
    pub fn tail(&self) -> &[u8] {
        &self.carry
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The problem a decompressor's error makes of the stream, at `offset` in
/// the decompressed capture (the end of its last whole record).
fn damaged(offset: u64, e: &std::io::Error) -> Problem {
    Problem::Damaged {
        offset,
        what: e.to_string(),
        cut: e.kind() == std::io::ErrorKind::UnexpectedEof,
    }
}

fn decompress(raw: &[u8], c: Compression) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    match c {
        Compression::Gzip => flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out)?,
        Compression::Zstd => zstd::stream::read::Decoder::new(raw)?.read_to_end(&mut out)?,
        Compression::Xz => {
            liblzma::read::XzDecoder::new_multi_decoder(raw).read_to_end(&mut out)?
        }
        Compression::None => return Ok(raw.to_vec()),
    };
    Ok(out)
}

fn read_u32(d: &[u8], pos: usize, be: bool) -> u32 {
    let b = [d[pos], d[pos + 1], d[pos + 2], d[pos + 3]];
    if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

fn recognise(b: &[u8]) -> Option<Format> {
    if crate::ingest::dnstap::is_dnstap(b) {
        return Some(Format::Dnstap);
    }
    let head: [u8; 4] = b.get(..4)?.try_into().ok()?;
    let (le, be) = (u32::from_le_bytes(head), u32::from_be_bytes(head));
    if le == PCAPNG_SHB {
        return Some(Format::PcapNg);
    }
    let (big_endian, magic) = if le == PCAP_MAGIC_US || le == PCAP_MAGIC_NS {
        (false, le)
    } else if be == PCAP_MAGIC_US || be == PCAP_MAGIC_NS {
        (true, be)
    } else {
        return None;
    };
    if b.len() < 24 {
        return None;
    }
    let (_, header) = pcap_parser::parse_pcap_header(&b[..24]).ok()?;
    Some(Format::Pcap {
        big_endian,
        nanos: magic == PCAP_MAGIC_NS,
        linktype: header.network.0 as u32,
        snaplen: header.snaplen,
    })
}

/// A hint at what a file that is not a capture looks like.
fn describe(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
    let frame_streams;
    let kind = match b {
        [0, 0, 0, 0, ..] => match crate::ingest::dnstap::frames(b) {
            Err(e) => {
                frame_streams = format!(", {}", e.0);
                &frame_streams
            }
            Ok(_) => "",
        },
        [b'P', b'K', 3, 4, ..] => ", a zip archive?",
        [b'B', b'Z', b'h', ..] => ", bzip2 is not supported",
        [b'P', b'A', b'R', b'1', ..] => ", a Parquet file?",
        [0xd4, 0xc3, 0xb2, 0xa1, ..] | [0xa1, 0xb2, 0xc3, 0xd4, ..] => ", a pcap header cut short",
        _ if b
            .iter()
            .take(64)
            .all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace()) =>
        {
            ", a text file?"
        }
        _ => "",
    };
    format!("starts with {}{kind}", hex.join(" "))
}

fn walk_pcap(
    d: &[u8],
    be: bool,
    snaplen: u32,
    chunk_bytes: usize,
    release: &dyn Fn(usize, usize),
) -> Walk {
    let nanos_limit = if read_u32(d, 0, be) == PCAP_MAGIC_NS {
        1_000_000_000
    } else {
        1_000_000
    };
    let mut walk = Walk {
        chunks: Vec::new(),
        records: 0,
        problem: None,
    };
    let empty = Arc::new(Vec::new());
    let mut pos = 24;
    let mut chunk_start = pos;
    let mut chunk_first = 1;
    while pos < d.len() {
        if d.len() - pos < 16 {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        let caplen = read_u32(d, pos + 8, be);
        let frac = read_u32(d, pos + 4, be);
        if caplen > MAX_RECORD || frac >= nanos_limit {
            let what = if caplen > MAX_RECORD {
                format!(
                    "record length {caplen} is over {MAX_RECORD} bytes, the most a record may hold \
                     (snapshot length {snaplen})"
                )
            } else {
                format!("sub-second timestamp {frac} out of range")
            };
            walk.problem = Some(Problem::Corrupt {
                offset: pos as u64,
                what,
            });
            break;
        }
        let next = pos + 16 + caplen as usize;
        if next > d.len() {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        walk.records += 1;
        pos = next;
        if pos - chunk_start >= chunk_bytes {
            release(chunk_start, pos);
            walk.chunks.push(Chunk {
                start: chunk_start,
                end: pos,
                first_frame: chunk_first,
                big_endian: be,
                interfaces: empty.clone(),
            });
            chunk_start = pos;
            chunk_first = walk.records + 1;
        }
    }
    if pos > chunk_start {
        walk.chunks.push(Chunk {
            start: chunk_start,
            end: pos,
            first_frame: chunk_first,
            big_endian: be,
            interfaces: empty,
        });
    }
    walk
}

/// Cuts a dnstap file into chunks of whole data frames; the frames before a
/// cut or corrupt frame are kept, and the walk says where it stopped.
fn walk_dnstap(d: &[u8], chunk_bytes: usize, release: &dyn Fn(usize, usize)) -> Walk {
    use crate::ingest::dnstap::{self, Stop};
    let mut walk = Walk {
        chunks: Vec::new(),
        records: 0,
        problem: None,
    };
    let mut frames = match dnstap::frames(d) {
        Ok(f) => f,
        Err(e) => {
            walk.problem = Some(Problem::Corrupt {
                offset: 0,
                what: e.0,
            });
            return walk;
        }
    };
    let empty = Arc::new(Vec::new());
    let mut chunk_start = frames.offset() as usize;
    let mut chunk_first = 1;
    let mut end = chunk_start;
    while frames.next().is_some() {
        walk.records += 1;
        end = frames.offset() as usize;
        if end - chunk_start >= chunk_bytes {
            release(chunk_start, end);
            walk.chunks.push(Chunk {
                start: chunk_start,
                end,
                first_frame: chunk_first,
                big_endian: true,
                interfaces: empty.clone(),
            });
            chunk_start = end;
            chunk_first = walk.records + 1;
        }
    }
    if end > chunk_start {
        walk.chunks.push(Chunk {
            start: chunk_start,
            end,
            first_frame: chunk_first,
            big_endian: true,
            interfaces: empty,
        });
    }
    walk.problem = match frames.stop.take() {
        Some(Stop::Cut { offset }) => Some(Problem::Truncated { offset }),
        Some(Stop::Corrupt { offset, what }) => Some(Problem::Corrupt { offset, what }),
        None => None,
    };
    walk
}

fn walk_pcapng(d: &[u8], chunk_bytes: usize, release: &dyn Fn(usize, usize)) -> Walk {
    let mut walk = Walk {
        chunks: Vec::new(),
        records: 0,
        problem: None,
    };
    let mut be = false;
    let mut interfaces: Arc<Vec<Interface>> = Arc::new(Vec::new());
    let mut pos = 0;
    let mut chunk_start = 0;
    let mut chunk_first = 1;
    let mut chunk_be = false;
    let mut chunk_ifaces = interfaces.clone();
    let cut = |walk: &mut Walk,
               start: &mut usize,
               first: &mut u64,
               end: usize,
               cbe: bool,
               ifs: &Arc<Vec<Interface>>| {
        if end > *start {
            release(*start, end);
            walk.chunks.push(Chunk {
                start: *start,
                end,
                first_frame: *first,
                big_endian: cbe,
                interfaces: ifs.clone(),
            });
        }
        *start = end;
        *first = walk.records + 1;
    };
    while pos < d.len() {
        if d.len() - pos < 12 {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        let btype = read_u32(d, pos, false);
        if btype == PCAPNG_SHB {
            // A new section: byte order from its byte-order magic; interfaces reset.
            if d.len() - pos < 28 {
                walk.problem = Some(Problem::Truncated { offset: pos as u64 });
                break;
            }
            let bom = read_u32(d, pos + 8, false);
            be = if bom == PCAPNG_BOM {
                false
            } else if bom.swap_bytes() == PCAPNG_BOM {
                true
            } else {
                walk.problem = Some(Problem::Corrupt {
                    offset: pos as u64,
                    what: "bad section byte-order magic".into(),
                });
                break;
            };
        }
        let blen = read_u32(d, pos + 4, be) as usize;
        if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_BLOCK {
            walk.problem = Some(Problem::Corrupt {
                offset: pos as u64,
                what: format!("block length {blen} is not valid"),
            });
            break;
        }
        if pos + blen > d.len() {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        if read_u32(d, pos + blen - 4, be) != blen as u32 {
            walk.problem = Some(Problem::Corrupt {
                offset: pos as u64,
                what: "block lengths at start and end differ".into(),
            });
            break;
        }
        let btype = read_u32(d, pos, be);
        match btype {
            PCAPNG_SHB | PCAPNG_IDB => {
                // Interface tables change: start a new chunk so each chunk has one table.
                cut(
                    &mut walk,
                    &mut chunk_start,
                    &mut chunk_first,
                    pos,
                    chunk_be,
                    &chunk_ifaces,
                );
                if btype == PCAPNG_SHB {
                    interfaces = Arc::new(Vec::new());
                } else {
                    let mut v = (*interfaces).clone();
                    v.push(parse_idb(&d[pos..pos + blen], be));
                    interfaces = Arc::new(v);
                }
                chunk_be = be;
                chunk_ifaces = interfaces.clone();
            }
            PCAPNG_EPB | PCAPNG_SPB | PCAPNG_OPB => walk.records += 1,
            _ => {}
        }
        pos += blen;
        if pos - chunk_start >= chunk_bytes {
            cut(
                &mut walk,
                &mut chunk_start,
                &mut chunk_first,
                pos,
                chunk_be,
                &chunk_ifaces,
            );
        }
    }
    cut(
        &mut walk,
        &mut chunk_start,
        &mut chunk_first,
        pos,
        chunk_be,
        &chunk_ifaces,
    );
    walk
}

fn parse_idb(block: &[u8], be: bool) -> Interface {
    let parsed = if be {
        pcap_parser::pcapng::parse_block_be(block)
    } else {
        pcap_parser::pcapng::parse_block_le(block)
    };
    match parsed {
        Ok((_, Block::InterfaceDescription(idb))) => Interface {
            linktype: idb.linktype.0 as u32,
            units_per_sec: idb.ts_resolution().unwrap_or(1_000_000),
            offset_secs: idb.ts_offset(),
        },
        _ => Interface {
            linktype: u32::MAX,
            units_per_sec: 1_000_000,
            offset_secs: 0,
        },
    }
}

fn pcapng_frame<'a>(
    block: &'a [u8],
    be: bool,
    ifaces: &[Interface],
    number: u64,
) -> Option<Frame<'a>> {
    let parsed = if be {
        pcap_parser::pcapng::parse_block_be(block)
    } else {
        pcap_parser::pcapng::parse_block_le(block)
    };
    match parsed {
        Ok((_, Block::EnhancedPacket(epb))) => {
            let iface = ifaces.get(epb.if_id as usize)?;
            let units = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
            let per = iface.units_per_sec.max(1) as i128;
            // no overflow in i128: units < 2^64, if_tsoffset < 2^63 seconds
            let (ts_ns, ts_out_of_range) = clamp_ts(
                units as i128 * 1_000_000_000 / per + iface.offset_secs as i128 * 1_000_000_000,
            );
            Some(Frame {
                ts_ns,
                ts_out_of_range,
                linktype: iface.linktype,
                number,
                data: &epb.data[..(epb.caplen as usize).min(epb.data.len())],
            })
        }
        Ok((_, Block::SimplePacket(spb))) => {
            let iface = ifaces.first()?;
            Some(Frame {
                ts_ns: 0,
                ts_out_of_range: None,
                linktype: iface.linktype,
                number,
                data: &spb.data[..(spb.origlen as usize).min(spb.data.len())],
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(records: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for (i, r) in records.iter().enumerate() {
            v.extend_from_slice(&(1_428_624_000u32 + i as u32).to_le_bytes());
            v.extend_from_slice(&5u32.to_le_bytes());
            v.extend_from_slice(&(r.len() as u32).to_le_bytes());
            v.extend_from_slice(&(r.len() as u32).to_le_bytes());
            v.extend_from_slice(r);
        }
        v
    }

    #[test]
    fn chunks_cover_every_record_on_boundaries() {
        let recs: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 10 + i]).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let bytes = pcap(&refs);
        let cap = Capture {
            path: "t".into(),
            format: recognise(&bytes).expect("pcap"),
            bytes: Bytes::Owned(bytes),
            compression: Compression::None,
            file_size: 0,
        };
        let walk = cap.walk(100);
        assert!(walk.problem.is_none());
        assert_eq!(walk.records, 100);
        let mut seen = Vec::new();
        for c in &walk.chunks {
            cap.frames(c, |f| seen.push((f.number, f.data.len())));
        }
        let want: Vec<(u64, usize)> = (0..100).map(|i| (i as u64 + 1, 10 + i)).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn cut_and_corrupt_records_are_reported_with_offsets() {
        let bytes = pcap(&[b"abcd", b"efgh"]);
        let cut = bytes[..bytes.len() - 2].to_vec();
        let w = walk_pcap(&cut, false, 65535, 1 << 20, &|_, _| ());
        assert_eq!(w.records, 1);
        assert_eq!(w.problem, Some(Problem::Truncated { offset: 44 }));
        let mut bad = bytes.clone();
        bad[44 + 8..44 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let w = walk_pcap(&bad, false, 65535, 1 << 20, &|_, _| ());
        assert_eq!(w.records, 1);
        assert!(matches!(
            w.problem,
            Some(Problem::Corrupt { offset: 44, .. })
        ));
    }
    /// A pcapng block of `btype` holding `body` (padded to 32 bits), little-endian.
    fn block(btype: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().next_multiple_of(4);
        let mut v = btype.to_le_bytes().to_vec();
        v.extend((len as u32).to_le_bytes());
        v.extend(body);
        v.resize(len - 4, 0);
        v.extend((len as u32).to_le_bytes());
        v
    }

    #[test]
    fn stream_header_blocks_are_capped() {
        // a section of 20 interface blocks of about 60 KB each (a long if_description)
        let mut v = block(
            PCAPNG_SHB,
            &[
                &PCAPNG_BOM.to_le_bytes()[..],
                &[1, 0, 0, 0],
                &(-1i64).to_le_bytes(),
            ]
            .concat(),
        );
        let mut idb = vec![1, 0, 0, 0];
        idb.extend(65535u32.to_le_bytes());
        idb.extend([3, 0, 0x60, 0xea]); // if_description, 60,000 bytes
        idb.extend(vec![b'x'; 60_000]);
        idb.extend([0, 0, 0, 0]);
        let idb = block(PCAPNG_IDB, &idb);
        for _ in 0..20 {
            v.extend(&idb);
        }
        let dir = std::env::temp_dir().join(format!("dnsq-caps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("many-interfaces.pcapng");
        std::fs::write(&path, &v).unwrap();
        let mut r = StreamReader::open(&path, 64 << 10).unwrap();
        while r.next_piece().unwrap().is_some() {}
        std::fs::remove_dir_all(&dir).unwrap();
        // the interface block that would take the header blocks past 1 MiB
        let fit = (MAX_STREAM_PREFIX - 28) / idb.len();
        assert!(
            matches!(
                r.problem,
                Some(Problem::Corrupt { offset, ref what })
                    if offset == (28 + fit * idb.len()) as u64 && what.contains("1048576 bytes")
            ),
            "{:?}",
            r.problem
        );
    }
}
