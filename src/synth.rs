//! Synthetic DNS capture generator: deterministic (seeded), with a realistic
//! mix, for scale tests and benchmarks. The real-traffic sample stays the test
//! of truth; this is for size.
//!
//! `dnsq synth OUT.pcap --packets N [--seed S]` (a hidden subcommand).
//!
//! Mix, as captured on a recursive resolver: clients (20% IPv6) ask it;
//! names are Zipf-distributed over many registered domains under a few TLDs;
//! qtypes A/AAAA/HTTPS/MX/TXT/PTR/NS; 8% NXDOMAIN, 2% SERVFAIL, 3% unanswered,
//! 2% retransmitted once, 2% over TCP, 10% with EDNS client subnet; response
//! times from sub-millisecond cache hits to multi-second upstream timeouts.
//! A cache miss shows the resolver's own queries too (the upstream leg): one
//! in five first asks the TLD's servers for the TLD itself (`NS com`, a name
//! without a registered domain), then an authority answers the question; on
//! the multi-second misses a first authority never answers. Returns the
//! ground truth (queries, answered, unanswered, retransmissions, rcodes,
//! upstream) that the tests check `dnsq ingest` against.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Zipf-like rank in [0, n) with exponent ~1 (inverse-CDF of a log-uniform).
    fn zipf(&mut self, n: u64) -> u64 {
        ((n as f64).powf(self.unit()) - 1.0) as u64 % n
    }
}

const TLDS: [&str; 6] = ["com", "net", "org", "de", "co.uk", "io"];
const LABELS: [&str; 8] = ["www", "api", "cdn", "mail", "static", "img", "login", "m"];
const QTYPES: [(u16, f64); 7] = [
    (1, 0.55),
    (28, 0.25),
    (65, 0.08),
    (15, 0.04),
    (16, 0.03),
    (12, 0.03),
    (2, 0.02),
];

struct Writer<W: Write> {
    out: W,
    packets: u64,
}

impl<W: Write> Writer<W> {
    fn header(&mut self) -> std::io::Result<()> {
        let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        self.out.write_all(&h)
    }

    fn packet(&mut self, ts_us: i64, frame: &[u8]) -> std::io::Result<()> {
        let mut rec = [0u8; 16];
        rec[..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(frame)?;
        self.packets += 1;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Ethernet + IP + UDP/TCP around a DNS message.
fn frame(src: Ip, dst: Ip, sport: u16, dport: u16, tcp: Option<u32>, dns: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(dns.len() + 22);
    match tcp {
        None => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&((dns.len() + 8) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            l4.extend_from_slice(dns);
        }
        Some(seq) => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&seq.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            l4.extend_from_slice(&(dns.len() as u16).to_be_bytes());
            l4.extend_from_slice(dns);
        }
    }
    let proto = if tcp.is_some() { 6 } else { 17 };
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    match (src, dst) {
        (Ip::V4(s), Ip::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            ip.extend_from_slice(&s);
            ip.extend_from_slice(&d);
            let sum = ip
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                .sum::<u32>();
            let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (Ip::V6(s), Ip::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&d);
        }
        _ => unreachable!("one family per packet"),
    }
    f.extend_from_slice(&l4);
    f
}

fn qname(rng: &mut Rng) -> Vec<String> {
    let domain = rng.zipf(200_000);
    let tld = TLDS[(domain % TLDS.len() as u64) as usize];
    let mut labels = vec![
        LABELS[rng.zipf(LABELS.len() as u64) as usize].to_string(),
        format!("d{domain}"),
    ];
    labels.extend(tld.split('.').map(str::to_string));
    labels
}

fn message(
    id: u16,
    flags: u16,
    name: &[String],
    qtype: u16,
    rcode: u16,
    answers: u16,
    ecs: bool,
) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&(flags | rcode).to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&answers.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1]);
    for l in name {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0]);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for i in 0..answers {
        m.extend_from_slice(&[0xc0, 12]);
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, (i + 1) as u8]);
    }
    // OPT: udp 1232, DO off, with ECS when asked
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    if ecs {
        m.extend_from_slice(&[0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100]);
    } else {
        m.extend_from_slice(&[0, 0]);
    }
    m
}

/// The resolver's side of a cache miss: its queries to authorities.
struct Upstream<'a> {
    rng: &'a mut Rng,
    pending: &'a mut BTreeMap<(i64, u64), Vec<u8>>,
    truth: &'a mut BTreeMap<&'static str, u64>,
    resolver: Ip,
    /// Order of packets written at the same time: after the client's answer's.
    key: u64,
    public: bool,
}

impl Upstream<'_> {
    /// One query from the resolver to an authority at `start`, answered
    /// `(rcode, answer count)` after `rtt` µs, or never (`None`).
    fn exchange(
        &mut self,
        name: &[String],
        qtype: u16,
        answer: Option<(u16, u16)>,
        start: i64,
        rtt: i64,
        k: u64,
    ) {
        let n = 1 + self.rng.below(200) as u8;
        let authority = match (self.resolver, self.public) {
            (Ip::V4(_), false) => Ip::V4([192, 0, 2, n]),
            (Ip::V6(_), false) => Ip::V6([
                0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, n,
            ]),
            (Ip::V4(_), true) => Ip::V4([81, 2, 69, n]),
            (Ip::V6(_), true) => Ip::V6([
                0x20, 0x01, 0x02, 0x50, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, n,
            ]),
        };
        let id = self.rng.next() as u16;
        let port = 1024 + self.rng.below(64000) as u16;
        let q = message(id, 0, name, qtype, 0, 0, false);
        let q = frame(self.resolver, authority, port, 53, None, &q);
        self.pending.insert((start, self.key + k), q);
        *self.truth.entry("queries").or_default() += 1;
        *self.truth.entry("upstream").or_default() += 1;
        let Some((rcode, answers)) = answer else {
            *self.truth.entry("unanswered").or_default() += 1;
            return;
        };
        let r = message(id, 0x8400, name, qtype, rcode, answers, false);
        let r = frame(authority, self.resolver, 53, port, None, &r);
        self.pending.insert((start + rtt, self.key + k + 1), r);
        count_answered(self.truth, rcode);
    }
}

/// Counts an answered query and its rcode (0, 2 or 3) in the ground truth.
fn count_answered(truth: &mut BTreeMap<&'static str, u64>, rcode: u16) {
    *truth.entry("answered").or_default() += 1;
    *truth
        .entry(["noerror", "", "servfail", "nxdomain"][rcode as usize])
        .or_default() += 1;
}

/// Writes about `target` packets of synthetic DNS traffic to `path` as pcap;
/// returns the ground truth by name (`queries`, `answered`, `unanswered`,
/// `retransmissions`, `noerror`, `nxdomain`, `servfail`, `upstream`, `packets`).
pub fn generate(
    path: &Path,
    target: u64,
    seed: u64,
) -> std::io::Result<BTreeMap<&'static str, u64>> {
    generate_with(path, target, seed, false)
}

/// Public IPv4 networks the clients of `generate_with(.., public: true)`
/// come from: eight countries on five continents (GeoLite2).
const PUBLIC_V4: [[u8; 2]; 8] = [
    [1, 128],   // AU
    [12, 81],   // US
    [31, 224],  // DE
    [39, 32],   // PK
    [59, 0],    // KR
    [89, 160],  // SE
    [149, 101], // US
    [177, 0],   // BR
];

/// As `generate`; with `public`, the addresses are in public ranges (for
/// benchmarks of GeoIP enrichment) instead of private and documentation ones.
/// The traffic is otherwise the same, packet for packet.
pub fn generate_with(
    path: &Path,
    target: u64,
    seed: u64,
    public: bool,
) -> std::io::Result<BTreeMap<&'static str, u64>> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let file = std::fs::File::create(path)?;
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        packets: 0,
    };
    w.header()?;
    let (resolver4, resolver6) = if public {
        (
            Ip::V4([214, 78, 120, 53]),
            Ip::V6([
                0x20, 0x01, 0x02, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
            ]),
        )
    } else {
        (
            Ip::V4([10, 0, 0, 53]),
            Ip::V6([
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
            ]),
        )
    };
    // responses wait in a queue ordered by time so the capture stays in time order
    let mut pending: BTreeMap<(i64, u64), Vec<u8>> = BTreeMap::new();
    let mut truth: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut now: i64 = 1_700_000_000_000_000;
    let mut n: u64 = 0;
    while w.packets < target {
        now += 1 + rng.below(40) as i64;
        while let Some(entry) = pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((ts, _), f) = entry.remove_entry();
            w.packet(ts, &f)?;
        }
        n += 1;
        let v6 = rng.unit() < 0.2;
        let c = rng.below(5000) as u32;
        let (client, server) = if v6 {
            let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            if public {
                a[..4].copy_from_slice(&[0x2a, 0x00, 0x14, (c % 7) as u8 * 16]);
            }
            a[12..].copy_from_slice(&c.to_be_bytes());
            (Ip::V6(a), resolver6)
        } else if public {
            let [a, b] = PUBLIC_V4[c as usize % PUBLIC_V4.len()];
            let h = c / PUBLIC_V4.len() as u32;
            (Ip::V4([a, b, (h >> 8) as u8, h as u8]), resolver4)
        } else {
            (Ip::V4([10, 1, (c >> 8) as u8, c as u8]), resolver4)
        };
        let port = 1024 + rng.below(64000) as u16;
        let id = rng.next() as u16;
        let name = qname(&mut rng);
        let mut u = rng.unit();
        let qtype = QTYPES.iter().find(|(_, p)| {
            u -= p;
            u < 0.0
        });
        let qtype = qtype.map_or(1, |q| q.0);
        let ecs = rng.unit() < 0.1;
        let tcp = rng.unit() < 0.02;
        let seq = tcp.then(|| rng.next() as u32);
        let q = message(id, 0x0100, &name, qtype, 0, 0, ecs);
        w.packet(now, &frame(client, server, port, 53, seq, &q))?;
        *truth.entry("queries").or_default() += 1;
        let roll = rng.unit();
        if roll < 0.03 {
            *truth.entry("unanswered").or_default() += 1;
            continue;
        }
        let delay: i64 = match rng.unit() {
            x if x < 0.70 => 50 + rng.below(900) as i64,
            x if x < 0.97 => 5_000 + rng.below(200_000) as i64,
            _ => 1_000_000 + rng.below(5_000_000) as i64,
        };
        if !tcp && rng.unit() < 0.02 && delay > 1_000_000 {
            // the client retransmits after 1 s
            w.packet(
                now + 1_000_000 - 1,
                &frame(client, server, port, 53, None, &q),
            )?;
            *truth.entry("retransmissions").or_default() += 1;
        }
        let (rcode, answers) = match rng.unit() {
            x if x < 0.08 => (3, 0),
            x if x < 0.10 => (2, 0),
            _ => (0, 1 + rng.below(3) as u16),
        };
        count_answered(&mut truth, rcode);
        let r = message(id, 0x8180, &name, qtype, rcode, answers, ecs);
        let seq = seq.map(|_| rng.next() as u32);
        pending.insert(
            (now + delay, n * 8),
            frame(server, client, 53, port, seq, &r),
        );
        if delay >= 5_000 {
            // a cache miss: the resolver's own queries, all between the
            // client's query and its answer
            let mut up = Upstream {
                rng: &mut rng,
                pending: &mut pending,
                truth: &mut truth,
                resolver: server,
                key: n * 8,
                public,
            };
            let mut start = now + 30;
            if up.rng.unit() < 0.2 {
                let rtt = 2_000 + up.rng.below(1_000) as i64;
                up.exchange(&name[2..], 2, Some((0, 2)), start, rtt, 1);
                start += rtt + 30;
            }
            let end = now + delay - 30;
            if delay >= 1_000_000 {
                // a first authority never answers; the resolver gives up on
                // it and the next answers in 20 to 200 ms
                up.exchange(&name, qtype, None, start, 0, 3);
                start = end - 20_000 - up.rng.below(180_000) as i64;
            }
            up.exchange(&name, qtype, Some((rcode, answers)), start, end - start, 5);
        }
    }
    for ((ts, _), f) in pending {
        w.packet(ts, &f)?;
    }
    w.out.flush()?;
    truth.insert("packets", w.packets);
    Ok(truth)
}
