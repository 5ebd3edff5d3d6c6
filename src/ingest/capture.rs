//! Ingest stage 1: capture file → chunks of whole records → `Frame`s.
//!
//! In: a path (or standard input). The format is recognised by its magic
//! bytes, never its name: pcap (both byte orders, micro- and nanosecond),
//! pcapng (several sections and interfaces), each optionally compressed with
//! gzip, zstd or xz. Plain files are memory-mapped; compressed ones are
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
use std::sync::Arc;

use pcap_parser::pcapng::Block;

use crate::error::{Error, Result};

/// Bytes per chunk handed to one worker.
pub const CHUNK_BYTES: usize = 4 << 20;
/// Largest record a sane capture holds (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD).
const MAX_RECORD: u32 = 262_144;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OPB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
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
}

pub struct Walk {
    pub chunks: Vec<Chunk>,
    pub records: u64,
    pub problem: Option<Problem>,
}

/// One captured packet, borrowed from the capture's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts_ns: i64,
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
        let compression = match raw.get(..6) {
            Some([0x1f, 0x8b, ..]) => Compression::Gzip,
            Some([0x28, 0xb5, 0x2f, 0xfd, ..]) => Compression::Zstd,
            Some([0xfd, b'7', b'z', b'X', b'Z', 0x00]) => Compression::Xz,
            _ => Compression::None,
        };
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
    pub fn walk(&self, chunk_bytes: usize) -> Walk {
        match self.format {
            Format::Pcap {
                big_endian,
                snaplen,
                ..
            } => walk_pcap(&self.bytes, big_endian, snaplen, chunk_bytes),
            Format::PcapNg => walk_pcapng(&self.bytes, chunk_bytes),
        }
    }

    /// Calls `f` for every packet record of `chunk`, in file order.
    pub fn frames<'a>(&'a self, chunk: &Chunk, mut f: impl FnMut(Frame<'a>)) {
        let data: &'a [u8] = &self.bytes;
        match self.format {
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
                    let frac = rd(4) as i64;
                    let ts_ns =
                        rd(0) as i64 * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
                    let body = &data[pos + 16..(pos + 16 + caplen).min(chunk.end)];
                    f(Frame {
                        ts_ns,
                        linktype,
                        number,
                        data: body,
                    });
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
                            f(frame);
                        }
                        number += 1;
                    }
                    pos += blen.max(12);
                }
            }
        }
    }
}

#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and dnsq never writes to a capture; a capture
    // truncated by another process while mapped is outside what we can guard.
    unsafe { memmap2::Mmap::map(file) }
}

fn decompress(raw: &[u8], c: Compression) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    match c {
        Compression::Gzip => flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out)?,
        Compression::Zstd => zstd::stream::read::Decoder::new(raw)?.read_to_end(&mut out)?,
        Compression::Xz => xz2::read::XzDecoder::new_multi_decoder(raw).read_to_end(&mut out)?,
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
    let kind = match b {
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

fn walk_pcap(d: &[u8], be: bool, snaplen: u32, chunk_bytes: usize) -> Walk {
    let max_caplen = snaplen.max(MAX_RECORD);
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
        if caplen > max_caplen || frac >= nanos_limit {
            let what = if caplen > max_caplen {
                format!("record length {caplen} exceeds the snapshot length {snaplen}")
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

fn walk_pcapng(d: &[u8], chunk_bytes: usize) -> Walk {
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
        if blen < 12 || blen % 4 != 0 || blen > 16 << 20 {
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
            let per = iface.units_per_sec.max(1) as u128;
            let ns =
                (units as u128 * 1_000_000_000 / per) as i64 + iface.offset_secs * 1_000_000_000;
            Some(Frame {
                ts_ns: ns,
                linktype: iface.linktype,
                number,
                data: &epb.data[..(epb.caplen as usize).min(epb.data.len())],
            })
        }
        Ok((_, Block::SimplePacket(spb))) => {
            let iface = ifaces.first()?;
            Some(Frame {
                ts_ns: 0,
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
        let w = walk_pcap(&cut, false, 65535, 1 << 20);
        assert_eq!(w.records, 1);
        assert_eq!(w.problem, Some(Problem::Truncated { offset: 44 }));
        let mut bad = bytes.clone();
        bad[44 + 8..44 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let w = walk_pcap(&bad, false, 65535, 1 << 20);
        assert_eq!(w.records, 1);
        assert!(matches!(
            w.problem,
            Some(Problem::Corrupt { offset: 44, .. })
        ));
    }
}
