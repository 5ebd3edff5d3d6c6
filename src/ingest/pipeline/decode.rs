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
///
/// `datagram`: the message came alone (UDP), so it is its response's only
/// message. Such a response's records are not checked here but as they are
/// rendered into its row (`batch::build`), which counts it malformed then if
/// they do not parse: checking them here as well cost 3.0% of an ingest's
/// instructions (docs/DESIGN.md, stage 2). A stream's responses are checked
/// now, since a zone transfer's later messages join an earlier one's row.
pub(super) fn observe(
    bytes: &[u8],
    n: &mut Counts,
    cut: bool,
    datagram: bool,
) -> Option<Box<dns::DnsMessage>> {
    // a response's records go to its row from its own bytes (a query's are
    // never stored)
    let keep = bytes.len() >= dns::HEADER_LEN && bytes[2] & 0x80 != 0 && bytes[6..12] != [0; 6];
    let Some(mut msg) = dns::decode(bytes, !(keep && datagram)) else {
        n.malformed += 1;
        n.malformed_by[dns::Malformed::TooShort] += 1;
        return None;
    };
    msg.cut = cut;
    msg.malformed |= cut;
    if keep {
        msg.wire = Some(bytes.into());
    }
    n.dns_messages += 1;
    // an unchecked one is counted when its row is built
    if !msg.unchecked {
        if let Some(reason) = dns::Malformed::of(msg.error, cut) {
            n.malformed_by[reason] += 1;
        }
        n.malformed += msg.malformed as u64;
    }
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
        None => observe(seg.payload, n, seg.cut, true).map(|msg| {
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
        let transport = Transport::of_dnstap(e.protocol);
        let Some(msg) = observe(e.dns, &mut n, false, !transport.is_stream()) else {
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
            transport,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Capture {
        Capture::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap")).unwrap()
    }

    /// Kind, frame and time of each item.
    fn summary(items: &[Item]) -> Vec<(char, u64, i64)> {
        items
            .iter()
            .map(|it| match it {
                Item::Msg(o) => ('m', o.frame, o.ts_ns),
                Item::Seg(s) => ('s', s.frame, s.ts_ns),
                Item::Frag(f) => ('f', f.frame, f.ts_ns),
            })
            .collect()
    }

    /// The whole capture as one chunk, and its chunks of about `chunk_bytes`.
    fn whole_and_chunked(cap: &Capture, chunk_bytes: usize) -> (Decoded, Vec<Decoded>) {
        let whole = cap.walk(usize::MAX).chunks;
        assert_eq!(whole.len(), 1);
        let whole = decode_chunk(cap, 0, &whole[0], &[53]);
        let chunks = cap.walk(chunk_bytes).chunks;
        assert!(chunks.len() > 50, "{} chunks", chunks.len());
        let parts = chunks
            .iter()
            .map(|c| decode_chunk(cap, 0, c, &[53]))
            .collect();
        (whole, parts)
    }

    /// `(frame, id, response)` of each UDP DNS message tshark lists in sample.pcap.
    fn tshark_udp() -> Vec<(u64, u16, bool)> {
        let tsv = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap.tshark.tsv"),
        )
        .unwrap();
        tsv.lines()
            .skip(1)
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| !f[6].is_empty())
            .map(|f| {
                let id = u16::from_str_radix(f[10].trim_start_matches("0x"), 16).unwrap();
                (f[0].parse().unwrap(), id, f[11] == "1")
            })
            .collect()
    }

    #[test]
    fn chunks_decode_to_the_items_and_counts_of_the_whole_capture() {
        let cap = sample();
        let (whole, parts) = whole_and_chunked(&cap, 2 << 10);
        let mut items = Vec::new();
        let mut n = Counts::default();
        for d in parts {
            // each chunk's items are in frame order already
            assert!(summary(&d.items).windows(2).all(|w| w[0].1 <= w[1].1));
            items.extend(d.items);
            n += d.counts;
        }
        assert_eq!(items.len(), whole.items.len());
        assert_eq!(summary(&items), summary(&whole.items));

        let w = whole.counts;
        // 2604 frames, as tshark numbers them
        assert_eq!(w.packets, 2604);
        assert_eq!(
            (n.packets, n.dns_messages, n.malformed, n.not_decoded),
            (w.packets, w.dns_messages, w.malformed, w.not_decoded)
        );
        assert_eq!(n.malformed_by, w.malformed_by);
        assert_eq!((n.first_ts, n.last_ts), (w.first_ts, w.last_ts));
        assert_eq!(w.first_ts, Some(1_795_859_396_273_670_000));
        assert_eq!(w.last_ts, Some(1_795_859_409_724_500_000));
        assert_eq!((n.ts_out_of_range, n.first_out_of_range), (0, None));
    }

    #[test]
    fn every_udp_message_is_decoded_as_tshark_reads_it() {
        let cap = sample();
        let d = decode_chunk(&cap, 3, &cap.walk(usize::MAX).chunks[0], &[53]);
        let msgs: Vec<(u64, u16, bool)> = d
            .items
            .iter()
            .filter_map(|it| match it {
                Item::Msg(o) => {
                    assert_eq!(o.capture, 3);
                    assert_eq!(o.transport, Transport::Udp);
                    assert!(o.msg.question.is_some(), "frame {}", o.frame);
                    assert!(!o.msg.malformed, "frame {}", o.frame);
                    Some((o.frame, o.msg.id, o.msg.flags.qr()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(msgs, tshark_udp());
        // the DNS over TCP is handed on as segments, for reassembly
        assert!(d.items.iter().any(|it| matches!(it, Item::Seg(_))));
        // UDP messages are counted when decoded (TCP ones after reassembly)
        assert_eq!(d.counts.dns_messages, msgs.len() as u64);
    }

    #[test]
    fn a_response_with_records_keeps_its_bytes_and_a_query_does_not() {
        let cap = sample();
        let d = decode_chunk(&cap, 0, &cap.walk(usize::MAX).chunks[0], &[53]);
        let (mut queries, mut responses) = (0, 0);
        for it in &d.items {
            let Item::Msg(o) = it else { continue };
            let m = &o.msg;
            if !m.flags.qr() {
                assert!(m.wire.is_none(), "query in frame {}", o.frame);
                queries += 1;
            } else if (m.ancount, m.nscount, m.arcount) != (0, 0, 0) {
                // the bytes kept are the message's own
                let wire = m.wire.as_deref().unwrap();
                assert_eq!(wire.len(), m.size as usize);
                let again = dns::decode(wire, true).unwrap();
                assert_eq!((again.id, &again.question), (m.id, &m.question));
                assert_eq!(again.ancount, m.ancount);
                responses += 1;
            }
        }
        assert!(queries > 100 && responses > 100, "{queries} {responses}");
    }

    /// `www.example.test A`: a query, or a response with `answers` A records.
    fn message(response: bool, answers: u8) -> Vec<u8> {
        let flags: [u8; 2] = if response { [0x81, 0x80] } else { [0x01, 0x00] };
        let mut m = vec![0xab, 0xcd, flags[0], flags[1], 0, 1, 0, answers, 0, 0, 0, 0];
        m.extend(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
        for i in 0..answers {
            m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, i]);
        }
        m
    }

    #[test]
    fn observe_counts_each_malformed_message_by_its_reason() {
        let mut n = Counts::default();
        // shorter than a header: dropped
        assert!(observe(&[0xab, 0xcd, 0x01, 0, 0], &mut n, false, false).is_none());
        assert_eq!((n.dns_messages, n.malformed), (0, 1));
        assert_eq!(n.malformed_by[dns::Malformed::TooShort], 1);
        assert_eq!(n.malformed_by[dns::Malformed::Cut], 0);

        // whole and well formed: counted, not malformed
        let mut n = Counts::default();
        let m = observe(&message(false, 0), &mut n, false, false).unwrap();
        assert!(!m.malformed);
        assert_eq!((n.dns_messages, n.malformed), (1, 0));
        assert_eq!(n.malformed_by, dns::MalformedCounts::default());

        // a UDP payload cut short that still reads whole: malformed as cut
        let m = observe(&message(false, 0), &mut n, true, false).unwrap();
        assert!(m.malformed);
        assert_eq!(m.question.as_ref().unwrap().qname, "www.example.test");
        assert_eq!((n.dns_messages, n.malformed), (2, 1));
        assert_eq!(n.malformed_by[dns::Malformed::Cut], 1);
        assert_eq!(n.malformed_by[dns::Malformed::TooShort], 0);

        // cut inside its answer: counted by the decode error, not as cut too
        let mut n = Counts::default();
        let whole = message(true, 1);
        let m = observe(&whole[..whole.len() - 3], &mut n, true, false).unwrap();
        assert_eq!(m.error, Some(dns::DecodeError::Truncated));
        assert_eq!((n.dns_messages, n.malformed), (1, 1));
        let truncated = dns::Malformed::Decode(dns::DecodeError::Truncated);
        assert_eq!(n.malformed_by[truncated], 1);
        assert_eq!(n.malformed_by[dns::Malformed::Cut], 0);
    }

    #[test]
    fn observe_keeps_the_bytes_of_a_response_with_records_only() {
        let mut n = Counts::default();
        let response = message(true, 2);
        let m = observe(&response, &mut n, false, false).unwrap();
        assert_eq!(m.wire.as_deref(), Some(&response[..]));
        // a query, and a response without records, keep none
        assert!(observe(&message(false, 0), &mut n, false, false)
            .unwrap()
            .wire
            .is_none());
        assert!(observe(&message(true, 0), &mut n, false, false)
            .unwrap()
            .wire
            .is_none());
        assert_eq!((n.dns_messages, n.malformed), (3, 0));
    }

    #[test]
    fn a_datagram_response_is_checked_when_its_row_is_built() {
        // an answer whose A record holds 3 octets: its RDATA does not parse
        let mut bad = message(true, 1);
        let at = bad.len() - 6;
        bad[at..at + 2].copy_from_slice(&[0, 3]);
        bad.pop();
        let mut n = Counts::default();
        let checked = observe(&bad, &mut n, false, false).unwrap();
        assert_eq!(checked.error, Some(dns::DecodeError::BadRdata));
        assert!(checked.malformed && !checked.unchecked);
        assert_eq!((n.dns_messages, n.malformed), (1, 1));

        // over UDP the same response is counted, but not judged, here
        let mut n = Counts::default();
        let m = observe(&bad, &mut n, false, true).unwrap();
        assert!(m.unchecked && !m.malformed && m.error.is_none());
        assert_eq!((n.dns_messages, n.malformed), (1, 0));
        assert_eq!(n.malformed_by, dns::MalformedCounts::default());
        // rendering its records finds what the checking decode found
        let fault = m.for_each_record(&mut |_, _| {});
        assert_eq!(fault, checked.error);

        // a query is checked here whatever it came over
        let m = observe(&message(false, 0), &mut n, false, true).unwrap();
        assert!(!m.unchecked);
    }
}
