//! Properties: the DNS decoder never panics on arbitrary bytes; any split,
//! reordering or duplication of a TCP byte stream yields the same messages;
//! a frame decoder fed garbage never panics.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::IpAddr;

use dnsq::ingest::capture::Frame;
use dnsq::ingest::tcp_stream::{TcpReassembler, TcpSegment};
use dnsq::ingest::{dns, link};
use proptest::prelude::*;

/// A length-prefixed DNS query for `name` with id `id`.
fn framed(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend(m);
    f
}

fn segment(frame: u64, seq: u32, payload: Vec<u8>) -> TcpSegment {
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.53".parse().unwrap();
    TcpSegment {
        ts_ns: frame as i64,
        capture: 0,
        frame,
        pos: frame,
        src: a,
        dst: b,
        sport: 40000,
        dport: 53,
        seq,
        syn: false,
        fin: false,
        rst: false,
        payload,
        tunnels: Default::default(),
    }
}

fn messages(segs: Vec<TcpSegment>) -> Vec<Vec<u8>> {
    let mut r = TcpReassembler::new();
    let mut out = vec![];
    for s in segs {
        r.push(s, &mut out);
    }
    out.into_iter().map(|m| m.bytes).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match dns::decode(&bytes, true) {
            None => prop_assert!(bytes.len() < 12, "a header's worth of bytes always decodes"),
            Some(m) => {
                // the header is read as it is on the wire
                prop_assert_eq!(m.id, u16::from_be_bytes([bytes[0], bytes[1]]));
                prop_assert_eq!(m.ancount, u16::from_be_bytes([bytes[6], bytes[7]]));
                // never more records than the header counts; all of them unless malformed
                let r = dns::Records::of(&bytes);
                prop_assert!(r.answers.len() <= usize::from(m.ancount));
                prop_assert!(r.authority.len() <= usize::from(m.nscount));
                if !m.malformed {
                    prop_assert_eq!(r.answers.len(), usize::from(m.ancount));
                    prop_assert_eq!(r.authority.len(), usize::from(m.nscount));
                }
            }
        }
    }

    #[test]
    fn frame_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), lt in prop_oneof![Just(0u32), Just(1), Just(101), Just(113), Just(276), Just(228), Just(229), Just(108)]) {
        let f = Frame { ts_ns: 0, ts_out_of_range: None, linktype: lt, number: 1, data: &bytes };
        let _ = link::decode_frame(&f, &[53]);
    }

    #[test]
    fn any_split_reorder_or_duplication_gives_the_same_messages(
        names in proptest::collection::vec("[a-z]{1,20}(\\.[a-z]{1,10}){0,3}", 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        swaps in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..6),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        isn in any::<u32>(),
    ) {
        let stream: Vec<u8> = names.iter().enumerate().flat_map(|(i, n)| framed(i as u16, n)).collect();
        let want: Vec<Vec<u8>> = names.iter().enumerate().map(|(i, n)| framed(i as u16, n)[2..].to_vec()).collect();
        // cut the stream at arbitrary points
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        points.extend([0, stream.len()]);
        points.sort();
        points.dedup();
        let mut pieces: Vec<(u32, Vec<u8>)> = points.windows(2).map(|w| (isn.wrapping_add(w[0] as u32), stream[w[0]..w[1]].to_vec())).collect();
        // reorder a little (within what the reassembler waits for) and duplicate some
        for (a, b) in &swaps {
            let (i, j) = (a.index(pieces.len()), b.index(pieces.len()));
            pieces.swap(i, j);
        }
        for d in &dups {
            let p = pieces[d.index(pieces.len())].clone();
            pieces.push(p);
        }
        let segs: Vec<TcpSegment> = pieces.into_iter().enumerate().map(|(i, (seq, p))| segment(i as u64 + 1, seq, p)).collect();
        let mut first = segment(0, isn.wrapping_sub(1), vec![]);
        first.syn = true;
        let mut all = vec![first];
        all.extend(segs);
        prop_assert_eq!(messages(all), want);
    }
}

/// Every input a fuzz target once failed on (tests/fuzz-regressions/, named
/// after the target) now decodes without a panic, and the DNS ones are flagged
/// malformed rather than read as whole.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        if name.starts_with("decode_dns-") {
            let msg = dns::decode(&bytes, true).unwrap();
            assert!(msg.malformed, "{name}: read as a whole message");
            seen += 1;
        } else if name.starts_with("decode_frame-") {
            // as fuzz/fuzz_targets/decode_frame.rs reads its input: a link
            // type selector, then frames separated by 0xfe
            let (sel, rest) = bytes.split_first().unwrap();
            for (i, data) in rest.split(|&b| b == 0xfe).enumerate() {
                let f = Frame {
                    ts_ns: 0,
                    ts_out_of_range: None,
                    linktype: link::LINKTYPES[*sel as usize % link::LINKTYPES.len()],
                    number: i as u64 + 1,
                    data,
                };
                if let Ok(link::Packet::Whole(seg)) = link::decode_frame(&f, &[53, 5353]) {
                    let _ = dns::decode(seg.payload, true);
                }
            }
            seen += 1;
        }
    }
    assert!(seen > 0, "no regression inputs found in {}", dir.display());
}
