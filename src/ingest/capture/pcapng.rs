//! pcapng: a walk over its blocks into chunks (sections, interfaces and
//! their timestamp units), and one packet block read as a frame.

use pcap_parser::pcapng::OptionCode;

use super::*;

pub(super) fn walk_pcapng(d: &[u8], chunk_bytes: usize, release: &dyn Fn(usize, usize)) -> Walk {
    let mut walk = Walk {
        chunks: Vec::new(),
        records: 0,
        problem: None,
    };
    let mut be = false;
    let mut interfaces: Arc<Vec<Interface>> = Arc::new(Vec::new());
    let mut pos = 0;
    let mut chunks = Chunker::new(0, false, chunk_bytes);
    while pos < d.len() {
        if d.len() - pos < 12 {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        let btype = read_u32(d, pos, false);
        if btype == PCAPNG_SHB {
            // A new section: byte order from its byte-order magic; interfaces reset.
            if d.len() - pos < 28 {
                walk.problem = Some(Problem::Truncated { offset: pos as u64 });
                break;
            }
            let bom = read_u32(d, pos + 8, false);
            be = if bom == PCAPNG_BOM {
                false
            } else if bom.swap_bytes() == PCAPNG_BOM {
                true
            } else {
                walk.problem = Some(Problem::Corrupt {
                    offset: pos as u64,
                    what: "bad section byte-order magic".into(),
                });
                break;
            };
        }
        let blen = read_u32(d, pos + 4, be) as usize;
        if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_BLOCK {
            walk.problem = Some(Problem::Corrupt {
                offset: pos as u64,
                what: format!("block length {blen} is not valid"),
            });
            break;
        }
        if pos + blen > d.len() {
            walk.problem = Some(Problem::Truncated { offset: pos as u64 });
            break;
        }
        if read_u32(d, pos + blen - 4, be) != blen as u32 {
            walk.problem = Some(Problem::Corrupt {
                offset: pos as u64,
                what: "block lengths at start and end differ".into(),
            });
            break;
        }
        let btype = read_u32(d, pos, be);
        match btype {
            PCAPNG_SHB | PCAPNG_IDB => {
                // Interface tables change: start a new chunk so each chunk has one table.
                chunks.cut(&mut walk, pos, release);
                if btype == PCAPNG_SHB {
                    interfaces = Arc::new(Vec::new());
                } else {
                    let mut v = (*interfaces).clone();
                    v.push(parse_idb(&d[pos..pos + blen], be));
                    interfaces = Arc::new(v);
                }
                chunks.set_table(be, interfaces.clone());
            }
            PCAPNG_EPB | PCAPNG_SPB | PCAPNG_OPB => walk.records += 1,
            _ => {}
        }
        pos += blen;
        chunks.record(&mut walk, pos, release);
    }
    chunks.cut(&mut walk, pos, release);
    walk
}

pub(super) fn parse_idb(block: &[u8], be: bool) -> Interface {
    let parsed = if be {
        pcap_parser::pcapng::parse_block_be(block)
    } else {
        pcap_parser::pcapng::parse_block_le(block)
    };
    match parsed {
        Ok((_, Block::InterfaceDescription(idb))) => {
            // the options are read here, not by pcap-parser 0.17, which turns
            // every `2^-n` resolution down and reads `if_tsoffset`
            // little-endian in a big-endian section
            let mut offset_secs = 0;
            for o in &idb.options {
                if o.code == OptionCode::IfTsoffset && o.value.len() >= 8 {
                    let bytes: [u8; 8] = o.value[..8].try_into().unwrap_or_default();
                    offset_secs = if be {
                        i64::from_be_bytes(bytes)
                    } else {
                        i64::from_le_bytes(bytes)
                    };
                }
            }
            Interface {
                linktype: idb.linktype.0 as u32,
                units_per_sec: units_per_sec(idb.if_tsresol).unwrap_or(1_000_000),
                offset_secs,
                snaplen: idb.snaplen,
            }
        }
        _ => Interface {
            linktype: u32::MAX,
            units_per_sec: 1_000_000,
            offset_secs: 0,
            snaplen: 0,
        },
    }
}

/// Timestamp units per second of an `if_tsresol` value: `10^v`, or with its
/// top bit set `2^(v & 0x7f)`; `None` beyond what a u64 holds.
fn units_per_sec(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent)
    }
}

pub(super) fn pcapng_frame<'a>(
    block: &'a [u8],
    be: bool,
    ifaces: &[Interface],
    number: u64,
) -> Option<Frame<'a>> {
    let parsed = if be {
        pcap_parser::pcapng::parse_block_be(block)
    } else {
        pcap_parser::pcapng::parse_block_le(block)
    };
    match parsed {
        Ok((_, Block::EnhancedPacket(epb))) => {
            let iface = ifaces.get(epb.if_id as usize)?;
            let units = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
            let per = iface.units_per_sec.max(1) as i128;
            // no overflow in i128: units < 2^64, if_tsoffset < 2^63 seconds
            let (ts_ns, ts_out_of_range) = clamp_ts(
                units as i128 * 1_000_000_000 / per + iface.offset_secs as i128 * 1_000_000_000,
            );
            Some(Frame {
                ts_ns,
                ts_out_of_range,
                linktype: iface.linktype,
                number,
                data: &epb.data[..(epb.caplen as usize).min(epb.data.len())],
            })
        }
        Ok((_, Block::SimplePacket(spb))) => {
            let iface = ifaces.first()?;
            Some(Frame {
                ts_ns: 0,
                ts_out_of_range: None,
                linktype: iface.linktype,
                number,
                // a simple packet block keeps min(original length, snaplen)
                // bytes, then padding to 4 bytes
                data: &spb.data[..captured(spb.origlen, iface.snaplen).min(spb.data.len())],
            })
        }
        _ => None,
    }
}

fn captured(origlen: u32, snaplen: u32) -> usize {
    match snaplen {
        0 => origlen as usize,
        n => origlen.min(n) as usize,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::frames_of;
    use super::*;

    // Blocks laid out as in the pcapng draft (draft-ietf-opsawg-pcapng §4).

    fn u16b(be: bool, v: u16) -> [u8; 2] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32b(be: bool, v: u32) -> [u8; 4] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block of `btype` holding `body`, padded to 32 bits.
    fn block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().next_multiple_of(4);
        let mut v = u32b(be, btype).to_vec();
        v.extend(u32b(be, len as u32));
        v.extend(body);
        v.resize(len - 4, 0);
        v.extend(u32b(be, len as u32));
        v
    }

    /// Section header block: byte-order magic, version 1.0, length unknown.
    pub(in crate::ingest::capture) fn shb(be: bool) -> Vec<u8> {
        let mut body = u32b(be, PCAPNG_BOM).to_vec();
        body.extend(u16b(be, 1));
        body.extend(u16b(be, 0));
        body.extend([0xff; 8]);
        block(be, PCAPNG_SHB, &body)
    }

    /// Interface description block with `(code, value)` options.
    pub(in crate::ingest::capture) fn idb(
        be: bool,
        linktype: u16,
        options: &[(u16, &[u8])],
    ) -> Vec<u8> {
        let mut body = u16b(be, linktype).to_vec();
        body.extend([0, 0]);
        body.extend(u32b(be, 65535));
        if !options.is_empty() {
            for (code, value) in options {
                body.extend(u16b(be, *code));
                body.extend(u16b(be, value.len() as u16));
                body.extend(*value);
                body.resize(body.len().next_multiple_of(4), 0);
            }
            body.extend([0, 0, 0, 0]); // opt_endofopt
        }
        block(be, PCAPNG_IDB, &body)
    }

    /// Enhanced packet block of interface `if_id` at `ts` units.
    pub(in crate::ingest::capture) fn epb(be: bool, if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = u32b(be, if_id).to_vec();
        body.extend(u32b(be, (ts >> 32) as u32));
        body.extend(u32b(be, ts as u32));
        body.extend(u32b(be, data.len() as u32));
        body.extend(u32b(be, data.len() as u32));
        body.extend(data);
        block(be, PCAPNG_EPB, &body)
    }

    /// Simple packet block: original length, then the packet bytes.
    fn spb(be: bool, data: &[u8]) -> Vec<u8> {
        let mut body = u32b(be, data.len() as u32).to_vec();
        body.extend(data);
        block(be, PCAPNG_SPB, &body)
    }

    fn walk(d: &[u8]) -> Walk {
        walk_pcapng(d, 1 << 20, &|_, _| ())
    }

    fn iface(be: bool, options: &[(u16, &[u8])]) -> Interface {
        parse_idb(&idb(be, 1, options), be)
    }

    #[test]
    fn sections_in_either_byte_order() {
        for be in [false, true] {
            let mut d = shb(be);
            let idb_at = d.len();
            d.extend(idb(be, 101, &[]));
            d.extend(epb(be, 0, 1_700_000_000_123_456, b"packet"));
            let w = walk(&d);
            assert_eq!((w.records, w.problem.clone()), (1, None), "big endian {be}");
            // the section header alone, then the interface table from its IDB on
            assert_eq!(w.chunks.len(), 2);
            assert_eq!((w.chunks[0].start, w.chunks[0].end), (0, idb_at));
            assert!(w.chunks[0].interfaces.is_empty());
            assert_eq!((w.chunks[1].start, w.chunks[1].end), (idb_at, d.len()));
            assert!(w.chunks.iter().all(|c| c.big_endian == be));
            assert_eq!(w.chunks[1].interfaces.len(), 1);
            assert_eq!(w.chunks[1].interfaces[0].linktype, 101);
            assert_eq!(
                frames_of(&d),
                [(1, 1_700_000_000_123_456_000, 101, b"packet".to_vec())]
            );
        }
    }

    #[test]
    fn a_bad_byte_order_magic_is_corrupt() {
        let mut d = shb(false);
        d[8..12].copy_from_slice(&0x1a2b_3c4eu32.to_le_bytes());
        let w = walk(&d);
        assert_eq!(
            w.problem,
            Some(Problem::Corrupt {
                offset: 0,
                what: "bad section byte-order magic".into()
            })
        );
        assert!(w.chunks.is_empty());
    }

    #[test]
    fn if_tsresol_sets_the_timestamp_units() {
        for be in [false, true] {
            // absent: microseconds (the draft's default)
            assert_eq!(iface(be, &[]).units_per_sec, 1_000_000);
            assert_eq!(iface(be, &[(9, &[6])]).units_per_sec, 1_000_000);
            assert_eq!(iface(be, &[(9, &[9])]).units_per_sec, 1_000_000_000);
            assert_eq!(iface(be, &[(9, &[0])]).units_per_sec, 1);
            // other options around it do not matter
            let named = iface(be, &[(2, b"eth0"), (9, &[3]), (12, b"Linux")]);
            assert_eq!(named.units_per_sec, 1000);
            assert_eq!(named.offset_secs, 0);
        }
        // a block that is no IDB: a link type no capture uses, microseconds
        let not = parse_idb(&shb(false), false);
        assert_eq!((not.linktype, not.units_per_sec), (u32::MAX, 1_000_000));
    }

    #[test]
    fn if_tsresol_power_of_two() {
        // most significant bit set: 2^-10 s units
        assert_eq!(iface(false, &[(9, &[0x8a])]).units_per_sec, 1024);
    }

    #[test]
    fn if_tsoffset_in_a_big_endian_section() {
        // options are in the section's byte order: +1 s
        assert_eq!(iface(true, &[(14, &1i64.to_be_bytes())]).offset_secs, 1);
    }

    #[test]
    fn a_simple_packet_cut_by_the_snapshot_length() {
        // interface 0 keeps 5 bytes of a packet; an SPB's captured length is
        // min(original length, snaplen), and the block holds 5 bytes + 3 of padding
        let mut idb0 = 1u16.to_le_bytes().to_vec();
        idb0.extend([0, 0]);
        idb0.extend(5u32.to_le_bytes());
        let ifaces = [parse_idb(&block(false, PCAPNG_IDB, &idb0), false)];
        let mut body = 100u32.to_le_bytes().to_vec();
        body.extend(b"12345");
        let s = block(false, PCAPNG_SPB, &body);
        let f = pcapng_frame(&s, false, &ifaces, 1).expect("an SPB");
        assert_eq!(f.data, b"12345");
    }

    #[test]
    fn enhanced_packet_times_follow_their_interface() {
        let be = false;
        let mut d = shb(be);
        d.extend(idb(be, 1, &[])); // microseconds
        d.extend(idb(be, 101, &[(9, &[9])])); // nanoseconds
        d.extend(idb(be, 228, &[(9, &[3]), (14, &100i64.to_le_bytes())])); // ms, +100 s
        d.extend(epb(be, 0, 1_500_000, b"a"));
        d.extend(epb(be, 1, 1_500_000_001, b"b"));
        d.extend(epb(be, 2, 1_500, b"c"));
        // 2^32 + 1 µs: the high word counts
        d.extend(epb(be, 0, (1 << 32) + 1, b"d"));
        assert_eq!(
            frames_of(&d),
            [
                (1, 1_500_000_000, 1, b"a".to_vec()),
                (2, 1_500_000_001, 101, b"b".to_vec()),
                (3, 101_500_000_000, 228, b"c".to_vec()),
                (4, 4_294_967_297_000, 1, b"d".to_vec()),
            ]
        );
    }

    #[test]
    fn packet_blocks_are_read_as_frames() {
        for be in [false, true] {
            let ifaces = [iface(be, &[]), parse_idb(&idb(be, 113, &[]), be)];
            // five bytes of packet, padded to eight: the padding is no packet
            let e = epb(be, 1, 2_000_001, b"12345");
            let f = pcapng_frame(&e, be, &ifaces, 7).expect("an EPB of a known interface");
            assert_eq!((f.number, f.ts_ns, f.linktype), (7, 2_000_001_000, 113));
            assert_eq!(f.data, b"12345");
            assert_eq!(f.ts_out_of_range, None);
            // an interface that was never described: no frame
            assert!(pcapng_frame(&epb(be, 2, 0, b"x"), be, &ifaces, 1).is_none());
            // a simple packet block: interface 0, no time
            let s = spb(be, b"abcdef");
            let f = pcapng_frame(&s, be, &ifaces, 8).expect("an SPB with an interface");
            assert_eq!((f.number, f.ts_ns, f.linktype), (8, 0, 1));
            assert_eq!(f.data, b"abcdef");
            assert!(pcapng_frame(&s, be, &[], 8).is_none());
            // other blocks are no frames
            assert!(pcapng_frame(&idb(be, 1, &[]), be, &ifaces, 1).is_none());
        }
    }

    #[test]
    fn unknown_blocks_are_skipped_and_not_numbered() {
        let mut d = shb(false);
        d.extend(idb(false, 1, &[]));
        d.extend(epb(false, 0, 1, b"one"));
        d.extend(block(false, 0x0000_0bad, b"a custom block nobody reads"));
        d.extend(block(false, 5, &[0; 12])); // interface statistics
        d.extend(spb(false, b"two"));
        let w = walk(&d);
        assert_eq!((w.records, w.problem), (2, None));
        let got: Vec<(u64, Vec<u8>)> = frames_of(&d).into_iter().map(|f| (f.0, f.3)).collect();
        assert_eq!(got, [(1, b"one".to_vec()), (2, b"two".to_vec())]);
    }

    #[test]
    fn block_lengths_that_lie_stop_the_walk() {
        let mut head = shb(false);
        head.extend(idb(false, 1, &[]));
        head.extend(epb(false, 0, 1, b"kept"));
        let at = head.len();
        let next = epb(false, 0, 2, b"lost");
        let with_len = |len: u32| {
            let mut d = head.clone();
            d.extend(&next);
            d[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
            d
        };
        let corrupt = |what: &str| {
            Some(Problem::Corrupt {
                offset: at as u64,
                what: what.into(),
            })
        };
        for (d, want) in [
            // 4 GiB - 4: a multiple of 4, but no block is that long
            (
                with_len(0xffff_fffc),
                corrupt("block length 4294967292 is not valid"),
            ),
            (with_len(8), corrupt("block length 8 is not valid")),
            (with_len(30), corrupt("block length 30 is not valid")),
            (
                with_len(MAX_BLOCK as u32 + 4),
                corrupt("block length 16777220 is not valid"),
            ),
            // shorter than it is: the trailing length is not where it says
            (
                with_len(next.len() as u32 - 4),
                corrupt("block lengths at start and end differ"),
            ),
            // longer than the file: a cut
            (
                with_len(next.len() as u32 + 4),
                Some(Problem::Truncated { offset: at as u64 }),
            ),
            // under 12 bytes left
            (
                [&head[..], &next[..11]].concat(),
                Some(Problem::Truncated { offset: at as u64 }),
            ),
        ] {
            let w = walk(&d);
            assert_eq!(w.problem, want);
            assert_eq!(w.records, 1);
            assert_eq!(w.chunks.last().map(|c| c.end), Some(at));
        }
    }

    #[test]
    fn a_new_section_resets_interfaces_and_byte_order() {
        let mut d = shb(false);
        d.extend(idb(false, 1, &[]));
        d.extend(epb(false, 0, 1_000_000, b"le"));
        let second = d.len();
        d.extend(shb(true));
        d.extend(idb(true, 101, &[(9, &[9])]));
        d.extend(epb(true, 0, 2_000_000_000, b"be"));
        let w = walk(&d);
        assert_eq!((w.records, w.problem.clone()), (2, None));
        let from_second: Vec<&Chunk> = w.chunks.iter().filter(|c| c.start >= second).collect();
        assert!(from_second.iter().all(|c| c.big_endian));
        assert!(from_second[0].interfaces.is_empty());
        assert_eq!(from_second.last().map(|c| c.interfaces.len()), Some(1));
        assert_eq!(
            frames_of(&d),
            [
                (1, 1_000_000_000, 1, b"le".to_vec()),
                (2, 2_000_000_000, 101, b"be".to_vec()),
            ]
        );
    }
}
