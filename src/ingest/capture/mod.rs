//! Ingest stage 1: capture file → chunks of whole records → `Frame`s.
//!
//! In: a file, mapped (`Capture`), or standard input and compressed files,
//! read in pieces (`stream`). The format is recognised by its first bytes,
//! never its name (`sniff`): pcap (both byte orders, micro- and nanosecond;
//! `pcap`), pcapng (several sections and interfaces; `pcapng`), and dnstap
//! (Frame Streams of content type `protobuf:dnstap.Dnstap`; `fstrm`), each
//! optionally compressed with gzip, zstd or xz.
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

mod fstrm;
mod pcap;
mod pcapng;
mod sniff;
mod stream;

use fstrm::*;
use pcap::*;
use pcapng::*;
use sniff::*;
pub use stream::{StreamPiece, StreamReader};

/// Bytes per chunk handed to one worker. A chunk's decoded items live until
/// the chunk after next is decoded: at 1 MiB a 2 M-packet ingest on 2
/// threads took 3.30-3.38 s and peaked at 650 MiB, at 4 MiB 3.38-3.72 s and
/// 825-836 MiB (at 256 KiB the hand-offs start to cost: 4.2 s). Later, at
/// 512 KiB against 1 MiB: 3.90-4.24 s against 3.80-4.78 s (3 rounds,
/// interleaved), and a 20 M-packet ingest peaked at 502-509 MiB against
/// 519-522.
pub const CHUNK_BYTES: usize = 512 << 10;
/// How far around a page fault Linux may map the file's cached pages too:
/// `fault_around_bytes` (64 KiB by default), or the whole folio the page
/// is in, and the page cache holds files in folios of up to 2 MiB (a PMD)
/// since Linux 6.x. At 64 KiB, runs of about 100 pages (400 KiB) stayed
/// mapped past their chunks and the map's resident share grew through a
/// 20 M-packet ingest to 28 MiB after 30 s (pages read from
/// `/proc/PID/pagemap`, Linux 6.18).
const RELEASE_MARGIN: usize = 2 << 20;
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
    /// Bytes of a packet the interface kept (`snaplen`; 0: no limit).
    pub snaplen: u32,
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

/// Cuts a capture into chunks of whole records: a chunk is cut after the
/// record that makes it `chunk_bytes` long (or where pcapng's interface table
/// changes), and the pages it covers are let go as it is cut. Each chunk
/// carries the byte order and interface table in force where it starts.
pub(super) struct Chunker {
    start: usize,
    first: u64,
    big_endian: bool,
    interfaces: Arc<Vec<Interface>>,
    chunk_bytes: usize,
}

impl Chunker {
    /// Records start at `start`; no interface table (pcap, dnstap).
    pub(super) fn new(start: usize, big_endian: bool, chunk_bytes: usize) -> Chunker {
        Chunker {
            start,
            first: 1,
            big_endian,
            interfaces: Arc::new(Vec::new()),
            chunk_bytes,
        }
    }

    /// After a record that ends at `end`, counted in `walk.records`.
    pub(super) fn record(&mut self, walk: &mut Walk, end: usize, release: &dyn Fn(usize, usize)) {
        if end - self.start >= self.chunk_bytes {
            self.cut(walk, end, release);
        }
    }

    /// Ends the chunk at `end` (if it holds anything): the next one starts there.
    pub(super) fn cut(&mut self, walk: &mut Walk, end: usize, release: &dyn Fn(usize, usize)) {
        if end > self.start {
            release(self.start, end);
            walk.chunks.push(Chunk {
                start: self.start,
                end,
                first_frame: self.first,
                big_endian: self.big_endian,
                interfaces: self.interfaces.clone(),
            });
        }
        self.start = end;
        self.first = walk.records + 1;
    }

    /// The byte order and interface table of the chunks cut from here on
    /// (pcapng, after a section or interface block; `cut` first).
    pub(super) fn set_table(&mut self, big_endian: bool, interfaces: Arc<Vec<Interface>>) {
        self.big_endian = big_endian;
        self.interfaces = interfaces;
    }
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
    /// Opens and maps the file `path`, decompresses it if needed and
    /// recognises the format. (Standard input is read by [`StreamReader`].)
    pub fn open(path: &Path) -> Result<Capture> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::io(path, std::io::Error::other("is a directory")));
        }
        if meta.len() == 0 {
            return Err(Error::EmptyCapture { path: path.into() });
        }
        let (raw, file_size) = (
            Bytes::Mapped(map(&file).map_err(|e| Error::io(path, e))?),
            meta.len(),
        );
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
    ///
    /// The pages up to [`RELEASE_MARGIN`] bytes on either side go too: a fault
    /// maps the cached pages around it as well, so reading the start of one
    /// chunk mapped the end of the chunk before it, often already released
    /// by another thread, and those pages stayed. On a 20 M-packet capture
    /// (2,260 chunks of 1 MiB) that was 150-186 MiB of the map resident at
    /// the end of the ingest. A page a chunk's decoding touches lies in a
    /// folio that overlaps the chunk, so its own release takes that folio;
    /// what a neighbour is still reading is mapped again from the cache.
    #[allow(unsafe_code)]
    pub fn release(&self, start: usize, end: usize) {
        if let Bytes::Mapped(m) = &self.bytes {
            let start = start.saturating_sub(RELEASE_MARGIN);
            let end = end.saturating_add(RELEASE_MARGIN).min(m.len());
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

#[cfg(test)]
mod tests;
