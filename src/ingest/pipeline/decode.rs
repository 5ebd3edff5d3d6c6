//! Ingest stage 2, in parallel: a chunk of a capture to the items the
//! sequential stage takes, in frame order: DNS messages (UDP, dnstap), TCP
//! segments for stream reassembly, IP fragments for defragmentation; and the
//! chunk's counters.

use super::*;

/// Counters of one chunk's decoding; merged with `+=`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) packets: u64,
    pub(super) dns_messages: u64,
    pub(super) malformed: u64,
    pub(super) malformed_by: dns::MalformedCounts,
    pub(super) not_decoded: u64,
    pub(super) first_ts: Option<i64>,
    pub(super) last_ts: Option<i64>,
    /// Frames whose time lies outside the years dnsq stores (kept clamped).
    pub(super) ts_out_of_range: u64,
    /// The first of them: frame number and time as read (ns since 1970).
    pub(super) first_out_of_range: Option<(u64, i128)>,
}

impl Counts {
    /// Counts the time of record `number`: the first and last times, and a
    /// time out of range (`raw`, as read) with the first record that had one.
    pub(super) fn saw(&mut self, number: u64, ts_ns: i64, raw: Option<i128>) {
        if let Some(raw) = raw {
            self.ts_out_of_range += 1;
            if self.first_out_of_range.is_none() {
                self.first_out_of_range = Some((number, raw));
            }
        }
        self.first_ts = Some(self.first_ts.map_or(ts_ns, |t| t.min(ts_ns)));
        self.last_ts = Some(self.last_ts.map_or(ts_ns, |t| t.max(ts_ns)));
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.packets += o.packets;
        self.dns_messages += o.dns_messages;
        self.malformed += o.malformed;
        self.malformed_by += o.malformed_by;
        self.not_decoded += o.not_decoded;
        self.first_ts = match (self.first_ts, o.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = match (self.last_ts, o.last_ts) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.ts_out_of_range += o.ts_out_of_range;
        self.first_out_of_range = match (self.first_out_of_range, o.first_out_of_range) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }
}

/// What a frame holds for DNS, kept in its capture's frame order: a message
/// (UDP), a segment for TCP reassembly, or a fragment for IP reassembly.
// Nearly every item is a message: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Item {
    Msg(Observed),
    Seg(TcpSegment),
    Frag(OwnedFragment),
}

impl Item {
    pub(super) fn ts(&self) -> i64 {
        match self {
            Item::Msg(o) => o.ts_ns,
            Item::Seg(s) => s.ts_ns,
            Item::Frag(f) => f.ts_ns,
        }
    }
}

/// What one chunk decodes to.
pub(super) struct Decoded {
    pub(super) items: Vec<Item>,
    pub(super) counts: Counts,
}

/// Decodes a DNS message, counting it (and why it is malformed, if it is);
/// a response keeps its bytes for its row.
pub(super) fn observe(bytes: &[u8], n: &mut Counts, cut: bool) -> Option<Box<dns::DnsMessage>> {
    let Some(mut msg) = dns::decode(bytes, true) else {
        n.malformed += 1;
        n.malformed_by[dns::Malformed::TooShort] += 1;
        return None;
    };
    msg.malformed |= cut;
    // a response's records go to its row from its own bytes (a query's are
    // never stored)
    if msg.flags.qr() && (msg.ancount, msg.nscount, msg.arcount) != (0, 0, 0) {
        msg.wire = Some(bytes.into());
    }
    if let Some(e) = msg.error {
        n.malformed_by[dns::Malformed::Decode(e)] += 1;
    } else if cut {
        n.malformed_by[dns::Malformed::Cut] += 1;
    }
    n.dns_messages += 1;
    n.malformed += msg.malformed as u64;
    Some(Box::new(msg))
}

/// A UDP payload is decoded into a message now; a TCP segment is kept whole
/// for stream reassembly.
pub(super) fn route(
    seg: &link::Segment<'_>,
    ts_ns: i64,
    capture: u32,
    frame: u64,
    n: &mut Counts,
) -> Option<Item> {
    match seg.tcp {
        None => observe(seg.payload, n, seg.cut).map(|msg| {
            Item::Msg(Observed {
                ts_ns,
                capture,
                frame,
                src: seg.src,
                dst: seg.dst,
                sport: seg.sport,
                dport: seg.dport,
                transport: Transport::Udp,
                tunnels: seg.tunnels,
                msg,
                logged: None,
            })
        }),
        Some(t) => Some(Item::Seg(TcpSegment {
            ts_ns,
            capture,
            frame,
            // set when the segment takes its place in the merged stream
            pos: 0,
            src: seg.src,
            dst: seg.dst,
            sport: seg.sport,
            dport: seg.dport,
            seq: t.seq,
            syn: t.syn,
            fin: t.fin,
            rst: t.rst,
            payload: seg.payload.to_vec(),
            tunnels: seg.tunnels,
        })),
    }
}

/// Room for the items of a chunk, reserved at once: a DNS packet record
/// takes about 80 bytes or more (headers and a question), and pages of the
/// room never written are never touched. Growing by doubling instead copied
/// every item about twice, into freshly zeroed pages.
fn items_in(chunk: &Chunk) -> usize {
    (chunk.end - chunk.start) / 80
}

/// Decodes one chunk into its items, in frame order.
pub(super) fn decode_chunk(cap: &Capture, cap_idx: u32, chunk: &Chunk, ports: &[u16]) -> Decoded {
    if cap.format == capture::Format::Dnstap {
        return decode_dnstap_chunk(cap, cap_idx, chunk);
    }
    let mut items = Vec::with_capacity(items_in(chunk));
    let mut n = Counts::default();
    cap.frames(chunk, |frame| {
        n.packets += 1;
        n.saw(frame.number, frame.ts_ns, frame.ts_out_of_range);
        match link::decode_frame(&frame, ports) {
            Ok(Packet::Whole(seg)) => {
                items.extend(route(&seg, frame.ts_ns, cap_idx, frame.number, &mut n));
            }
            Ok(Packet::Fragment(f)) => items.push(Item::Frag(OwnedFragment::new(
                &f,
                frame.ts_ns,
                cap_idx,
                frame.number,
            ))),
            Err(Skip::OtherPort | Skip::NotIp) => {}
            Err(Skip::UnknownLink(_) | Skip::Malformed) => n.not_decoded += 1,
        }
    });
    Decoded { items, counts: n }
}

/// Decodes one chunk of a dnstap log: each message its server logged is a
/// message seen at the time logged for its side, between the addresses and
/// ports logged, whatever its port (a log holds only DNS). A message without
/// its DNS bytes or its time is counted as not decoded.
pub(super) fn decode_dnstap_chunk(cap: &Capture, cap_idx: u32, chunk: &Chunk) -> Decoded {
    let mut items = Vec::with_capacity(items_in(chunk));
    let mut n = Counts::default();
    // nearly every message of a log carries the same identity: one copy
    let mut identity: Option<(&[u8], u32)> = None;
    cap.dnstap_frames(chunk, |number, frame| {
        n.packets += 1;
        let Ok(e) = dnstap::Entry::of(frame) else {
            n.not_decoded += 1;
            return;
        };
        let (ts_ns, raw) = capture::clamp_ts(e.time);
        n.saw(number, ts_ns, raw);
        let Some(msg) = observe(e.dns, &mut n, false) else {
            return;
        };
        let server = match (e.identity, identity) {
            (None, _) => 0,
            (Some(id), Some((bytes, number))) if bytes == id => number,
            (Some(id), _) => {
                let number = dnstap::server_number(id);
                identity = Some((id, number));
                number
            }
        };
        items.push(Item::Msg(Observed {
            ts_ns,
            capture: cap_idx,
            frame: number,
            src: e.src.0,
            dst: e.dst.0,
            sport: e.src.1,
            dport: e.dst.1,
            transport: Transport::of_dnstap(e.protocol),
            tunnels: Default::default(),
            msg,
            logged: Some(Logged {
                kind: e.kind,
                server,
                query_ts_ns: e.query_time.map(|t| capture::clamp_ts(t).0),
            }),
        }));
    });
    Decoded { items, counts: n }
}
