//! Helpers shared by the integration tests: run the real `dnsq` binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn dnsq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dnsq"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sample() -> PathBuf {
    repo().join("data/sample.pcap")
}

/// The shared corpus of public captures, when this checkout sits beside it.
pub fn shared_captures() -> Option<PathBuf> {
    let p = repo().join("../shared/captures");
    p.is_dir().then_some(p)
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("dnsq runs")
}

/// Ingests `captures` into `dir`, asserting success.
pub fn ingest(dir: &Path, captures: &[&Path], extra: &[&str]) -> Output {
    let mut c = dnsq();
    c.arg("ingest")
        .arg("-o")
        .arg(dir)
        .args(extra)
        .args(captures);
    let out = run(&mut c);
    assert!(
        out.status.success(),
        "ingest {captures:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs SQL on the dataset in `dir` and returns the CSV rows (header first).
pub fn sql(dir: &Path, query: &str) -> Vec<Vec<String>> {
    let out = run(dnsq()
        .arg("sql")
        .arg("-d")
        .arg(dir)
        .arg("--format")
        .arg("csv")
        .arg(query));
    assert!(
        out.status.success(),
        "sql failed: {query}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_csv(&out.stdout)
}

pub fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    r.records()
        .map(|rec| rec.expect("valid csv").iter().map(str::to_string).collect())
        .collect()
}

/// A tshark `-T fields` export with the corpus' 18 columns (see shared/captures/README.md).
#[derive(Debug, Clone)]
pub struct TsharkRow {
    pub frame: u64,
    pub epoch: String,
    pub src: String,
    pub dst: String,
    pub sport: u16,
    pub dport: u16,
    pub response: bool,
    pub qtype: Option<u16>,
    pub rcode: Option<u16>,
    pub qname: String,
    pub dns_time: Option<f64>,
    pub response_to: Option<u64>,
    pub response_in: Option<u64>,
    /// A frame holding several DNS messages (fields joined with commas).
    pub multi: bool,
    /// Every message's QR bit, in the frame's order.
    pub flags: Vec<bool>,
    /// Every response's header rcode.
    pub rcodes: Vec<u16>,
    /// `dns.response_to` / `dns.response_in` of every message that has one.
    pub response_to_all: Vec<u64>,
    pub response_in_all: Vec<u64>,
}

pub fn read_tshark(path: &Path) -> Vec<TsharkRow> {
    let text = std::fs::read_to_string(path).expect("tshark oracle");
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            let multi = get(11).contains(',');
            let first = |s: &str| s.split(',').next().unwrap_or("").to_string();
            TsharkRow {
                frame: get(0).parse().expect("frame number"),
                epoch: get(1).to_string(),
                src: format!("{}{}", get(2), get(3)),
                dst: format!("{}{}", get(4), get(5)),
                sport: format!("{}{}", get(6), get(7)).parse().unwrap_or(0),
                dport: format!("{}{}", get(8), get(9)).parse().unwrap_or(0),
                response: first(get(11)) == "1",
                qtype: first(get(14)).parse().ok(),
                rcode: first(get(12)).parse().ok(),
                qname: first(get(13)),
                dns_time: first(get(15)).parse().ok(),
                response_to: first(get(16)).parse().ok(),
                response_in: first(get(17)).parse().ok(),
                multi,
                flags: get(11)
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| x == "1")
                    .collect(),
                rcodes: get(12).split(',').filter_map(|x| x.parse().ok()).collect(),
                response_to_all: get(16).split(',').filter_map(|x| x.parse().ok()).collect(),
                response_in_all: get(17).split(',').filter_map(|x| x.parse().ok()).collect(),
            }
        })
        .collect()
}

/// `2026-11-28T09:49:00Z`-style start of the minute of a tshark epoch string,
/// as `dnsq sql --format csv` prints `date_trunc('minute', ts)`.
pub fn minute_of(epoch: &str) -> String {
    let secs: i64 = epoch.split('.').next().unwrap().parse().unwrap();
    let m = secs - secs.rem_euclid(60);
    let (y, mo, d) = dnsq::ingest::rdata::civil_from_days(m.div_euclid(86_400));
    let s = m.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:00Z",
        s / 3600,
        s / 60 % 60
    )
}

/// Runs a saved query by name from a directory that is not the repository.
pub fn saved(dir: &Path, name: &str) -> Vec<Vec<String>> {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run(dnsq()
        .current_dir(elsewhere.path())
        .arg("sql")
        .arg("-d")
        .arg(dir)
        .arg("--format")
        .arg("csv")
        .arg("-f")
        .arg(name)
        // both legs, minutes: what the tshark oracles count
        .args(["--leg", "all", "--bucket", "1m"]));
    assert!(
        out.status.success(),
        "saved query {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_csv(&out.stdout)
}

impl TsharkRow {
    /// Capture time in nanoseconds since the epoch, exactly.
    pub fn ns(&self) -> i64 {
        let (s, frac) = self.epoch.split_once('.').unwrap_or((&self.epoch, "0"));
        let frac = format!("{frac:0<9}");
        s.parse::<i64>().unwrap() * 1_000_000_000 + frac[..9].parse::<i64>().unwrap()
    }
}
