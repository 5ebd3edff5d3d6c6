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
