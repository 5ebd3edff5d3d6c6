//! The DNS message decoder on arbitrary bytes: never panics, and what it
//! reports agrees with itself.
#![no_main]

use dnsq::ingest::dns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(msg) = dns::decode(data, true) else {
        assert!(
            data.len() < 12,
            "only a message shorter than a header is refused"
        );
        return;
    };
    assert_eq!(msg.size as usize, data.len());
    // a decode error always marks the message malformed
    assert!(msg.error.is_none() || msg.malformed);
    // rendered sections never hold more records than the header announces
    assert!(msg.answers.len() <= msg.ancount as usize);
    assert!(msg.authority.len() <= msg.nscount as usize);
    if let Some(q) = &msg.question {
        // lower-cased presentation form, at most 255 octets on the wire
        assert!(!q.qname.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(!q.qname.is_empty());
    }
    // the same bytes without rendering give the same header and question
    let lean = dns::decode(data, false).expect("decoded once, decodes again");
    assert_eq!(lean.id, msg.id);
    assert_eq!(lean.question, msg.question);
});
