//! Frame Streams and dnstap decoding on arbitrary bytes: never a panic, never
//! a frame past the input, every message's DNS payload decodes or is refused
//! without a panic, and the in-place reader ingest uses (`Fields::read`)
//! gives exactly what prost's decoder gives, the input taken as one frame
//! and each frame of it.
#![no_main]

use dnsq::ingest::{dns, dnstap};
use libfuzzer_sys::fuzz_target;

/// The in-place reader agrees with prost, and an entry is made or refused.
fn same_as_prost(frame: &[u8]) {
    let theirs = dnstap::decode(frame);
    assert_eq!(
        dnstap::Fields::read(frame),
        theirs.as_ref().map(dnstap::Fields::of_decoded)
    );
    let _ = dnstap::Entry::of(frame);
}

fuzz_target!(|bytes: &[u8]| {
    same_as_prost(bytes);
    let Ok(mut frames) = dnstap::frames(bytes) else {
        return;
    };
    for frame in frames.by_ref() {
        assert!(frame.len() <= dnstap::MAX_FRAME && frame.len() <= bytes.len());
        same_as_prost(frame);
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
