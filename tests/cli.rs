//! The command line as a user meets it: schema, info, several statements,
//! standard input, output formats, saved-query listing, closed pipes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use dnsq::dataset::schema;

fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn schema_lists_every_column_with_its_meaning() {
    let out = stdout(&run(dnsq().arg("schema")));
    let (tx, caps) = out.split_once("table captures").expect("two tables");
    for (section, cols) in [
        (tx, schema::transaction_columns()),
        (caps, schema::capture_columns()),
    ] {
        for (name, _, _, doc) in cols {
            let line = section
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(line.contains(doc), "{line}");
        }
    }
    assert!(
        out.contains(
            "answers            list<struct<name string, type string, ttl bigint, data string>>"
        ),
        "{out}"
    );
}

#[test]
fn info_statements_stdin_and_formats() {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    let d = tmp.path();
    let info = stdout(&run(dnsq().arg("info").arg("-d").arg(d)));
    let total = sql(d, "select count(*) from transactions")[1][0].clone();
    assert!(
        info.contains(&total) && info.contains("sample.pcap"),
        "{info}"
    );

    // two statements, two results: as two tables; never two headers in one CSV stream
    let o = stdout(&run(dnsq()
        .args(["sql", "-d"])
        .arg(d)
        .arg("select 1 as a; select 2 as b")));
    assert_eq!(
        o,
        "+---+\n| a |\n+---+\n| 1 |\n+---+\n1 row\n+---+\n| b |\n+---+\n| 2 |\n+---+\n1 row\n"
    );
    let o = run(dnsq()
        .args(["sql", "--format", "csv", "-d"])
        .arg(d)
        .arg("select 1 as a; select 2 as b"));
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());

    // SQL from standard input
    let mut child = dnsq()
        .args(["sql", "--format", "ndjson", "-d"])
        .arg(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"select count(*) as n from transactions where status = 'unanswered'")
        .unwrap();
    let o = stdout(&child.wait_with_output().unwrap());
    let n = sql(
        d,
        "select count(*) from transactions where status = 'unanswered'",
    )[1][0]
        .clone();
    assert_eq!(o.trim(), format!("{{\"n\":{n}}}"));

    // JSON array, and Parquet to a file that reads back
    let o = stdout(&run(dnsq()
        .args(["sql", "--format", "json", "-d"])
        .arg(d)
        .arg(
            "select qname, rcode from transactions where rcode = 'SERVFAIL' order by ts limit 1",
        )));
    assert!(
        o.starts_with("[{\"qname\":\"") && o.contains("\"rcode\":\"SERVFAIL\""),
        "{o}"
    );
    // beside the dataset: `dnsq sql` never writes inside it
    let out = tempfile::tempdir().unwrap();
    let pq = out.path().join("out.parquet");
    stdout(&run(dnsq()
        .args(["sql", "--format", "parquet", "-o"])
        .arg(&pq)
        .arg("-d")
        .arg(d)
        .arg("select * from transactions")));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&pq).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows.to_string(), total);
}

#[test]
fn saved_queries_list_and_closed_pipe() {
    let o = stdout(&run(dnsq().args(["sql", "--list"])));
    for (name, sql) in dnsq::query::saved::SAVED {
        assert!(
            o.contains(name) && !dnsq::query::params::Header::parse(sql).purpose.is_empty(),
            "{name}"
        );
    }
    // every file in queries/ is compiled in, and nothing else is: a new saved
    // query that is not listed in saved.rs would be missing from the binary
    let mut files: Vec<String> = std::fs::read_dir(repo().join("queries"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sql").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut compiled: Vec<String> = dnsq::query::saved::SAVED
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    compiled.sort();
    assert_eq!(files, compiled);
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    // `| head -1`: the reader goes away early; not an error
    let mut child = dnsq()
        .args(["sql", "-d"])
        .arg(tmp.path())
        .arg("select * from transactions")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
