//! pcapng: a walk over its blocks into chunks (sections, interfaces and
//! their timestamp units), and one packet block read as a frame.

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
        Ok((_, Block::InterfaceDescription(idb))) => Interface {
            linktype: idb.linktype.0 as u32,
            units_per_sec: idb.ts_resolution().unwrap_or(1_000_000),
            offset_secs: idb.ts_offset(),
        },
        _ => Interface {
            linktype: u32::MAX,
            units_per_sec: 1_000_000,
            offset_secs: 0,
        },
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
                data: &spb.data[..(spb.origlen as usize).min(spb.data.len())],
            })
        }
        _ => None,
    }
}
