//! The captures' pieces on their way to the decoders, and their decoded items
//! merged back into one stream in time order (each capture in its own order).

use super::*;

/// A run of whole records of one capture, waiting to be decoded.
pub(super) struct Piece {
    pub(super) cap: Arc<Capture>,
    pub(super) chunk: Chunk,
    /// Time of its first record (`i64::MIN` when it holds none).
    pub(super) first_ts: i64,
}

impl Piece {
    pub(super) fn new(cap: Arc<Capture>, chunk: Chunk) -> Piece {
        let first_ts = cap.first_ts(&chunk).unwrap_or(i64::MIN);
        Piece {
            cap,
            chunk,
            first_ts,
        }
    }
}

/// What a stream's reading thread hands on.
pub(super) enum Feed {
    Piece(Arc<Capture>, Chunk),
    /// The end of the stream: its content hash, size and what stopped it early.
    End(StreamEnd),
    Failed(Error),
}

#[derive(Clone)]
pub(super) struct StreamEnd {
    pub(super) sha256: String,
    pub(super) bytes: u64,
    pub(super) problem: Option<Problem>,
}

/// Pieces read ahead of the decoders by a stream's own thread.
pub(super) const STREAM_AHEAD: usize = 2;

/// Reads a stream on a thread of its own (decompressing it there), handing
/// on pieces while the rest of the ingest works.
pub(super) fn spawn_reader(
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
pub(super) enum Pieces {
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
pub(super) struct Source {
    pub(super) pieces: Pieces,
    pub(super) peeked: Option<Piece>,
    /// First times of the pieces handed out and not yet back.
    pub(super) in_flight: VecDeque<i64>,
    pub(super) queue: VecDeque<Item>,
}

impl Source {
    pub(super) fn new(pieces: Pieces) -> Source {
        Source {
            pieces,
            peeked: None,
            in_flight: VecDeque::new(),
            queue: VecDeque::new(),
        }
    }

    pub(super) fn peek_ts(&mut self) -> Option<i64> {
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
    pub(super) fn head(&mut self) -> Option<(i64, bool)> {
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
pub(super) fn next_window(sources: &mut [Source], size: usize) -> Vec<(usize, Piece)> {
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
pub(super) fn merge_ready(sources: &mut [Source], mut f: impl FnMut(Item)) {
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

/// Takes each stream's content hash, size and problem from its end; a
/// stream that failed fails the ingest.
pub(super) fn streams_ended(sources: &mut [Source], inputs: &mut [Input]) -> Result<()> {
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
