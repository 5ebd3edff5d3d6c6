//! The frame decoder (link, IP, UDP/TCP) on arbitrary bytes under every link
//! type dnsq reads, down to the DNS decoder and IP fragment reassembly.
#![no_main]

use dnsq::ingest::capture::Frame;
use dnsq::ingest::dns;
use dnsq::ingest::ip::{Defragmenter, OwnedFragment};
use dnsq::ingest::link::{self, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut defrag = Defragmenter::new();
    // the input is one frame, or several when it holds 0xff 0xfe separators,
    // so that fragments of one datagram can meet
    for (i, bytes) in rest.split(|&b| b == 0xfe).enumerate() {
        let frame = Frame {
            ts_ns: i as i64 * 1_000,
            ts_out_of_range: None,
            linktype: link::LINKTYPES[sel as usize % link::LINKTYPES.len()],
            number: i as u64 + 1,
            data: bytes,
        };
        match link::decode_frame(&frame, &[53, 5353]) {
            Ok(Packet::Whole(seg)) => {
                assert!(seg.payload.len() <= bytes.len());
                let _ = dns::decode(seg.payload, true);
            }
            Ok(Packet::Fragment(f)) => {
                let owned = OwnedFragment::new(&f, frame.ts_ns, 0, frame.number);
                if let Some(d) = defrag.push(owned) {
                    if let Ok(Packet::Whole(seg)) = link::decode_datagram(
                        d.src, d.dst, d.proto, &d.payload, false, &[53], d.tunnels,
                    ) {
                        let _ = dns::decode(seg.payload, true);
                    }
                }
            }
            Err(_) => {}
        }
    }
    let _ = defrag.finish();
});
