//! Conformance: every capture of the corpus ingests, and its queries, responses
//! and pairs are compared with tshark's (`*.tshark.tsv`). Captures that differ
//! must be listed in `EXPLAINED` with the reason; the table is written to
//! docs/CONFORMANCE.md when `DNSQ_WRITE_CONFORMANCE=1`.
//!
//! The corpus is `../shared/captures` when this checkout sits beside it (about
//! 150 captures, some under licences we do not copy), else the permissively
//! licensed subset copied into tests/corpus.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Captures whose counts differ from tshark's, and why.
const EXPLAINED: &[(&str, &str)] = &[
    ("zeek/dns-inverse-query.pcap", "FDDI link type (DLT 10), out of scope: the frame is counted in not_decoded"),
    (
        "zeek/geneve-vxlan-dns-truncated.pcap",
        "DNS inside VXLAN inside Geneve, the inner response cut 6 bytes short (the capture's point): \
         tshark's dissector stops at the cut and pairs nothing; dnsq reads the response's header and \
         question, marks it malformed and pairs it. Messages agree",
    ),
    ("zeek/radiotap.pcap", "802.11 with radiotap headers, out of scope"),
    ("zeek/wlanmon.pcap", "802.11 monitor mode, out of scope"),
    (
        "zeek/mdns.pcap",
        "mDNS (RFC 6762): answers go to the multicast group, not back to the asker, so the SPEC §5 key \
         (client and server address and port) never matches; tshark pairs on the id alone. Messages agree",
    ),
    ("zeek/mdns-no-assoc.pcap", "mDNS, as zeek/mdns.pcap; messages agree"),
    (
        "suricata/dns-incomplete.pcap",
        "DNS over TCP on port 5353: the second query asks TXT and its response answers A; SPEC §5 pairs \
         only an equal question, tshark pairs on the id. Messages agree",
    ),
    (
        "dnscap/dnso1tcp-midmiss.pcap",
        "a TCP segment is missing mid-stream (the capture's point): dnsq drops the messages the hole cuts \
         and counts the gap in the capture's not_decoded",
    ),
    (
        "tcpdump/LINKTYPE_IPV6_invalid.pcap",
        "an IPv6 header tshark rejects; dnsq reads the query inside it leniently (strict-then-lax slicing)",
    ),
    (
        "entrada/sidnlabs-test-icmp-dest-unreachable.pcap",
        "the only DNS is quoted inside an ICMP error; tshark decodes it, dnsq does not count it as traffic",
    ),
    ("entrada/sidnlabs-test-icmp-frag-needed.pcap", "DNS quoted inside an ICMP error, as above"),
];

#[derive(Debug, Default)]
struct Row {
    tshark_q: usize,
    tshark_r: usize,
    tshark_pairs: usize,
    q: usize,
    r: usize,
    pairs: usize,
    pairs_agree: usize,
}

impl Row {
    fn agrees(&self) -> bool {
        self.q == self.tshark_q
            && self.r == self.tshark_r
            && self.pairs == self.tshark_pairs
            && self.pairs_agree == self.pairs
    }
}

fn compare(capture: &Path) -> Row {
    let oracle = PathBuf::from(format!("{}.tshark.tsv", capture.display()));
    let tmp = tempfile::tempdir().unwrap();
    let o = run(dnsq()
        .arg("ingest")
        .arg("-o")
        .arg(tmp.path())
        .args(["--ports", "5353,5355,8053", "--match-timeout", "3600s"])
        .arg(capture));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        capture.display()
    );
    let ports = [53u16, 5353, 5355, 8053];
    let ts: Vec<TsharkRow> = read_tshark(&oracle)
        .into_iter()
        .filter(|r| ports.contains(&r.sport) || ports.contains(&r.dport))
        .collect();
    let mut row = Row {
        tshark_q: ts
            .iter()
            .map(|r| r.flags.iter().filter(|f| !**f).count())
            .sum(),
        tshark_r: ts
            .iter()
            .map(|r| r.flags.iter().filter(|f| **f).count())
            .sum(),
        ..Row::default()
    };
    let mut t_pairs: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for r in &ts {
        for q in &r.response_to_all {
            *t_pairs.entry((*q, r.frame)).or_default() += 1;
        }
    }
    for q in &ts {
        for r in &q.response_in_all {
            t_pairs.entry((q.frame, *r)).or_insert(1);
        }
    }
    row.tshark_pairs = t_pairs.values().sum();
    if !tmp.path().join("transactions").exists() {
        return row;
    }
    let rows = sql(
        tmp.path(),
        "select status, query_frame, response_frame, query_count from transactions",
    );
    for r in &rows[1..] {
        let n: usize = r[3].parse().unwrap();
        row.q += n;
        match r[0].as_str() {
            "answered" => {
                row.r += 1;
                row.pairs += 1;
                let key = (r[1].parse::<u64>().unwrap(), r[2].parse::<u64>().unwrap());
                // a retransmitted query: tshark names the latest copy, dnsq the first
                let agree = t_pairs.get(&key).is_some_and(|c| *c > 0)
                    || (n > 1 && t_pairs.keys().any(|k| k.1 == key.1));
                if agree {
                    row.pairs_agree += 1;
                    if let Some(c) = t_pairs.get_mut(&key) {
                        *c -= 1;
                    }
                }
            }
            "response_only" => row.r += 1,
            _ => {}
        }
    }
    row
}

fn corpus() -> (PathBuf, Vec<(String, String)>) {
    if let Some(shared) = shared_captures() {
        let manifest = std::fs::read_to_string(shared.join("MANIFEST.tsv")).unwrap();
        let list = manifest
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[0].to_string(),
                    f[7].split(" | ").next().unwrap_or("").to_string(),
                )
            })
            .collect();
        return (shared, list);
    }
    let root = repo().join("tests/corpus");
    let mut list = vec![];
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                list.push((
                    format!("{}/{name}", dir.file_name().unwrap().to_string_lossy()),
                    String::new(),
                ));
            }
        }
    }
    list.sort();
    (root, list)
}

#[test]
fn every_capture_agrees_with_tshark_or_is_explained() {
    let (root, list) = corpus();
    assert!(list.len() >= 30, "{} captures", list.len());
    let mut table = String::new();
    let (mut agree, mut explained, mut unexplained) = (0, 0, vec![]);
    for (rel, what) in &list {
        let cap = root.join(rel);
        let row = compare(&cap);
        let reason = EXPLAINED.iter().find(|(c, _)| c == rel).map(|(_, r)| *r);
        let verdict = match (row.agrees(), reason) {
            (true, None) => {
                agree += 1;
                "agrees".to_string()
            }
            (true, Some(_)) => panic!("{rel} agrees now: take it out of EXPLAINED"),
            (false, Some(r)) => {
                explained += 1;
                format!("differs: {r}")
            }
            (false, None) => {
                unexplained.push(format!("{rel}: {row:?}"));
                "differs (unexplained)".to_string()
            }
        };
        table.push_str(&format!(
            "| `{rel}` | {}/{} | {}/{} | {}/{} | {verdict} | {what} |\n",
            row.q, row.tshark_q, row.r, row.tshark_r, row.pairs_agree, row.tshark_pairs
        ));
    }
    if std::env::var_os("DNSQ_WRITE_CONFORMANCE").is_some() {
        let doc = format!(
            "# Conformance with tshark\n\n\
             Every capture of the corpus ingested by dnsq (`--ports 5353,5355,8053 --match-timeout 3600s`) and compared\n\
             with tshark 4.0's decoding of the same file (`*.tshark.tsv`, made with `tshark -2`). Columns: DNS query\n\
             messages, response messages and query/response pairs, dnsq/tshark (pairs: dnsq's pairs that tshark also\n\
             made / tshark's pairs). A response to a retransmitted query counts as agreeing when tshark pairs it with a\n\
             later copy (dnsq pairs it with the first, SPEC §5).\n\n\
             Regenerate: `DNSQ_WRITE_CONFORMANCE=1 cargo test --test conformance` (beside `../shared/captures`).\n\n\
             Totals: {} captures; {agree} agree; {explained} differ for the reason given; {} unexplained.\n\n\
             | capture | queries | responses | pairs | verdict | what it exercises |\n|---|---|---|---|---|---|\n{table}",
            list.len(),
            unexplained.len()
        );
        // sections written by other tests (tests/dnstap.rs) stay
        let path = repo().join("docs/CONFORMANCE.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let kept = old
            .find("\n## ")
            .map(|i| format!("\n{}\n", old[i..].trim()))
            .unwrap_or_default();
        std::fs::write(path, format!("{}\n{kept}", doc.trim_end())).unwrap();
    }
    assert!(
        unexplained.is_empty(),
        "captures that differ from tshark without a reason:\n{}",
        unexplained.join("\n")
    );
}
