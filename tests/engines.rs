//! The dataset as other engines see it: DuckDB and pyarrow/pandas read the
//! files dnsq wrote and count what `dnsq sql` counts.
//!
//! Needs a Python with duckdb, pyarrow and pandas: `DNSQ_PYTHON` (set by
//! `.ci/run`, which makes the virtual environment), else `python3`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

fn python() -> String {
    std::env::var("DNSQ_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn num(s: &str) -> i64 {
    s.parse::<f64>().unwrap_or_else(|_| panic!("{s}")) as i64
}

#[test]
fn duckdb_and_pandas_read_the_same_counts() {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    let out = Command::new(python())
        .arg(repo().join("tests/py/engines.py"))
        .arg(tmp.path())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "DuckDB/pyarrow check failed (run the suite with .ci/run, which installs them):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("engines.py prints JSON");
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

    let by_status: BTreeMap<String, i64> = sql(
        tmp.path(),
        "select status, count(*) from transactions group by 1",
    )[1..]
        .iter()
        .map(|r| (r[0].clone(), num(&r[1])))
        .collect();
    assert_eq!(map("by_status"), by_status);
    let by_rcode: BTreeMap<String, i64> = sql(
        tmp.path(),
        "select rcode, count(*) from transactions where rcode is not null group by 1",
    )[1..]
        .iter()
        .map(|r| (r[0].clone(), num(&r[1])))
        .collect();
    assert_eq!(map("by_rcode"), by_rcode);
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
    // microsecond UTC timestamps, as every engine reads them
    assert_eq!(v["ts_type"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(v["arrow_ts_type"], "timestamp[us, tz=UTC]");
}
