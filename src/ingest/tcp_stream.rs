//! Ingest stage 2b: per-flow TCP reassembly and DNS framing (RFC 1035 §4.2.2, RFC 7766).
//!
//! In: the TCP segments of DNS flows, in time order. Out: whole DNS messages,
//! each stamped with the frame that completes it (where Wireshark shows it).
//! Handles several messages per segment, a message over many segments,
//! retransmitted and overlapping segments, segments out of order, streams
//! whose handshake is not in the capture, and gaps: the bytes after a gap are
//! scanned for the next plausible message and the loss is counted.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::ingest::tunnel::Tunnels;

/// One TCP segment, copied out of its frame (DNS over TCP is a small share of traffic).
#[derive(Debug, Clone)]
pub struct TcpSegment {
    pub ts_ns: i64,
    pub capture: u32,
    pub frame: u64,
    /// Position in the ingest's merged stream of frames (any increasing count):
    /// messages are stamped with it so that the caller can put them in order.
    pub pos: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: Vec<u8>,
    /// What was peeled off to reach it.
    pub tunnels: Tunnels,
}

/// A whole DNS message taken from a stream.
#[derive(Debug, Clone)]
pub struct StreamMessage {
    pub ts_ns: i64,
    pub capture: u32,
    pub frame: u64,
    /// `pos` of the segment that completes the message.
    pub pos: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub bytes: Vec<u8>,
    /// What was peeled off the segment that completes it.
    pub tunnels: Tunnels,
}

/// What reassembly could not use; counted per capture of the segment that showed it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Losses {
    /// Holes in a stream that never filled.
    pub gaps: u64,
    /// Partial messages left when a stream ended or its state was dropped.
    pub partial: u64,
}

type Key = (IpAddr, u16, IpAddr, u16);

/// Out-of-order data held per direction before the hole is called a gap.
const MAX_PENDING_BYTES: usize = 256 * 1024;
const MAX_PENDING_SEGMENTS: usize = 64;
/// Streams kept at most; beyond this, streams idle for `IDLE_NS` are dropped.
const MAX_STREAMS: usize = 100_000;
const IDLE_NS: i64 = 120 * 1_000_000_000;
/// Smallest message worth the name: a header and a root question.
const MIN_MESSAGE: usize = 12;

/// Where and when a piece of stream data was seen.
#[derive(Debug, Clone, Copy)]
struct Seen {
    ts_ns: i64,
    capture: u32,
    frame: u64,
    pos: u64,
    tunnels: Tunnels,
}

#[derive(Default)]
struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
    pending: Vec<(u32, Vec<u8>, Seen)>,
    pending_bytes: usize,
    /// After a gap the message boundaries are unknown until one parses.
    resync: bool,
    last_ts: i64,
}

#[derive(Default)]
pub struct TcpReassembler {
    streams: foldhash::HashMap<Key, Stream>,
    losses: HashMap<u32, Losses>,
    /// No out-of-order data held is older than this (`None`: none held).
    oldest_pending: Option<i64>,
}

impl TcpReassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one segment; complete messages are appended to `out`.
    pub fn push(&mut self, mut seg: TcpSegment, out: &mut Vec<StreamMessage>) {
        // the bytes move into the stream; the rest of `seg` stamps the messages
        let payload = std::mem::take(&mut seg.payload);
        let key = (seg.src, seg.sport, seg.dst, seg.dport);
        if self.streams.len() >= MAX_STREAMS && !self.streams.contains_key(&key) {
            let now = seg.ts_ns;
            let before = self.streams.len();
            self.streams
                .retain(|_, s| now.saturating_sub(s.last_ts) < IDLE_NS);
            if self.streams.len() == before {
                self.streams.clear();
            }
        }
        let seen = Seen {
            ts_ns: seg.ts_ns,
            capture: seg.capture,
            frame: seg.frame,
            pos: seg.pos,
            tunnels: seg.tunnels,
        };
        let stream = self.streams.entry(key).or_default();
        stream.last_ts = seg.ts_ns;
        let loss = self.losses.entry(seg.capture).or_default();
        let mut emit = |stream: &mut Stream, data: &[u8], seen: Seen| {
            stream.take_messages(data, seen, &seg, out)
        };
        if seg.syn {
            if !stream.buf.is_empty() {
                loss.partial += 1;
            }
            *stream = Stream {
                next_seq: Some(seg.seq.wrapping_add(1)),
                last_ts: seg.ts_ns,
                ..Stream::default()
            };
        } else if !payload.is_empty() {
            stream.next_seq.get_or_insert(seg.seq);
            stream.add(seg.seq, payload, seen, &mut emit);
            if stream.pending.len() > MAX_PENDING_SEGMENTS
                || stream.pending_bytes > MAX_PENDING_BYTES
            {
                stream.skip_gap(&mut emit);
                loss.gaps += 1;
            }
            if !stream.pending.is_empty() {
                let t = self.oldest_pending.get_or_insert(seg.ts_ns);
                *t = (*t).min(seg.ts_ns);
            }
        }
        if seg.fin || seg.rst {
            // the holes will not fill now: take what follows them
            while !stream.pending.is_empty() {
                stream.skip_gap(&mut emit);
                loss.gaps += 1;
            }
            if !stream.buf.is_empty() {
                loss.partial += 1;
            }
            self.streams.remove(&key);
        }
    }

    /// Gives up on every hole that has waited since before `ts_limit`: the
    /// data after it is read (its messages appended to `out`) and the hole
    /// counted as a gap. Bounds how long out-of-order data holds messages back.
    pub fn skip_stale_gaps(&mut self, ts_limit: i64, out: &mut Vec<StreamMessage>) {
        if self.oldest_pending.is_none_or(|t| t >= ts_limit) {
            return;
        }
        for (key, stream) in self.streams.iter_mut() {
            while let Some(seen) = stream
                .pending
                .iter()
                .map(|(_, _, s)| *s)
                .find(|s| s.ts_ns < ts_limit)
            {
                // the stream's addresses for the messages that come out
                let seg = TcpSegment {
                    ts_ns: seen.ts_ns,
                    capture: seen.capture,
                    frame: seen.frame,
                    pos: seen.pos,
                    src: key.0,
                    sport: key.1,
                    dst: key.2,
                    dport: key.3,
                    seq: 0,
                    syn: false,
                    fin: false,
                    rst: false,
                    payload: Vec::new(),
                    tunnels: seen.tunnels,
                };
                let mut emit = |st: &mut Stream, data: &[u8], seen: Seen| {
                    st.take_messages(data, seen, &seg, out)
                };
                let before = stream.pending.len();
                stream.skip_gap(&mut emit);
                self.losses.entry(seen.capture).or_default().gaps += 1;
                if stream.pending.len() >= before {
                    break;
                }
            }
        }
        self.oldest_pending = self
            .streams
            .values()
            .flat_map(|s| s.pending.iter().map(|(_, _, seen)| seen.ts_ns))
            .min();
    }

    /// The earliest `pos` among the out-of-order data held back: a message
    /// that comes out later may carry it, none will carry an earlier one.
    pub fn min_pending_pos(&self) -> Option<u64> {
        self.streams
            .values()
            .flat_map(|s| s.pending.iter().map(|(_, _, seen)| seen.pos))
            .min()
    }

    /// Ends the input; returns the losses per capture.
    pub fn finish(mut self) -> HashMap<u32, Losses> {
        for s in self.streams.values() {
            if let Some((_, _, seen)) = s.pending.first() {
                self.losses.entry(seen.capture).or_default().gaps += 1;
            }
        }
        self.losses
    }
}

impl Stream {
    /// Places `data` at sequence number `seq`; whatever now follows on is read.
    fn add(
        &mut self,
        seq: u32,
        data: Vec<u8>,
        seen: Seen,
        emit: &mut impl FnMut(&mut Stream, &[u8], Seen),
    ) {
        let next = self.next_seq.unwrap_or(seq);
        if seq.wrapping_sub(next) as i32 > 0 {
            self.pending_bytes += data.len();
            self.pending.push((seq, data, seen));
            return;
        }
        self.append_from(seq, &data, seen, emit);
        // out-of-order segments that now follow on
        loop {
            let next = self.next_seq.unwrap_or(0);
            let Some(i) = self
                .pending
                .iter()
                .position(|(s, _, _)| s.wrapping_sub(next) as i32 <= 0)
            else {
                break;
            };
            let (s, d, own) = self.pending.swap_remove(i);
            self.pending_bytes -= d.len();
            // a message completes with whichever arrived last: this piece or the one that filled the hole
            let at = if own.pos > seen.pos { own } else { seen };
            self.append_from(s, &d, at, emit);
        }
    }

    /// Appends the part of `data` (starting at `seq`, at or before `next_seq`) not yet read.
    fn append_from(
        &mut self,
        seq: u32,
        data: &[u8],
        seen: Seen,
        emit: &mut impl FnMut(&mut Stream, &[u8], Seen),
    ) {
        let next = self.next_seq.unwrap_or(seq);
        let overlap = next.wrapping_sub(seq) as usize;
        if overlap < data.len() {
            self.next_seq = Some(next.wrapping_add((data.len() - overlap) as u32));
            emit(self, &data[overlap..], seen);
        }
    }

    /// Gives up on the hole before the earliest pending segment.
    fn skip_gap(&mut self, emit: &mut impl FnMut(&mut Stream, &[u8], Seen)) {
        let next = self.next_seq.unwrap_or(0);
        let Some(earliest) = self
            .pending
            .iter()
            .map(|(s, _, _)| *s)
            .min_by_key(|s| s.wrapping_sub(next))
        else {
            return;
        };
        self.buf.clear();
        self.resync = true;
        self.next_seq = Some(earliest);
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        for (s, d, seen) in pending {
            self.add(s, d, seen, emit);
        }
    }

    /// Appends `data` to the buffer and takes every whole length-prefixed
    /// message off its front, stamped with `seen`.
    fn take_messages(
        &mut self,
        data: &[u8],
        seen: Seen,
        seg: &TcpSegment,
        out: &mut Vec<StreamMessage>,
    ) {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            if self.resync {
                match find_message_start(&self.buf[pos..]) {
                    Some(i) => {
                        pos += i;
                        self.resync = false;
                    }
                    None => {
                        // keep the tail: a message may start in it
                        pos = self
                            .buf
                            .len()
                            .saturating_sub(2 + MIN_MESSAGE + 255)
                            .max(pos);
                        break;
                    }
                }
            }
            let rest = &self.buf[pos..];
            if rest.len() < 2 {
                break;
            }
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            if len < MIN_MESSAGE {
                // not a length prefix: framing lost, look for the next message
                self.resync = true;
                pos += 1;
                continue;
            }
            if rest.len() < 2 + len {
                break;
            }
            out.push(StreamMessage {
                ts_ns: seen.ts_ns,
                capture: seen.capture,
                frame: seen.frame,
                pos: seen.pos,
                src: seg.src,
                dst: seg.dst,
                sport: seg.sport,
                dport: seg.dport,
                bytes: rest[2..2 + len].to_vec(),
                tunnels: seen.tunnels,
            });
            pos += 2 + len;
        }
        self.buf.drain(..pos);
    }
}

/// The first offset where a 2-byte length and a plausible DNS header start:
/// one question, sane counts, a known opcode, and the message's first name
/// well-formed.
fn find_message_start(b: &[u8]) -> Option<usize> {
    (0..b.len().saturating_sub(2 + MIN_MESSAGE)).find(|&i| {
        let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        let h = &b[i + 2..];
        if len < MIN_MESSAGE + 5 || h.len() < MIN_MESSAGE {
            return false;
        }
        let qd = u16::from_be_bytes([h[4], h[5]]);
        let opcode = (h[2] >> 3) & 0xf;
        let mut name_end = MIN_MESSAGE;
        // the question name: plain labels only, inside the message
        loop {
            let Some(&l) = h.get(name_end) else {
                return false;
            };
            if l == 0 {
                break;
            }
            if l > 63 || name_end + 1 + l as usize >= len {
                return false;
            }
            name_end += 1 + l as usize;
        }
        qd == 1 && opcode <= 6 && name_end + 5 <= len
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u16, name: &str) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut framed = (m.len() as u16).to_be_bytes().to_vec();
        framed.extend(m);
        framed
    }

    fn seg(frame: u64, seq: u32, payload: &[u8]) -> TcpSegment {
        TcpSegment {
            ts_ns: frame as i64,
            capture: 0,
            frame,
            pos: frame,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.53".parse().unwrap(),
            sport: 40000,
            dport: 53,
            seq,
            syn: false,
            fin: false,
            rst: false,
            payload: payload.to_vec(),
            tunnels: Tunnels::default(),
        }
    }

    fn ids(out: &[StreamMessage]) -> Vec<(u16, u64)> {
        out.iter()
            .map(|m| (u16::from_be_bytes([m.bytes[0], m.bytes[1]]), m.frame))
            .collect()
    }

    #[test]
    fn split_merged_reordered_and_retransmitted() {
        let stream: Vec<u8> = [
            message(1, "a.example"),
            message(2, "bb.example"),
            message(3, "c.example"),
        ]
        .concat();
        let mut r = TcpReassembler::new();
        let mut out = vec![];
        let (a, b) = stream.split_at(10);
        let (b, c) = b.split_at(30);
        r.push(seg(1, 1000, a), &mut out);
        r.push(seg(2, 1000 + 40, c), &mut out); // out of order
        r.push(seg(3, 1000, a), &mut out); // retransmission
        r.push(seg(4, 1000 + 10, b), &mut out); // fills the hole
        assert_eq!(ids(&out), vec![(1, 4), (2, 4), (3, 4)]);
        assert_eq!(
            r.finish().get(&0).copied().unwrap_or_default(),
            Losses::default()
        );
    }

    #[test]
    fn a_gap_is_skipped_to_the_next_message() {
        let m1 = message(1, "a.example");
        let m2 = message(2, "b.example");
        let m3 = message(3, "c.example");
        let mut r = TcpReassembler::new();
        let mut out = vec![];
        r.push(seg(1, 0, &m1[..5]), &mut out);
        // the rest of m1 is never seen; m2 and m3 arrive, then the stream ends
        let off = m1.len() as u32;
        r.push(seg(2, off, &m2), &mut out);
        r.push(seg(3, off + m2.len() as u32, &m3), &mut out);
        let mut fin = seg(4, off + (m2.len() + m3.len()) as u32, &[]);
        fin.fin = true;
        r.push(fin, &mut out);
        assert_eq!(ids(&out), vec![(2, 2), (3, 3)]);
        assert_eq!(r.finish()[&0].gaps, 1);
    }
}
