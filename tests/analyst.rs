//! The analyst's `dnsq sql`: parameters, legs, DNS functions and output,
//! checked on real captures against tshark's decoding of the same packets
//! (data/*.tshark.tsv) and, for the legs, against data/legs.expected.tsv
//! (counted with tshark filters when data/legs.pcap was recorded).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use common::*;

/// `dnsq sql -d DIR ARGS...` with CSV output; asserts success.
fn csv(dir: &Path, args: &[&str]) -> Vec<Vec<String>> {
    let out = sql_out(dir, args);
    assert!(
        out.status.success(),
        "dnsq sql {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_csv(&out.stdout)
}

fn sql_out(dir: &Path, args: &[&str]) -> Output {
    let mut c = dnsq();
    c.arg("sql")
        .arg("-d")
        .arg(dir)
        .args(["--format", "csv"])
        .args(args);
    run(&mut c)
}

fn n(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

fn expected_legs() -> BTreeMap<String, String> {
    std::fs::read_to_string(repo().join("data/legs.expected.tsv"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 2).then(|| (f[0].to_string(), f[1].to_string()))
        })
        .collect()
}

fn expected_qnames(kind: &str) -> BTreeMap<String, usize> {
    std::fs::read_to_string(repo().join("data/legs.expected.tsv"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 3 && f[0] == kind).then(|| (f[1].to_string(), f[2].parse().unwrap()))
        })
        .collect()
}

// ---- legs -------------------------------------------------------------

/// Unbound on 127.0.0.20:53 and Knot on 127.0.0.20:5300: one address, two
/// roles, told apart by port alone.
#[test]
fn legs_on_one_address_are_told_apart_by_port() {
    let (_t, dir) = legs_dataset();
    let want = expected_legs();
    let out = sql_out(
        &dir,
        &["select leg, count(*) as n from transactions where status <> 'response_only' group by 1 order by 1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resolver 127.0.0.20:53 found"),
        "the resolver is found by address and port: {stderr}"
    );
    let rows = parse_csv(&out.stdout);
    let by_leg: BTreeMap<&str, usize> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), n(&r[1]) as usize))
        .collect();
    let down: usize = want["downstream_queries"].parse::<usize>().unwrap()
        + want["direct_queries"].parse::<usize>().unwrap();
    assert_eq!(by_leg["downstream"], down);
    assert_eq!(
        by_leg["upstream"],
        want["upstream_queries"].parse::<usize>().unwrap()
    );

    // the same when the resolver is named, with or without its port
    for named in ["127.0.0.20:53", "127.0.0.20"] {
        let rows = csv(
            &dir,
            &["--resolver", named, "select leg, count(*) from transactions where status <> 'response_only' group by 1 order by 1"],
        );
        let got: BTreeMap<&str, usize> = rows[1..]
            .iter()
            .map(|r| (r[0].as_str(), n(&r[1]) as usize))
            .collect();
        assert_eq!(got, by_leg, "--resolver {named}");
    }
    // naming the authority's port instead is obeyed: then only the local
    // stub's query (127.0.0.20 to 127.0.0.20:53) leaves "the resolver" for another endpoint
    let rows = csv(
        &dir,
        &[
            "--resolver",
            "127.0.0.20:5300",
            "select count(*) from transactions where leg = 'upstream'",
        ],
    );
    assert_eq!(rows[1][0], "1", "{rows:?}");
    // DNSQ_RESOLVER names it as --resolver does
    let out = run(dnsq()
        .env("DNSQ_RESOLVER", "127.0.0.20:5300")
        .args(["sql", "--format", "csv", "-d"])
        .arg(&dir)
        .arg("select count(*) from transactions where leg = 'upstream'"));
    assert_eq!(parse_csv(&out.stdout)[1][0], "1");
}

#[test]
fn client_facing_queries_default_to_the_downstream_leg() {
    let (_t, dir) = legs_dataset();
    let want = expected_legs();
    // SERVFAILs clients saw, not those the authority gave the resolver
    let servfail = |args: &[&str]| -> usize {
        let mut a = vec!["-f", "rcodes_over_time"];
        a.extend_from_slice(args);
        csv(&dir, &a)[1..]
            .iter()
            .filter(|r| r[1] == "SERVFAIL")
            .map(|r| n(&r[2]) as usize)
            .sum()
    };
    assert_eq!(
        servfail(&[]),
        want["downstream_servfail"].parse::<usize>().unwrap()
    );
    assert_eq!(
        servfail(&["--leg", "upstream"]),
        want["upstream_servfail"].parse::<usize>().unwrap()
    );
    assert_eq!(
        servfail(&["--leg", "all"]),
        want["downstream_servfail"].parse::<usize>().unwrap()
            + want["upstream_servfail"].parse::<usize>().unwrap()
    );

    // a cache miss counts once: top_domains by qname's registered domain, downstream only
    let mut down: BTreeMap<String, usize> = BTreeMap::new();
    for (q, c) in expected_qnames("downstream_qname") {
        let labels: Vec<&str> = q.split('.').collect();
        *down
            .entry(labels[labels.len() - 2..].join("."))
            .or_default() += c;
    }
    // the direct query to the authority is downstream too (it is no resolver's)
    let direct = csv(
        &dir,
        &["select reg_domain, count(*) from transactions where server_port = 5300 and client_ip <> '127.0.0.20' group by 1"],
    );
    for r in &direct[1..] {
        *down.entry(r[0].clone()).or_default() += n(&r[1]) as usize;
    }
    let rows = csv(&dir, &["-f", "top_domains"]);
    assert_eq!(rows[0], ["domain", "transactions", "share_pct"]);
    let got: BTreeMap<String, usize> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), n(&r[1]) as usize))
        .collect();
    assert_eq!(got, down);

    // the resolver is not its own client: the clients are those tshark saw ask port 53
    let rows = csv(&dir, &["-f", "distinct_clients", "--bucket", "1h"]);
    let clients: usize = rows[1..].iter().map(|r| n(&r[1]) as usize).sum();
    assert_eq!(
        clients,
        want["downstream_clients"].parse::<usize>().unwrap()
    );
    let rows = csv(
        &dir,
        &[
            "-f",
            "distinct_clients",
            "--bucket",
            "1h",
            "--leg",
            "upstream",
        ],
    );
    assert_eq!(rows[1][1], "1", "upstream, the resolver is the only client");
}

/// A filter on the stored files reaches their scan once: each condition of
/// the Parquet predicate appears once in the plan (the Delta scan and
/// DataFusion each pushed the query's filters there, and every row paid for
/// `leg`, three string columns, twice), and the rows counted are tshark's.
#[test]
fn each_filter_reaches_the_scan_once() {
    let (_t, dir) = legs_dataset();
    let want = expected_legs();
    for leg in ["downstream", "upstream"] {
        let query = format!(
            "select count(*) from transactions where leg = '{leg}' and status <> 'response_only'"
        );
        let plan = csv(&dir, &[&format!("explain {query}")]);
        let scan: Vec<&String> = plan
            .iter()
            .flatten()
            .filter(|cell| cell.contains("DataSourceExec"))
            .collect();
        assert!(!scan.is_empty(), "{plan:?}");
        for cell in scan {
            let predicate = cell
                .split("predicate=")
                .nth(1)
                .and_then(|p| p.split(", pruning_predicate").next())
                .unwrap_or_else(|| panic!("no predicate: {cell}"));
            let conditions: Vec<&str> = predicate.split(" AND ").collect();
            let once: BTreeSet<&str> = conditions.iter().copied().collect();
            assert_eq!(conditions.len(), once.len(), "{predicate}");
            assert_eq!(predicate.matches("dnsq_leg(").count(), 1, "{predicate}");
        }
        let got = &csv(&dir, &[&query])[1][0];
        // a client asking an authority itself is downstream too
        let sent: usize = match leg {
            "downstream" => {
                n(&want["downstream_queries"]) as usize + n(&want["direct_queries"]) as usize
            }
            _ => n(&want["upstream_queries"]) as usize,
        };
        assert_eq!(n(got) as usize, sent, "{leg}");
    }
}

/// `leg` is the dearest condition (three columns a row): the scan computes
/// it after the others, for the rows they kept. A join's filter reaches the
/// scan after the query's own conditions (domain_timeline's domain did: its
/// second scan computed `leg` for every row, then kept 4% of them).
#[test]
fn leg_is_computed_after_the_other_conditions() {
    let (_t, dir) = legs_dataset();
    let query = "select count(*) from transactions t \
                 join (select 'legs.test' as d) x on t.reg_domain = x.d \
                 where leg = 'downstream'";
    let plan = csv(&dir, &[&format!("explain {query}")]);
    let predicate = plan
        .iter()
        .flatten()
        .filter(|cell| cell.contains("DataSourceExec"))
        .find_map(|cell| cell.split("predicate=").nth(1))
        .and_then(|p| p.split(", pruning_predicate").next())
        .unwrap_or_else(|| panic!("no scan predicate: {plan:?}"));
    let conditions: Vec<&str> = predicate.split(" AND ").collect();
    assert!(conditions.len() >= 2, "{predicate}");
    assert!(conditions[0].contains("DynamicFilter"), "{predicate}");
    let last = conditions.last().copied().unwrap_or_default();
    assert!(last.starts_with("dnsq_leg("), "{predicate}");
    // and the rows are those of the same count without the join's filter
    let joined = &csv(&dir, &[query])[1][0];
    let direct = &csv(
        &dir,
        &["select count(*) from transactions where reg_domain = 'legs.test' and leg = 'downstream'"],
    )[1][0];
    assert_eq!(joined, direct);
    assert!(n(joined) > 0.0, "legs.test has downstream rows");
}

#[test]
fn the_sample_resolver_is_found_and_its_legs_match_tshark() {
    let (_t, dir) = sample_dataset();
    let ts = read_tshark(&repo().join("data/sample.pcap.tshark.tsv"));
    // tshark: queries the resolver sent to another endpoint are upstream
    let upstream = ts
        .iter()
        .filter(|r| !r.response && r.src == "127.0.0.10" && r.dst != "127.0.0.10")
        .count();
    let queries = ts.iter().filter(|r| !r.response).count();
    let rows = csv(
        &dir,
        &["select leg, count(*) from transactions where status <> 'response_only' group by 1 order by 1"],
    );
    assert_eq!(
        rows[1..],
        [
            vec!["downstream".to_string(), (queries - upstream).to_string()],
            vec!["upstream".to_string(), upstream.to_string()],
        ]
    );
}

// ---- parameters -------------------------------------------------------

#[test]
fn since_until_and_relative_times_select_what_tshark_counts() {
    let (_t, dir) = sample_dataset();
    let ts = read_tshark(&repo().join("data/sample.pcap.tshark.tsv"));
    let epochs: Vec<f64> = ts
        .iter()
        .filter(|r| !r.response)
        .map(|r| n(&r.epoch))
        .collect();
    let first = epochs.iter().cloned().fold(f64::MAX, f64::min);
    let last = epochs.iter().cloned().fold(f64::MIN, f64::max);
    let mid = ((first + last) / 2.0).floor();
    let when = chrono_like(mid);
    let count = |args: &[&str]| -> usize {
        let mut a = vec!["-f", "distinct_clients", "--leg", "all", "--bucket", "1d"];
        a.extend_from_slice(args);
        csv(&dir, &a)[1..].iter().map(|r| n(&r[2]) as usize).sum()
    };
    let after = epochs.iter().filter(|e| **e >= mid).count();
    assert!(after > 0 && after < epochs.len());
    assert_eq!(count(&["--since", &when]), after);
    assert_eq!(count(&["--until", &when]), epochs.len() - after);
    assert_eq!(count(&[]), epochs.len());
    // -3s: the last three seconds of the data, whatever the date today
    let recent = epochs.iter().filter(|e| **e >= last_ts(&dir) - 3.0).count();
    assert_eq!(count(&["--since=-3s"]), recent);
    // a bad time is a clear usage error, not a panic
    let out = sql_out(&dir, &["-f", "top_domains", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a time"));
    assert!(first < mid);
}

/// The latest `ts` of the dataset (every transaction's start), in seconds.
fn last_ts(dir: &Path) -> f64 {
    let us = csv(
        dir,
        &["select arrow_cast(max(ts), 'Int64') from transactions"],
    );
    n(&us[1][0]) / 1e6
}

/// Seconds since the epoch → RFC 3339.
fn chrono_like(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[test]
fn buckets_fixed_and_auto() {
    let (_t, dir) = sample_dataset();
    let rows = csv(
        &dir,
        &["-f", "distinct_clients", "--leg", "all", "--bucket", "10s"],
    );
    assert_eq!(rows[0], ["time", "clients", "queries"]);
    for r in &rows[1..] {
        // every bucket starts on a multiple of 10 s
        let sec: u32 = r[0][17..19].parse().unwrap();
        assert_eq!(sec % 10, 0, "{r:?}");
    }
    let out = sql_out(&dir, &["-f", "distinct_clients"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let chosen = stderr
        .lines()
        .find_map(|l| l.strip_prefix("dnsq: --bucket auto: "))
        .unwrap_or_else(|| panic!("auto says what it chose: {stderr}"))
        .to_string();
    let span = last_ts(&dir)
        - n(&csv(
            &dir,
            &["select arrow_cast(min(ts), 'Int64') from transactions"],
        )[1][0])
            / 1e6;
    let secs = dnsq::query::params::parse_duration(&chosen)
        .unwrap()
        .as_secs_f64();
    assert!(
        span / secs <= 100.0,
        "at most about 100 buckets: {span} / {secs}"
    );
    assert!(
        span / secs >= 5.0 || secs == 1.0,
        "not too coarse: {span} / {secs}"
    );
    let rows = parse_csv(&out.stdout);
    assert!(rows.len() - 1 <= 101);
}

#[test]
fn named_parameters_are_bound_not_pasted() {
    let (_t, dir) = sample_dataset();
    let rows = csv(
        &dir,
        &[
            "-f",
            "domain_timeline",
            "--param",
            "domain=other.test",
            "--leg",
            "all",
            "--bucket",
            "1d",
        ],
    );
    let ts = read_tshark(&repo().join("data/sample.pcap.tshark.tsv"));
    let want = ts
        .iter()
        .filter(|r| {
            (!r.response || r.response_to.is_none())
                && r.qname.to_lowercase().ends_with("other.test")
        })
        .count();
    assert!(rows[1..].iter().all(|r| r[1] == "other.test"));
    assert_eq!(
        rows[1..].iter().map(|r| n(&r[2]) as usize).sum::<usize>(),
        want
    );
    // a value that would be an injection as text is just a domain nobody asked for
    let rows = csv(
        &dir,
        &["-f", "domain_timeline", "--param", "domain=x' OR '1'='1"],
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    // ad-hoc SQL takes parameters too, typed by where they are used
    let rows = csv(
        &dir,
        &[
            "--param",
            "ms=1",
            "--param",
            "q=www.example.test",
            "select count(*) > 0 from transactions where response_time_ms > $ms and qname = $q",
        ],
    );
    assert_eq!(rows[1][0], "true");
    let out = sql_out(&dir, &["select $nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--param nope="));
}

#[test]
fn top_n_with_other() {
    let (_t, dir) = sample_dataset();
    let all = csv(
        &dir,
        &["-f", "top_domains", "--leg", "all", "--top", "1000"],
    );
    let three = csv(&dir, &["-f", "top_domains", "--leg", "all", "--top", "3"]);
    assert_eq!(three.len(), 1 + 3 + 1);
    assert_eq!(three[1..4], all[1..4]);
    assert_eq!(three[4][0], "other");
    let rest: f64 = all[4..].iter().map(|r| n(&r[1])).sum();
    assert_eq!(n(&three[4][1]), rest);
    // the table function gives the same rows for any expression
    let f = csv(
        &dir,
        &["select * from top('coalesce(reg_domain, qname, ''(none)'')', 3)"],
    );
    assert_eq!(f[0], ["value", "count", "share_pct"]);
    for (a, b) in f[1..].iter().zip(&three[1..]) {
        assert_eq!(a[0], b[0]);
        assert_eq!(a[1], b[1]);
        assert!((n(&a[2]) - n(&b[2])).abs() < 1e-9);
    }
    // and checks that its arguments are expressions, nothing more
    let out = sql_out(&dir, &["select * from top('qtype) from captures --', 3)"]);
    assert!(!out.status.success());
}

#[test]
fn show_and_list_describe_parameters() {
    let out = run(dnsq().args(["sql", "--show", "domain_timeline"]));
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "$domain",
        "$bucket",
        "$leg",
        "$since",
        "$until",
        "date_bin($bucket, ts)",
    ] {
        assert!(s.contains(want), "{want} in {s}");
    }
    // every saved query takes the time range and says which leg it shows
    for (name, sql) in dnsq::query::saved::SAVED {
        assert!(sql.contains("$since") && sql.contains("$until"), "{name}");
        let h = dnsq::query::params::Header::parse(sql);
        assert!(!h.leg.is_empty(), "{name} says which leg it shows");
        assert!(!h.columns.is_empty(), "{name}");
        for p in &h.params {
            assert!(
                sql.contains(&format!("${}", p.name)),
                "{name} declares ${} and uses it",
                p.name
            );
        }
    }
}

// ---- functions ----------------------------------------------------------

#[test]
fn dns_functions_agree_with_the_stored_columns_and_tshark() {
    let (_t, dir) = sample_dataset();
    let rows = csv(
        &dir,
        &["select count(*) filter (where reg_domain(qname) is distinct from reg_domain), \
                  count(*) filter (where tld(upper(qname) || '.') is distinct from tld), \
                  count(*) filter (where (labels(qname, 2) is distinct from reg_domain) and reg_domain is not null), \
                  count(*) filter (where ip_in(client_ip, '127.0.0.0/8')), \
                  count(*) filter (where ip_in(client_ip, '::1')), \
                  count(*) filter (where ip_prefix(client_ip, 24) = '127.0.0.0/24') \
           from transactions"],
    );
    let ts = read_tshark(&repo().join("data/sample.pcap.tshark.tsv"));
    let txs: Vec<&TsharkRow> = ts
        .iter()
        .filter(|r| !r.response || r.response_to.is_none())
        .collect();
    let client = |r: &TsharkRow| {
        if r.response {
            r.dst.clone()
        } else {
            r.src.clone()
        }
    };
    let v4 = txs.iter().filter(|r| client(r).starts_with("127.")).count();
    let v6 = txs.iter().filter(|r| client(r) == "::1").count();
    assert_eq!(
        rows[1][..3],
        ["0", "0", "0"],
        "functions agree with the columns"
    );
    assert_eq!(n(&rows[1][3]) as usize, v4);
    assert_eq!(n(&rows[1][4]) as usize, v6);
    assert_eq!(n(&rows[1][5]) as usize, v4);
    let one = csv(
        &dir,
        &["select reverse_ip('1.2.0.192.in-addr.arpa') a, reverse_ip('3.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa') b, \
           ip_prefix('2001:DB8:0:1:0:0:0:53', 48) c, ip_in('2001:db8::1', '2001:db8::/32') d, public_suffix('www.example.co.uk') e, reg_domain('WWW.Example.CO.UK.') f"],
    );
    assert_eq!(
        one[1],
        [
            "192.0.2.1",
            "2001:db8:0:1::53",
            "2001:db8::/48",
            "true",
            "co.uk",
            "example.co.uk"
        ]
    );
    let list =
        String::from_utf8_lossy(&run(dnsq().args(["sql", "--functions"])).stdout).to_string();
    for (name, ..) in dnsq::query::functions::FUNCTIONS {
        assert!(list.contains(name), "{name}");
    }
}

/// Every example `--functions` prints gives the result it prints.
#[test]
fn function_examples_are_true() {
    let (_t, dir) = sample_dataset();
    for (name, _, _, example, result) in dnsq::query::functions::FUNCTIONS {
        if *name == "top" {
            continue;
        }
        let rows = csv(&dir, &[&format!("select {example}")]);
        assert_eq!(rows[1][0], *result, "{example}");
    }
}

// ---- output -------------------------------------------------------------

#[test]
fn output_file_format_follows_the_extension() {
    let (t, dir) = sample_dataset();
    let p = t.path().join("out.parquet");
    let out = run(dnsq()
        .args(["sql", "-d"])
        .arg(&dir)
        .arg("-o")
        .arg(&p)
        .arg("select qname, answers from transactions"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    let rows = csv(&dir, &["select count(*) from transactions"]);
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(
        reader.metadata().file_metadata().num_rows().to_string(),
        rows[1][0]
    );
    for bad in ["out.xlsx", "noext"] {
        let out = run(dnsq()
            .args(["sql", "-d"])
            .arg(&dir)
            .arg("-o")
            .arg(t.path().join(bad))
            .arg("select 1"));
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot tell the format"));
        assert!(!t.path().join(bad).exists());
    }
    let out = run(dnsq()
        .args(["sql", "-d"])
        .arg(&dir)
        .arg("-o")
        .arg(t.path().join("x.csv"))
        .args(["--format", "json", "select 1"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn csv_and_json_carry_nested_values_and_nulls_that_parse_back() {
    let (_t, dir) = sample_dataset();
    let rows = csv(
        &dir,
        &["select answers, rcode from transactions where answer_count > 1 limit 5"],
    );
    assert!(rows.len() > 1);
    for r in &rows[1..] {
        let v: serde_json::Value =
            serde_json::from_str(&r[0]).unwrap_or_else(|e| panic!("{e}: {}", r[0]));
        let first = &v.as_array().unwrap()[0];
        for k in ["name", "type", "ttl", "data"] {
            assert!(first.get(k).is_some(), "{k} in {first}");
        }
    }
    let out = run(dnsq().args(["sql", "-d"]).arg(&dir).args([
        "--format",
        "json",
        "select rcode, response_ts from transactions where status = 'unanswered' limit 2",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &v.as_array().unwrap()[0];
    assert!(row.get("rcode").unwrap().is_null(), "null keys kept: {row}");
    // two result sets never share one CSV or JSON stream
    for f in ["csv", "json", "ndjson"] {
        let out =
            run(dnsq()
                .args(["sql", "-d"])
                .arg(&dir)
                .args(["--format", f, "select 1; select 2"]));
        assert_eq!(out.status.code(), Some(2), "{f}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("2 statements return rows"));
    }
    // a view and then a query is one result: fine
    let rows = csv(&dir, &["create view v as select 1 as x; select x from v"]);
    assert_eq!(rows, [vec!["x".to_string()], vec!["1".to_string()]]);
}

#[test]
fn the_table_format_is_for_people() {
    let (_t, dir) = sample_dataset();
    let out = run(dnsq()
        .env("COLUMNS", "80")
        .args(["sql", "-d"])
        .arg(&dir)
        .arg("select qname, answers, 1.0 / 3 as third, 97.0 as share, cast(null as int) as nothing, 12345 as big from transactions where answer_count > 2 limit 3"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    for l in &lines {
        assert!(unicode_len(l) <= 80, "fits 80 columns: {l}");
    }
    assert!(s.contains(" 0.333 |"), "{s}");
    assert!(s.contains(" 97.0 |"), "{s}");
    assert!(s.contains(" NULL "), "{s}");
    assert!(s.contains("| 12345 |"), "numbers right-aligned: {s}");
    assert!(s.contains('…'), "cut cells end in …: {s}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("3 rows; cut to fit the terminal: answers"),
        "{s}"
    );
    // a long result shows the first rows and says how many there were
    let out = run(dnsq().args(["sql", "-d"]).arg(&dir).args([
        "--max-rows",
        "5",
        "select ts from transactions",
    ]));
    let s = String::from_utf8_lossy(&out.stdout);
    let total = csv(&dir, &["select count(*) from transactions"])[1][0].clone();
    let total = dnsq::query::thousands(total.parse().unwrap());
    assert!(
        s.lines()
            .last()
            .unwrap()
            .starts_with(&format!("{total} rows (5 shown")),
        "{s}"
    );
}

fn unicode_len(s: &str) -> usize {
    s.chars().count()
}

/// `date` reads as a DATE, as DuckDB, Spark and Polars read the Hive partition.
#[test]
fn date_is_a_date() {
    let (_t, dir) = sample_dataset();
    let rows = csv(
        &dir,
        &["select arrow_typeof(date) from transactions limit 1"],
    );
    assert_eq!(rows[1], ["Date32"]);
    let rows = csv(
        &dir,
        &["select min(date) = cast(min(ts) as date) from transactions"],
    );
    assert_eq!(rows[1], ["true"]);
    let days: BTreeSet<String> = csv(&dir, &["select distinct date from transactions"])[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(days.iter().all(|d| d.len() == 10));
}

/// `--since`/`--until` leave out whole days: on a dataset of two days (the
/// sample, 2026, and compactor's trace, 2016), a range in one day reads one
/// file, found from the Delta log's `ts` statistics before any file is opened.
#[test]
fn time_ranges_prune_day_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    ingest(
        &dir,
        &[&sample(), &repo().join("tests/corpus/compactor/dns.pcap")],
        &[],
    );
    let days = csv(&dir, &["select count(distinct date) from transactions"]);
    assert_eq!(days[1][0], "2");
    let plan = |since: &str| -> String {
        let out = sql_out(
            &dir,
            &[
                "--since",
                since,
                "explain analyze select count(*) from transactions where ts >= $since and ts < $until",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(plan("2026-11-28").contains("count_files_scanned=1"));
    assert!(plan("2000-01-01").contains("count_files_scanned=2"));
}

/// `--filter` narrows every query to what tshark counts for the same
/// client, network, server endpoint or rcode.
#[test]
fn filters_narrow_every_query() {
    let (_t, dir) = sample_dataset();
    let ts = read_tshark(&repo().join("data/sample.pcap.tshark.tsv"));
    let queries =
        |f: &dyn Fn(&TsharkRow) -> bool| ts.iter().filter(|r| !r.response && f(r)).count();
    let count = |filters: &[&str]| -> usize {
        let mut a: Vec<&str> = Vec::new();
        for f in filters {
            a.push("--filter");
            a.push(f);
        }
        a.push("select count(*) from transactions where status <> 'response_only'");
        n(&csv(&dir, &a)[1][0]) as usize
    };
    assert_eq!(
        count(&["client=127.0.0.100"]),
        queries(&|r| r.src == "127.0.0.100")
    );
    assert_eq!(
        count(&["client=127.0.0.0/24"]),
        queries(&|r| r.src.starts_with("127.0.0."))
    );
    assert_eq!(
        count(&["server=127.0.0.2:53"]),
        queries(&|r| r.dst == "127.0.0.2")
    );
    assert_eq!(count(&["server=::1"]), queries(&|r| r.dst == "::1"));
    let nx = ts
        .iter()
        .filter(|r| r.response && r.response_to.is_some() && r.rcode == Some(3))
        .count();
    assert_eq!(count(&["rcode=nxdomain"]), nx);
    // filters combine, saved queries see them, and a bad one is a usage error
    let rows = csv(
        &dir,
        &[
            "--filter",
            "client=127.0.0.100",
            "--filter",
            "leg=downstream",
            "-f",
            "top_clients",
        ],
    );
    assert_eq!(rows[1..].len(), 1);
    assert_eq!(rows[1][0], "127.0.0.100");
    let out = sql_out(&dir, &["--filter", "client=somewhere", "select 1"]);
    assert_eq!(out.status.code(), Some(2));
    // leg=all is both legs, as the dashboard's leg menu means it; a leg that
    // is not one is a usage error, not an empty answer
    let legs = |f: &[&str]| -> usize {
        let mut args: Vec<&str> = f.iter().flat_map(|f| ["--filter", f]).collect();
        args.push("select count(*) from transactions");
        csv(&dir, &args)[1][0].parse().unwrap()
    };
    let (down, up) = (legs(&["leg=downstream"]), legs(&["leg=upstream"]));
    assert!(down > 0 && up > 0, "{down} {up}");
    assert_eq!(legs(&["leg=all"]), down + up);
    assert_eq!(
        legs(&["leg=ALL", "client=127.0.0.100"]),
        legs(&["client=127.0.0.100"])
    );
    let out = sql_out(&dir, &["--filter", "leg=sideways", "select 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("downstream, upstream or all"));
}
