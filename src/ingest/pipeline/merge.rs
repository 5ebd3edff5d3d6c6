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

#[cfg(test)]
mod tests {
    use super::*;

    /// Time of frame 1 of `data/sample.pcap`, as tshark reads it.
    const SAMPLE_FIRST_TS: i64 = 1_795_859_396_273_670_000;

    fn capture(name: &str) -> Arc<Capture> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(name);
        Arc::new(Capture::open(&path).unwrap())
    }

    /// A source of `name` cut into chunks of about `chunk_bytes`, none decoded yet.
    fn mapped(name: &str, chunk_bytes: usize) -> Source {
        let cap = capture(name);
        let walk = cap.walk(chunk_bytes);
        assert!(walk.problem.is_none());
        Source::new(Pieces::Mapped {
            cap,
            chunks: walk.chunks.into_iter(),
        })
    }

    /// A source with no pieces left to read: only what is put in its queue.
    fn drained() -> Source {
        Source::new(Pieces::Mapped {
            cap: capture("vxlan.pcap"),
            chunks: Vec::new().into_iter(),
        })
    }

    /// A decoded message of capture `capture`, frame `frame`, seen at `ts_ns`.
    fn item(capture: u32, frame: u64, ts_ns: i64) -> Item {
        let q = [0x12, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Item::Msg(Observed {
            ts_ns,
            capture,
            frame,
            src: "192.0.2.1".parse().unwrap(),
            dst: "198.51.100.53".parse().unwrap(),
            sport: 40000,
            dport: 53,
            transport: Transport::Udp,
            tunnels: Default::default(),
            msg: Box::new(dns::decode(&q, true).unwrap()),
            logged: None,
        })
    }

    /// Queues each source's `(frame, time)` items, the source's index as capture.
    fn queue(sources: &mut [Source], items: &[&[(u64, i64)]]) {
        for (i, (s, its)) in sources.iter_mut().zip(items).enumerate() {
            s.queue
                .extend(its.iter().map(|&(frame, ts)| item(i as u32, frame, ts)));
        }
    }

    /// `(capture, frame)` of each item merged.
    fn merged(sources: &mut [Source]) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        merge_ready(sources, |it| match it {
            Item::Msg(o) => out.push((o.capture, o.frame)),
            _ => panic!("only messages were queued"),
        });
        out
    }

    #[test]
    fn merge_orders_by_time_keeps_each_capture_in_order_and_ties_go_first_given() {
        let mut sources = [drained(), drained(), drained()];
        // capture 0's frame 3 is earlier than its frame 2 (a capture's clock
        // may step back): it still comes after frame 2
        queue(
            &mut sources,
            &[
                &[(1, 10), (2, 40), (3, 35)],
                &[(1, 5), (2, 10), (3, 38)],
                &[(1, 10), (2, 40)],
            ],
        );
        assert_eq!(
            merged(&mut sources),
            [
                (1, 1),
                (0, 1),
                (1, 2),
                (2, 1),
                (1, 3),
                (0, 2),
                (0, 3),
                (2, 2)
            ]
        );
        assert!(sources.iter().all(|s| s.queue.is_empty()));
        // nothing is left: merging again gives nothing
        assert_eq!(merged(&mut sources), []);
    }

    #[test]
    fn merge_stops_at_an_item_still_being_decoded() {
        let mut sources = [drained(), drained()];
        queue(&mut sources, &[&[(1, 10)], &[(1, 20), (2, 40)]]);
        // capture 0's next piece, starting at 30, is being decoded
        sources[0].in_flight.push_back(30);
        assert_eq!(merged(&mut sources), [(0, 1), (1, 1)]);
        // capture 1's item at 40 waits: capture 0 may still have one before it
        assert_eq!(sources[1].queue.len(), 1);
        assert_eq!(merged(&mut sources), []);

        // the piece comes back decoded
        sources[0].in_flight.pop_front();
        queue(&mut sources, &[&[(2, 30), (3, 45)], &[]]);
        assert_eq!(merged(&mut sources), [(0, 2), (1, 2), (0, 3)]);
    }

    #[test]
    fn merge_stops_at_a_piece_not_yet_handed_out() {
        // capture 1 has read nothing yet: its first piece starts at frame 1 of sample.pcap
        let mut sources = [drained(), mapped("sample.pcap", 16 << 10)];
        queue(
            &mut sources,
            &[
                &[
                    (1, SAMPLE_FIRST_TS - 1),
                    (2, SAMPLE_FIRST_TS),
                    (3, SAMPLE_FIRST_TS + 1),
                ],
                &[],
            ],
        );
        // a tie goes to capture 0, given first; after it capture 1's piece must be decoded first
        assert_eq!(merged(&mut sources), [(0, 1), (0, 2)]);
        assert_eq!(sources[0].queue.len(), 1);
        assert_eq!(sources[1].head(), Some((SAMPLE_FIRST_TS, false)));
    }

    #[test]
    fn merge_of_one_capture_takes_its_whole_queue() {
        // with nothing to merge with, a piece in flight holds nothing back:
        // its items come after those queued
        let mut sources = [drained()];
        queue(&mut sources, &[&[(1, 50), (2, 10)]]);
        sources[0].in_flight.push_back(5);
        assert_eq!(merged(&mut sources), [(0, 1), (0, 2)]);
        assert!(sources[0].queue.is_empty());
    }

    #[test]
    fn window_hands_out_the_earliest_pieces_first_across_captures() {
        // vxlan.pcap was recorded after sample.pcap: all of sample's pieces come first
        let mut sources = [
            mapped("vxlan.pcap", 2 << 10),
            mapped("sample.pcap", 16 << 10),
        ];
        let sample_pieces = capture("sample.pcap").walk(16 << 10).chunks.len();
        let vxlan_pieces = capture("vxlan.pcap").walk(2 << 10).chunks.len();
        assert!(sample_pieces > 5 && vxlan_pieces > 2);

        let first = next_window(&mut sources, 3);
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|(i, _)| *i == 1));
        assert_eq!(first[0].1.chunk.first_frame, 1);
        assert_eq!(first[0].1.first_ts, SAMPLE_FIRST_TS);
        // the pieces handed out are in flight, by their first times
        let times: Vec<i64> = first.iter().map(|(_, p)| p.first_ts).collect();
        assert_eq!(sources[1].in_flight, times);
        assert!(sources[0].in_flight.is_empty());

        let mut order = first.iter().map(|(i, _)| *i).collect::<Vec<_>>();
        loop {
            let w = next_window(&mut sources, 3);
            assert!(w.len() <= 3);
            if w.is_empty() {
                break;
            }
            order.extend(w.iter().map(|(i, _)| *i));
        }
        let mut expected = vec![1; sample_pieces];
        expected.extend(vec![0; vxlan_pieces]);
        assert_eq!(order, expected);
        assert_eq!(sources[0].in_flight.len(), vxlan_pieces);
        assert_eq!(sources[1].in_flight.len(), sample_pieces);
    }

    #[test]
    fn window_interleaves_captures_by_first_piece_time() {
        // one capture twice, cut differently: their pieces' times interleave
        let mut sources = [
            mapped("sample.pcap", 40 << 10),
            mapped("sample.pcap", 7 << 10),
        ];
        let mut got: Vec<(usize, i64, u64)> = Vec::new();
        loop {
            let w = next_window(&mut sources, 4);
            assert!(w.len() <= 4);
            if w.is_empty() {
                break;
            }
            got.extend(w.iter().map(|(i, p)| (*i, p.first_ts, p.chunk.first_frame)));
        }
        // earliest first; at one time the capture given first
        assert!(
            got.windows(2).all(|w| (w[0].1, w[0].0) < (w[1].1, w[1].0)),
            "{got:?}"
        );
        // the two share frame 1's piece time: capture 0's goes first
        assert_eq!(got[0], (0, SAMPLE_FIRST_TS, 1));
        assert_eq!(got[1], (1, SAMPLE_FIRST_TS, 1));
        // every piece of each, once, in its capture's order
        for (i, chunk_bytes) in [(0, 40 << 10), (1, 7 << 10)] {
            let frames: Vec<u64> = got.iter().filter(|g| g.0 == i).map(|g| g.2).collect();
            let want: Vec<u64> = capture("sample.pcap")
                .walk(chunk_bytes)
                .chunks
                .iter()
                .map(|c| c.first_frame)
                .collect();
            assert_eq!(frames, want);
        }
        // interleaved: capture 0 is not handed out all at once
        let switches = got.windows(2).filter(|w| w[0].0 != w[1].0).count();
        assert!(switches > 2, "{got:?}");
    }
}
