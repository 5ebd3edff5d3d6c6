//! Opening the inputs: files, directories of them and standard input, each
//! mapped and walked into chunks, or read as a stream.

use super::*;

/// A capture ready to be read: a mapped file already walked into chunks (its
/// content hash, SHA-256 in hex, is filled in by `ingest_opened`, before the
/// ingest or beside it: [`Hashing`]), or a stream (standard input, a
/// compressed file) read piece by piece.
pub(super) enum Opened {
    Mapped(Capture, capture::Walk, Option<String>),
    Stream(Box<StreamReader>, Option<StreamPiece>),
}

impl Opened {
    pub(super) fn open(p: &Path, chunk_bytes: usize) -> Result<Opened> {
        // a pipe given by name (`<(tcpdump -w - …)`) is read as a stream
        let regular = p.as_os_str() != "-" && std::fs::metadata(p).is_ok_and(|m| m.is_file());
        if regular && !is_compressed(p)? {
            let c = Capture::open(p)?;
            let w = c.walk(chunk_bytes);
            return Ok(Opened::Mapped(c, w, None));
        }
        let mut r = StreamReader::open(p, chunk_bytes)?;
        let first = r.next_piece()?;
        Ok(Opened::Stream(Box::new(r), first))
    }

    /// Time of the first packet: only the first chunk is read.
    pub(super) fn first_timestamp(&self) -> Option<i64> {
        let (c, chunks) = match self {
            Opened::Mapped(c, w, _) => (c, &w.chunks),
            Opened::Stream(_, p) => {
                let p = p.as_ref()?;
                (&p.capture, &p.chunks)
            }
        };
        chunks.iter().find_map(|chunk| c.first_ts(chunk))
    }

    pub(super) fn path(&self) -> &Path {
        match self {
            Opened::Mapped(c, ..) => &c.path,
            Opened::Stream(r, _) => r.path(),
        }
    }
}

/// SHA-256 of a capture's (decompressed) bytes, read a slice at a time so
/// that a mapped file's pages do not stay in memory.
pub(super) fn content_hash(c: &Capture) -> String {
    const SLICE: usize = 16 << 20;
    let mut h = Sha256::new();
    for start in (0..c.bytes.len()).step_by(SLICE) {
        let end = (start + SLICE).min(c.bytes.len());
        h.update(&c.bytes[start..end]);
        c.release(start, end);
    }
    hex(&h.finalize())
}

/// A mapped capture's content hash, computed on a thread of its own (outside
/// the pool: a pool thread would be kept from decoding for the whole pass).
#[derive(Default)]
pub(super) struct Hashing(Option<std::thread::JoinHandle<String>>);

impl Hashing {
    pub(super) fn start(cap: Arc<Capture>) -> Hashing {
        Hashing(Some(std::thread::spawn(move || content_hash(&cap))))
    }

    /// The hash, if it is done.
    pub(super) fn done(&mut self) -> Option<String> {
        if self.0.as_ref().is_some_and(|h| h.is_finished()) {
            self.wait()
        } else {
            None
        }
    }

    /// The hash, waiting for it; `None` if none was started or it was taken.
    pub(super) fn wait(&mut self) -> Option<String> {
        let h = self.0.take()?;
        Some(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    }
}

/// Whether a file starts with the magic of gzip, zstd or xz.
pub(super) fn is_compressed(p: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 6];
    let mut f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let n = f.read(&mut head).map_err(|e| Error::io(p, e))?;
    Ok(capture::Compression::of(&head[..n]) != capture::Compression::None)
}

/// Expands directories into the captures they hold (files that are not
/// captures are listed in `not_captures`) and opens each: a mapped file is
/// walked into chunks of `chunk_bytes`, once.
pub(super) fn open_inputs(
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

pub(super) fn describe_format(
    format: capture::Format,
    compression: capture::Compression,
) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_opens_its_captures_in_time_order_and_names_the_rest() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let t = tempfile::tempdir().unwrap();
        // named so that name order is not time order: vxlan.pcap was recorded later
        std::fs::copy(repo.join("data/vxlan.pcap"), t.path().join("a.pcap")).unwrap();
        std::fs::copy(repo.join("data/sample.pcap"), t.path().join("b.pcap")).unwrap();
        std::fs::copy(repo.join("data/dnstap.fstrm"), t.path().join("c.log")).unwrap();
        std::fs::write(t.path().join("notes.txt"), "not a capture").unwrap();
        std::fs::write(t.path().join(".hidden"), "skipped").unwrap();
        let mut not = Vec::new();
        let opened = open_inputs(&[t.path().to_path_buf()], 1 << 20, &mut not).unwrap();
        let times: Vec<i64> = opened
            .iter()
            .map(|o| o.first_timestamp().unwrap())
            .collect();
        assert_eq!(opened.len(), 3);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(not.len(), 1);
        assert!(not[0].contains("notes.txt"), "{not:?}");
        // a file that does not exist is an error naming it, not a skip
        let missing = t.path().join("gone.pcap");
        let e = open_inputs(&[missing], 1 << 20, &mut not).err().unwrap();
        assert!(e.to_string().contains("gone.pcap"), "{e}");
    }
}
