//! A capture read as it arrives (standard input, or a compressed file), cut
//! into pieces of whole records as it is read.

use super::*;

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
pub(super) struct Source {
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
pub(super) fn damaged(offset: u64, e: &std::io::Error) -> Problem {
    Problem::Damaged {
        offset,
        what: e.to_string(),
        cut: e.kind() == std::io::ErrorKind::UnexpectedEof,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::super::pcap::tests::pcap;
    use super::super::pcapng::tests::{epb, idb, shb};
    use super::*;

    /// The smallest piece a stream reads (`piece_bytes` is clamped up to it).
    const PIECE: usize = 64 << 10;

    type Row = (u64, i64, u32, Vec<u8>);

    /// `n` records of 40 to 100 bytes (so that record boundaries fall
    /// anywhere), one second apart, and where each record starts.
    fn records(n: u32) -> (Vec<u8>, Vec<usize>, Vec<Row>) {
        let bodies: Vec<Vec<u8>> = (0..n)
            .map(|i| vec![i as u8; 40 + (i as usize * 7) % 61])
            .collect();
        let recs: Vec<(u32, u32, &[u8])> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (1_700_000_000 + i as u32, 500, b.as_slice()))
            .collect();
        let file = pcap(false, false, &recs);
        let mut starts = Vec::new();
        let mut at = 24;
        for b in &bodies {
            starts.push(at);
            at += 16 + b.len();
        }
        let rows = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let ts = (1_700_000_000 + i as i64) * 1_000_000_000 + 500_000;
                (i as u64 + 1, ts, 1, b)
            })
            .collect();
        (file, starts, rows)
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("writing a temporary file");
        path
    }

    /// Every piece of the stream at `path`.
    fn read_all(path: &Path) -> (StreamReader, Vec<StreamPiece>) {
        let mut r = StreamReader::open(path, 0).expect("a capture");
        let mut out = Vec::new();
        while let Some(p) = r.next_piece().expect("no I/O error") {
            out.push(p);
        }
        (r, out)
    }

    fn rows(pieces: &[StreamPiece]) -> Vec<Row> {
        let mut out = Vec::new();
        for p in pieces {
            for c in &p.chunks {
                p.capture.frames(c, |f| {
                    out.push((f.number, f.ts_ns, f.linktype, f.data.to_vec()))
                });
            }
        }
        out
    }

    /// The stream's bytes as the pieces read them, without their header blocks.
    fn new_bytes(pieces: &[StreamPiece]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|p| p.capture.bytes[p.new_bytes.clone()].to_vec())
            .collect()
    }

    #[test]
    fn pcap_pieces_start_with_the_header_and_number_on() {
        let (file, starts, want) = records(3000);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (r, pieces) = read_all(&write(&dir, "s.pcap", &file));
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        for p in &pieces {
            assert_eq!(p.capture.bytes[..24], file[..24]);
            // its chunks end where its whole records do (the bytes of a
            // record cut by the read are carried over to the next piece)
            assert_eq!(p.chunks.last().map(|c| c.end), Some(p.new_bytes.end));
        }
        assert_eq!(new_bytes(&pieces), file);
        assert_eq!(rows(&pieces), want);
        // the first read holds the head and one piece; the record it cuts
        // through goes whole into the next piece, numbered on
        let read = HEAD_BYTES as usize + PIECE;
        let split = starts.iter().rposition(|&s| s <= read).expect("a record");
        assert!(starts[split] < read && starts[split] + 16 + want[split].3.len() > read);
        assert_eq!(pieces[0].new_bytes, 0..starts[split]);
        assert_eq!(pieces[1].new_bytes.start, 24);
        assert_eq!(pieces[1].chunks[0].first_frame, split as u64 + 1);
        assert_eq!(
            pieces[1].capture.bytes[24..24 + 16 + want[split].3.len()],
            file[starts[split]..starts[split] + 16 + want[split].3.len()]
        );
        assert_eq!(r.problem, None);
        assert_eq!(r.tail(), b"");
        assert_eq!(r.bytes_read(), file.len() as u64);
    }

    #[test]
    fn a_real_capture_streams_as_it_maps() {
        // data/sample.pcap (see data/README.md): 270 KB, several pieces
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample.pcap"));
        let cap = Capture::open(path).expect("data/sample.pcap");
        let walk = cap.walk(CHUNK_BYTES);
        let mut mapped = Vec::new();
        for c in &walk.chunks {
            cap.frames(c, |f| {
                mapped.push((f.number, f.ts_ns, f.linktype, f.data.to_vec()))
            });
        }
        let (r, pieces) = read_all(path);
        assert!(pieces.len() >= 4, "{} pieces", pieces.len());
        assert_eq!(r.format, cap.format);
        assert_eq!((r.problem, walk.problem), (None, None));
        assert_eq!(mapped.len() as u64, walk.records);
        assert_eq!(rows(&pieces), mapped);
    }

    #[test]
    fn a_record_longer_than_a_piece_is_read_whole() {
        let big = vec![0xab; 150_000];
        let file = pcap(false, true, &[(1, 1, b"a"), (2, 2, &big), (3, 3, b"c")]);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (r, pieces) = read_all(&write(&dir, "big.pcap", &file));
        assert_eq!(r.problem, None);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].new_bytes, 0..24 + 17);
        assert_eq!(
            rows(&pieces),
            [
                (1, 1_000_000_001, 1, b"a".to_vec()),
                (2, 2_000_000_002, 1, big),
                (3, 3_000_000_003, 1, b"c".to_vec()),
            ]
        );
        assert_eq!(new_bytes(&pieces), file);
    }

    #[test]
    fn a_cut_last_record_is_left_over_at_the_end() {
        let (file, starts, want) = records(3000);
        let cut = &file[..file.len() - 5];
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (r, pieces) = read_all(&write(&dir, "cut.pcap", cut));
        let last = *starts.last().expect("records");
        assert_eq!(
            r.problem,
            Some(Problem::Truncated {
                offset: last as u64
            })
        );
        assert_eq!(r.tail(), &file[last..file.len() - 5]);
        assert_eq!(rows(&pieces), want[..2999]);
    }

    #[test]
    fn a_corrupt_record_is_named_at_its_offset_in_the_stream() {
        let (mut file, starts, want) = records(3000);
        // record 2500's incl_len claims 4 GiB: far past the first piece
        let at = starts[2499];
        assert!(at > 2 * PIECE);
        file[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (r, pieces) = read_all(&write(&dir, "bad.pcap", &file));
        assert!(
            matches!(
                r.problem,
                Some(Problem::Corrupt { offset, ref what })
                    if offset == at as u64 && what.starts_with("record length 4294967295")
            ),
            "{:?}",
            r.problem
        );
        assert_eq!(rows(&pieces), want[..2499]);
    }

    #[test]
    fn a_compressed_stream_reads_as_the_plain_one() {
        let (file, starts, want) = records(3000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&file).expect("writing to a Vec");
        let gz = gz.finish().expect("writing to a Vec");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (r, pieces) = read_all(&write(&dir, "s.pcap.gz", &gz));
        assert_eq!(r.compression, Compression::Gzip);
        assert_eq!(r.problem, None);
        assert_eq!(rows(&pieces), want);
        // cut two thirds in: the records before the cut are kept, and the
        // damage is placed at the end of the last whole one
        let (r, pieces) = read_all(&write(&dir, "cut.pcap.gz", &gz[..gz.len() * 2 / 3]));
        let kept = rows(&pieces);
        assert!(!kept.is_empty() && kept.len() < want.len());
        assert_eq!(kept, want[..kept.len()]);
        match r.problem {
            Some(Problem::Damaged { offset, cut, .. }) => {
                assert!(cut);
                assert_eq!(offset, starts[kept.len()] as u64);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn pcapng_pieces_start_with_the_blocks_in_force() {
        let head = [shb(false), idb(false, 1, &[])].concat();
        let idb1 = idb(false, 101, &[(9, &[9])]);
        let second_section = [shb(true), idb(true, 228, &[(9, &[3])])].concat();
        let mut file = head.clone();
        let mut want = Vec::new();
        let body = |i: usize| vec![i as u8; 30 + i % 50];
        for i in 0..1500 {
            file.extend(epb(false, 0, 1_000_000 + i as u64, &body(i)));
            want.push((1_000_000_000 + i as i64 * 1000, 1));
        }
        let idb1_at = file.len();
        file.extend(&idb1);
        for i in 1500..3000 {
            let iface = (i % 2) as u32;
            file.extend(epb(false, iface, 2_000_000_000 + i as u64, &body(i)));
            want.push(if iface == 0 {
                (2_000_000_000_000 + i as i64 * 1000, 1)
            } else {
                (2_000_000_000 + i as i64, 101)
            });
        }
        let section_at = file.len();
        file.extend(&second_section);
        for i in 3000..4500 {
            file.extend(epb(true, 0, 5_000 + i as u64, &body(i)));
            want.push((5_000_000_000 + i as i64 * 1_000_000, 228));
        }
        let want: Vec<Row> = want
            .into_iter()
            .enumerate()
            .map(|(i, (ts, lt))| (i as u64 + 1, ts, lt, body(i)))
            .collect();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (r, pieces) = read_all(&write(&dir, "s.pcapng", &file));
        assert_eq!(r.problem, None);
        assert!(pieces.len() >= 5, "{} pieces", pieces.len());
        assert_eq!(new_bytes(&pieces), file);
        assert_eq!(rows(&pieces), want);
        // each later piece starts with the section header and interfaces
        // in force where its own bytes start
        let mut at = pieces[0].new_bytes.end;
        let mut seen = [0; 3];
        for p in &pieces[1..] {
            let prefix = &p.capture.bytes[..p.new_bytes.start];
            let (kind, expect) = if at >= section_at {
                (2, second_section.clone())
            } else if at >= idb1_at {
                (1, [&head[..], &idb1].concat())
            } else {
                (0, head.clone())
            };
            assert_eq!(prefix, expect, "piece at stream offset {at}");
            seen[kind] += 1;
            at += p.new_bytes.len();
        }
        assert_eq!(at, file.len());
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }
}
