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

/// A dns.log row with answers: (trans_id, query, [(answer, ttl)]).
type ZeekRow = (u64, String, Vec<(String, u64)>);
/// dnsq's answers: (id, qname, query frame, response frame) → [(type, ttl, data)].
type OurAnswers = BTreeMap<(u64, String, String, String), Vec<(String, u64, String)>>;

/// Zeek's dns.log rows that have answers.
fn read_zeek_dns_log(path: &Path) -> Vec<ZeekRow> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut fields: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').collect();
            continue;
        }
        if line.starts_with('#') || fields.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let get = |name: &str| fields.iter().position(|f| *f == name).map(|i| cols[i]);
        let (Some(answers), Some(ttls)) = (get("answers"), get("TTLs")) else {
            continue;
        };
        // UPDATE (opcode 5): Zeek logs the request's prerequisite and update
        // records; dnsq's `answers` are the response's answer section (SPEC §4)
        if answers == "-" || answers == "(empty)" || get("opcode") == Some("5") {
            continue;
        }
        let ttls = ttls.split(',').map(|t| t.parse::<f64>().unwrap() as u64);
        out.push((
            get("trans_id").unwrap().parse().unwrap(),
            get("query").unwrap().to_lowercase(),
            answers.split(',').map(str::to_string).zip(ttls).collect(),
        ));
    }
    out
}

/// How Zeek writes the answer types whose form both share: addresses as they
/// are, names without the final dot, MX as its exchange, SRV as its target. Other types Zeek
/// writes in forms of its own (`TXT 19 v=spf1 …`); their TTLs are still compared.
fn zeek_form(rtype: &str, data: &str) -> Option<String> {
    match rtype {
        "A" | "AAAA" => Some(data.to_string()),
        "CNAME" | "PTR" | "NS" | "DNAME" => Some(data.trim_end_matches('.').to_lowercase()),
        "MX" => data
            .split(' ')
            .nth(1)
            .map(|x| x.trim_end_matches('.').to_lowercase()),
        "SRV" => data
            .split(' ')
            .nth(3)
            .map(|x| x.trim_end_matches('.').to_lowercase()),
        _ => None,
    }
}

/// Every answer section Zeek logged (its dns.log `answers` and `TTLs`) is in
/// a transaction of dnsq's with the same id and question: the same TTLs, and
/// the same data for the types both write alike.
#[test]
fn answers_and_ttls_match_zeek() {
    // tunnels dnsq does not decode (SPEC §6: out of scope)
    let out_of_scope = ["gre-over-udp-4754", "gre-pptp", "gtp3_false_gtp"];
    let dir = repo().join("tests/corpus/zeek");
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".dns.log"))
        .collect();
    logs.sort();
    let (mut rows, mut answers, mut data_compared) = (0, 0, 0);
    let mut failures = Vec::new();
    for log in logs {
        let stem = log
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".dns.log", "");
        let want = read_zeek_dns_log(&log);
        if out_of_scope.contains(&stem.as_str()) || want.is_empty() {
            continue;
        }
        // Zeek's logs include mDNS: port 5353 as well
        let ds = tempfile::tempdir().unwrap();
        ingest(
            ds.path(),
            &[&dir.join(format!("{stem}.pcap"))],
            &["--ports", "5353"],
        );
        let got = if ds.path().join("transactions").exists() {
            sql(
                ds.path(),
                "select id, coalesce(qname, '-'), query_frame, response_frame, x['type'], x['ttl'], x['data'] \
                 from (select id, qname, query_frame, response_frame, unnest(answers) as x from transactions)",
            )
        } else {
            vec![Vec::new()]
        };
        let mut txs = OurAnswers::new();
        for r in &got[1..] {
            txs.entry((
                r[0].parse().unwrap(),
                r[1].clone(),
                r[2].clone(),
                r[3].clone(),
            ))
            .or_default()
            .push((r[4].clone(), r[5].parse().unwrap(), r[6].clone()));
        }
        for (id, query, zeek) in want {
            rows += 1;
            answers += zeek.len();
            let mut zeek_ttls: Vec<u64> = zeek.iter().map(|(_, t)| *t).collect();
            zeek_ttls.sort();
            let found = txs.iter().find(|((tid, q, _, _), ours)| {
                // a response without a question (mDNS) has no qname of ours
                if *tid != id || (query != "-" && q != "-" && *q != query.trim_end_matches('.')) {
                    return false;
                }
                let mut ttls: Vec<u64> = ours.iter().map(|(_, t, _)| *t).collect();
                ttls.sort();
                if ttls != zeek_ttls {
                    return false;
                }
                // the answers both write alike, in order
                ours.iter().zip(&zeek).all(|((ty, _, d), (z, _))| {
                    zeek_form(ty, d).is_none_or(|f| f == z.to_lowercase())
                })
            });
            if let Some((_, ours)) = found {
                data_compared += ours
                    .iter()
                    .filter(|(ty, _, d)| zeek_form(ty, d).is_some())
                    .count();
            } else {
                failures.push(format!(
                    "{stem}: id {id} {query}: Zeek {zeek:?}, dnsq {txs:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{rows} dns.log rows, {answers} answers and TTLs, {data_compared} answers compared by data"
    );
    assert!(
        rows >= 20 && answers >= 60 && data_compared >= 20,
        "{rows} rows, {answers} answers, {data_compared} compared by data"
    );
}
