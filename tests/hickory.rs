//! dnsq's DNS decoder against hickory-proto's, an independent one, on every
//! DNS message of the project's captures and logs (and of the shared corpus
//! when it sits beside the checkout): every message hickory reads whole,
//! dnsq reads to the same header, rcode (EDNS bits folded in), question,
//! section lengths, record owners, types, classes' TTLs, and the RDATA of the
//! types whose presentation both write alike (A, AAAA, NS, CNAME, PTR, DNAME,
//! MX). Names are compared lower-cased when they hold only the letters,
//! digits and punctuation both spell the same way.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use dnsq::ingest::{capture, dns, dnstap, link};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record};

/// DNS messages of a capture: UDP payloads, and TCP segments that hold one
/// whole length-prefixed message.
fn messages_of_capture(path: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(cap) = capture::Capture::open(path) else {
        return;
    };
    let walk = cap.walk(usize::MAX);
    let ports = [53, 5353, 5355, 8053];
    for chunk in &walk.chunks {
        cap.frames(chunk, |frame| {
            if let Ok(link::Packet::Whole(seg)) = link::decode_frame(&frame, &ports) {
                let body = match seg.tcp {
                    None => seg.payload,
                    Some(_) => match seg.payload {
                        [a, b, rest @ ..]
                            if usize::from(u16::from_be_bytes([*a, *b])) == rest.len() =>
                        {
                            rest
                        }
                        _ => return,
                    },
                };
                if body.len() >= 12 {
                    out.push(body.to_vec());
                }
            }
        });
    }
}

fn messages_of_log(path: &Path, out: &mut Vec<Vec<u8>>) {
    let bytes = std::fs::read(path).unwrap();
    for f in dnstap::frames(&bytes).unwrap() {
        let m = dnstap::decode(f).unwrap().message.unwrap();
        out.extend(m.query_message.into_iter().chain(m.response_message));
    }
}

fn captures_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            captures_under(&p, out);
        } else if [".pcap", ".pcapng", ".cap", ".pcap.gz"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            out.push(p);
        }
    }
}

/// A name both decoders spell the same way: lower-cased, no trailing dot
/// (the root is `.`); `None` when it holds a byte one of them escapes.
fn plain(name: &str) -> Option<String> {
    let n = name.to_ascii_lowercase();
    let n = if n == "." {
        n
    } else {
        n.trim_end_matches('.').to_string()
    };
    n.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.*/".contains(&b))
        .then_some(n)
}

/// The RDATA of the types both write alike, in one form.
fn rdata_of_hickory(r: &Record) -> Option<String> {
    match &r.data {
        RData::A(a) => Some(a.to_string()),
        RData::AAAA(a) => Some(a.to_string()),
        RData::NS(n) => plain(&n.0.to_string()),
        RData::CNAME(n) => plain(&n.0.to_string()),
        RData::PTR(n) => plain(&n.0.to_string()),
        RData::MX(mx) => plain(&mx.exchange.to_string()).map(|e| format!("{} {e}", mx.preference)),
        _ => None,
    }
}

fn rdata_of_dnsq(rtype: u16, data: &str) -> Option<String> {
    match rtype {
        1 | 28 => Some(data.to_string()),
        2 | 5 | 12 | 39 => plain(data),
        15 => {
            let (pref, name) = data.split_once(' ')?;
            plain(name).map(|n| format!("{pref} {n}"))
        }
        _ => None,
    }
}

#[derive(Default, Debug)]
struct Tally {
    messages: usize,
    hickory_whole: usize,
    compared: usize,
    dnsq_malformed: usize,
    records: usize,
    rdata: usize,
}

/// Compares one message; returns what differs.
fn compare(bytes: &[u8], t: &mut Tally) -> Vec<String> {
    t.messages += 1;
    let Ok(h) = Message::from_vec(bytes) else {
        return vec![];
    };
    t.hickory_whole += 1;
    let d = dns::decode(bytes, true).expect("hickory read a header: so must dnsq");
    // the records as a row renders them
    let recs = dns::Records::of(bytes);
    if d.malformed {
        // dnsq reads records hickory takes as opaque more strictly (e.g. a bad
        // RDATA of a known type); it keeps what it can, and says so
        t.dnsq_malformed += 1;
        return vec![];
    }
    t.compared += 1;
    let mut diff = Vec::new();
    let mut check = |what: &str, a: String, b: String| {
        if a != b {
            diff.push(format!("{what}: dnsq {a} hickory {b}"));
        }
    };
    let m = &h.metadata;
    check("id", d.id.to_string(), m.id.to_string());
    check(
        "flags",
        format!(
            "qr{} op{} aa{} tc{} rd{} ra{} ad{} cd{}",
            d.flags.qr(),
            d.flags.opcode().0,
            d.flags.aa(),
            d.flags.tc(),
            d.flags.rd(),
            d.flags.ra(),
            d.flags.ad(),
            d.flags.cd()
        ),
        format!(
            "qr{} op{} aa{} tc{} rd{} ra{} ad{} cd{}",
            m.message_type == hickory_proto::op::MessageType::Response,
            u8::from(m.op_code),
            m.authoritative,
            m.truncation,
            m.recursion_desired,
            m.recursion_available,
            m.authentic_data,
            m.checking_disabled
        ),
    );
    check(
        "rcode",
        d.rcode.0.to_string(),
        u16::from(m.response_code).to_string(),
    );
    match (h.queries.first(), &d.question) {
        (Some(q), Some(dq)) => {
            if let (Some(a), Some(b)) = (plain(&dq.qname), plain(&q.name().to_string())) {
                check("qname", a, b);
            }
            check(
                "qtype",
                dq.qtype.0.to_string(),
                u16::from(q.query_type()).to_string(),
            );
            check(
                "qclass",
                dq.qclass.0.to_string(),
                u16::from(q.query_class()).to_string(),
            );
        }
        (None, None) => {}
        (q, dq) => check(
            "question",
            format!("{:?}", dq.is_some()),
            format!("{:?}", q.is_some()),
        ),
    }
    let extra = usize::from(h.signature.is_some());
    check(
        "sections",
        format!(
            "{} {} {}",
            recs.answers.len(),
            recs.authority.len(),
            recs.additional.len()
        ),
        format!(
            "{} {} {}",
            h.answers.len(),
            h.authorities.len(),
            h.additionals.len() + extra
        ),
    );
    check(
        "edns",
        d.edns.is_some().to_string(),
        h.edns.is_some().to_string(),
    );
    for (ours, theirs) in [
        (&recs.answers, &h.answers),
        (&recs.authority, &h.authorities),
        (&recs.additional, &h.additionals),
    ] {
        for (a, r) in ours.iter().zip(theirs.iter()) {
            t.records += 1;
            if let (Some(x), Some(y)) = (plain(&a.name), plain(&r.name.to_string())) {
                check("owner", x, y);
            }
            check(
                "type",
                a.rtype.0.to_string(),
                u16::from(r.record_type()).to_string(),
            );
            check("ttl", a.ttl.to_string(), r.ttl.to_string());
            if let (Some(x), Some(y)) = (rdata_of_dnsq(a.rtype.0, &a.data), rdata_of_hickory(r)) {
                t.rdata += 1;
                check("rdata", x, y);
            }
        }
    }
    diff
}

#[test]
fn every_message_hickory_reads_dnsq_reads_alike() {
    let mut sources = Vec::new();
    captures_under(&common::repo().join("data"), &mut sources);
    captures_under(&common::repo().join("tests/corpus"), &mut sources);
    let corpus = common::shared_captures();
    if let Some(c) = &corpus {
        captures_under(c, &mut sources);
    }
    let mut msgs = Vec::new();
    for p in &sources {
        messages_of_capture(p, &mut msgs);
    }
    messages_of_log(&common::repo().join("data/dnstap.fstrm"), &mut msgs);
    messages_of_log(&common::repo().join("data/dnstap-knot.fstrm"), &mut msgs);

    let mut t = Tally::default();
    let mut differs = Vec::new();
    for m in &msgs {
        let d = compare(m, &mut t);
        if !d.is_empty() && differs.len() < 20 {
            differs.push(format!("{d:?} in {}", data_encoding::HEXLOWER.encode(m)));
        }
    }
    eprintln!(
        "{} sources (corpus {}), {t:?}",
        sources.len(),
        if corpus.is_some() { "read" } else { "absent" }
    );
    assert!(differs.is_empty(), "{}", differs.join("\n"));
    // the project's own captures alone hold thousands of messages, records and RDATA
    assert!(
        t.compared >= 2000 && t.records >= 2000 && t.rdata >= 1000,
        "{t:?}"
    );
}
