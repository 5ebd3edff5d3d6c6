//! Decoded fields checked against other decoders' output on the same captures:
//! tcpdump's summary lines (rcode incl. EDNS extended rcodes, section counts,
//! message sizes, EDNS padding) and Zeek's EDNS client subnet and cookies.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;

fn dataset(capture: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    ingest(
        tmp.path(),
        &[&repo().join("tests/corpus").join(capture)],
        &[],
    );
    tmp
}

/// `frame → (rcode, "an/ns/ar", size)` of responses and `frame → size` of queries,
/// from tcpdump's one-line summaries (`-n`, with or without `-v`).
struct TcpdumpOut {
    responses: BTreeMap<u64, (String, String, u64)>,
    queries: BTreeMap<u64, u64>,
}

fn read_tcpdump(path: &Path) -> TcpdumpOut {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = TcpdumpOut {
        responses: BTreeMap::new(),
        queries: BTreeMap::new(),
    };
    let mut frame = 0u64;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(n) = t
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            if t.split_whitespace()
                .nth(1)
                .is_some_and(|d| d.len() == 10 && d.contains('-'))
            {
                frame = n;
            }
        }
        let Some(gt) = t.find(" > ") else { continue };
        let Some(colon) = t[gt..].find(": ") else {
            continue;
        };
        let src = t[..gt].rsplit(' ').next().unwrap();
        let mut rest = &t[gt + colon + 2..];
        if rest.starts_with('[') {
            rest = &rest[rest.find("] ").unwrap() + 2..];
        }
        let Some(size) = rest
            .rsplit_once(" (")
            .and_then(|(_, s)| s.trim_end_matches(')').parse::<u64>().ok())
        else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if src.ends_with(".53") {
            let counts_at = words
                .iter()
                .position(|w| {
                    w.split('/').count() == 3 && w.split('/').all(|x| x.parse::<u32>().is_ok())
                })
                .unwrap();
            // the rcode word, with tcpdump's flag marks (`-`: RA clear, `|`: TC) trimmed
            let word = if counts_at >= 2 {
                words[counts_at - 1].trim_end_matches(['-', '|', '*', '$', '+'])
            } else {
                ""
            };
            let rcode = if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()) {
                word.to_uppercase()
            } else {
                "NOERROR".into()
            };
            out.responses
                .insert(frame, (rcode, words[counts_at].to_string(), size));
        } else {
            out.queries.insert(frame, size);
        }
    }
    out
}

#[test]
fn rcodes_counts_and_sizes_match_tcpdump() {
    for (cap, oracle) in [
        ("tcpdump/dns-badcookie.pcap", "tcpdump/dns-badcookie.out"),
        ("tcpdump/dns-badvers.pcap", "tcpdump/dns-badvers.out"),
        ("tcpdump/edns-opts.pcap", "tcpdump/edns-opts.out"),
        ("tcpdump/dns_udp.pcap", "tcpdump/dns_udp.out"),
        ("tcpdump/dns-uri.pcap", "tcpdump/dns-uri.out"),
    ] {
        let want = read_tcpdump(&repo().join("tests/corpus").join(oracle));
        assert!(!want.queries.is_empty(), "{oracle}");
        let ds = dataset(cap);
        let rows = sql(
            ds.path(),
            "select response_frame, rcode, answer_count || '/' || authority_count || '/' || additional_count, response_size \
             from transactions where response_frame is not null order by 1",
        );
        let got: BTreeMap<u64, (String, String, u64)> = rows[1..]
            .iter()
            .map(|r| {
                (
                    r[0].parse().unwrap(),
                    (r[1].clone(), r[2].clone(), r[3].parse().unwrap()),
                )
            })
            .collect();
        assert_eq!(got, want.responses, "{cap}");
        let rows = sql(ds.path(), "select query_frame, query_size from transactions where query_frame is not null order by 1");
        let got: BTreeMap<u64, u64> = rows[1..]
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        assert_eq!(got, want.queries, "{cap}");
    }
}

#[test]
fn edns_padding_matches_tcpdump() {
    let text =
        std::fs::read_to_string(repo().join("tests/corpus/tcpdump/edns-opts-vv.out")).unwrap();
    let want: Vec<u64> = text
        .match_indices("PADDING (")
        .map(|(i, _)| text[i + 9..].split(')').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(want.len(), 3);
    let ds = dataset("tcpdump/edns-opts.pcap");
    let got: Vec<u64> = sql(
        ds.path(),
        "select padding from transactions where padding is not null order by query_frame",
    )[1..]
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(got, want);
}

/// Zeek prints bytes as `\xNN` escapes among ASCII.
fn zeek_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn client_subnet_matches_zeek() {
    let text =
        std::fs::read_to_string(repo().join("tests/corpus/zeek/dns-edns-ecs.output")).unwrap();
    let want: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("[family="))
        .map(|l| {
            let field = |k: &str| {
                l.split(&format!("{k}="))
                    .nth(1)
                    .unwrap()
                    .split([',', ']'])
                    .next()
                    .unwrap()
                    .to_string()
            };
            format!("{}/{}", field("address"), field("source_prefix_len"))
        })
        .collect();
    let ds = dataset("zeek/dns-edns-ecs.pcap");
    let got: BTreeSet<String> = sql(
        ds.path(),
        "select distinct ecs from transactions where ecs is not null",
    )[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn cookies_match_zeek() {
    let text =
        std::fs::read_to_string(repo().join("tests/corpus/zeek/dns-edns-cookie.output")).unwrap();
    let mut clients = BTreeSet::new();
    let mut servers = BTreeSet::new();
    for l in text.lines().filter(|l| l.starts_with("[client_cookie=")) {
        let (c, s) = l
            .trim_start_matches("[client_cookie=")
            .trim_end_matches(']')
            .split_once(", server_cookie=")
            .unwrap();
        clients.insert(hex(&zeek_bytes(c)));
        if !s.is_empty() {
            servers.insert(hex(&zeek_bytes(s)));
        }
    }
    let ds = dataset("zeek/dns-edns-cookie.pcap");
    let col = |c: &str| -> BTreeSet<String> {
        sql(
            ds.path(),
            &format!("select distinct {c} from transactions where {c} is not null"),
        )[1..]
            .iter()
            .map(|r| r[0].clone())
            .collect()
    };
    assert_eq!(col("client_cookie"), clients);
    assert_eq!(col("server_cookie"), servers);
}
