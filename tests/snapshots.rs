//! What people read, pinned: `dnsq schema`, `dnsq sql --functions`, and the
//! table format of saved queries on the sample. A change shows up as a
//! snapshot diff to review (`cargo insta review`, or INSTA_UPDATE=always).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;

fn stdout(args: &[&str]) -> String {
    let out = run(dnsq().args(args).env("COLUMNS", "100"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn schema_and_functions() {
    insta::assert_snapshot!("schema", stdout(&["schema"]));
    insta::assert_snapshot!("functions", stdout(&["sql", "--functions"]));
    insta::assert_snapshot!("list", stdout(&["sql", "--list"]));
}

#[test]
fn table_output_on_the_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    ingest(&dir, &[&sample()], &[]);
    let d = dir.to_str().unwrap();
    insta::assert_snapshot!(
        "top_domains",
        stdout(&["sql", "-d", d, "-f", "top_domains"])
    );
    insta::assert_snapshot!(
        "top_servers",
        stdout(&["sql", "-d", d, "-f", "top_servers"])
    );
    insta::assert_snapshot!(
        "latency_percentiles",
        stdout(&[
            "sql",
            "-d",
            d,
            "-f",
            "latency_percentiles",
            "--bucket",
            "1m"
        ])
    );
    insta::assert_snapshot!(
        "wide_rows",
        stdout(&[
            "sql",
            "-d",
            d,
            "select qname, qtype, rcode, answers, response_time_ms from transactions \
             where qname = 'www.example.test' and qtype = 'AAAA' and leg = 'downstream' order by ts limit 2"
        ])
    );
}
