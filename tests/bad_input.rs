//! Bad input (SPEC §7): clear errors that name the file and the place, never a
//! panic, and nothing already ingested lost.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_no_panic(o: &std::process::Output) {
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

/// Byte offsets of every record header in a little-endian pcap, read independently of dnsq.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offs = vec![];
    let mut pos = 24;
    while pos + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if pos + 16 + caplen > bytes.len() {
            break;
        }
        offs.push(pos);
        pos += 16 + caplen;
    }
    offs
}

fn packets_ingested(dir: &Path) -> i64 {
    sql(dir, "select sum(packets) from captures")[1][0]
        .parse()
        .unwrap()
}

#[test]
fn not_a_capture_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "this is not a capture\n").unwrap();
    let out_dir = tmp.path().join("ds");
    let o = run(dnsq().arg("ingest").arg("-o").arg(&out_dir).arg(&text));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("notes.txt")
            && e.contains("not a pcap or pcapng file")
            && e.contains("74 68 69 73"),
        "{e}"
    );
    assert!(!out_dir.join("transactions").exists());
    assert_no_panic(&o);
}

#[test]
fn empty_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let o = run(dnsq()
        .arg("ingest")
        .arg("-o")
        .arg(tmp.path().join("ds"))
        .arg(&empty));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("empty.pcap: empty file"),
        "{}",
        stderr(&o)
    );
    let o = run(dnsq()
        .arg("ingest")
        .arg("-o")
        .arg(tmp.path().join("ds"))
        .arg(tmp.path().join("nope.pcap")));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("nope.pcap: No such file"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("ds/transactions").exists());
}

#[test]
fn capture_cut_mid_record_keeps_everything_before_the_cut() {
    let bytes = std::fs::read(sample()).unwrap();
    let offs = record_offsets(&bytes);
    let keep = offs.len() / 2;
    let cut_at = offs[keep] + 16 + 10; // inside the body of record `keep`
    let tmp = tempfile::tempdir().unwrap();
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..cut_at]).unwrap();
    let o = ingest(&tmp.path().join("ds"), &[&cut], &[]);
    let e = stderr(&o);
    assert!(
        e.contains("cut.pcap") && e.contains(&format!("byte offset {}", offs[keep])),
        "{e}"
    );
    assert_eq!(packets_ingested(&tmp.path().join("ds")), keep as i64);

    // the same cut inside a gzip stream, read in 64 KiB pieces: the offset
    // named is in the decompressed capture
    let gz = tmp.path().join("cut.pcap.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &bytes[..cut_at]).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let o = ingest(&tmp.path().join("dsgz"), &[&gz], &["--chunk-bytes", "1"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("cut.pcap.gz") && e.contains(&format!("byte offset {}", offs[keep])),
        "{e}"
    );
    assert_eq!(packets_ingested(&tmp.path().join("dsgz")), keep as i64);
}

#[test]
fn corrupt_record_header_is_an_error_naming_the_offset() {
    let mut bytes = std::fs::read(sample()).unwrap();
    let offs = record_offsets(&bytes);
    let bad = offs[100];
    bytes[bad + 8..bad + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("corrupt.pcap");
    std::fs::write(&f, &bytes).unwrap();
    let ds = tmp.path().join("ds");
    let o = run(dnsq().arg("ingest").arg("-o").arg(&ds).arg(&f));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("corrupt.pcap") && e.contains(&format!("byte offset {bad}")),
        "{e}"
    );
    assert_no_panic(&o);
    // the 100 packets before it are in the dataset
    assert_eq!(packets_ingested(&ds), 100);
}

#[test]
fn bad_sql_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    for q in [
        "selec 1",
        "select nosuchcolumn from transactions",
        "select * from nosuchtable",
    ] {
        let o = run(dnsq().arg("sql").arg("-d").arg(tmp.path()).arg(q));
        assert_eq!(o.status.code(), Some(1), "{q}");
        assert!(stderr(&o).starts_with("dnsq: "), "{q}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
        assert_no_panic(&o);
    }
    let o = run(dnsq()
        .arg("sql")
        .arg("-d")
        .arg(tmp.path().join("none"))
        .arg("select 1"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no dnsq dataset here"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = run(dnsq().arg("ingest"));
    assert_eq!(o.status.code(), Some(2));
    let o = run(dnsq()
        .arg("ingest")
        .arg("--match-timeout")
        .arg("soon")
        .arg("x.pcap"));
    assert_eq!(o.status.code(), Some(2));
    let o = run(dnsq().arg("sql").arg("--format").arg("xml").arg("select 1"));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn reingesting_does_not_duplicate_rows() {
    let tmp = tempfile::tempdir().unwrap();
    ingest(tmp.path(), &[&sample()], &[]);
    let before = sql(tmp.path(), "select count(*) from transactions")[1][0].clone();
    let o = ingest(tmp.path(), &[&sample()], &[]);
    assert!(stderr(&o).contains("already in"), "{}", stderr(&o));
    // the same content compressed is the same capture
    let gz = tmp.path().join("sample.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut enc, &std::fs::read(sample()).unwrap()).unwrap();
    enc.finish().unwrap();
    ingest(tmp.path(), &[&gz], &[]);
    assert_eq!(
        sql(tmp.path(), "select count(*) from transactions")[1][0],
        before
    );
    assert_eq!(sql(tmp.path(), "select count(*) from captures")[1][0], "1");
}

/// A capture big enough that its hash is done long before its decoding: on
/// two threads it is hashed beside the decoding and found in the dataset while
/// it is read, on one it is hashed first; either way nothing is added, and the
/// dataset answers as before. A copy under another name is the same capture.
#[test]
fn a_large_capture_ingested_again_adds_nothing_on_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("big.pcap");
    synth(&cap, 200_000, 3);
    let copy = tmp.path().join("copy.pcap");
    std::fs::copy(&cap, &copy).unwrap();
    let data = tmp.path().join("data");
    ingest(&data, &[&cap], &["--threads", "2"]);
    let totals = "select count(*), sum(response_time_ms), count(distinct qname) from transactions";
    let before = sql(&data, totals);
    let files = walk(&data);
    for (c, threads) in [(&cap, "2"), (&copy, "2"), (&cap, "1"), (&copy, "1")] {
        let o = ingest(&data, &[c], &["--threads", threads]);
        assert!(
            stderr(&o).contains(&format!("{}: already in", c.display())),
            "{threads} threads: {}",
            stderr(&o)
        );
        assert_no_panic(&o);
        assert_eq!(sql(&data, totals), before, "{threads} threads");
        assert_eq!(sql(&data, "select count(*) from captures")[1][0], "1");
        // no file added, none left behind, not even a hidden temporary one
        assert_eq!(walk(&data), files, "{threads} threads");
    }
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn compressed_captures_give_the_same_rows() {
    let raw = std::fs::read(sample()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let zst = tmp.path().join("sample.zst");
    std::fs::write(&zst, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ingest(&a, &[&sample()], &[]);
    ingest(&b, &[&zst], &[]);
    let q = "select ts, status, qname, rcode, response_time_ms, query_frame, response_frame from transactions order by ts, query_frame, response_frame";
    assert_eq!(sql(&a, q), sql(&b, q));
}

/// Ends of the whole records in a little-endian pcap's bytes: where a reader
/// that keeps every whole record stops (24 when there is none).
fn whole_records_end(bytes: &[u8]) -> usize {
    record_offsets(bytes).last().map_or(24, |&o| {
        o + 16 + u32::from_le_bytes(bytes[o + 8..o + 12].try_into().unwrap()) as usize
    })
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, raw).unwrap();
    e.finish().unwrap()
}

/// Issue 10: a record header claiming a 4 GiB record, in a file whose header
/// allows a 4 GiB snapshot length. The stream reader trusted it and buffered
/// what followed (an 18 MB gzip grew past 7 GB). Records are capped at
/// 256 KiB: it is a corrupt header at its offset, the records before it kept.
#[test]
fn record_claiming_4_gib_is_corrupt_not_buffered() {
    let mut bytes = std::fs::read(sample()).unwrap();
    let offs = record_offsets(&bytes);
    let bad = offs[50];
    bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // snaplen
    bytes.truncate(bad + 16);
    bytes[bad + 8..bad + 16].copy_from_slice(&[0xf0, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff]);
    bytes.resize(bad + 16 + (16 << 20), 0); // the start of the "record"
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("huge.pcap");
    std::fs::write(&plain, &bytes).unwrap();
    let gz = tmp.path().join("huge.pcap.gz");
    std::fs::write(&gz, gzip(&bytes)).unwrap();
    for (i, f) in [&plain, &gz].into_iter().enumerate() {
        let ds = tmp.path().join(format!("ds{i}"));
        let o = run(dnsq().arg("ingest").arg("-o").arg(&ds).arg(f));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            e.contains(&format!(
                "{name}: corrupt record header at byte offset {bad}"
            )) && e.contains("record length 4294967280 is over 262144 bytes"),
            "{e}"
        );
        assert_no_panic(&o);
        assert_eq!(packets_ingested(&ds), 50, "{name}");
    }
}

/// Compresses `raw` as gzip, zstd or xz.
fn compress(kind: &str, raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match kind {
        "gz" => gzip(raw),
        "zst" => zstd::encode_all(raw, 3).unwrap(),
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        _ => unreachable!(),
    }
}

/// What a decompressor gives of damaged data before it stops, and its error.
fn decompress_until_error(kind: &str, data: &[u8]) -> (Vec<u8>, std::io::Error) {
    use std::io::Read;
    let mut r: Box<dyn Read> = match kind {
        "gz" => Box::new(flate2::read::MultiGzDecoder::new(data)),
        "zst" => Box::new(zstd::stream::read::Decoder::new(data).unwrap()),
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(data)),
        _ => unreachable!(),
    };
    let mut out = Vec::new();
    let e = r.read_to_end(&mut out).expect_err("damaged data");
    (out, e)
}

const TX_COLUMNS: &str =
    "ts, status, client_ip, qname, qtype, rcode, response_time_ms, query_frame, response_frame";

/// The rows of the capture whose name ends with `name` (all rows if `None`).
fn rows_of(ds: &Path, name: Option<&str>) -> Vec<Vec<String>> {
    let filter = name.map_or(String::new(), |n| format!("where capture like '%{n}'"));
    sql(
        ds,
        &format!("select {TX_COLUMNS} from transactions {filter} order by ts, query_frame, response_frame"),
    )
}

/// Issue 10: a compressed capture cut mid-stream (a killed compressor) keeps
/// every record before the cut, with a warning naming the file and the offset
/// in the decompressed capture, and the capture given with it loses nothing.
/// Oracle: the decompressor's own output up to its error, cut after its last
/// whole record and ingested alone as a plain pcap.
fn cut_compressed_capture_keeps_its_prefix(kind: &str) {
    let raw = std::fs::read(sample()).unwrap();
    let packed = compress(kind, &raw);
    let cut = &packed[..packed.len() * 6 / 10];
    let (prefix, err) = decompress_until_error(kind, cut);
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::UnexpectedEof,
        "{kind}: {err}"
    );
    let end = whole_records_end(&prefix);
    let kept = record_offsets(&prefix).len();
    assert!(kept > 100 && end < raw.len(), "{kind}: {kept} records");

    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join(format!("cut.pcap.{kind}"));
    std::fs::write(&damaged, cut).unwrap();
    let whole = tmp.path().join("prefix.pcap");
    std::fs::write(&whole, &raw[..end]).unwrap();
    let other = repo().join("tests/corpus/dnscap/dns.pcap");

    let ds = tmp.path().join("ds");
    let o = ingest(&ds, &[&damaged, &other], &["--chunk-bytes", "1"]);
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "warning: {}: compressed data cut off",
            damaged.display()
        )) && e.contains(&format!(
            "before byte offset {end} of the decompressed capture"
        )),
        "{e}"
    );
    let (alone_prefix, alone_other) = (tmp.path().join("a"), tmp.path().join("b"));
    ingest(&alone_prefix, &[&whole], &[]);
    ingest(&alone_other, &[&other], &[]);
    let got = rows_of(&ds, Some(&format!("cut.pcap.{kind}")));
    assert!(got.len() > 100, "{kind}: {} rows", got.len());
    assert_eq!(got, rows_of(&alone_prefix, None), "{kind}");
    let others = rows_of(&alone_other, None);
    assert!(others.len() > 10);
    assert_eq!(rows_of(&ds, Some("dns.pcap")), others, "{kind}");
    assert_eq!(
        packets_ingested(&ds),
        kept as i64 + packets_ingested(&alone_other)
    );
}

#[test]
fn cut_gzip_capture_keeps_its_prefix() {
    cut_compressed_capture_keeps_its_prefix("gz");
}

#[test]
fn cut_zstd_capture_keeps_its_prefix() {
    cut_compressed_capture_keeps_its_prefix("zst");
}

#[test]
fn cut_xz_capture_keeps_its_prefix() {
    cut_compressed_capture_keeps_its_prefix("xz");
}

/// Issue 10: compressed data damaged in the middle (not merely cut) is an
/// error naming the file, but the records read before the damage and every
/// row of the capture given with it are written.
#[test]
fn damaged_gzip_capture_keeps_the_rest() {
    let raw = std::fs::read(sample()).unwrap();
    let mut packed = gzip(&raw);
    let mid = packed.len() / 2;
    for b in &mut packed[mid..mid + 64] {
        *b = !*b;
    }
    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join("bad.pcap.gz");
    std::fs::write(&damaged, &packed).unwrap();
    let other = repo().join("tests/corpus/dnscap/dns.pcap");
    let ds = tmp.path().join("ds");
    let o = run(dnsq()
        .arg("ingest")
        .arg("-o")
        .arg(&ds)
        .arg(&damaged)
        .arg(&other));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!("error: {}: ", damaged.display())),
        "{e}"
    );
    assert_no_panic(&o);
    let alone = tmp.path().join("alone");
    ingest(&alone, &[&other], &[]);
    assert_eq!(rows_of(&ds, Some("dns.pcap")), rows_of(&alone, None));
    assert!(rows_of(&ds, Some("bad.pcap.gz")).len() > 100);
}

/// A pcapng block of `btype` holding `body` (padded to 32 bits).
fn pcapng_block(btype: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len().next_multiple_of(4);
    let mut v = btype.to_le_bytes().to_vec();
    v.extend((len as u32).to_le_bytes());
    v.extend(body);
    v.resize(len - 4, 0);
    v.extend((len as u32).to_le_bytes());
    v
}

/// Issue 10: times past what a timestamp holds. Interface 0 has an
/// `if_tsoffset` of 10^12 s (the multiply overflowed: a panic), frame 2 is in
/// the year 2500 (stored as 1915-06-14, wrapped). Both are kept clamped to
/// 2200-01-01 with a warning naming the first frame; the others are as given.
#[test]
fn timestamps_out_of_range_are_clamped_with_a_warning() {
    let raw = std::fs::read(sample()).unwrap();
    let offs = record_offsets(&raw);
    let mut ng = pcapng_block(
        0x0a0d_0d0a,
        &[
            &0x1a2b_3c4du32.to_le_bytes()[..],
            &[1, 0, 0, 0],
            &(-1i64).to_le_bytes(),
        ]
        .concat(),
    );
    // interface 0: Ethernet, if_tsoffset (option 14) 10^12 s; interface 1: Ethernet
    let idb = |opts: &[u8]| {
        pcapng_block(
            1,
            &[&[1, 0, 0, 0], &65535u32.to_le_bytes()[..], opts].concat(),
        )
    };
    ng.extend(idb(&[
        &[14, 0, 8, 0][..],
        &1_000_000_000_000i64.to_le_bytes(),
        &[0, 0, 0, 0],
    ]
    .concat()));
    ng.extend(idb(&[]));
    let year_2500_us = 16_725_225_600u64 * 1_000_000;
    for (i, &o) in offs.iter().take(200).enumerate() {
        let rd = |k: usize| u32::from_le_bytes(raw[o + k..o + k + 4].try_into().unwrap());
        let caplen = rd(8) as usize;
        let (iface, units) = match i {
            0 => (0u32, 0u64),
            1 => (1, year_2500_us),
            _ => (1, rd(0) as u64 * 1_000_000 + rd(4) as u64),
        };
        let mut epb = iface.to_le_bytes().to_vec();
        epb.extend(((units >> 32) as u32).to_le_bytes());
        epb.extend((units as u32).to_le_bytes());
        epb.extend((caplen as u32).to_le_bytes());
        epb.extend((caplen as u32).to_le_bytes());
        epb.extend(&raw[o + 16..o + 16 + caplen]);
        ng.extend(pcapng_block(6, &epb));
    }
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("far.pcapng");
    std::fs::write(&f, &ng).unwrap();
    let ds = tmp.path().join("ds");
    let o = ingest(&ds, &[&f], &[]);
    let e = stderr(&o);
    assert_no_panic(&o);
    assert!(
        e.contains(&format!(
            "warning: {}: frame 1: timestamp 1000000000000 (seconds since 1970) is outside \
             1900-2200, stored as 2200-01-01T00:00:00Z (2 frames in all)",
            f.display()
        )),
        "{e}"
    );
    let ts = |frame: u32| {
        sql(
            &ds,
            &format!("select ts from transactions where query_frame = {frame}"),
        )[1][0]
            .clone()
    };
    assert_eq!(ts(1), "2200-01-01T00:00:00Z");
    assert_eq!(ts(2), "2200-01-01T00:00:00Z");
    // the other frames keep their times
    let row = &sql(
        &ds,
        "select cast(ts as bigint), query_frame from transactions where query_frame > 2 \
         order by query_frame limit 1",
    )[1];
    let o = offs[row[1].parse::<usize>().unwrap() - 1];
    let rd = |k: usize| u32::from_le_bytes(raw[o + k..o + k + 4].try_into().unwrap()) as i64;
    assert_eq!(row[0], (rd(0) * 1_000_000 + rd(4)).to_string());
}

/// Issue 10: `--match-timeout 9223372037s` wrapped (and paired nothing),
/// `18446744073709551615s` panicked: beyond 1 day is a usage error.
#[test]
fn match_timeout_beyond_a_day_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    for t in [
        "9223372037s",
        "18446744073709551615s",
        "25h",
        "99999999999999999999h",
    ] {
        let o = run(dnsq()
            .arg("ingest")
            .arg("-o")
            .arg(tmp.path())
            .arg("--match-timeout")
            .arg(t)
            .arg(sample()));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{t}: {e}");
        assert!(
            e.contains(&format!(
                "'{t}' for '--match-timeout <MATCH_TIMEOUT>': `{t}` is longer than the longest \
                 match timeout, 1 day (24h)"
            )),
            "{t}: {e}"
        );
        assert_no_panic(&o);
    }
    assert!(!tmp.path().join("transactions").exists());
    // a day is allowed, and pairs
    ingest(tmp.path(), &[&sample()], &["--match-timeout", "24h"]);
    let answered = &sql(
        tmp.path(),
        "select count(*) from transactions where status = 'answered'",
    )[1][0];
    assert_ne!(answered, "0");
}

/// Issue 10: `--threads 99999` started 1,578 threads. It is capped at the
/// cores, with a message; `--force-threads` takes it as given, up to 1024.
#[test]
fn threads_beyond_the_cores_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ingest(&tmp.path().join("a"), &[&sample()], &["--threads", "99999"]);
    let e = stderr(&o);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        e.contains(&format!(
            "--threads 99999 is more than the {cores} cores here: using {cores}"
        )),
        "{e}"
    );
    let o = run(dnsq()
        .arg("ingest")
        .arg("-o")
        .arg(tmp.path().join("b"))
        .args(["--threads", "99999", "--force-threads"])
        .arg(sample()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("at most 1024"), "{}", stderr(&o));
    let o = ingest(
        &tmp.path().join("c"),
        &[&sample()],
        &["--threads", &(cores + 1).to_string(), "--force-threads"],
    );
    assert!(!stderr(&o).contains("more than the"), "{}", stderr(&o));
}
