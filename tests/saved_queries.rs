//! Every saved query on the sample capture, checked against figures derived
//! independently from tshark's decoding of the same capture
//! (data/sample.pcap.tshark.tsv), run by name from outside the repository.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use dnsq::codes::{Qtype, Rcode};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    ts: Vec<TsharkRow>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        ingest(&dir, &[&sample()], &[]);
        let ts = read_tshark(&repo().join("data/sample.pcap.tshark.tsv"));
        Fixture { _tmp: tmp, dir, ts }
    }

    fn frame(&self, n: u64) -> &TsharkRow {
        self.ts
            .iter()
            .find(|r| r.frame == n)
            .expect("frame in oracle")
    }

    fn queries(&self) -> impl Iterator<Item = &TsharkRow> {
        self.ts.iter().filter(|r| !r.response)
    }

    /// Minute of the transaction a tshark row belongs to (its query's time).
    fn tx_minute(&self, r: &TsharkRow) -> String {
        match r.response_to {
            Some(q) if r.response => minute_of(&self.frame(q).epoch),
            _ => minute_of(&r.epoch),
        }
    }
}

fn f(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

/// The sample holds no retransmitted query (checked here), so every query
/// frame is a transaction of its own: figures can be counted off tshark's frames.
#[test]
fn sample_has_no_retransmissions() {
    let fx = Fixture::new();
    let r = sql(
        &fx.dir,
        "select count(*) from transactions where query_count > 1",
    );
    assert_eq!(r[1][0], "0");
    let q = sql(
        &fx.dir,
        "select count(*) from transactions where query_count = 1",
    );
    assert_eq!(f(&q[1][0]) as usize, fx.queries().count());
}

#[test]
fn rcodes_over_time() {
    let fx = Fixture::new();
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in fx.ts.iter().filter(|r| r.response) {
        *want
            .entry((fx.tx_minute(r), Rcode(r.rcode.unwrap()).to_string()))
            .or_default() += 1;
    }
    let rows = saved(&fx.dir, "rcodes_over_time");
    assert_eq!(rows[0], ["time", "rcode", "responses", "share_pct"]);
    let got: BTreeMap<(String, String), usize> = rows[1..]
        .iter()
        .map(|r| ((r[0].clone(), r[1].clone()), f(&r[2]) as usize))
        .collect();
    assert_eq!(got, want);
    assert!(
        want.keys().any(|(_, rc)| rc == "SERVFAIL") && want.keys().any(|(_, rc)| rc == "NXDOMAIN")
    );
    let mut per_minute: BTreeMap<&str, f64> = BTreeMap::new();
    for r in &rows[1..] {
        *per_minute.entry(&r[0]).or_default() += f(&r[3]);
    }
    assert!(
        per_minute.values().all(|s| close(*s, 100.0)),
        "{per_minute:?}"
    );
}

#[test]
fn distinct_clients() {
    let fx = Fixture::new();
    let mut want: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
    for q in fx.queries() {
        let e = want.entry(minute_of(&q.epoch)).or_default();
        e.0.insert(q.src.clone());
        e.1 += 1;
    }
    let rows = saved(&fx.dir, "distinct_clients");
    assert_eq!(rows[0], ["time", "clients", "queries"]);
    let got: Vec<(String, usize, usize)> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), f(&r[1]) as usize, f(&r[2]) as usize))
        .collect();
    let want: Vec<(String, usize, usize)> = want
        .into_iter()
        .map(|(m, (c, n))| (m, c.len(), n))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn qtypes_over_time() {
    let fx = Fixture::new();
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    for q in fx.queries() {
        *want
            .entry((minute_of(&q.epoch), Qtype(q.qtype.unwrap()).to_string()))
            .or_default() += 1;
    }
    let rows = saved(&fx.dir, "qtypes_over_time");
    let got: BTreeMap<(String, String), usize> = rows[1..]
        .iter()
        .map(|r| ((r[0].clone(), r[1].clone()), f(&r[2]) as usize))
        .collect();
    assert_eq!(got, want);
    assert!(want.len() >= 8, "the sample asks many types: {want:?}");
}

#[test]
fn unanswered_per_server() {
    let fx = Fixture::new();
    let mut want: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for q in fx.queries() {
        let e = want
            .entry((minute_of(&q.epoch), q.dst.clone()))
            .or_default();
        e.1 += 1;
        e.0 += q.response_in.is_none() as usize;
    }
    want.retain(|_, (u, _)| *u > 0);
    let rows = saved(&fx.dir, "unanswered");
    assert_eq!(
        rows[0],
        [
            "time",
            "server_ip",
            "leg",
            "unanswered",
            "queries",
            "unanswered_pct"
        ]
    );
    // a server asked on both legs (the silent one) has a row per leg
    let mut got: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for r in &rows[1..] {
        let e = got.entry((r[0].clone(), r[1].clone())).or_default();
        e.0 += f(&r[3]) as usize;
        e.1 += f(&r[4]) as usize;
    }
    assert_eq!(got, want);
    // the silent server never answers anything
    assert!(rows[1..]
        .iter()
        .any(|r| r[1] == "127.0.0.3" && close(f(&r[5]), 100.0)));
}

fn reg_domain(qname: &str) -> String {
    // every name in the sample is under .test, which the PSL does not list: eTLD+1 is the last two labels
    let labels: Vec<&str> = qname.split('.').collect();
    labels[labels.len().saturating_sub(2)..]
        .join(".")
        .to_lowercase()
}

#[test]
fn top_domains_and_tlds_add_up() {
    let fx = Fixture::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in fx
        .ts
        .iter()
        .filter(|r| !r.response || r.response_to.is_none())
    {
        *counts.entry(reg_domain(&r.qname)).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rows = saved(&fx.dir, "top_domains");
    assert_eq!(rows[0], ["domain", "transactions", "share_pct"]);
    let got: Vec<(String, usize)> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), f(&r[1]) as usize))
        .collect();
    let mut want: Vec<(String, usize)> = ranked.iter().take(10).cloned().collect();
    if ranked.len() > 10 {
        want.push(("other".into(), ranked[10..].iter().map(|x| x.1).sum()));
    }
    assert_eq!(got, want);
    let share: f64 = rows[1..].iter().map(|r| f(&r[2])).sum();
    assert!(close(share, 100.0), "{share}");
    assert_eq!(got.iter().map(|x| x.1).sum::<usize>(), total);

    let rows = saved(&fx.dir, "top_tlds");
    assert_eq!(
        rows[1..],
        [vec![
            "test".to_string(),
            total.to_string(),
            "100.0".to_string()
        ]]
    );
}

fn percentile_cont(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[test]
fn latency_percentiles_by_leg() {
    let fx = Fixture::new();
    let servers: BTreeSet<&str> = fx.queries().map(|q| q.dst.as_str()).collect();
    let clients: BTreeSet<&str> = fx.queries().map(|q| q.src.as_str()).collect();
    let resolvers: BTreeSet<&str> = servers.intersection(&clients).copied().collect();
    assert!(resolvers.contains("127.0.0.10"));
    let mut groups: BTreeMap<(String, &str), Vec<f64>> = BTreeMap::new();
    for r in fx
        .ts
        .iter()
        .filter(|r| r.response && r.response_to.is_some())
    {
        let q = fx.frame(r.response_to.unwrap());
        let leg = if resolvers.contains(q.src.as_str()) && q.src != q.dst {
            "upstream"
        } else {
            "downstream"
        };
        groups
            .entry((minute_of(&q.epoch), leg))
            .or_default()
            .push(r.dns_time.unwrap() * 1000.0);
    }
    let rows = saved(&fx.dir, "latency_percentiles");
    assert_eq!(
        rows[0],
        ["time", "leg", "answered", "p50_ms", "p90_ms", "p99_ms", "max_ms"]
    );
    assert_eq!(rows.len() - 1, groups.len());
    assert!(groups.keys().any(|k| k.1 == "upstream") && groups.keys().any(|k| k.1 == "downstream"));
    for r in &rows[1..] {
        let mut v = groups[&(r[0].clone(), r[1].as_str())].clone();
        v.sort_by(f64::total_cmp);
        assert_eq!(f(&r[2]) as usize, v.len());
        for (col, p) in [(3, 0.5), (4, 0.9), (5, 0.99)] {
            // tshark's dns.time has nanosecond digits of a microsecond capture: equal to 1e-6 ms
            assert!(
                (f(&r[col]) - percentile_cont(&v, p)).abs() < 1e-6,
                "{r:?} p{p}"
            );
        }
        assert!((f(&r[6]) - v[v.len() - 1]).abs() < 1e-6);
    }
}

#[test]
fn domain_timeline_follows_the_busiest_domain() {
    let fx = Fixture::new();
    let mut want: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in fx.ts.iter().filter(|r| {
        (!r.response || r.response_to.is_none()) && reg_domain(&r.qname) == "example.test"
    }) {
        let e = want.entry(fx.tx_minute(r)).or_default();
        e.0 += 1;
        let resp = r.response_in.map(|n| fx.frame(n));
        e.1 += resp.is_some_and(|x| x.rcode == Some(3)) as usize;
    }
    let rows = saved(&fx.dir, "domain_timeline");
    assert_eq!(rows[0][..4], ["time", "domain", "transactions", "answered"]);
    let got: BTreeMap<String, (usize, usize)> = rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r[1], "example.test");
            (r[0].clone(), (f(&r[2]) as usize, f(&r[5]) as usize))
        })
        .collect();
    assert_eq!(got, want);
}

/// A copy of the sample with one client's response delayed by 6 s (its record
/// timestamp rewritten) shows up, alone, in slow_by_client_domain.
#[test]
fn slow_responses_by_client_and_domain() {
    let fx = Fixture::new();
    let pair = fx
        .ts
        .iter()
        .find(|r| r.response && r.response_to.is_some() && r.dst == "127.0.0.100")
        .expect("an answered client query");
    let mut bytes = std::fs::read(sample()).unwrap();
    let mut pos = 24;
    let mut frame = 1;
    while frame < pair.frame {
        let caplen = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 16 + caplen;
        frame += 1;
    }
    let sec = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
    bytes[pos..pos + 4].copy_from_slice(&(sec + 6).to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let slow = tmp.path().join("slow.pcap");
    std::fs::write(&slow, &bytes).unwrap();
    ingest(&tmp.path().join("ds"), &[&slow], &[]);
    let rows = saved(&tmp.path().join("ds"), "slow_by_client_domain");
    assert_eq!(
        rows[0],
        ["client_ip", "domain", "slow", "client_slow", "max_ms"]
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[1][..4],
        ["127.0.0.100", &reg_domain(&pair.qname), "1", "1"]
    );
    assert!((f(&rows[1][4]) - (6000.0 + pair.dns_time.unwrap() * 1000.0)).abs() < 1e-6);
    // and the unmodified sample has no response over 5 s, as tshark says
    assert!(fx.ts.iter().all(|r| r.dns_time.is_none_or(|t| t <= 5.0)));
    assert_eq!(saved(&fx.dir, "slow_by_client_domain").len(), 1);
}

/// On a trace with many domains the tail folds into one `other` row and the
/// shares still add up (compactor's mixed trace, tests/corpus/README.md).
#[test]
fn top_domains_other_bucket_on_a_busy_trace() {
    let cap = repo().join("tests/corpus/compactor/dns.pcap");
    let ts = read_tshark(&repo().join("tests/corpus/compactor/dns.pcap.tshark.tsv"));
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&cap], &[]);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in ts.iter().filter(|r| !r.response || r.response_to.is_none()) {
        let q = r.qname.to_lowercase();
        let d = psl::domain_str(&q).map_or(q.clone(), str::to_string);
        *counts.entry(d).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert!(ranked.len() > 10);
    let mut want: Vec<(String, usize)> = ranked[..10].to_vec();
    want.push(("other".into(), ranked[10..].iter().map(|x| x.1).sum()));
    let rows = saved(tmp.path(), "top_domains");
    let got: Vec<(String, usize)> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), f(&r[1]) as usize))
        .collect();
    assert_eq!(got, want);
    let share: f64 = rows[1..].iter().map(|r| f(&r[2])).sum();
    assert!(close(share, 100.0), "{share}");
}
