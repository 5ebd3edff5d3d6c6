//! Pairing checked against tshark's own (`dns.response_to`, `dns.time`):
//! on the bundled sample and on public captures of other projects.
//!
//! The oracles are tshark 4.0 exports (`*.tshark.tsv`, made with `tshark -2`,
//! see tests/corpus/README.md). For every capture: the same query and response
//! counts, the same (query frame, response frame) pairs, the same unanswered
//! queries, the same rcodes and response times to the microsecond.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use dnsq::codes::Rcode;

#[derive(Debug, Default, PartialEq)]
struct Agreement {
    queries: usize,
    responses: usize,
    pairs: usize,
    unanswered: usize,
}

/// Ingests one capture and compares it with its tshark export; returns the totals.
fn check(capture: &Path, oracle: &Path, ports: &[&str]) -> Agreement {
    let tmp = tempfile::tempdir().unwrap();
    let mut extra = vec![];
    if !ports.is_empty() {
        extra.push("--ports");
        extra.extend_from_slice(ports);
    }
    extra.push("--match-timeout");
    extra.push("3600s");
    ingest(tmp.path(), &[capture], &extra);
    let rows = sql(
        tmp.path(),
        "select status, query_frame, response_frame, response_time_ms, rcode, query_count from transactions",
    );
    let rows = &rows[1..];

    let mut dns_ports = vec![53u16];
    dns_ports.extend(ports.iter().map(|p| p.parse::<u16>().unwrap()));
    // tshark's export also holds mDNS/LLMNR; dnsq reads the DNS ports it is given
    let ts: Vec<TsharkRow> = read_tshark(oracle)
        .into_iter()
        .filter(|r| dns_ports.contains(&r.sport) || dns_ports.contains(&r.dport))
        .collect();
    let by_frame: BTreeMap<u64, &TsharkRow> = ts.iter().map(|r| (r.frame, r)).collect();
    let t_queries: usize = ts
        .iter()
        .map(|r| r.flags.iter().filter(|f| !**f).count())
        .sum();
    let t_responses: usize = ts
        .iter()
        .map(|r| r.flags.iter().filter(|f| **f).count())
        .sum();
    // tshark links a pair from both ends; a response it could dissect only in part
    // lacks `dns.response_to` while its query still names it in `dns.response_in`.
    // A TCP frame may hold several messages, so pairs are a multiset.
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

    let mut pairs: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    let mut unanswered = BTreeSet::new();
    let mut queries = 0;
    let mut unanswered_copies = 0;
    // responses to retransmitted queries: dnsq pairs them with the first copy
    // (SPEC §5), tshark with the latest one
    let mut retransmitted = BTreeSet::new();
    let mut answered_copies = 0;
    let mut responses = 0;
    let name = capture.display();
    for r in rows {
        let n: usize = r[5].parse().unwrap();
        queries += n;
        match r[0].as_str() {
            "answered" => {
                responses += 1;
                let key = (r[1].parse::<u64>().unwrap(), r[2].parse::<u64>().unwrap());
                *pairs.entry(key).or_default() += 1;
                if n > 1 {
                    retransmitted.insert(key.1);
                    answered_copies += n - 1;
                }
                let (q, resp) = (by_frame[&key.0], by_frame[&key.1]);
                // dns.time is the time between the two frames; a response stamped before
                // its query (clock steps) is 0 ms in dnsq, never negative
                let want_ms = ((resp.ns() - q.ns()) as f64 / 1e6).max(0.0);
                let ms: f64 = r[3].parse().unwrap();
                assert!(
                    (ms - want_ms).abs() < 0.001,
                    "{name}: response time of {key:?}: {ms} ms vs tshark {want_ms} ms"
                );
                // tshark shows the header's 4 rcode bits; dnsq folds in the EDNS extension
                let code = (0..4096u16)
                    .find(|c| Rcode(*c).to_string() == r[4])
                    .expect("a known rcode name");
                assert!(
                    resp.rcodes.contains(&(code & 0xf)),
                    "{name}: rcode of {key:?}: {} vs {:?}",
                    r[4],
                    resp.rcodes
                );
            }
            "unanswered" => {
                unanswered.insert(r[1].parse::<u64>().unwrap());
                unanswered_copies += n - 1;
            }
            "response_only" => responses += 1,
            s => panic!("unknown status {s}"),
        }
    }
    assert_eq!(queries, t_queries, "{name}: query messages");
    assert_eq!(responses, t_responses, "{name}: response messages");
    for r in &retransmitted {
        assert!(
            t_pairs.keys().any(|k| k.1 == *r),
            "{name}: tshark left response {r} unpaired"
        );
        pairs.retain(|k, _| k.1 != *r);
        t_pairs.retain(|k, _| k.1 != *r);
    }
    let only_ours: Vec<_> = pairs
        .iter()
        .filter(|(k, n)| t_pairs.get(k) != Some(n))
        .collect();
    let only_theirs: Vec<_> = t_pairs
        .iter()
        .filter(|(k, n)| pairs.get(k) != Some(n))
        .collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "{name}: pairs only dnsq made {only_ours:?}, only tshark made {only_theirs:?}"
    );
    // Queries tshark never saw answered (frames with one message) and that are not
    // retransmissions of an answered query.
    let single: Vec<&TsharkRow> = ts
        .iter()
        .filter(|r| r.flags.len() == 1 && !r.flags[0])
        .collect();
    let t_unanswered: BTreeSet<u64> = single
        .iter()
        .filter(|q| q.response_in_all.is_empty())
        .map(|q| q.frame)
        .collect();
    let ours_single: BTreeSet<u64> = unanswered
        .iter()
        .copied()
        .filter(|f| single.iter().any(|q| q.frame == *f))
        .collect();
    assert!(
        ours_single.is_subset(&t_unanswered),
        "{name}: unanswered {ours_single:?} vs tshark {t_unanswered:?}"
    );
    if ts.iter().all(|r| r.flags.len() == 1) {
        // the rest of tshark's unanswered frames are retransmitted copies dnsq counts in
        // query_count (tshark leaves an earlier copy of an answered query unanswered)
        let extra = t_unanswered.len() - unanswered.len();
        assert!(
            (unanswered_copies..=unanswered_copies + answered_copies).contains(&extra),
            "{name}: {extra} unanswered frames beyond dnsq's, {unanswered_copies} unanswered and {answered_copies} answered copies"
        );
    }
    let pairs_total: usize = pairs.values().sum::<usize>() + retransmitted.len();
    Agreement {
        queries,
        responses,
        pairs: pairs_total,
        unanswered: unanswered.len(),
    }
}

#[test]
fn sample_pairs_like_tshark() {
    let a = check(&sample(), &repo().join("data/sample.pcap.tshark.tsv"), &[]);
    // the sample's make-up (data/README.md): over a thousand transactions, some unanswered
    assert!(a.pairs > 1000, "{a:?}");
    assert!(a.unanswered >= 5, "{a:?}");
}

fn corpus(rel: &str) -> (PathBuf, PathBuf) {
    let local = repo().join("tests/corpus").join(rel);
    let cap = if local.exists() {
        local
    } else {
        shared_captures()
            .expect("tests/corpus or ../shared/captures")
            .join(rel)
    };
    let oracle = PathBuf::from(format!("{}.tshark.tsv", cap.display()));
    (cap, oracle)
}

macro_rules! corpus_test {
    ($name:ident, $rel:expr, $pairs:expr) => {
        corpus_test!($name, $rel, $pairs, &[]);
    };
    ($name:ident, $rel:expr, $pairs:expr, $ports:expr) => {
        #[test]
        fn $name() {
            let (cap, oracle) = corpus($rel);
            let a = check(&cap, &oracle, $ports);
            assert_eq!(a.pairs, $pairs, "{a:?}");
        }
    };
}

// Public captures across link types, byte orders, pcapng, EDNS and odd pairings
// (tests/corpus/README.md says where each comes from). The figure is the number of
// pairs tshark made; `check` compares every pair, time and rcode.
corpus_test!(dnscap_dns, "dnscap/dns.pcap", 41);
corpus_test!(dnscap_vlan, "dnscap/vlan11.pcap", 41);
corpus_test!(dnscap_ipv6, "dnscap/dns6.pcap", 1);
corpus_test!(dnscap_sll2, "dnscap/sll2.pcap", 1);
corpus_test!(dnscap_edns, "dnscap/edns.pcap", 7);
corpus_test!(
    zeek_pcapng_multi_interface,
    "zeek/pcapng-multi-interface.pcapng",
    3
);
corpus_test!(zeek_two_responses, "zeek/dns-two-responses.pcap", 1);
corpus_test!(zeek_bsd_null_link, "zeek/dns-svcb.pcap", 1);
corpus_test!(
    zeek_extended_rcode_raw_ipv4,
    "zeek/dns_extended_rcode.pcap",
    1
);
corpus_test!(zeek_raw_ip, "zeek/ech.pcap", 2);
corpus_test!(zeek_wikipedia, "zeek/wikipedia.pcap", 14);
corpus_test!(tcpdump_badcookie, "tcpdump/dns-badcookie.pcap", 2);
corpus_test!(tcpdump_badvers, "tcpdump/dns-badvers.pcap", 2);
corpus_test!(tcpdump_edns_options, "tcpdump/edns-opts.pcap", 21);
corpus_test!(
    tcpdump_extra_port,
    "tcpdump/dns_udp_8053.pcap",
    1,
    &["8053"]
);
corpus_test!(tcpdump_linktype_ipv6, "tcpdump/LINKTYPE_IPV6.pcap", 0);
corpus_test!(suricata_bug_1158, "suricata/dns-bug-1158.pcap", 80);
corpus_test!(
    suricata_double_request_response,
    "suricata/dns-udp-double-request-response.pcap",
    2
);
corpus_test!(suricata_response_twice, "suricata/dns-response-2x.pcap", 1);
corpus_test!(
    arkime_wireshark_samples,
    "arkime/dns-wiresharkrepo.pcap",
    19
);
// tshark pairs all five from the query side (dns.response_in); two RRSIG responses it
// dissects only in part lack dns.response_to
corpus_test!(arkime_dnssec, "arkime/dnssec_synthetic.pcap", 5);
corpus_test!(compactor_mixed_trace, "compactor/dns.pcap", 999);

// DNS over TCP: several messages per segment, messages over several segments,
// streams without a handshake, segments out of order, holes.
corpus_test!(dnscap_tcp_stream, "dnscap/dnso1tcp.pcap", 41);
corpus_test!(dnscap_tcp_no_handshake, "dnscap/1qtcpnosyn.pcap", 1);
corpus_test!(dnscap_tcp_padded, "dnscap/1qtcppadd.pcap", 1);
corpus_test!(
    dnscap_tcp_many_messages_one_packet,
    "dnscap/dnsotcp-many1pkt.pcap",
    0
);
corpus_test!(
    dnscap_tcp_message_over_many_packets,
    "dnscap/dnsotcp-manyopkts.pcap",
    0
);
corpus_test!(tcpdump_tcp, "tcpdump/dns_tcp.pcap", 1);
corpus_test!(
    suricata_tcp_multirequest,
    "suricata/dns-tcp-multirequest-buffer.pcap",
    20
);
corpus_test!(suricata_tcp_4759, "suricata/tcpdns-4759.pcap", 2);
corpus_test!(suricata_tcp_reversed, "suricata/dns-reversed-tcp-1.pcap", 0);

// IP fragments: EDNS responses larger than the path MTU, IPv4 and IPv6.
corpus_test!(dnscap_ipv4_fragments, "dnscap/frags.pcap", 41);
corpus_test!(zeek_ipv6_fragments, "zeek/ipv6-fragmented-dns.pcap", 2);
