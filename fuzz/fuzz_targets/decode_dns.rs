//! The DNS message decoder on arbitrary bytes: never panics, what it reports
//! agrees with itself, and a message hickory-proto reads whole and dnsq
//! without a fault has the same header, question, sections and TTLs in both
//! (tests/hickory.rs does the same, RDATA too, on every real message).
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
    let recs = dns::Records::of(data);
    assert!(recs.answers.len() <= msg.ancount as usize);
    assert!(recs.authority.len() <= msg.nscount as usize);
    if let Some(q) = &msg.question {
        // lower-cased presentation form, at most 255 octets on the wire
        assert!(!q.qname.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(!q.qname.is_empty());
    }
    // the same bytes without rendering give the same header and question
    let lean = dns::decode(data, false).expect("decoded once, decodes again");
    assert_eq!(lean.id, msg.id);
    assert_eq!(lean.question, msg.question);

    let Ok(h) = hickory_proto::op::Message::from_vec(data) else {
        return;
    };
    if msg.malformed {
        return;
    }
    let m = &h.metadata;
    assert_eq!(
        (msg.id, msg.flags.qr()),
        (
            m.id,
            m.message_type == hickory_proto::op::MessageType::Response
        )
    );
    assert_eq!(msg.flags.opcode().0, u8::from(m.op_code));
    assert_eq!(msg.rcode.0, u16::from(m.response_code));
    match (&msg.question, h.queries.first()) {
        (Some(q), Some(hq)) => {
            assert_eq!(q.qtype.0, u16::from(hq.query_type()));
            assert_eq!(q.qclass.0, u16::from(hq.query_class()));
        }
        (q, hq) => assert_eq!(q.is_some(), hq.is_some()),
    }
    assert_eq!(recs.answers.len(), h.answers.len());
    assert_eq!(recs.authority.len(), h.authorities.len());
    assert_eq!(
        recs.additional.len(),
        h.additionals.len() + usize::from(h.signature.is_some())
    );
    for (a, r) in recs.answers.iter().zip(&h.answers) {
        assert_eq!((a.rtype.0, a.ttl), (u16::from(r.record_type()), r.ttl));
    }
});
