use super::*;

/// `(number, ts_ns, linktype, bytes)` of every frame of a capture held in
/// memory, through the walk's chunks; the walk finds no problem.
pub(super) fn frames_of(bytes: &[u8]) -> Vec<(u64, i64, u32, Vec<u8>)> {
    let cap = Capture {
        path: "t".into(),
        format: recognise(bytes).expect("a capture header"),
        bytes: Bytes::Owned(bytes.to_vec()),
        compression: Compression::None,
        file_size: 0,
    };
    let walk = cap.walk(1 << 20);
    assert_eq!(walk.problem, None);
    let mut out = Vec::new();
    for c in &walk.chunks {
        cap.frames(c, |f| {
            out.push((f.number, f.ts_ns, f.linktype, f.data.to_vec()))
        });
    }
    out
}

/// A little-endian microsecond pcap of `records`, one second apart.
fn pcap(records: &[&[u8]]) -> Vec<u8> {
    let recs: Vec<(u32, u32, &[u8])> = (0..)
        .zip(records)
        .map(|(i, r)| (1_428_624_000 + i, 5, *r))
        .collect();
    super::pcap::tests::pcap(false, false, &recs)
}

#[test]
fn chunks_cover_every_record_on_boundaries() {
    let recs: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 10 + i]).collect();
    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    let bytes = pcap(&refs);
    let cap = Capture {
        path: "t".into(),
        format: recognise(&bytes).expect("pcap"),
        bytes: Bytes::Owned(bytes),
        compression: Compression::None,
        file_size: 0,
    };
    let walk = cap.walk(100);
    assert!(walk.problem.is_none());
    assert_eq!(walk.records, 100);
    let mut seen = Vec::new();
    for c in &walk.chunks {
        cap.frames(c, |f| seen.push((f.number, f.data.len())));
    }
    let want: Vec<(u64, usize)> = (0..100).map(|i| (i as u64 + 1, 10 + i)).collect();
    assert_eq!(seen, want);
}

#[test]
fn cut_and_corrupt_records_are_reported_with_offsets() {
    let bytes = pcap(&[b"abcd", b"efgh"]);
    let cut = bytes[..bytes.len() - 2].to_vec();
    let w = walk_pcap(&cut, false, 65535, 1 << 20, &|_, _| ());
    assert_eq!(w.records, 1);
    assert_eq!(w.problem, Some(Problem::Truncated { offset: 44 }));
    let mut bad = bytes.clone();
    bad[44 + 8..44 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let w = walk_pcap(&bad, false, 65535, 1 << 20, &|_, _| ());
    assert_eq!(w.records, 1);
    assert!(matches!(
        w.problem,
        Some(Problem::Corrupt { offset: 44, .. })
    ));
}
/// A pcapng block of `btype` holding `body` (padded to 32 bits), little-endian.
fn block(btype: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len().next_multiple_of(4);
    let mut v = btype.to_le_bytes().to_vec();
    v.extend((len as u32).to_le_bytes());
    v.extend(body);
    v.resize(len - 4, 0);
    v.extend((len as u32).to_le_bytes());
    v
}

#[test]
fn stream_header_blocks_are_capped() {
    // a section of 20 interface blocks of about 60 KB each (a long if_description)
    let mut v = block(
        PCAPNG_SHB,
        &[
            &PCAPNG_BOM.to_le_bytes()[..],
            &[1, 0, 0, 0],
            &(-1i64).to_le_bytes(),
        ]
        .concat(),
    );
    let mut idb = vec![1, 0, 0, 0];
    idb.extend(65535u32.to_le_bytes());
    idb.extend([3, 0, 0x60, 0xea]); // if_description, 60,000 bytes
    idb.extend(vec![b'x'; 60_000]);
    idb.extend([0, 0, 0, 0]);
    let idb = block(PCAPNG_IDB, &idb);
    for _ in 0..20 {
        v.extend(&idb);
    }
    let dir = std::env::temp_dir().join(format!("dnsq-caps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("many-interfaces.pcapng");
    std::fs::write(&path, &v).unwrap();
    let mut r = StreamReader::open(&path, 64 << 10).unwrap();
    while r.next_piece().unwrap().is_some() {}
    std::fs::remove_dir_all(&dir).unwrap();
    // the interface block that would take the header blocks past 1 MiB
    let fit = (MAX_STREAM_PREFIX - 28) / idb.len();
    assert!(
        matches!(
            r.problem,
            Some(Problem::Corrupt { offset, ref what })
                if offset == (28 + fit * idb.len()) as u64 && what.contains("1048576 bytes")
        ),
        "{:?}",
        r.problem
    );
}
