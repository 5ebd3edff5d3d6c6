//! Frames cut short, by the snaplen or by a lying length field, and IP fragments.

use super::*;

#[test]
fn ethernet_header_cut_short_is_malformed() {
    let data = eth(0x0800, &[]);
    assert_eq!(
        decode_frame(&frame(1, &data[..13]), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn raw_ip_cut_inside_the_ip_header_is_malformed() {
    let data = v4_udp_query();
    assert_eq!(
        decode_frame(&frame(101, &data[..12]), &[53]).err(),
        Some(Skip::Malformed)
    );
    let data = ipv6(17, &udp(40000, 53, &query()));
    assert_eq!(
        decode_frame(&frame(229, &data[..30]), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn ethernet_cut_inside_the_ip_header_is_not_ip() {
    // Unlike raw IP (Malformed), an intact Ethernet header followed by a cut
    // IP header is read by etherparse as an Ethernet payload with no IP
    // layer, which decode_sliced reports as NotIp.
    let data = eth(0x0800, &v4_udp_query());
    let r = decode_frame(&frame(1, &data[..14 + 12]), &[53]).err();
    assert_eq!(r, Some(Skip::NotIp));
}

#[test]
fn cut_inside_the_udp_header_is_malformed() {
    let data = eth(0x0800, &v4_udp_query());
    // 14 Ethernet + 20 IPv4 + 5 of the 8 UDP header bytes
    assert_eq!(
        decode_frame(&frame(1, &data[..39]), &[53]).err(),
        Some(Skip::Malformed)
    );
    let data = v4_udp_query();
    assert_eq!(
        decode_frame(&frame(101, &data[..27]), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn cut_inside_the_tcp_header_is_malformed() {
    let data = ipv4(6, &tcp(40000, 53, 1, 0x02, &[], &[]));
    assert_eq!(
        decode_frame(&frame(101, &data[..20 + 19]), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn snaplen_cut_payload_is_flagged_cut() {
    // the IP and UDP lengths promise the whole query; the capture kept 10 bytes of it
    let data = eth(0x0800, &v4_udp_query());
    let s = whole(decode_frame(&frame(1, &data[..42 + 10]), &[53]));
    assert!(s.cut);
    assert_eq!(s.payload, &query()[..10]);
    assert_eq!((s.sport, s.dport), (40000, 53));
}

#[test]
fn udp_length_beyond_the_ip_payload_is_flagged_cut() {
    // IP length is consistent with the bytes; only the UDP length overstates
    let q = query();
    let d = udp_with_len(40000, 53, 8 + q.len() as u16 + 100, &q);
    let data = eth(0x0800, &ipv4(17, &d));
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert!(s.cut);
    assert_eq!(s.payload, &q[..]);
}

#[test]
fn udp_length_shorter_than_the_ip_payload_bounds_the_payload() {
    let q = query();
    let d = udp_with_len(40000, 53, 8 + 12, &q);
    let data = ipv4(17, &d);
    let s = whole(decode_frame(&frame(101, &data), &[53]));
    assert!(!s.cut);
    assert_eq!(s.payload, &q[..12]);
}

#[test]
fn udp_length_zero_trusts_the_ip_length() {
    let q = query();
    let d = udp_with_len(40000, 53, 0, &q);
    let data = ipv4(17, &d);
    let s = whole(decode_frame(&frame(101, &data), &[53]));
    assert!(!s.cut);
    assert_eq!(s.payload, &q[..]);
}

#[test]
fn ipv4_first_fragment_is_a_fragment() {
    // MF set, offset 0, id 0x4242; the fragment holds the UDP header and part of the query
    let body = udp(40000, 53, &query());
    let part = &body[..24];
    let data = eth(0x0800, &ipv4_raw(17, 0x4242, 0x2000, 20 + 24, part));
    let f = fragment(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(f.src, IpAddr::V4(Ipv4Addr::from(CLIENT4)));
    assert_eq!(f.dst, IpAddr::V4(Ipv4Addr::from(SERVER4)));
    assert_eq!((f.id, f.offset, f.more, f.proto), (0x4242, 0, true, 17));
    assert_eq!(f.data, part);
    assert!(f.tunnels.is_empty());
}

#[test]
fn ipv4_last_fragment_has_its_byte_offset() {
    // MF clear, offset 185 eight-byte units = 1480 bytes; ports do not matter here
    let data = ipv4_raw(17, 0x4242, 185, 20 + 5, b"tail!");
    let f = fragment(decode_frame(&frame(101, &data), &[]));
    assert_eq!((f.id, f.offset, f.more), (0x4242, 1480, false));
    assert_eq!(f.data, b"tail!");
}
