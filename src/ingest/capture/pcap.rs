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
