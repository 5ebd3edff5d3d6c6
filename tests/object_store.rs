//! Datasets on an object store: `dnsq ingest -o s3://…`, `dnsq sql -d s3://…`
//! and `dnsq info`, against a local S3-compatible server (moto's standalone
//! server, from the Python environment `.ci/run` installs) that each test
//! starts and stops itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dnsq, parse_csv, repo, run, sample};

/// A moto S3 server on a free port, stopped on drop.
struct S3 {
    child: Child,
    endpoint: String,
    python: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3() -> Option<S3> {
    let python = std::env::var("DNSQ_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import moto.server, boto3"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        if std::env::var_os("DNSQ_PYTHON").is_some() {
            panic!("DNSQ_PYTHON has no moto[server]: .ci/run installs it");
        }
        eprintln!("no moto here; run .ci/run for the object store tests");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s3 = S3 {
        child,
        endpoint,
        python,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(s3)
}

impl S3 {
    fn bucket(&self, name: &str) {
        let script = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='{name}')",
            self.endpoint
        );
        let out = run(Command::new(&self.python).args(["-c", &script]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true");
    }

    fn ingest(&self, url: &str, caps: &[&Path], delay_ms: u64) -> Command {
        let mut c = dnsq();
        c.arg("ingest").arg("-o").arg(url).args(caps);
        c.env("DNSQ_TEST_COMMIT_DELAY_MS", delay_ms.to_string());
        self.env(&mut c);
        c
    }

    fn sql(&self, url: &str, query: &str) -> Vec<Vec<String>> {
        let mut c = dnsq();
        c.args(["sql", "--format", "csv", "-d", url, query]);
        self.env(&mut c);
        let out = run(&mut c);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_csv(&out.stdout)
    }
}

fn captures() -> [PathBuf; 2] {
    [sample(), repo().join("tests/corpus/compactor/dns.pcap")]
}

fn local_counts(caps: &[&Path]) -> i64 {
    let tmp = tempfile::tempdir().unwrap();
    common::ingest(tmp.path(), caps, &[]);
    common::sql(tmp.path(), "select count(*) from transactions")[1][0]
        .parse()
        .unwrap()
}

fn counts(s3: &S3, url: &str) -> (i64, i64, i64) {
    let t = s3.sql(url, "select count(*) from transactions");
    let c = s3.sql(url, "select count(*), count(distinct sha256) from captures");
    (
        t[1][0].parse().unwrap(),
        c[1][0].parse().unwrap(),
        c[1][1].parse().unwrap(),
    )
}

#[test]
fn ingest_and_query_on_s3() {
    let Some(s3) = start_s3() else { return };
    s3.bucket("dnsq");
    let [a, b] = captures();
    let url = "s3://dnsq/one";
    let out = run(&mut s3.ingest(url, &[&a], 0));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows_a = local_counts(&[&a]);
    assert_eq!(counts(&s3, url), (rows_a, 1, 1));
    // the same answers as the local dataset
    let q = "select rcode, count(*) n from transactions group by 1 order by 1";
    let tmp = tempfile::tempdir().unwrap();
    common::ingest(tmp.path(), &[&a], &[]);
    assert_eq!(s3.sql(url, q), common::sql(tmp.path(), q));
    // again: nothing added
    let out = run(&mut s3.ingest(url, &[&a], 0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in"));
    assert_eq!(counts(&s3, url), (rows_a, 1, 1));
    // dnsq info reads it
    let mut c = dnsq();
    c.args(["info", "-d", url]);
    s3.env(&mut c);
    let out = run(&mut c);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sample.pcap"));
    let _ = b;
}

/// Two writers with different captures at once give exactly the sum; the
/// same capture twice at once gives it once.
#[test]
fn concurrent_writers_on_s3() {
    let Some(s3) = start_s3() else { return };
    s3.bucket("dnsq");
    let [a, b] = captures();
    let (ra, rb) = (local_counts(&[&a]), local_counts(&[&b]));
    let url = "s3://dnsq/two";
    let spawn = |caps: &[&Path]| {
        s3.ingest(url, caps, 1500)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // the table is created by the first ingest: create it first, then race
    let out = run(&mut s3.ingest(url, &[&repo().join("tests/corpus/dnscap/dns.pcap")], 0));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = counts(&s3, url).0;
    let (x, y) = (spawn(&[&a]), spawn(&[&b]));
    for o in [x.wait_with_output().unwrap(), y.wait_with_output().unwrap()] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(counts(&s3, url), (base + ra + rb, 3, 3));
    let (x, y) = (spawn(&[&a]), spawn(&[&a]));
    for o in [x.wait_with_output().unwrap(), y.wait_with_output().unwrap()] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(counts(&s3, url), (base + ra + rb, 3, 3));
}

/// A killed ingest's uploaded files never count, and `dnsq vacuum
/// --older-than 0s` removes them.
#[test]
fn killed_ingest_on_s3_counts_nothing() {
    let Some(s3) = start_s3() else { return };
    s3.bucket("dnsq");
    let [a, b] = captures();
    let url = "s3://dnsq/three";
    let out = run(&mut s3.ingest(url, &[&a], 0));
    assert!(out.status.success());
    let before = counts(&s3, url);
    let out = run(s3
        .ingest(url, &[&b], 0)
        .env("DNSQ_TEST_CRASH", "after-upload"));
    assert!(!out.status.success());
    assert_eq!(counts(&s3, url), before);
    let mut c = dnsq();
    c.args(["vacuum", "--older-than", "0s", "-d", url]);
    s3.env(&mut c);
    let out = run(&mut c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("removed 0 "), "{err}");
    let out = run(&mut s3.ingest(url, &[&b], 0));
    assert!(out.status.success());
    let rb = local_counts(&[&b]);
    assert_eq!(counts(&s3, url), (before.0 + rb, 2, 2));
}
