//! TCP stream reassembly on arbitrary segment sequences: any sequence numbers,
//! flags, overlaps, gaps and directions. Never panics, never emits a message
//! that does not carry its own 2-byte length.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use dnsq::ingest::tcp_stream::{TcpReassembler, TcpSegment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53));
    let mut r = TcpReassembler::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut frame = 0u64;
    // each segment: flags (1), sequence number (4), payload length (1), payload
    while rest.len() >= 6 {
        let flags = rest[0];
        let seq = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = (rest[5] as usize).min(rest.len() - 6);
        let payload = rest[6..6 + len].to_vec();
        rest = &rest[6 + len..];
        frame += 1;
        let reply = flags & 8 != 0;
        let (src, dst, sport, dport) = if reply {
            (server, client, 53, 40000 + u16::from(flags >> 6))
        } else {
            (client, server, 40000 + u16::from(flags >> 6), 53)
        };
        r.push(
            TcpSegment {
                ts_ns: frame as i64 * 1_000_000,
                capture: u32::from(flags >> 5 & 1),
                frame,
                pos: frame,
                src,
                dst,
                sport,
                dport,
                seq,
                syn: flags & 1 != 0,
                fin: flags & 2 != 0,
                rst: flags & 4 != 0,
                payload,
                tunnels: Default::default(),
            },
            &mut out,
        );
        // holes older than three segments are given up on, as the ingest
        // does with holes older than two seconds
        if flags & 16 != 0 {
            r.skip_stale_gaps(frame as i64 * 1_000_000 - 3_000_000, &mut out);
        }
        if let Some(p) = r.min_pending_pos() {
            assert!(p <= frame, "held data from a segment not yet seen");
        }
        for m in out.drain(..) {
            assert!(m.frame <= frame);
            assert!(m.bytes.len() >= 12, "a message is at least a DNS header");
        }
    }
    let _ = r.finish();
});
