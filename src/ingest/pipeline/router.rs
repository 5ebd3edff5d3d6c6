//! The sequential stage: IP and TCP reassembly, then every message, in the
//! order of the frames that carry it, to the pairing shard of its endpoints;
//! and the shards that pair and spool.

use super::*;

/// The sequential stage: IP and TCP reassembly, then each message, in the
/// order of the frames that carry it, to the pairing shard of its endpoints.
pub(super) struct Router {
    pub(super) ports: Vec<u16>,
    pub(super) defrag: Defragmenter,
    pub(super) tcp: TcpReassembler,
    pub(super) stream_msgs: Vec<StreamMessage>,
    pub(super) counts: Vec<Counts>,
    /// Items merged so far: the position of the next one in the stream.
    pub(super) pos: u64,
    /// Messages not yet sent to a shard, with the position of their frame. A
    /// TCP message that waited behind a hole in its stream comes out after
    /// frames that follow it; it goes back in its place here.
    pub(super) held: Vec<(u64, Observed)>,
    /// Latest time of an item seen.
    pub(super) latest_ts: i64,
    /// Per shard: (time to expire to first, message).
    pub(super) inputs: Vec<Vec<(i64, Observed)>>,
    /// Per shard: latest time among the messages other shards got since its last one.
    pub(super) gap_max: Vec<i64>,
}

impl Router {
    pub(super) fn item(&mut self, it: Item) {
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

    pub(super) fn segment(&mut self, mut s: TcpSegment, pos: u64) {
        s.pos = pos;
        self.tcp.push(s, &mut self.stream_msgs);
        self.take_stream_msgs();
    }

    /// Decodes the messages TCP reassembly gave and holds them for `release`.
    pub(super) fn take_stream_msgs(&mut self) {
        let mut msgs = std::mem::take(&mut self.stream_msgs);
        for m in msgs.drain(..) {
            let n = &mut self.counts[m.capture as usize];
            if let Some(msg) = observe(&m.bytes, n, false, false) {
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
    pub(super) fn release(&mut self, all: bool) {
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
    pub(super) fn dispatch(&mut self, o: Observed) {
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
pub(super) struct Shard {
    pub(super) correlator: Correlator,
    pub(super) spool: write::Spool,
    /// Per capture: answered, unanswered, response only.
    pub(super) by_status: Vec<[u64; 3]>,
}

impl Shard {
    /// Pairs one window's messages; `expire_to` is the latest time the other
    /// shards saw after this shard's last message. `input` is left empty with
    /// its capacity, for the next window.
    pub(super) fn run(&mut self, input: &mut Vec<(i64, Observed)>, expire_to: i64) -> Result<()> {
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
pub(super) fn spill(
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
pub(super) const HOLD_NS: i64 = 2_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn message(src: &str, sport: u16, dst: &str, dport: u16, ts_ns: i64) -> Observed {
        let q = [0x12, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Observed {
            ts_ns,
            capture: 0,
            frame: 1,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport,
            dport,
            transport: Transport::Udp,
            tunnels: Default::default(),
            msg: Box::new(dns::decode(&q, true).unwrap()),
            logged: None,
        }
    }

    fn router(shards: usize) -> Router {
        Router {
            ports: vec![53],
            defrag: Defragmenter::new(),
            tcp: TcpReassembler::new(),
            stream_msgs: Vec::new(),
            counts: vec![Counts::default()],
            pos: 0,
            held: Vec::new(),
            latest_ts: i64::MIN,
            inputs: (0..shards).map(|_| Vec::new()).collect(),
            gap_max: vec![i64::MIN; shards],
        }
    }

    #[test]
    fn both_directions_go_to_one_shard_and_the_others_hear_the_time() {
        let mut r = router(4);
        for i in 0..64u16 {
            let client = format!("192.0.2.{}", i + 1);
            r.dispatch(message(&client, 40000 + i, "198.51.100.53", 53, 10));
            r.dispatch(message("198.51.100.53", 53, &client, 40000 + i, 20));
        }
        // each shard holds whole conversations: a query and its answer
        let mut used = 0;
        for input in &r.inputs {
            assert_eq!(input.len() % 2, 0);
            for pair in input.chunks(2) {
                assert_eq!(
                    (pair[0].1.src, pair[0].1.sport),
                    (pair[1].1.dst, pair[1].1.dport)
                );
            }
            used += usize::from(!input.is_empty());
        }
        assert!(used >= 3, "64 conversations over 4 shards use {used}");
        // a shard learns the latest time the others saw, to expire its own queries
        assert!(r.gap_max.iter().all(|&g| g == 20 || g == i64::MIN));
    }
}
