//! The dataset as other engines see it: DuckDB, pandas (pyarrow), Polars and
//! Spark (local mode) read the files dnsq wrote, run every saved query with the
//! code shown in docs/ENGINES.md (tests/py/engines.py extracts and runs it) and
//! must give the rows `dnsq sql -f NAME` gives, in the same order.
//!
//! Needs a Python with duckdb, pyarrow, pandas, polars and pyspark, and Java
//! for Spark: `DNSQ_PYTHON` (set by `.ci/run`, which makes the virtual
//! environment and installs Java), else `python3`. `DNSQ_ENGINES=duckdb,pandas`
//! narrows the engines of the slow test (Spark takes most of its time).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::*;

const ALL_ENGINES: &str = "duckdb,pandas,polars,spark";

fn num(s: &str) -> i64 {
    s.parse::<f64>().unwrap_or_else(|_| panic!("{s}")) as i64
}

/// Runs tests/py/engines.py on `dir`: every saved query in each engine, once
/// per parameter set of `runs`. Fails if the engines disagree with each other.
fn engines_py(dir: &Path, engines: &str, runs: &Value) -> Value {
    let out = Command::new(python())
        .arg(repo().join("tests/py/engines.py"))
        .arg(dir)
        .arg("--engines")
        .arg(engines)
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--check")
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Spark logs a lot; the end says what went wrong
    let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
    assert!(
        out.status.success(),
        "engines.py {engines} failed (run the suite with .ci/run, which installs DuckDB, \
         pyarrow, pandas, Polars, pyspark and Java):\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("engines.py prints JSON");
    assert_eq!(
        v["missing"],
        json!([]),
        "every saved query has code for every engine in docs/ENGINES.md"
    );
    v
}

/// `dnsq sql -f NAME` with the run's parameters that the query declares, as
/// the flags an analyst types (`--bucket 1m --leg all --top 3 --param threshold_ms=1`).
fn saved_with(dir: &Path, name: &str, declared: &[String], params: &Value) -> Vec<Vec<String>> {
    let elsewhere = tempfile::tempdir().unwrap();
    let mut c = dnsq();
    c.current_dir(elsewhere.path())
        .arg("sql")
        .arg("-d")
        .arg(dir)
        .arg("--format")
        .arg("csv")
        .arg("-f")
        .arg(name);
    let mut shown = Vec::new();
    for (k, v) in params.as_object().unwrap() {
        if !declared.iter().any(|d| d == k) {
            continue;
        }
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        match k.as_str() {
            "bucket" | "leg" | "top" | "since" | "until" => {
                c.arg(format!("--{k}")).arg(&v);
                shown.push(format!("--{k} {v}"));
            }
            _ => {
                c.arg("--param").arg(format!("{k}={v}"));
                shown.push(format!("--param {k}={v}"));
            }
        }
    }
    let out = run(&mut c);
    assert!(
        out.status.success(),
        "dnsq sql -f {name} {}: {}",
        shown.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_csv(&out.stdout)
}

/// A UTC timestamp as text, whatever its spelling (`2026-11-28T09:49:00Z`,
/// `2026-11-28 09:49:00.500+00:00`), as `2026-11-28T09:49:00.000000`; None if
/// `s` is not one.
fn norm_ts(s: &str) -> Option<String> {
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let shape = b.iter().take(19).enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T' || c == b' ',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let frac = match &s[19..] {
        "" => "",
        f if f.starts_with('.') && f.len() <= 10 && f[1..].bytes().all(|c| c.is_ascii_digit()) => {
            &f[1..]
        }
        _ => return None,
    };
    Some(format!("{}T{}.{frac:0<6}", &s[..10], &s[11..19]))
}

/// One cell of dnsq's CSV against the same cell from an engine's JSON: numbers
/// to a relative 1e-9, timestamps whatever their spelling, null as an empty cell.
fn same_cell(dnsq: &str, engine: &Value, tolerance: f64) -> bool {
    match engine {
        Value::Null => dnsq.is_empty() || dnsq == "NULL",
        Value::Number(n) => {
            let b = n.as_f64().unwrap();
            match dnsq.parse::<f64>() {
                Ok(a) => a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs()),
                Err(_) => false,
            }
        }
        Value::String(s) => match (norm_ts(dnsq), norm_ts(s)) {
            (Some(a), Some(b)) => a == b,
            _ => dnsq == s,
        },
        Value::Bool(b) => dnsq == b.to_string(),
        _ => false,
    }
}

/// Every saved query of every run, dnsq against each engine. Returns the
/// differences (empty when all agree) and the number of rows compared.
fn compare_with_dnsq(dir: &Path, out: &Value, runs: &Value) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut compared = 0;
    for (i, params) in runs.as_array().unwrap().iter().enumerate() {
        let results = out["runs"][i]["results"].as_object().unwrap();
        for (query, columns) in out["queries"].as_object().unwrap() {
            let declared: Vec<String> = out["params"][query]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            let csv = saved_with(dir, query, &declared, params);
            // an empty result may come without a header
            let (header, rows) = match csv.split_first() {
                Some((header, rows)) => (Some(header), rows),
                None => (None, &[][..]),
            };
            if let (Some(header), Some(cols)) = (header, columns.as_array()) {
                let cols: Vec<&str> = cols.iter().map(|c| c.as_str().unwrap()).collect();
                if *header != cols {
                    problems.push(format!(
                        "{query} {params}: dnsq prints columns {header:?}, the header declares {cols:?}"
                    ));
                }
            }
            for (engine, by_query) in results {
                let theirs = by_query[query].as_array().unwrap();
                if theirs.len() != rows.len() {
                    problems.push(format!(
                        "{query} {params}: dnsq {} rows, {engine} {}\n  dnsq: {rows:?}\n  {engine}: {theirs:?}",
                        rows.len(),
                        theirs.len()
                    ));
                    continue;
                }
                for (n, (mine, their)) in rows.iter().zip(theirs).enumerate() {
                    let their = their.as_array().unwrap();
                    // DataFusion 55's percentile_cont truncates the interpolation
                    // weight to 1e-6 (INTERPOLATION_PRECISION), so a percentile
                    // may differ from the exact one by 1e-6 of the gap it spans
                    let names: Vec<&str> = columns
                        .as_array()
                        .map(|c| c.iter().filter_map(|v| v.as_str()).collect())
                        .unwrap_or_default();
                    let same = mine.len() == their.len()
                        && mine.iter().zip(their).enumerate().all(|(c, (a, b))| {
                            let percentile = names.get(c).is_some_and(|n| {
                                n.starts_with('p') && n.ends_with("_ms") && n != &"p50_ms"
                            });
                            same_cell(a, b, if percentile { 1e-5 } else { 1e-9 })
                        });
                    if !same {
                        problems.push(format!(
                            "{query} {params} row {n}: dnsq {mine:?}, {engine} {their:?}"
                        ));
                        break;
                    }
                }
                compared += rows.len();
            }
        }
    }
    (problems, compared)
}

fn rows_of<'a>(out: &'a Value, run: usize, engine: &str, query: &str) -> &'a Vec<Value> {
    out["runs"][run]["results"][engine][query]
        .as_array()
        .unwrap_or_else(|| panic!("{engine} {query} in run {run}"))
}

#[test]
fn every_engine_answers_every_saved_query_as_dnsq_does() {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    let engines = std::env::var("DNSQ_ENGINES").unwrap_or_else(|_| ALL_ENGINES.into());
    // Two 1-minute buckets on the sample; the 2 s run has more buckets, a
    // time range, a named domain and an `other` row in every top query.
    let runs = json!([
        {"leg": "all", "bucket": "1m", "top": 3, "threshold_ms": 1},
        {"leg": "downstream", "bucket": "1m", "top": 3, "threshold_ms": 1},
        {"leg": "upstream", "bucket": "1m", "top": 3, "threshold_ms": 1},
        {"bucket": "2s", "top": 2, "threshold_ms": 0.5, "domain": "other.test",
         "since": "2026-11-28T09:49:58Z", "until": "2026-11-28T09:50:05Z"},
    ]);
    let out = engines_py(tmp.path(), &engines, &runs);
    let (problems, compared) = compare_with_dnsq(tmp.path(), &out, &runs);
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let n_engines = engines.split(',').count();
    assert!(compared > 100 * n_engines, "only {compared} rows compared");

    // the runs are not vacuous: slow responses, `other` rows, both legs
    let first = engines.split(',').next().unwrap();
    assert!(!rows_of(&out, 0, first, "slow_by_client_domain").is_empty());
    for q in ["top_domains", "top_clients", "top_servers"] {
        let rows = rows_of(&out, 0, first, q);
        assert_eq!(rows.last().unwrap()[0], "other", "{q}: {rows:?}");
    }
    let legs: Vec<&Value> = rows_of(&out, 0, first, "latency_percentiles")
        .iter()
        .map(|r| &r[1])
        .collect();
    assert!(legs.contains(&&json!("downstream")) && legs.contains(&&json!("upstream")));
    assert!(rows_of(&out, 3, first, "distinct_clients").len() >= 3);
    assert_eq!(
        rows_of(&out, 3, first, "domain_timeline")[0][1],
        "other.test"
    );

    // `date` reads as a date everywhere, and as dnsq reads it
    let date_type = sql(
        tmp.path(),
        "select arrow_typeof(date) from transactions limit 1",
    );
    assert_eq!(date_type[1][0], "Date32");
    let expected = [
        (
            "duckdb",
            ["DATE", "TIMESTAMP WITH TIME ZONE", "BOOLEAN", "INTEGER"],
        ),
        (
            "pandas",
            [
                "date32[day][pyarrow]",
                "timestamp[us, tz=UTC][pyarrow]",
                "bool[pyarrow]",
                "int32[pyarrow]",
            ],
        ),
        (
            "polars",
            [
                "Date",
                "Datetime(time_unit='us', time_zone='UTC')",
                "Boolean",
                "Int32",
            ],
        ),
        (
            "spark",
            [
                "DateType()",
                "TimestampType()",
                "BooleanType()",
                "IntegerType()",
            ],
        ),
    ];
    // nullable integers and booleans survive every engine, pandas included
    let nulls = sql(
        tmp.path(),
        "select count(*) - count(aa), count(*) - count(answer_count) from transactions",
    );
    let (aa_nulls, ac_nulls) = (num(&nulls[1][0]), num(&nulls[1][1]));
    assert!(
        aa_nulls > 0 && ac_nulls > 0,
        "the sample has responses missing"
    );
    // the columns written with BYTE_STREAM_SPLIT (src/ingest/write.rs) read
    // back to the same values in every engine
    let split = sql(
        tmp.path(),
        "select sum(id), sum(client_port), sum(response_frame), \
         sum(arrow_cast(response_ts, 'Int64') - arrow_cast(ts, 'Int64')) from transactions",
    );
    let split: Vec<i64> = split[1].iter().map(|v| num(v)).collect();
    assert!(split.iter().all(|&s| s > 0), "{split:?}");
    for (engine, [date, ts, aa, ac]) in expected {
        let t = &out["types"][engine];
        if t.is_null() {
            continue; // not in DNSQ_ENGINES
        }
        assert_eq!(t["date"], date, "{engine}: {t}");
        assert_eq!(t["ts"], ts, "{engine}: {t}");
        assert_eq!(t["aa"], aa, "{engine}: {t}");
        assert_eq!(t["answer_count"], ac, "{engine}: {t}");
        assert_eq!(t["aa_nulls"].as_i64().unwrap(), aa_nulls, "{engine}");
        assert_eq!(
            t["answer_count_nulls"].as_i64().unwrap(),
            ac_nulls,
            "{engine}"
        );
        assert_eq!(t["split_sums"], json!(split), "{engine}");
    }
    // ... and the plain conversion the docs warn about really loses them
    let arrow = &out["types"]["arrow"];
    assert_eq!(arrow["pandas_plain_answer_count"], "float64");
    assert_eq!(arrow["pyarrow_ts"], "timestamp[us, tz=UTC]");
}

#[test]
fn engines_group_enriched_rows_as_dnsq_does() {
    // countries, continents and networks that are not all `unknown`: real
    // public traffic and the sample moved into public ranges, enriched with
    // MaxMind's test City database and the test ASN database
    let tmp = tempfile::tempdir().unwrap();
    let geoip = format!(
        "--geoip={}",
        common::mmdb("GeoIP2-City-Test.mmdb").display()
    );
    let asn = format!("--asn={}", common::mmdb("GeoLite2-ASN-Test.mmdb").display());
    let public = common::public_sample(tmp.path());
    let dir = tmp.path().join("d");
    ingest(&dir, &[&public, &common::zeek_ecs()], &[&geoip, &asn]);
    let runs = json!([
        {"leg": "all", "bucket": "1m", "top": 3, "threshold_ms": 1},
        {"leg": "downstream", "bucket": "1m", "top": 2, "threshold_ms": 1},
    ]);
    let out = engines_py(&dir, "duckdb,pandas,polars", &runs);
    let (problems, compared) = compare_with_dnsq(&dir, &out, &runs);
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(compared > 0);
    for query in ["top_countries", "top_networks"] {
        let rows = rows_of(&out, 0, "duckdb", query);
        let known = rows
            .iter()
            .filter(|r| {
                !["unknown", "other"]
                    .contains(&r[usize::from(query == "top_countries")].as_str().unwrap())
            })
            .count();
        assert!(known >= 2, "{query}: {rows:?}");
    }
}

#[test]
fn engines_tell_a_resolver_from_an_authority_on_one_address() {
    // unbound on 127.0.0.20:53 asks knot on 127.0.0.20:5300
    let tmp = tempfile::tempdir().unwrap();
    ingest(
        tmp.path(),
        &[&repo().join("data/legs.pcap")],
        &["--ports", "5300"],
    );
    let runs = json!([
        {"leg": "all", "bucket": "1m", "top": 2, "threshold_ms": 1},
        {"leg": "downstream", "bucket": "1m", "top": 2, "threshold_ms": 1},
        {"leg": "upstream", "bucket": "1m", "top": 2, "threshold_ms": 1},
    ]);
    let out = engines_py(tmp.path(), "duckdb,pandas,polars", &runs);
    let (problems, compared) = compare_with_dnsq(tmp.path(), &out, &runs);
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(compared > 0);

    let expected: BTreeMap<String, i64> =
        std::fs::read_to_string(repo().join("data/legs.expected.tsv"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 2).then(|| (f[0].to_string(), f[1].parse().unwrap()))
            })
            .collect();
    let counts = &out["counts"];
    assert_eq!(counts["resolvers"], json!(["127.0.0.20:53"]));
    // the client that asked the authority directly is on no resolver's leg: downstream
    assert_eq!(
        counts["by_leg"]["downstream"].as_i64().unwrap(),
        expected["downstream_queries"] + expected["direct_queries"]
    );
    assert_eq!(
        counts["by_leg"]["upstream"].as_i64().unwrap(),
        expected["upstream_queries"]
    );
    assert_eq!(counts["pandas_by_leg"], counts["by_leg"]);
    let by_leg: BTreeMap<String, i64> = sql(
        tmp.path(),
        "select leg, count(*) from transactions group by 1",
    )[1..]
        .iter()
        .map(|r| (r[0].clone(), num(&r[1])))
        .collect();
    assert_eq!(json!(by_leg), counts["by_leg"]);
}

#[test]
fn duckdb_and_pandas_read_the_same_counts() {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    let v = engines_py(tmp.path(), "duckdb,pandas", &json!([]));
    let v = &v["counts"];
    let int = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k}: {}", v[k]));
    let map = |k: &str| -> BTreeMap<String, i64> {
        v[k].as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_i64().unwrap()))
            .collect()
    };

    let rows = num(&sql(tmp.path(), "select count(*) from transactions")[1][0]);
    assert!(rows > 1000);
    assert_eq!(int("rows"), rows);
    assert_eq!(int("pandas_rows"), rows);

    // `select KEY, count(*) ...` as a map
    let counts = |q: &str| -> BTreeMap<String, i64> {
        sql(tmp.path(), q)[1..]
            .iter()
            .map(|r| (r[0].clone(), num(&r[1])))
            .collect()
    };
    let by_status = counts("select status, count(*) from transactions group by 1");
    assert_eq!(map("by_status"), by_status);
    let by_rcode =
        counts("select rcode, count(*) from transactions where rcode is not null group by 1");
    assert_eq!(map("by_rcode"), by_rcode);
    let by_leg = counts("select leg, count(*) from transactions group by 1");
    assert_eq!(map("by_leg"), by_leg);
    assert_eq!(map("pandas_by_leg"), by_leg);
    assert_eq!(v["resolvers"], json!(["127.0.0.10:53"]));
    let answers = num(&sql(
        tmp.path(),
        "select sum(array_length(answers)) from transactions",
    )[1][0]);
    assert_eq!(int("answers"), answers);
    let rtt = sql(
        tmp.path(),
        "select sum(response_time_ms) * 1000 from transactions",
    )[1][0]
        .parse::<f64>()
        .unwrap();
    assert_eq!(int("sum_rtt_us"), rtt.round() as i64);
    let clients = num(&sql(
        tmp.path(),
        "select count(distinct client_ip) from transactions",
    )[1][0]);
    assert_eq!(int("pandas_distinct_clients"), clients);
    let days: Vec<String> = sql(
        tmp.path(),
        "select distinct cast(date as varchar) from transactions order by 1",
    )[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(v["days"], json!(days));
}
