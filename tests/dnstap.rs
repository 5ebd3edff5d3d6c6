//! dnstap reading (src/ingest/dnstap.rs) on a real file: data/dnstap.fstrm,
//! logged by Unbound through fstrm_capture while tcpdump captured the same
//! traffic (data/record-dnstap.sh). Oracles: Debian's `dnstap-ldns`
//! rendering of every message (data/dnstap.fstrm.ldns.txt), and the wire
//! capture of the same minute (data/dnstap.pcap, read by dnsq's pcap path,
//! itself checked against tshark elsewhere).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use dnsq::ingest::dnstap::{self, Stop};
use dnsq::ingest::{capture, dns, link};

/// One message as dnstap-ldns prints it: the fields it shows, and the
/// question of the DNS message it carries.
#[derive(Debug, Default, PartialEq)]
struct Printed {
    kind: String,
    query_time: String,
    response_time: String,
    protocol: String,
    query_address: String,
    response_address: String,
    query_port: String,
    response_port: String,
    identity: String,
    question: String,
}

fn ldns() -> Vec<Printed> {
    let text = std::fs::read_to_string(common::repo().join("data/dnstap.fstrm.ldns.txt")).unwrap();
    let mut out = Vec::new();
    for doc in text.split("\n---").filter(|d| d.contains("type: MESSAGE")) {
        let mut p = Printed::default();
        let field = |line: &str, key: &str| -> Option<String> {
            line.strip_prefix(key).map(|v| {
                v.trim()
                    .trim_start_matches("!!timestamp ")
                    .trim_matches('"')
                    .to_string()
            })
        };
        let mut in_question = false;
        for line in doc.lines() {
            let t = line.trim_start();
            if let Some(v) = field(line, "identity: ") {
                p.identity = v;
            } else if let Some(v) = field(line, "  type: ") {
                p.kind = v;
            } else if let Some(v) = field(line, "  query_time: ") {
                p.query_time = v;
            } else if let Some(v) = field(line, "  response_time: ") {
                p.response_time = v;
            } else if let Some(v) = field(line, "  socket_protocol: ") {
                p.protocol = v.to_lowercase();
            } else if let Some(v) = field(line, "  query_address: ") {
                p.query_address = v;
            } else if let Some(v) = field(line, "  response_address: ") {
                p.response_address = v;
            } else if let Some(v) = field(line, "  query_port: ") {
                p.query_port = v;
            } else if let Some(v) = field(line, "  response_port: ") {
                p.response_port = v;
            } else if t.starts_with(";; QUESTION SECTION:") {
                in_question = true;
            } else if in_question && t.starts_with(';') {
                // ";www.dnstap.test.\tIN\tA"
                let f: Vec<&str> = t[1..].split('\t').collect();
                p.question = format!("{} {}", f[0].trim_end_matches('.').to_lowercase(), f[2]);
                in_question = false;
            }
        }
        out.push(p);
    }
    out
}

/// `2026-11-30 20:49:06.962346` from nanoseconds since 1970, as dnstap-ldns
/// prints a timestamp (microseconds).
fn printed_time(ns: Option<i64>) -> String {
    let Some(ns) = ns else { return String::new() };
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil date from days since 1970 (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ns.rem_euclid(1_000_000_000) / 1000
    )
}

fn question(msg: Option<&Vec<u8>>) -> String {
    let Some(m) = msg.and_then(|b| dns::decode(b, true)) else {
        return String::new();
    };
    match m.question {
        Some(q) => format!(
            "{} {}",
            q.qname,
            dnsq::codes::Mnemonic::mnemonic(q.qtype).unwrap()
        ),
        None => String::new(),
    }
}

fn decoded() -> Vec<Printed> {
    let bytes = std::fs::read(common::repo().join("data/dnstap.fstrm")).unwrap();
    let mut frames = dnstap::frames(&bytes).unwrap();
    let out: Vec<Printed> = frames
        .by_ref()
        .map(|f| {
            let d = dnstap::decode(f).unwrap();
            let m = d.message.unwrap();
            let carried = if m.kind().is_response() {
                m.response_message.as_ref()
            } else {
                m.query_message.as_ref()
            };
            let show = |p: Option<u32>| p.map_or(String::new(), |p| p.to_string());
            let ip = |a: Option<std::net::IpAddr>| a.map_or(String::new(), |a| a.to_string());
            Printed {
                kind: m.kind().name(),
                query_time: printed_time(m.query_time_ns()),
                response_time: printed_time(m.response_time_ns()),
                protocol: m
                    .socket_protocol
                    .and_then(dnstap::protocol_name)
                    .unwrap_or_default()
                    .to_string(),
                query_address: ip(m.query_ip()),
                response_address: ip(m.response_ip()),
                query_port: show(m.query_port),
                response_port: show(m.response_port),
                identity: String::from_utf8(d.identity.unwrap_or_default()).unwrap(),
                question: question(carried),
            }
        })
        .collect();
    // Unbound closed its stream with a STOP frame
    assert_eq!(frames.stop, None);
    out
}

#[test]
fn every_message_reads_as_dnstap_ldns_prints_it() {
    let want = ldns();
    let got = decoded();
    assert_eq!(got.len(), want.len());
    assert!(want.len() >= 50, "{} messages", want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    // the file holds both ends of both legs
    let kinds: BTreeMap<&str, usize> = got.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.kind.as_str()).or_default() += 1;
        m
    });
    for k in [
        "CLIENT_QUERY",
        "CLIENT_RESPONSE",
        "RESOLVER_QUERY",
        "RESOLVER_RESPONSE",
    ] {
        assert!(kinds.get(k).copied().unwrap_or(0) >= 10, "{kinds:?}");
    }
}

#[test]
fn the_client_messages_are_the_ones_on_the_wire() {
    // every message the resolver logged from or to a client is a packet of the
    // capture: the same endpoints, DNS id and question, within 5 ms of its time
    let pcap = common::repo().join("data/dnstap.pcap");
    let cap = capture::Capture::open(&pcap).unwrap();
    let walk = cap.walk(usize::MAX);
    let mut wire = Vec::new();
    for chunk in &walk.chunks {
        cap.frames(chunk, |frame| {
            if let Ok(link::Packet::Whole(seg)) = link::decode_frame(&frame, &[53]) {
                let bytes = if seg.tcp.is_some() {
                    seg.payload.get(2..).unwrap_or(&[])
                } else {
                    seg.payload
                };
                if let Some(m) = dns::decode(bytes, true) {
                    wire.push((
                        frame.ts_ns,
                        seg.src,
                        seg.sport,
                        seg.dst,
                        seg.dport,
                        m.id,
                        question(Some(&bytes.to_vec())),
                    ));
                }
            }
        });
    }
    let bytes = std::fs::read(common::repo().join("data/dnstap.fstrm")).unwrap();
    let mut matched = 0;
    for f in dnstap::frames(&bytes).unwrap() {
        let m = dnstap::decode(f).unwrap().message.unwrap();
        if !m.kind().name().starts_with("CLIENT") {
            continue;
        }
        let (ts, body, from, to) = if m.kind().is_response() {
            (
                m.response_time_ns(),
                m.response_message.as_ref(),
                (m.response_ip(), m.response_port),
                (m.query_ip(), m.query_port),
            )
        } else {
            (
                m.query_time_ns(),
                m.query_message.as_ref(),
                (m.query_ip(), m.query_port),
                (m.response_ip(), m.response_port),
            )
        };
        let id = dns::decode(body.unwrap(), true).unwrap().id;
        let q = question(body);
        let hit = wire.iter().find(|w| {
            Some(w.1) == from.0
                && Some(u32::from(w.2)) == from.1
                && Some(w.3) == to.0
                && Some(u32::from(w.4)) == to.1
                && w.5 == id
                && w.6 == q
                && (w.0 - ts.unwrap()).abs() < 5_000_000
        });
        assert!(
            hit.is_some(),
            "{} {q} id {id} at {ts:?} is not on the wire",
            m.kind().name()
        );
        matched += 1;
    }
    assert!(matched >= 20, "{matched}");
}

#[test]
fn a_cut_copy_keeps_its_good_prefix_and_says_where() {
    let bytes = std::fs::read(common::repo().join("data/dnstap.fstrm")).unwrap();
    let whole = dnstap::frames(&bytes).unwrap().count();
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 13] {
        let mut r = dnstap::frames(&bytes[..cut]).unwrap();
        let n = r.by_ref().count();
        assert!(n < whole);
        match r.stop {
            Some(Stop::Cut { offset }) => assert!(offset as usize <= cut),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}
