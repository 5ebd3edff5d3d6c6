//! Helpers shared by the integration tests: run the real `dnsq` binary.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
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

/// `dnsq ingest -o DIR CAPTURES...`, to run or spawn.
pub fn ingest_cmd(dir: &Path, caps: &[&Path]) -> Command {
    let mut c = dnsq();
    c.arg("ingest").arg("-o").arg(dir).args(caps);
    c
}

/// data/legs.pcap (a resolver's two legs, its authorities on port 5300)
/// ingested into `TMP/ds`.
pub fn legs_dataset() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    ingest(
        &dir,
        &[&repo().join("data/legs.pcap")],
        &["--ports", "5300"],
    );
    (tmp, dir)
}

/// Writes `dnsq synth --packets PACKETS --seed SEED` to `out`, asserting success.
pub fn synth(out: &Path, packets: u64, seed: u64) {
    let o = run(dnsq()
        .args([
            "synth",
            "--packets",
            &packets.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg(out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
            // inside a tunnel, tshark lists each header's field outermost first:
            // the DNS endpoints are the last; with IPv4 and IPv6 both listed, which
            // is inside cannot be told from these fields (None)
            let last = |s: &str| s.rsplit(',').next().unwrap_or("").to_string();
            let inner = |v4: &str, v6: &str| match (v4.is_empty(), v6.is_empty()) {
                (false, true) => last(v4),
                (true, false) => last(v6),
                _ => String::new(),
            };
            TsharkRow {
                frame: get(0).parse().expect("frame number"),
                epoch: get(1).to_string(),
                src: inner(get(2), get(3)),
                dst: inner(get(4), get(5)),
                // a tunnel's outer UDP is listed beside an inner TCP
                sport: last(if get(7).is_empty() { get(6) } else { get(7) })
                    .parse()
                    .unwrap_or(0),
                dport: last(if get(9).is_empty() { get(8) } else { get(9) })
                    .parse()
                    .unwrap_or(0),
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
    chrono::DateTime::from_timestamp(m, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:00Z")
        .to_string()
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

/// A database `.ci/mmdb` fetched.
pub fn mmdb(name: &str) -> PathBuf {
    let dir = std::env::var_os("DNSQ_MMDB_DIR").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/dnsq-mmdb"),
        PathBuf::from,
    );
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: run .ci/mmdb (or .ci/run), which fetches the test databases",
        p.display()
    );
    p
}

/// Zeek's capture of a resolver with EDNS Client Subnet: real public
/// addresses, IPv4 and IPv6, and ECS subnets (BSD-3-Clause, tests/corpus).
pub fn zeek_ecs() -> PathBuf {
    repo().join("tests/corpus/zeek/dns-edns-ecs.pcap")
}

/// The sample with its loopback IPv4 addresses moved into public ranges that
/// MaxMind's test databases cover (one client stays private, `::1` stays
/// loopback), so that countries, continents and AS numbers are not all null.
pub const PUBLIC: [(&str, &str); 6] = [
    ("127.0.0.101", "89.160.20.115"), // client: SE, EU, AS29518
    ("127.0.0.100", "149.101.100.5"), // client: US, NA, AS6167
    ("127.0.0.102", "192.168.7.102"), // client: private, no country
    ("127.0.0.10", "214.78.120.10"),  // resolver: US, AS721
    ("127.0.0.2", "81.2.69.160"),     // authority: GB
    ("127.0.0.3", "175.16.199.3"),    // silent server: CN, AS
];

/// Rewrites the IPv4 addresses of an Ethernet pcap (little-endian, µs) by
/// `map`, recomputing the IPv4, UDP and TCP checksums.
pub fn rewrite_addresses(src: &Path, dst: &Path, map: &[(&str, &str)]) {
    let map: HashMap<[u8; 4], [u8; 4]> = map
        .iter()
        .map(|(a, b)| {
            (
                a.parse::<Ipv4Addr>().unwrap().octets(),
                b.parse::<Ipv4Addr>().unwrap().octets(),
            )
        })
        .collect();
    let mut data = std::fs::read(src).unwrap();
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let sum = |bytes: &[u8], mut acc: u32| {
        for c in bytes.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc
    };
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = at + 16;
        at = frame + caplen;
        let f = &mut data[frame..at];
        if f.len() < 34 || f[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = 14;
        let ihl = usize::from(f[ip] & 0x0f) * 4;
        for off in [ip + 12, ip + 16] {
            let old: [u8; 4] = f[off..off + 4].try_into().unwrap();
            if let Some(new) = map.get(&old) {
                f[off..off + 4].copy_from_slice(new);
            }
        }
        f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let c = !(sum(&f[ip..ip + ihl], 0) as u16);
        f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let total = usize::from(u16::from_be_bytes([f[ip + 2], f[ip + 3]]));
        let proto = f[ip + 9];
        let l4 = ip + ihl;
        let end = (ip + total).min(f.len());
        let at_sum = match proto {
            17 => 6,
            6 => 16,
            _ => continue,
        };
        // fragments and cut segments keep their checksum field
        if end < ip + total || f[ip + 6] & 0x3f != 0 || f[ip + 7] != 0 || l4 + at_sum + 2 > end {
            continue;
        }
        f[l4 + at_sum..l4 + at_sum + 2].copy_from_slice(&[0, 0]);
        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&f[ip + 12..ip + 20]);
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&((end - l4) as u16).to_be_bytes());
        let mut c = !(sum(&f[l4..end], sum(&pseudo, 0)) as u16);
        if proto == 17 && c == 0 {
            c = 0xffff;
        }
        f[l4 + at_sum..l4 + at_sum + 2].copy_from_slice(&c.to_be_bytes());
    }
    std::fs::write(dst, data).unwrap();
}

pub fn public_sample(dir: &Path) -> PathBuf {
    let p = dir.join("public-sample.pcap");
    rewrite_addresses(&sample(), &p, &PUBLIC);
    p
}

/// data/sample.pcap ingested into a dataset of its own, `ds` in a temporary directory.
pub fn sample_dataset() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    ingest(&dir, &[&sample()], &[]);
    (tmp, dir)
}

/// The Python with pyarrow, DuckDB and Playwright (`.ci/run`'s venv): `$DNSQ_PYTHON`.
pub fn python() -> String {
    std::env::var("DNSQ_PYTHON").unwrap_or_else(|_| "python3".into())
}
