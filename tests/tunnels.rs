//! DNS inside tunnels: VXLAN recorded for real between two network namespaces
//! (data/record-vxlan.sh), and the same overlay traffic written inside the
//! encapsulations this machine's kernel cannot make (data/make-tunnels.py).
//! Oracles: the overlay capture recorded inside the tunnel's endpoint at the
//! same time, and tshark's decoding of each file (`*.tshark.tsv`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{ingest, read_tshark, repo, sql};

/// The rows that must not depend on the tunnel, in a stable order.
const COLUMNS: &str = "client_ip, server_ip, client_port, server_port, transport, id, qname, \
    qtype, rcode, status, answer_count, response_size, cast(response_time_ms as varchar), \
    query_frame, response_frame";

fn rows(dir: &Path) -> Vec<Vec<String>> {
    sql(
        dir,
        &format!("select {COLUMNS} from transactions order by ts, id, client_port"),
    )
}

fn ingested(capture: &Path) -> (tempfile::TempDir, Vec<Vec<String>>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[capture], &[]);
    let tunnels = sql(
        tmp.path(),
        "select coalesce(tunnel, 'none') from transactions",
    )
    .into_iter()
    .skip(1)
    .map(|r| r[0].clone())
    .collect();
    let r = rows(tmp.path());
    (tmp, r, tunnels)
}

/// (file, what its `tunnel` column says)
fn cases() -> Vec<(PathBuf, &'static str)> {
    let t = |f: &str| repo().join("data/tunnels").join(f);
    vec![
        (repo().join("data/vxlan.pcap"), "vxlan"),
        (t("geneve.pcap"), "geneve"),
        (t("gre.pcap"), "gre"),
        (t("gre-eth.pcap"), "gre"),
        (t("erspan1.pcap"), "erspan"),
        (t("erspan2.pcap"), "erspan"),
        (t("erspan3.pcap"), "erspan"),
        (t("gtp-u.pcap"), "gtp-u"),
        (t("mpls.pcap"), "mpls"),
        (t("pppoe.pcap"), "pppoe"),
        (t("qinq-vxlan.pcap"), "vxlan"),
    ]
}

#[test]
fn every_tunnel_gives_the_rows_of_the_traffic_inside_it() {
    let (_o, overlay, none) = ingested(&repo().join("data/vxlan-overlay.pcap"));
    assert!(none.iter().all(|t| t == "none"));
    // the recording holds UDP and TCP, IPv4 and IPv6, NOERROR, NXDOMAIN, SERVFAIL,
    // truncation: the comparison below covers all of them (a header and 20 rows)
    assert_eq!(overlay.len(), 21, "{overlay:?}");
    assert!(overlay.iter().any(|r| r[10] == "60" && r[4] == "tcp"));
    for want in ["udp", "tcp"] {
        assert!(overlay.iter().any(|r| r[4] == want));
    }
    for want in ["NOERROR", "NXDOMAIN", "SERVFAIL"] {
        assert!(overlay.iter().any(|r| r[8] == want), "{want}");
    }
    assert!(overlay.iter().any(|r| r[0].contains(':')));
    for (capture, name) in cases() {
        let (_d, got, tunnels) = ingested(&capture);
        if capture.ends_with("vxlan.pcap") {
            // recorded for real on the underlay while the overlay was recorded on
            // the VXLAN device: other frames between (the tunnel's neighbour
            // discovery), and each side's clock read a few µs apart
            assert_eq!(got.len(), overlay.len());
            for (g, o) in got.iter().zip(&overlay).skip(1) {
                assert_eq!(g[..12], o[..12], "{}", capture.display());
                let (a, b): (f64, f64) = (g[12].parse().unwrap(), o[12].parse().unwrap());
                assert!((a - b).abs() < 0.2, "{a} ms against {b} ms: {g:?}");
            }
        } else {
            // written around the overlay's own frames: the same frames, the same times
            assert_eq!(got, overlay, "{}", capture.display());
        }
        assert!(
            tunnels.iter().all(|t| t == name),
            "{}: {tunnels:?}",
            capture.display()
        );
    }
}

#[test]
fn every_tunnel_agrees_with_tsharks_decoding() {
    for (capture, _) in cases() {
        let oracle = read_tshark(&PathBuf::from(format!("{}.tshark.tsv", capture.display())));
        assert!(oracle.len() >= 40, "{}", capture.display());
        let tmp = tempfile::tempdir().unwrap();
        ingest(tmp.path(), &[&capture], &[]);
        // every message tshark saw is in a row: (frame, id, qname, qtype) of queries
        // and responses, and each pair tshark made is a row's pair
        let got = sql(
            tmp.path(),
            "select query_frame, response_frame, id, qname, qtype, rcode from transactions",
        );
        let mut frames = std::collections::BTreeSet::new();
        for r in &got[1..] {
            for f in [&r[0], &r[1]] {
                if !f.is_empty() {
                    frames.insert(f.parse::<u64>().unwrap());
                }
            }
        }
        let seen: std::collections::BTreeSet<u64> = oracle.iter().map(|r| r.frame).collect();
        assert_eq!(frames, seen, "{}", capture.display());
        for t in oracle.iter().filter(|t| t.response) {
            let q = t.response_to.unwrap();
            let row = got[1..]
                .iter()
                .find(|r| r[1] == t.frame.to_string())
                .unwrap_or_else(|| panic!("{}: frame {}", capture.display(), t.frame));
            assert_eq!(row[0], q.to_string(), "{}", capture.display());
            assert_eq!(row[3].to_lowercase(), t.qname.to_lowercase());
            assert_eq!(
                row[5],
                match t.rcode.unwrap() {
                    0 => "NOERROR",
                    2 => "SERVFAIL",
                    3 => "NXDOMAIN",
                    other => panic!("rcode {other}"),
                }
            );
            // tshark's innermost ports are the DNS ports dnsq reports
            assert!(t.sport == 53 || t.dport == 53, "{t:?}");
        }
    }
}

#[test]
fn nested_tunnels_name_every_layer() {
    // zeek's Geneve around VXLAN (truncated inner packet), GRE in UDP, and
    // PPTP's GRE inside IPv4 inside IPv6 (BSD-3-Clause); arkime's GTP-U over
    // IPv6 (Apache-2.0); all in tests/corpus
    let corpus = repo().join("tests/corpus");
    for (file, want) in [
        ("zeek/gre-over-udp-4754.pcap", "gre"),
        ("zeek/gre-pptp.pcap", "ip-in-ip/gre"),
        ("zeek/geneve-vxlan-dns-truncated.pcap", "geneve/vxlan"),
        ("arkime/ipv6-gtp6.pcap", "gtp-u"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        ingest(tmp.path(), &[&corpus.join(file)], &[]);
        let t = sql(
            tmp.path(),
            "select distinct tunnel, count(*) from transactions group by 1",
        );
        assert_eq!(t.len(), 2, "{file}: {t:?}");
        assert_eq!(t[1][0], want, "{file}");
    }
}
