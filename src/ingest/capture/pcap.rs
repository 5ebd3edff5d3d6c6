//! The legacy pcap format: a walk over its record headers into chunks.

use super::*;

pub(super) fn walk_pcap(
    d: &[u8],
    be: bool,
    snaplen: u32,
    chunk_bytes: usize,
    release: &dyn Fn(usize, usize),
) -> Walk {
    let nanos_limit = if read_u32(d, 0, be) == PCAP_MAGIC_NS {
        1_000_000_000
    } else {
        1_000_000
    };
    let mut walk = Walk {
        chunks: Vec::new(),
        records: 0,
        problem: None,
    };
    let mut pos = 24;
    let mut chunks = Chunker::new(pos, be, chunk_bytes);
    while pos < d.len() {
        if d.len() - pos < 16 {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        let caplen = read_u32(d, pos + 8, be);
        let frac = read_u32(d, pos + 4, be);
        if caplen > MAX_RECORD || frac >= nanos_limit {
            let what = if caplen > MAX_RECORD {
                format!(
                    "record length {caplen} is over {MAX_RECORD} bytes, the most a record may hold \
                     (snapshot length {snaplen})"
                )
            } else {
                format!("sub-second timestamp {frac} out of range")
            };
            walk.problem = Some(Problem::Corrupt {
                offset: pos as u64,
                what,
            });
            break;
        }
        let next = pos + 16 + caplen as usize;
        if next > d.len() {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        walk.records += 1;
        pos = next;
        chunks.record(&mut walk, pos, release);
    }
    chunks.cut(&mut walk, pos, release);
    walk
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::RefCell;

    use super::super::tests::frames_of;
    use super::*;

    /// A pcap file: header (link type 1, snapshot length 65535) then one
    /// record per `(seconds, sub-second, bytes)`, in the chosen byte order.
    pub(in crate::ingest::capture) fn pcap(
        be: bool,
        nanos: bool,
        records: &[(u32, u32, &[u8])],
    ) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let magic = if nanos { PCAP_MAGIC_NS } else { PCAP_MAGIC_US };
        let mut v = w32(magic).to_vec();
        v.extend(if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
        for x in [0, 0, 65535, 1] {
            v.extend(w32(x));
        }
        for (sec, frac, data) in records {
            for x in [*sec, *frac, data.len() as u32, data.len() as u32] {
                v.extend(w32(x));
            }
            v.extend_from_slice(data);
        }
        v
    }

    fn walk(d: &[u8], be: bool, chunk_bytes: usize) -> Walk {
        walk_pcap(d, be, 65535, chunk_bytes, &|_, _| ())
    }

    const T0: u32 = 1_700_000_000;

    #[test]
    fn records_read_the_same_in_either_byte_order() {
        let recs: [(u32, u32, &[u8]); 3] = [
            (T0, 1, b"first"),
            (T0 + 1, 999_999, b""),
            (T0 + 2, 250_000, b"third record"),
        ];
        for be in [false, true] {
            let d = pcap(be, false, &recs);
            let w = walk(&d, be, 1 << 20);
            assert_eq!(w.problem, None);
            assert_eq!(w.records, 3);
            assert_eq!(w.chunks.len(), 1);
            assert_eq!((w.chunks[0].start, w.chunks[0].end), (24, d.len()));
            assert_eq!(w.chunks[0].first_frame, 1);
            assert_eq!(
                frames_of(&d),
                vec![
                    (1, 1_700_000_000_000_001_000, 1, b"first".to_vec()),
                    (2, 1_700_000_001_999_999_000, 1, Vec::new()),
                    (3, 1_700_000_002_250_000_000, 1, b"third record".to_vec()),
                ],
                "big endian {be}"
            );
        }
    }

    #[test]
    fn nanosecond_files_allow_nanosecond_fractions() {
        for be in [false, true] {
            let ns = pcap(be, true, &[(T0, 999_999_999, b"x"), (T0, 1_000_000, b"y")]);
            let got: Vec<i64> = frames_of(&ns).into_iter().map(|f| f.1).collect();
            assert_eq!(got, [1_700_000_000_999_999_999, 1_700_000_000_001_000_000]);
            // the same fractions in a microsecond file: the second is past a second
            let us = pcap(be, false, &[(T0, 999_999, b"x"), (T0, 1_000_000, b"y")]);
            let w = walk(&us, be, 1 << 20);
            assert_eq!(w.records, 1);
            assert_eq!(
                w.problem,
                Some(Problem::Corrupt {
                    offset: 24 + 17,
                    what: "sub-second timestamp 1000000 out of range".into(),
                })
            );
            // and the last nanosecond a nanosecond file can hold is the limit
            let over = pcap(be, true, &[(T0, 1_000_000_000, b"x")]);
            assert!(matches!(
                walk(&over, be, 1 << 20).problem,
                Some(Problem::Corrupt { offset: 24, .. })
            ));
        }
    }

    #[test]
    fn a_record_length_that_lies_is_corrupt_at_its_offset() {
        for be in [false, true] {
            let mut d = pcap(be, false, &[(T0, 0, b"abcd"), (T0, 0, b"efgh")]);
            // the second record's incl_len claims 4 GiB - 1 of the 4 bytes left
            let at = 24 + 16 + 4;
            let lie = if be {
                u32::MAX.to_be_bytes()
            } else {
                u32::MAX.to_le_bytes()
            };
            d[at + 8..at + 12].copy_from_slice(&lie);
            let w = walk(&d, be, 1 << 20);
            assert_eq!(w.records, 1);
            assert_eq!(
                w.problem,
                Some(Problem::Corrupt {
                    offset: at as u64,
                    what: "record length 4294967295 is over 262144 bytes, the most a record \
                           may hold (snapshot length 65535)"
                        .into(),
                })
            );
            // the records before it stay, in a chunk that ends where it starts
            assert_eq!(w.chunks.len(), 1);
            assert_eq!((w.chunks[0].start, w.chunks[0].end), (24, at));
        }
    }

    #[test]
    fn the_largest_record_is_read_and_one_byte_more_is_corrupt() {
        let big = vec![0x5a; MAX_RECORD as usize];
        let d = pcap(false, false, &[(T0, 0, &big)]);
        let w = walk(&d, false, 1 << 20);
        assert_eq!((w.records, w.problem), (1, None));
        let mut over = d[..24 + 16].to_vec();
        over[24 + 8..24 + 12].copy_from_slice(&(MAX_RECORD + 1).to_le_bytes());
        assert!(matches!(
            walk(&over, false, 1 << 20).problem,
            Some(Problem::Corrupt { offset: 24, .. })
        ));
        // a length within the limit but past the end is a cut, not corrupt
        let cut = &d[..d.len() - 1];
        assert_eq!(
            walk(cut, false, 1 << 20).problem,
            Some(Problem::Truncated { offset: 24 })
        );
    }

    #[test]
    fn a_cut_last_record_is_reported_where_it_starts() {
        let d = pcap(true, true, &[(T0, 0, b"whole"), (T0, 0, b"cut off")]);
        let last = 24 + 16 + 5;
        // cut in the record's body, and in its header
        for len in [d.len() - 1, last + 16, last + 15, last + 1] {
            let w = walk(&d[..len], true, 1 << 20);
            assert_eq!(w.records, 1, "cut at {len}");
            assert_eq!(
                w.problem,
                Some(Problem::Truncated {
                    offset: last as u64
                }),
                "cut at {len}"
            );
            assert_eq!(w.chunks.len(), 1);
            assert_eq!(w.chunks[0].end, last);
        }
        // cut right after a record: nothing is missing
        let w = walk(&d[..last], true, 1 << 20);
        assert_eq!((w.records, w.problem), (1, None));
    }

    #[test]
    fn a_header_alone_has_no_records() {
        let d = pcap(false, false, &[]);
        let w = walk(&d, false, 1 << 20);
        assert_eq!((w.records, w.problem), (0, None));
        assert!(w.chunks.is_empty());
    }

    #[test]
    fn chunks_end_after_the_record_that_fills_them() {
        // five records of 26 bytes; a chunk of 50 bytes is full after two
        let recs: Vec<(u32, u32, &[u8])> =
            (0..5).map(|i| (T0 + i, 0, &b"0123456789"[..])).collect();
        let d = pcap(false, false, &recs);
        let released = RefCell::new(Vec::new());
        let w = walk_pcap(&d, false, 65535, 50, &|s, e| {
            released.borrow_mut().push((s, e))
        });
        let got: Vec<(usize, usize, u64)> = w
            .chunks
            .iter()
            .map(|c| (c.start, c.end, c.first_frame))
            .collect();
        assert_eq!(got, [(24, 76, 1), (76, 128, 3), (128, 154, 5)]);
        // each chunk's bytes are let go as it is cut
        assert_eq!(*released.borrow(), [(24, 76), (76, 128), (128, 154)]);
        assert!(w
            .chunks
            .iter()
            .all(|c| !c.big_endian && c.interfaces.is_empty()));
    }
}
