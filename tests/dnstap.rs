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

/// The messages of `data/FILE` as dnstap-ldns printed them (`FILE.ldns.txt`).
fn ldns(file: &str) -> Vec<Printed> {
    let text =
        std::fs::read_to_string(common::repo().join(format!("data/{file}.ldns.txt"))).unwrap();
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
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn question(msg: Option<&[u8]>) -> String {
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

fn decoded(file: &str) -> Vec<Printed> {
    let bytes = std::fs::read(common::repo().join("data").join(file)).unwrap();
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
                kind: m.kind().name().into_owned(),
                query_time: printed_time(m.query_time_ns()),
                response_time: printed_time(m.response_time_ns()),
                protocol: link::Transport::of_dnstap(m.socket_protocol)
                    .as_str()
                    .to_string(),
                query_address: ip(m.query_ip()),
                response_address: ip(m.response_ip()),
                query_port: show(m.query_port),
                response_port: show(m.response_port),
                identity: String::from_utf8(d.identity.unwrap_or_default().to_vec()).unwrap(),
                question: question(carried.map(|b| &b[..])),
            }
        })
        .collect();
    // Unbound and Knot closed their streams with a STOP frame
    assert_eq!(frames.stop, None);
    out
}

#[test]
fn ingest_reads_every_real_message_as_prost_decodes_it() {
    for file in ["dnstap.fstrm", "dnstap-knot.fstrm"] {
        let bytes = std::fs::read(common::repo().join("data").join(file)).unwrap();
        let mut n = 0;
        for f in dnstap::frames(&bytes).unwrap() {
            let d = dnstap::decode(f).unwrap();
            assert_eq!(
                dnstap::Fields::read(f),
                Some(dnstap::Fields::of_decoded(&d))
            );
            n += 1;
        }
        assert!(n >= 30, "{file}: {n}");
    }
}

#[test]
fn every_message_reads_as_dnstap_ldns_prints_it() {
    for (file, least, kinds_logged) in [
        (
            "dnstap.fstrm",
            50,
            &[
                "CLIENT_QUERY",
                "CLIENT_RESPONSE",
                "RESOLVER_QUERY",
                "RESOLVER_RESPONSE",
            ][..],
        ),
        (
            "dnstap-knot.fstrm",
            30,
            &["AUTH_QUERY", "AUTH_RESPONSE"][..],
        ),
    ] {
        let want = ldns(file);
        let got = decoded(file);
        assert_eq!(got.len(), want.len(), "{file}");
        assert!(want.len() >= least, "{file}: {} messages", want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{file}");
        }
        // the resolver's file holds both ends of both legs, the authority's its own
        let kinds: BTreeMap<&str, usize> = got.iter().fold(BTreeMap::new(), |mut m, p| {
            *m.entry(p.kind.as_str()).or_default() += 1;
            m
        });
        for k in kinds_logged {
            assert!(
                kinds.get(k).copied().unwrap_or(0) >= 10,
                "{file}: {kinds:?}"
            );
        }
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
                        question(Some(bytes)),
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
        let q = question(body.map(|b| &b[..]));
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

/// What a row says of one transaction, keyed by what identifies it on any
/// vantage: client address and port, server address, id, question.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    status: String,
    rcode: String,
    transport: String,
    /// ts and response_ts in µs since 1970.
    ts: i64,
    response_ts: Option<i64>,
    query_count: String,
    query_frame: String,
    source: String,
    dnstap_type: String,
    identity: String,
}

const ROW_SQL: &str = "select client_ip || ':' || client_port || ' ' || server_ip || ' ' || id \
     || ' ' || coalesce(qname, '') || ' ' || coalesce(qtype, ''), status, coalesce(rcode, ''), \
     transport, cast(ts as bigint) as t_us, cast(response_ts as bigint) as r_us, query_count, \
     coalesce(cast(query_frame as varchar), ''), source, coalesce(dnstap_type, ''), \
     coalesce(server_identity, '') from transactions";

fn rows(dir: &std::path::Path, filter: &str) -> Vec<Row> {
    common::sql(dir, &format!("{ROW_SQL} {filter} order by t_us"))
        .into_iter()
        .skip(1)
        .map(|r| Row {
            key: r[0].clone(),
            status: r[1].clone(),
            rcode: r[2].clone(),
            transport: r[3].clone(),
            ts: r[4].parse().unwrap(),
            response_ts: r[5].parse().ok(),
            query_count: r[6].clone(),
            query_frame: r[7].clone(),
            source: r[8].clone(),
            dnstap_type: r[9].clone(),
            identity: r[10].clone(),
        })
        .collect()
}

fn data(file: &str) -> std::path::PathBuf {
    common::repo().join("data").join(file)
}

/// Every row of `logged` is the row of `wire` with the same key: the same
/// status, rcode and transport, its query and response times within `slack_us`
/// of the wire's (the server's clock reads a message a little before or after
/// the capture does); and no row of either is left over.
/// Returns the largest differences of query and response times (µs).
fn same_transactions(logged: &[Row], wire: &[Row], slack_us: i64) -> (i64, i64) {
    assert_eq!(logged.len(), wire.len(), "{logged:#?}\n{wire:#?}");
    let mut worst = (0, 0);
    for l in logged {
        let w: Vec<&Row> = wire.iter().filter(|w| w.key == l.key).collect();
        assert_eq!(w.len(), 1, "{} on the wire: {w:?}", l.key);
        let w = w[0];
        assert_eq!(
            (&l.status, &l.rcode, &l.transport),
            (&w.status, &w.rcode, &w.transport),
            "{}",
            l.key
        );
        assert!((l.ts - w.ts).abs() <= slack_us, "{l:?} {w:?}");
        let (lr, wr) = (l.response_ts.unwrap(), w.response_ts.unwrap());
        assert!((lr - wr).abs() <= slack_us, "{l:?} {w:?}");
        assert_eq!(w.source, "pcap");
        assert_eq!((w.dnstap_type.as_str(), w.identity.as_str()), ("", ""));
        assert_eq!(l.source, "dnstap");
        worst = (
            worst.0.max((l.ts - w.ts).abs()),
            worst.1.max((lr - wr).abs()),
        );
    }
    worst
}

#[test]
fn the_logs_and_the_wire_give_the_same_transactions() {
    let t = tempfile::tempdir().unwrap();
    let (resolver, auth, wire) = (t.path().join("r"), t.path().join("a"), t.path().join("w"));
    common::ingest(&resolver, &[&data("dnstap.fstrm")], &[]);
    common::ingest(&auth, &[&data("dnstap-knot.fstrm")], &[]);
    common::ingest(&wire, &[&data("dnstap.pcap")], &[]);
    let all = rows(&wire, "");
    assert!(all.len() >= 25, "{}", all.len());
    assert!(all.iter().any(|r| r.transport == "tcp"));
    assert!(all.iter().any(|r| r.rcode == "SERVFAIL"));
    assert!(all.iter().any(|r| r.rcode == "NXDOMAIN"));

    // Unbound logged both legs: every transaction of the capture, each once
    let logged = rows(&resolver, "");
    let unbound_worst = same_transactions(&logged, &all, 5_000);
    let unbound_rows = logged.len();
    for r in &logged {
        let client_leg = r.key.contains(" 127.0.0.30 ");
        let want = if client_leg {
            "CLIENT_RESPONSE"
        } else {
            "RESOLVER_RESPONSE"
        };
        assert_eq!(
            (r.dnstap_type.as_str(), r.identity.as_str()),
            (want, "resolver-1")
        );
        assert_eq!(
            (r.status.as_str(), r.query_count.as_str()),
            ("answered", "1")
        );
    }

    // Knot logged what reached the authority: the resolver's leg. Its file
    // is not in time order (each worker thread flushes its own buffer).
    let logged = rows(&auth, "");
    let upstream = rows(&wire, "where server_ip = '127.0.0.31'");
    let knot_worst = same_transactions(&logged, &upstream, 5_000);
    for r in &logged {
        assert_eq!(
            (r.dnstap_type.as_str(), r.identity.as_str()),
            ("AUTH_RESPONSE", "auth-1")
        );
    }

    if std::env::var_os("DNSQ_WRITE_CONFORMANCE").is_some() {
        let printed = |f: &str| (ldns(f).len(), decoded(f).len());
        let (u, k) = (printed("dnstap.fstrm"), printed("dnstap-knot.fstrm"));
        let section = format!(
            "## dnstap logs\n\n\
             Not in the corpus: `data/record-dnstap.sh` records them here, from real servers, with a\n\
             capture of the same traffic (`data/dnstap.pcap`): Unbound 1.17 logging client and\n\
             resolver messages through `fstrm_capture` (`data/dnstap.fstrm`), and Knot 3.2's dnstap\n\
             module logging what the authority handled (`data/dnstap-knot.fstrm`). Checked by\n\
             `tests/dnstap.rs`; regenerate this section with\n\
             `DNSQ_WRITE_CONFORMANCE=1 cargo test --test dnstap` (after the conformance test, which\n\
             keeps it).\n\n\
             | oracle | what is compared | agreement |\n|---|---|---|\n\
             | Debian's `dnstap-ldns -y` | every message: type, query and response time (µs), addresses, ports, transport, identity, question | Unbound {}/{}, Knot {}/{} |\n\
             | the wire capture, Unbound's log | transactions by client address and port, server, id, question: status, rcode, transport, query and response times | {unbound_rows}/{} rows; query times within {} µs, response times within {} µs |\n\
             | the wire capture, Knot's log (its file out of time order) | the same, against the capture's upstream leg | {}/{} rows; query times within {} µs, response times within {} µs |\n\
             | `dnstap-ldns` times, a responses-only copy of Unbound's log | the response time of each RESOLVER_RESPONSE, paired by its logged query time | exact to the µs; CLIENT_RESPONSEs (no query time) stay response_only |\n\
             | prost's decoder (the vendored schema) | every field ingest reads in place, on every real message and in the fuzz target | all equal |\n",
            u.1, u.0, k.1, k.0,
            all.len(), unbound_worst.0, unbound_worst.1,
            logged.len(), upstream.len(), knot_worst.0, knot_worst.1,
        );
        let path = common::repo().join("docs/CONFORMANCE.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let kept = doc.split("\n## dnstap logs").next().unwrap().trim_end();
        std::fs::write(&path, format!("{kept}\n\n{section}")).unwrap();
    }
}

/// `data/dnstap.fstrm` as a server logging responses only would have written
/// it: the START frame, the response frames, a STOP.
fn responses_only() -> Vec<u8> {
    only(true)
}

/// The START frame, the responses (or the queries) of `data/dnstap.fstrm`, a STOP.
fn only(responses: bool) -> Vec<u8> {
    let bytes = std::fs::read(data("dnstap.fstrm")).unwrap();
    let mut frames = dnstap::frames(&bytes).unwrap();
    let start = frames.offset() as usize;
    let mut out = bytes[..start].to_vec();
    for f in frames.by_ref() {
        let m = dnstap::decode(f).unwrap().message.unwrap();
        if m.kind().is_response() == responses {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    out
}

#[test]
fn a_response_logged_with_its_query_time_pairs_without_its_query() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("responses.fstrm");
    std::fs::write(&file, responses_only()).unwrap();
    let dir = t.path().join("d");
    common::ingest(&dir, &[&file], &[]);
    let got = rows(&dir, "");
    // the times dnstap-ldns printed for each response: the oracle of the
    // response time when the query was not logged
    let printed: Vec<Printed> = ldns("dnstap.fstrm")
        .into_iter()
        .filter(|p| p.kind.ends_with("RESPONSE"))
        .collect();
    assert_eq!(got.len(), printed.len());
    let mut paired = 0;
    for p in &printed {
        let key = format!(
            "{}:{} {} ",
            p.query_address, p.query_port, p.response_address
        );
        let r: Vec<&Row> = got
            .iter()
            .filter(|r| r.key.starts_with(&key) && r.key.ends_with(&p.question))
            .collect();
        assert_eq!(r.len(), 1, "{key} {}: {r:?}", p.question);
        let r = r[0];
        assert_eq!(r.query_frame, "", "no query message, no query frame");
        let us = |s: &str| {
            let (date, time) = s.split_once(' ').unwrap();
            let (hms, frac) = time.split_once('.').unwrap();
            let secs: i64 = hms
                .split(':')
                .map(|x| x.parse::<i64>().unwrap())
                .fold(0, |a, x| a * 60 + x);
            let day: i64 = date[8..].parse().unwrap();
            day * 86_400_000_000 + secs * 1_000_000 + frac.parse::<i64>().unwrap()
        };
        let logged_rt =
            (!p.query_time.is_empty()).then(|| us(&p.response_time) - us(&p.query_time));
        match logged_rt {
            // Unbound logs its upstream responses with the query's time
            Some(rt) => {
                assert_eq!(
                    (r.status.as_str(), r.query_count.as_str()),
                    ("answered", "1")
                );
                assert_eq!(r.response_ts.unwrap() - r.ts, rt, "{p:?}");
                paired += 1;
            }
            // and its responses to clients without: they stay alone
            None => {
                assert_eq!(
                    (r.status.as_str(), r.query_count.as_str()),
                    ("response_only", "0")
                );
            }
        }
    }
    assert!(paired >= 10, "{paired}");
}

#[test]
fn a_log_is_found_by_its_content_in_every_form() {
    let t = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data("dnstap.fstrm")).unwrap();
    let want = rows(
        &{
            let d = t.path().join("plain");
            common::ingest(&d, &[&data("dnstap.fstrm")], &[]);
            d
        },
        "",
    );

    // any name, compressed
    let gz = t.path().join("resolver.log.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &bytes).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let d = t.path().join("gz");
    common::ingest(&d, &[&gz], &[]);
    let got = rows(&d, "");
    assert_eq!(got.len(), want.len());
    assert_eq!(
        common::sql(&d, "select format, packets, dns_messages from captures")[1],
        ["dnstap (gzip)", "58", "58"]
    );

    // standard input, read as a stream in pieces
    let d = t.path().join("stdin");
    let mut child = common::dnsq()
        .args(["ingest", "-o"])
        .arg(&d)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rows(&d, "");
    assert_eq!(
        got.iter().map(|r| (&r.key, &r.status)).collect::<Vec<_>>(),
        want.iter().map(|r| (&r.key, &r.status)).collect::<Vec<_>>()
    );

    // a directory of logs and captures of the same minute: each vantage
    // pairs its own messages, none is taken for another's retransmission
    let dir = t.path().join("mixed");
    std::fs::create_dir(&dir).unwrap();
    for f in ["dnstap.fstrm", "dnstap-knot.fstrm", "dnstap.pcap"] {
        std::fs::copy(data(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("README.txt"), "not a capture").unwrap();
    let d = t.path().join("d");
    common::ingest(&d, &[&dir], &[]);
    let counts = common::sql(
        &d,
        "select source, coalesce(server_identity, '-'), count(*), \
         sum(case when status = 'answered' and query_count = 1 then 1 else 0 end) \
         from transactions group by 1, 2 order by 1, 2",
    );
    let n = |f: &str| {
        let d = t.path().join(format!("n-{f}"));
        common::ingest(&d, &[&data(f)], &[]);
        common::sql(&d, "select count(*) from transactions")[1][0].clone()
    };
    let (r, a, w) = (n("dnstap.fstrm"), n("dnstap-knot.fstrm"), n("dnstap.pcap"));
    assert_eq!(
        counts[1..],
        [
            ["dnstap", "auth-1", &a, &a],
            ["dnstap", "resolver-1", &r, &r],
            ["pcap", "-", &w, &w],
        ]
    );
}

#[test]
fn a_cut_or_corrupt_log_keeps_its_good_prefix_and_names_the_offset() {
    let t = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data("dnstap.fstrm")).unwrap();
    let mut frames = dnstap::frames(&bytes).unwrap();
    let offsets: Vec<u64> = std::iter::from_fn(|| {
        let at = frames.offset();
        frames.next().map(|_| at)
    })
    .collect();
    // cut inside the 31st message: the first 30 stay
    let cut_at = offsets[30] + 7;
    let cut = t.path().join("cut.fstrm");
    std::fs::write(&cut, &bytes[..cut_at as usize]).unwrap();
    let d = t.path().join("cut");
    let out = common::ingest(&d, &[&cut], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut.fstrm") && err.contains(&offsets[30].to_string()),
        "{err}"
    );
    assert_eq!(common::sql(&d, "select packets from captures")[1][0], "30");

    // a length no writer makes: what came before is kept, the ingest says so
    let mut bad = bytes.clone();
    let at = offsets[40] as usize;
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let corrupt = t.path().join("corrupt.fstrm");
    std::fs::write(&corrupt, &bad).unwrap();
    let d = t.path().join("corrupt");
    let out = common::run(common::dnsq().arg("ingest").arg("-o").arg(&d).arg(&corrupt));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt.fstrm") && err.contains(&offsets[40].to_string()),
        "{err}"
    );
    assert_eq!(common::sql(&d, "select packets from captures")[1][0], "40");
}

#[test]
fn every_message_type_pairs_within_its_own_role() {
    // Unbound's client messages, logged again as each of the seven roles
    // dnstap names (AUTH, RESOLVER, CLIENT, FORWARDER, STUB, TOOL, UPDATE)
    use prost::Message as _;
    let bytes = std::fs::read(data("dnstap.fstrm")).unwrap();
    let mut frames = dnstap::frames(&bytes).unwrap();
    let start = frames.offset() as usize;
    let mut out = bytes[..start].to_vec();
    let client: Vec<dnstap::Dnstap> = frames
        .by_ref()
        .map(|f| dnstap::decode(f).unwrap())
        .filter(|d| {
            d.message
                .as_ref()
                .unwrap()
                .kind()
                .name()
                .starts_with("CLIENT_")
        })
        .collect();
    assert!(client.len() >= 20);
    for role in 0..7 {
        for d in &client {
            let mut d = d.clone();
            let m = d.message.as_mut().unwrap();
            m.r#type = role * 2 + 1 + i32::from(m.kind().is_response());
            let f = d.encode_to_vec();
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(&f);
        }
    }
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("roles.fstrm");
    std::fs::write(&file, out).unwrap();
    let dir = t.path().join("d");
    common::ingest(&dir, &[&file], &[]);
    let got = common::sql(
        &dir,
        "select dnstap_type, count(*), sum(case when status = 'answered' and query_count = 1 \
         then 1 else 0 end) from transactions group by 1 order by 1",
    );
    let pairs = (client.len() / 2).to_string();
    let want: Vec<Vec<String>> = [
        "AUTH",
        "CLIENT",
        "FORWARDER",
        "RESOLVER",
        "STUB",
        "TOOL",
        "UPDATE",
    ]
    .iter()
    .map(|r| vec![format!("{r}_RESPONSE"), pairs.clone(), pairs.clone()])
    .collect();
    assert_eq!(got[1..], want[..]);
}

#[test]
fn a_log_of_queries_only_gives_unanswered_rows() {
    // as a capture of queries alone would: every query unanswered, with its
    // frame, and nothing of a response
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("queries.fstrm");
    std::fs::write(&file, only(false)).unwrap();
    let dir = t.path().join("d");
    common::ingest(&dir, &[&file], &[]);
    let got = common::sql(
        &dir,
        "select status, count(*), count(query_frame), count(response_ts), count(rcode) \
         from transactions group by 1",
    );
    let queries = ldns("dnstap.fstrm")
        .iter()
        .filter(|p| p.kind.ends_with("QUERY"))
        .count()
        .to_string();
    assert_eq!(got[1..], [["unanswered", &queries, &queries, "0", "0"]]);
}
