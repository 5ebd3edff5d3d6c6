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
        [0xd4, 0xc3, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0xc3, 0xd4, ..]
        | [0x4d, 0x3c, 0xb2, 0xa1, ..]
        | [0xa1, 0xb2, 0x3c, 0x4d, ..] => ", a pcap header cut short",
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A legacy pcap file header (24 bytes) with `magic` written in the
    /// chosen byte order, version 2.4, snapshot length and link type.
    fn pcap_header(magic: u32, be: bool, snaplen: u32, linktype: u32) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut h = w32(magic).to_vec();
        h.extend(w16(2));
        h.extend(w16(4));
        h.extend(w32(0)); // thiszone
        h.extend(w32(0)); // sigfigs
        h.extend(w32(snaplen));
        h.extend(w32(linktype));
        h
    }

    /// A Frame Streams START control frame naming `content`.
    fn fstrm_start(content: &[u8]) -> Vec<u8> {
        let mut body = 2u32.to_be_bytes().to_vec();
        body.extend(1u32.to_be_bytes());
        body.extend((content.len() as u32).to_be_bytes());
        body.extend(content);
        let mut f = vec![0, 0, 0, 0];
        f.extend((body.len() as u32).to_be_bytes());
        f.extend(body);
        f
    }

    #[test]
    fn pcap_in_both_byte_orders_and_resolutions() {
        for big_endian in [false, true] {
            for (magic, nanos) in [(PCAP_MAGIC_US, false), (PCAP_MAGIC_NS, true)] {
                let h = pcap_header(magic, big_endian, 262_144, 113);
                assert_eq!(
                    recognise(&h),
                    Some(Format::Pcap {
                        big_endian,
                        nanos,
                        linktype: 113,
                        snaplen: 262_144,
                    }),
                    "magic {magic:08x}, big endian {big_endian}"
                );
            }
        }
        // the magic as it lies in the file, byte by byte
        let le_us = pcap_header(PCAP_MAGIC_US, false, 65535, 1);
        assert_eq!(le_us[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        let be_ns = pcap_header(PCAP_MAGIC_NS, true, 65535, 1);
        assert_eq!(be_ns[..4], [0xa1, 0xb2, 0x3c, 0x4d]);
    }

    #[test]
    fn a_pcap_header_cut_short_is_not_a_capture() {
        for (magic, be, first) in [
            (PCAP_MAGIC_US, false, "d4 c3 b2 a1"),
            (PCAP_MAGIC_US, true, "a1 b2 c3 d4"),
            (PCAP_MAGIC_NS, false, "4d 3c b2 a1"),
            (PCAP_MAGIC_NS, true, "a1 b2 3c 4d"),
        ] {
            let h = pcap_header(magic, be, 65535, 1);
            assert_eq!(recognise(&h[..23]), None);
            assert!(recognise(&h[..24]).is_some());
            assert_eq!(
                describe(&h[..23]),
                format!("starts with {first}, a pcap header cut short")
            );
        }
    }

    #[test]
    fn pcapng_is_recognised_by_its_section_header_type() {
        // block type 0x0A0D0D0A reads the same in either byte order
        let mut le = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0];
        le.extend(PCAPNG_BOM.to_le_bytes());
        let mut be = vec![0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28];
        be.extend(PCAPNG_BOM.to_be_bytes());
        assert_eq!(recognise(&le), Some(Format::PcapNg));
        assert_eq!(recognise(&be), Some(Format::PcapNg));
        // the block type alone is enough: the walk reports what is missing
        assert_eq!(recognise(&le[..4]), Some(Format::PcapNg));
    }

    #[test]
    fn dnstap_is_recognised_by_its_start_frame() {
        let start = fstrm_start(crate::ingest::dnstap::CONTENT_TYPE);
        assert_eq!(recognise(&start), Some(Format::Dnstap));
        // a real log: data/dnstap.fstrm (see data/README.md)
        let real = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/dnstap.fstrm"))
            .expect("data/dnstap.fstrm is in the repository");
        assert_eq!(recognise(&real), Some(Format::Dnstap));
        // Frame Streams of another content type is not a capture, and says so
        let other = fstrm_start(b"protobuf:other.Thing");
        assert_eq!(recognise(&other), None);
        assert_eq!(
            describe(&other),
            "starts with 00 00 00 00, Frame Streams of content type \
             \"protobuf:other.Thing\", not dnstap"
        );
        assert_eq!(
            describe(&[0, 0, 0, 0, 0]),
            "starts with 00 00 00 00, cut inside its first frame"
        );
    }

    #[test]
    fn compressed_captures_are_told_by_their_magic() {
        let pcap = pcap_header(PCAP_MAGIC_NS, false, 65535, 1);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&pcap).expect("writing to a Vec");
        let gz = gz.finish().expect("writing to a Vec");
        let zst = zstd::encode_all(&pcap[..], 1).expect("writing to a Vec");
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&pcap).expect("writing to a Vec");
        let xz = xz.finish().expect("writing to a Vec");
        for (bytes, want) in [
            (&gz, Compression::Gzip),
            (&zst, Compression::Zstd),
            (&xz, Compression::Xz),
        ] {
            assert_eq!(Compression::of(bytes), want);
            // the compressed bytes are no capture; what they hold is
            assert_eq!(recognise(bytes), None);
            let plain = decompress(bytes, want).expect("whole compressed data");
            assert_eq!(plain, pcap);
            assert!(matches!(
                recognise(&plain),
                Some(Format::Pcap { nanos: true, .. })
            ));
        }
        assert_eq!(Compression::of(&pcap), Compression::None);
        // xz needs its whole six-byte magic
        assert_eq!(
            Compression::of(&[0xfd, b'7', b'z', b'X', b'Z', 0x01]),
            Compression::None
        );
    }

    #[test]
    fn unknown_and_short_headers_get_a_hint() {
        for (bytes, hint) in [
            (
                &b"PK\x03\x04rest"[..],
                "starts with 50 4b 03 04, a zip archive?",
            ),
            (
                b"BZh91AY&SY",
                "starts with 42 5a 68 39, bzip2 is not supported",
            ),
            (b"PAR1\x15\x04", "starts with 50 41 52 31, a Parquet file?"),
            (b"hello world\n", "starts with 68 65 6c 6c, a text file?"),
            (&[0x01, 0x02, 0x03, 0xff, 0x00], "starts with 01 02 03 ff"),
            (&[0xd4, 0xc3], "starts with d4 c3"),
        ] {
            assert_eq!(recognise(bytes), None, "{hint}");
            assert_eq!(describe(bytes), hint);
        }
        assert_eq!(recognise(&[]), None);
        // the "modified" pcap magic of old Linux tcpdumps is not read
        let modified = pcap_header(0xa1b2_cd34, false, 65535, 1);
        assert_eq!(recognise(&modified), None);
    }
}
