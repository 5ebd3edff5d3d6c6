//! The same traffic in every capture format and split across files gives the
//! same transactions: the sample rewritten (here, independently of dnsq's
//! reader) as big-endian pcap, nanosecond pcap, pcapng, gzip/xz, split into
//! rotated files, a directory, and standard input.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::*;

/// `(ts_sec, ts_usec, orig_len, data)` of every record of a little-endian µs pcap.
fn records(pcap: &[u8]) -> Vec<(u32, u32, u32, Vec<u8>)> {
    let le = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
    let mut out = vec![];
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let caplen = le(&pcap[pos + 8..pos + 12]) as usize;
        out.push((
            le(&pcap[pos..pos + 4]),
            le(&pcap[pos + 4..pos + 8]),
            le(&pcap[pos + 12..pos + 16]),
            pcap[pos + 16..pos + 16 + caplen].to_vec(),
        ));
        pos += 16 + caplen;
    }
    out
}

fn linktype(pcap: &[u8]) -> u32 {
    u32::from_le_bytes(pcap[20..24].try_into().unwrap())
}

fn legacy(recs: &[(u32, u32, u32, Vec<u8>)], lt: u32, big_endian: bool, nanos: bool) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut v = vec![];
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 262_144);
    w32(&mut v, lt);
    for (s, us, orig, data) in recs {
        w32(&mut v, *s);
        w32(&mut v, if nanos { us * 1000 } else { *us });
        w32(&mut v, data.len() as u32);
        w32(&mut v, *orig);
        v.extend_from_slice(data);
    }
    v
}

/// pcapng (RFC draft-ietf-opsawg-pcapng): SHB, one IDB with if_tsresol = 9
/// (nanoseconds) and a second unused IDB, then EPBs on interface 0.
fn pcapng(recs: &[(u32, u32, u32, Vec<u8>)], lt: u32) -> Vec<u8> {
    fn block(v: &mut Vec<u8>, btype: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        v.extend_from_slice(&btype.to_le_bytes());
        v.extend_from_slice(&(len as u32).to_le_bytes());
        v.extend_from_slice(body);
        v.resize(v.len() + (len - 12 - body.len()), 0);
        v.extend_from_slice(&(len as u32).to_le_bytes());
    }
    let mut v = vec![];
    let mut shb = vec![];
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut v, 0x0a0d_0d0a, &shb);
    let mut idb = vec![];
    idb.extend_from_slice(&(lt as u16).to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol = 9, opt_endofopt
    block(&mut v, 1, &idb);
    block(&mut v, 1, &[1, 0, 0, 0, 0, 0, 4, 0]); // an Ethernet interface nothing uses
    for (s, us, orig, data) in recs {
        let ts = *s as u64 * 1_000_000_000 + *us as u64 * 1000;
        let mut epb = vec![];
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig.to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(epb.len().div_ceil(4) * 4, 0);
        block(&mut v, 6, &epb);
    }
    v
}

const ROWS: &str = "select ts, response_ts, response_time_ms, status, query_count, client_ip, server_ip, client_port, \
    qname, qtype, rcode, answer_count, edns_do, ecs, query_frame, response_frame \
    from transactions order by ts, query_frame, response_frame";

fn rows_of(files: &[&Path], extra: &[&str]) -> Vec<Vec<String>> {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), files, extra);
    sql(tmp.path(), ROWS)
}

#[test]
fn every_format_gives_the_same_rows() {
    let raw = std::fs::read(sample()).unwrap();
    let recs = records(&raw);
    let lt = linktype(&raw);
    let want = rows_of(&[&sample()], &[]);
    assert!(want.len() > 1000);
    let tmp = tempfile::tempdir().unwrap();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("be.pcap", legacy(&recs, lt, true, false)),
        ("ns.pcap", legacy(&recs, lt, false, true)),
        ("be-ns.pcap", legacy(&recs, lt, true, true)),
        ("sample.pcapng", pcapng(&recs, lt)),
        // Linux cooked capture (SLL, linktype 113): the 14-byte Ethernet header
        // replaced by the 16-byte SLL header carrying the same EtherType
        (
            "sll.pcap",
            legacy(
                &recs
                    .iter()
                    .map(|(s, us, orig, d)| {
                        let mut sll = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
                        sll.extend_from_slice(&d[12..14]);
                        sll.extend_from_slice(&d[14..]);
                        (*s, *us, orig + 2, sll)
                    })
                    .collect::<Vec<_>>(),
                113,
                false,
                false,
            ),
        ),
        // QinQ: an 802.1ad outer tag (0x88a8) and an 802.1Q inner tag before the EtherType
        (
            "qinq.pcap",
            legacy(
                &recs
                    .iter()
                    .map(|(s, us, orig, d)| {
                        let mut q = d[..12].to_vec();
                        q.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0b]);
                        q.extend_from_slice(&d[12..]);
                        (*s, *us, orig + 8, q)
                    })
                    .collect::<Vec<_>>(),
                lt,
                false,
                false,
            ),
        ),
        ("sample.pcapng.xz", {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            std::io::Write::write_all(&mut e, &pcapng(&recs, lt)).unwrap();
            e.finish().unwrap()
        }),
    ];
    for (name, bytes) in variants {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(rows_of(&[&p], &[]), want, "{name}");
    }
    // a compressed capture is read as a stream: in pieces of 64 KiB, each
    // starting with the section and interface blocks in force
    let xz = tmp.path().join("sample.pcapng.xz");
    assert_eq!(
        rows_of(&[&xz], &["--chunk-bytes", "1"]),
        want,
        "xz in pieces"
    );
}

/// Rotated files (`tcpdump -C`): queries in one file, responses in the next.
#[test]
fn captures_split_into_rotated_files_pair_across_them() {
    let raw = std::fs::read(sample()).unwrap();
    let recs = records(&raw);
    let lt = linktype(&raw);
    let want: Vec<Vec<String>> = rows_of(&[&sample()], &[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rotated");
    std::fs::create_dir(&dir).unwrap();
    // cut between a query and its response, and at two other places
    let cuts = [
        0,
        1,
        recs.len() / 3,
        recs.len() / 3 + 1,
        recs.len() - 7,
        recs.len(),
    ];
    let mut files = vec![];
    for (i, w) in cuts.windows(2).enumerate() {
        // names sort against time order: the directory reader orders by first packet
        let p = dir.join(format!("dns-{}.pcap", 9 - i));
        std::fs::write(&p, legacy(&recs[w[0]..w[1]], lt, false, false)).unwrap();
        files.push(p);
    }
    let (first, rest) = files.split_at(1);
    let q = "select ts, status, query_count, qname, rcode, response_time_ms from transactions order by ts, status, qname";
    let whole = {
        let t = tempfile::tempdir().unwrap();
        ingest(t.path(), &[&sample()], &[]);
        sql(t.path(), q)
    };
    assert_eq!(whole.len(), want.len());
    let t = tempfile::tempdir().unwrap();
    let refs: Vec<&Path> = first.iter().chain(rest).map(|p| p.as_path()).collect();
    ingest(t.path(), &refs, &[]);
    assert_eq!(sql(t.path(), q), whole, "files given one by one");
    let t = tempfile::tempdir().unwrap();
    ingest(t.path(), &[&dir], &[]);
    assert_eq!(sql(t.path(), q), whole, "a directory of rotated files");
    // the query of the first pair is alone in the first file, its response in the second
    let r = sql(t.path(), "select count(*) from transactions where capture like '%dns-9.pcap' and status = 'answered'");
    assert_eq!(r[1][0], "1");
}

/// Ingests the sample into `dir` from standard input.
fn ingest_stdin(dir: &Path, extra: &[&str]) {
    let mut child = dnsq()
        .arg("ingest")
        .args(extra)
        .arg("-o")
        .arg(dir)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        &std::fs::read(sample()).unwrap(),
    )
    .unwrap();
    drop(child.stdin.take());
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn standard_input_and_threads() {
    let want = rows_of(&[&sample()], &[]);
    let tmp = tempfile::tempdir().unwrap();
    ingest_stdin(tmp.path(), &[]);
    assert_eq!(sql(tmp.path(), ROWS), want);
    // standard input read in 64 KiB pieces (the smallest a stream is cut in)
    let tmp2 = tempfile::tempdir().unwrap();
    ingest_stdin(tmp2.path(), &["--chunk-bytes", "1"]);
    assert_eq!(sql(tmp2.path(), ROWS), want, "stdin in pieces");
    // paired in several shards, each writing a file every few hundred rows
    assert_eq!(
        rows_of(&[&sample()], &["--shards", "4", "--spool-rows", "1000"]),
        want,
        "4 shards"
    );
    // many small chunks decoded on 1, 2 and 4 threads: the same rows
    for threads in ["1", "2", "4"] {
        for chunk in ["1", "5000", "65536"] {
            assert_eq!(
                rows_of(
                    &[&sample()],
                    &["--threads", threads, "--chunk-bytes", chunk]
                ),
                want,
                "{threads} threads, {chunk}-byte chunks"
            );
        }
    }
}

/// pcapng interface options and blocks no capture of the corpus has, in
/// files made by tests/fixtures/pcapng-options/make.py and read by tshark
/// 4.0.17 into tshark.tsv: an `if_tsresol` in units of 2^-10 s, an
/// `if_tsoffset` in a big-endian section, and a simple packet block cut by
/// the interface's snapshot length (its padding is no packet data).
#[test]
fn pcapng_options_are_read_as_tshark_reads_them() {
    let dir = repo().join("tests/fixtures/pcapng-options");
    let tsv = std::fs::read_to_string(dir.join("tshark.tsv")).unwrap();
    let mut checked = 0;
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, epoch, len, cap_len, qname) = (f[0], f[1], f[2], f[3], f[4]);
        let tmp = tempfile::tempdir().unwrap();
        ingest(tmp.path(), &[&dir.join(file)], &[]);
        let rows = sql(
            tmp.path(),
            "select cast(ts as bigint), coalesce(qname, ''), cast(malformed as varchar) \
             from transactions",
        );
        // a header and one row
        assert_eq!(rows.len(), 2, "{file}: {rows:?}");
        let (ts_us, name, malformed) = (&rows[1][0], &rows[1][1], &rows[1][2]);
        if !epoch.is_empty() {
            // "1700000000.500000000" to microseconds
            let (s, frac) = epoch.split_once('.').unwrap();
            let want = s.parse::<i64>().unwrap() * 1_000_000 + frac[..6].parse::<i64>().unwrap();
            assert_eq!(ts_us, &want.to_string(), "{file}: time");
        }
        assert_eq!(name, qname, "{file}: qname");
        // a frame cut short of its length leaves its DNS message cut
        assert_eq!(
            malformed,
            &(cap_len != len).to_string(),
            "{file}: malformed"
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}
