//! Frame Streams and dnstap decoding on arbitrary bytes: never a panic, never
//! a frame past the input, and every message's DNS payload decodes or is
//! refused without a panic.
#![no_main]

use dnsq::ingest::{dns, dnstap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(mut frames) = dnstap::frames(bytes) else {
        return;
    };
    for frame in frames.by_ref() {
        assert!(frame.len() <= dnstap::MAX_FRAME && frame.len() <= bytes.len());
        if let Some(d) = dnstap::decode(frame) {
            if let Some(m) = d.message {
                let _ = (m.query_time_ns(), m.response_time_ns(), m.query_ip(), m.response_ip());
                let _ = m.kind().name();
                for body in [&m.query_message, &m.response_message].into_iter().flatten() {
                    let _ = dns::decode(body, true);
                }
            }
        }
    }
    assert!(frames.offset() as usize <= bytes.len());
});
