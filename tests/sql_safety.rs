//! `dnsq sql` is read-only unless asked, never writes inside the dataset, never
//! overwrites an -o file without --force, and streams its results (issue 10,
//! points 4 and 5). Each test runs the real binary on `data/sample.pcap`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;

/// Every file under `dir` with its bytes: equal before and after means untouched.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn dataset() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    ingest(&tmp.path().join("d"), &[&sample()], &[]);
    tmp
}

fn sql_out(d: &Path, extra: &[&str], query: &str) -> Output {
    run(dnsq().arg("sql").arg("-d").arg(d).args(extra).arg(query))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Refused: exit 1, a message naming `what` and the way out, nothing changed.
fn assert_refused(d: &Path, extra: &[&str], query: &str, what: &str, hint: &str) {
    let before = files(d);
    let o = sql_out(d, extra, query);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{query}: {e}");
    assert!(e.contains(what) && e.contains(hint), "{query}: {e}");
    assert!(files(d) == before, "{query} changed the dataset");
}

fn count(d: &Path) -> String {
    sql(d, "select count(*) from transactions")[1][0].clone()
}

#[test]
fn writes_are_refused_by_default_and_the_dataset_stays_as_it_was() {
    let tmp = dataset();
    let d = &tmp.path().join("d");
    let n = count(d);
    let ro = "pass --allow-write";
    // before: exit 0, a new file in transactions/, and every later query failed
    assert_refused(
        d,
        &[],
        "insert into transactions select * from transactions",
        "Insert Into on transactions writes data",
        ro,
    );
    let outside = tmp.path().join("any.csv");
    assert_refused(
        d,
        &[],
        &format!("copy (select 1) to '{}'", outside.display()),
        "COPY writes files",
        ro,
    );
    assert!(!outside.exists());
    // before: CREATE EXTERNAL TABLE read any file the user could read
    let secret = tmp.path().join("secret.csv");
    std::fs::write(&secret, "password\nhunter2\n").unwrap();
    let o = sql_out(
        d,
        &[],
        &format!(
            "create external table s stored as csv location '{}'; select * from s",
            secret.display()
        ),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("hunter2"));
    assert!(stderr(&o).contains("CREATE EXTERNAL TABLE reads files") && stderr(&o).contains(ro));
    assert_refused(
        d,
        &[],
        "create table t as select * from transactions",
        "CREATE TABLE materialises",
        ro,
    );
    assert_refused(d, &[], "drop table transactions", "DropTable", ro);
    // EXPLAIN ANALYZE runs its statement: the same rules apply
    assert_refused(
        d,
        &[],
        &format!("explain analyze copy (select 1) to '{}'", outside.display()),
        "COPY writes files",
        ro,
    );
    // the memory pool and the spill directory are fixed by the command line
    assert_refused(
        d,
        &[],
        "set datafusion.runtime.memory_limit = '100G'",
        "datafusion.runtime.memory_limit",
        "--memory-limit",
    );
    assert_eq!(count(d), n);
}

#[test]
fn views_and_settings_are_read_only_and_allowed() {
    let tmp = dataset();
    let d = &tmp.path().join("d");
    let before = files(d);
    let n = count(d);
    let rows = sql(
        d,
        "create view answered as select * from transactions where status = 'answered'; \
         create temporary view t as select count(*) as n from transactions; \
         set datafusion.execution.time_zone = '+00:00'; \
         select (select n from t) as total, count(*) as answered from answered; \
         drop view answered",
    );
    assert_eq!(rows[0], ["total", "answered"]);
    assert_eq!(rows[1][0], n);
    assert!(files(d) == before);
}

#[test]
fn allow_write_writes_outside_the_dataset_only() {
    let tmp = dataset();
    let d = &tmp.path().join("d");
    let n = count(d);
    let w = ["--allow-write"];
    let outside = tmp.path().join("out.parquet");
    let o = sql_out(
        d,
        &w,
        &format!(
            "copy (select * from transactions) to '{}'",
            outside.display()
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&outside).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .map(|b| b.unwrap().num_rows())
    .sum();
    assert_eq!(rows.to_string(), n);

    let inside = "inside the dataset directory";
    let tx = d.join("transactions");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&tx, tmp.path().join("link")).unwrap();
    for target in [
        tx.join("date=2000-01-01/x.parquet"),
        d.join("captures/x.parquet"),
        // `..` and a symlink that lead back in
        tmp.path().join("nowhere/../d/transactions/y.parquet"),
        tmp.path().join("link/z.parquet"),
    ] {
        assert_refused(
            d,
            &w,
            &format!(
                "copy (select * from transactions) to '{}'",
                target.display()
            ),
            inside,
            "never writes there",
        );
    }
    // the dataset's tables change only through ingest, whatever the flags
    assert_refused(
        d,
        &w,
        "insert into transactions select * from transactions",
        "Insert Into on transactions",
        "dnsq ingest",
    );
    // nor does a table declared over the dataset's files take writes
    assert_refused(
        d,
        &w,
        &format!(
            "create external table t stored as parquet location '{}/'; \
             insert into t select * from t",
            d.join("captures").display()
        ),
        inside,
        "never writes there",
    );
    // a table of the user's own, outside, does
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let o = sql_out(
        d,
        &w,
        &format!(
            "create external table m (qname varchar) stored as csv location '{}/'; \
             insert into m select qname from transactions limit 3",
            mine.display()
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
    assert_eq!(count(d), n);

    // a table made from the computed `leg` column holds what a query of it
    // gives (its resolvers are found before the table is filled)
    let by_leg = "select leg, count(*) as n from transactions group by 1 order by 1";
    let want = sql(d, by_leg);
    let o = sql_out(
        d,
        &["--allow-write", "--format", "csv"],
        &format!("create table m as {by_leg}; select * from m order by 1"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(parse_csv(&o.stdout), want);
    assert!(want.len() >= 3, "{want:?}: a header and both legs");
}

#[test]
fn output_file_is_not_overwritten_without_force() {
    let tmp = dataset();
    let d = &tmp.path().join("d");
    let out = tmp.path().join("result.csv");
    std::fs::write(&out, "keep me\n").unwrap();
    let q = "select count(*) as n from transactions";
    let o = sql_out(d, &["--format", "csv", "-o", out.to_str().unwrap()], q);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exists; pass --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    // a failed query with --force leaves the file as it was, and no temporary
    let o = sql_out(
        d,
        &["--force", "--format", "csv", "-o", out.to_str().unwrap()],
        "select nonexistent from transactions",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
    let o = sql_out(
        d,
        &["--force", "--format", "csv", "-o", out.to_str().unwrap()],
        q,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("n\n{}\n", count(d))
    );
    // a new file needs no flag; and -o never points into the dataset
    let fresh = tmp.path().join("fresh.csv");
    let o = sql_out(d, &["--format", "csv", "-o", fresh.to_str().unwrap()], q);
    assert!(o.status.success() && fresh.exists(), "{}", stderr(&o));
    let before = files(d);
    let o = sql_out(
        d,
        &[
            "--force",
            "--format",
            "parquet",
            "-o",
            d.join("transactions/x.parquet").to_str().unwrap(),
        ],
        "select * from transactions",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("inside the dataset directory"));
    assert!(files(d) == before);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".dnsq-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn big_results_stream_and_the_table_shows_a_preview() {
    let tmp = dataset();
    let d = &tmp.path().join("d");
    // a result larger than the preview, whatever the sample's size
    let big = "select t.* from transactions t, generate_series(1, 5) g";
    let total: usize = sql(d, &format!("select count(*) from ({big})"))[1][0]
        .parse()
        .unwrap();
    assert!(total > 1000, "{total}");

    // csv: exactly count(*) rows after the header
    let o = sql_out(d, &["--format", "csv"], big);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(parse_csv(&o.stdout).len(), total + 1);
    // ndjson: one line a row
    let o = sql_out(d, &["--format", "ndjson"], big);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), total);

    // table: the first 1,000 rows, then the count of all of them
    let o = sql_out(d, &[], big);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let data_rows = table.lines().filter(|l| l.starts_with("| ")).count() - 1; // header
    assert_eq!(data_rows, 1000);
    let footer = format!(
        "{} rows (1,000 shown; --max-rows N, LIMIT or --format csv for more)",
        dnsq::cli::thousands(total as u64)
    );
    assert_eq!(table.lines().last(), Some(footer.as_str()), "{table}");
    // --max-rows sets the preview; a result that fits has no note
    let o = sql_out(d, &["--max-rows", "5"], big);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("| "))
            .count(),
        6
    );
    let o = sql_out(d, &[], "select 1 as one");
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    // an empty result keeps its header
    let o = sql_out(
        d,
        &["--format", "csv"],
        "select qname from transactions where false",
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "qname\n");

    // `| head -c 1`: a reader that goes away mid-stream is not an error
    let mut child = dnsq()
        .args(["sql", "--format", "csv", "-d"])
        .arg(d)
        .arg(big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn memory_limit_is_named_when_a_query_exceeds_it() {
    let tmp = dataset();
    let d = &tmp.path().join("d");
    // a hash join's build side cannot spill
    let o = sql_out(
        d,
        &["--memory-limit", "16K"],
        "select a.qname from transactions a join transactions b on a.qname = b.qname",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("more memory than --memory-limit 16.0 KiB"),
        "{}",
        stderr(&o)
    );
    let o = sql_out(d, &["--memory-limit", "lots"], "select 1");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // a query that fits runs under a small limit (a sort holds 10 MiB back for its merge)
    let o = sql_out(
        d,
        &["--memory-limit", "32M", "--format", "csv"],
        "select qname, ts from transactions order by qname, ts",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        parse_csv(&o.stdout).len() - 1,
        count(d).parse::<usize>().unwrap()
    );
}
