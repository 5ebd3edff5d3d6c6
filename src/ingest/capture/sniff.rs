//! Recognising a capture by its first bytes, never its name, and a hint at
//! what a file that is not one looks like.

use super::*;

pub(super) fn recognise(b: &[u8]) -> Option<Format> {
    if crate::ingest::dnstap::is_dnstap(b) {
        return Some(Format::Dnstap);
    }
    let head: [u8; 4] = b.get(..4)?.try_into().ok()?;
    let (le, be) = (u32::from_le_bytes(head), u32::from_be_bytes(head));
    if le == PCAPNG_SHB {
        return Some(Format::PcapNg);
    }
    let (big_endian, magic) = if le == PCAP_MAGIC_US || le == PCAP_MAGIC_NS {
        (false, le)
    } else if be == PCAP_MAGIC_US || be == PCAP_MAGIC_NS {
        (true, be)
    } else {
        return None;
    };
    if b.len() < 24 {
        return None;
    }
    let (_, header) = pcap_parser::parse_pcap_header(&b[..24]).ok()?;
    Some(Format::Pcap {
        big_endian,
        nanos: magic == PCAP_MAGIC_NS,
        linktype: header.network.0 as u32,
        snaplen: header.snaplen,
    })
}

/// A hint at what a file that is not a capture looks like.
pub(super) fn describe(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
    let frame_streams;
    let kind = match b {
        [0, 0, 0, 0, ..] => match crate::ingest::dnstap::frames(b) {
            Err(e) => {
                frame_streams = format!(", {}", e.0);
                &frame_streams
            }
            Ok(_) => "",
        },
        [b'P', b'K', 3, 4, ..] => ", a zip archive?",
        [b'B', b'Z', b'h', ..] => ", bzip2 is not supported",
        [b'P', b'A', b'R', b'1', ..] => ", a Parquet file?",
        [0xd4, 0xc3, 0xb2, 0xa1, ..] | [0xa1, 0xb2, 0xc3, 0xd4, ..] => ", a pcap header cut short",
        _ if b
            .iter()
            .take(64)
            .all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace()) =>
        {
            ", a text file?"
        }
        _ => "",
    };
    format!("starts with {}{kind}", hex.join(" "))
}
