use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const CLIENT4: [u8; 4] = [192, 0, 2, 10];
const SERVER4: [u8; 4] = [198, 51, 100, 53];
const CLIENT6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
];
const SERVER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x35,
];

/// A DNS query for `example.com. A`, id 0x1234, RD set.
fn query() -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07example\x03com\x00");
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

fn frame(linktype: u32, data: &[u8]) -> Frame<'_> {
    Frame {
        ts_ns: 0,
        ts_out_of_range: None,
        linktype,
        number: 1,
        data,
    }
}

fn udp_with_len(sport: u16, dport: u16, len: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0, 0]); // checksum: none
    v.extend_from_slice(payload);
    v
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    udp_with_len(sport, dport, 8 + payload.len() as u16, payload)
}

/// A TCP header with `opts` (a multiple of 4 bytes) and `flags`.
fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes()); // ack
    v.push((((20 + opts.len()) / 4) as u8) << 4);
    v.push(flags);
    v.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
    v.extend_from_slice(opts);
    v.extend_from_slice(payload);
    v
}

/// An IPv4 header (no options, checksum filled in) and `payload`;
/// `frag` is the flags and fragment offset word, `total` the total length.
fn ipv4_raw(proto: u8, id: u16, frag: u16, total: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&CLIENT4);
    v.extend_from_slice(&SERVER4);
    let mut sum = 0u32;
    for w in v.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    v[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_raw(proto, 0x0abc, 0x4000, 20 + payload.len() as u16, payload)
}

/// An IPv6 header; `payload` starts with any extension headers.
fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&CLIENT6);
    v.extend_from_slice(&SERVER6);
    v.extend_from_slice(payload);
    v
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    v.extend_from_slice(&ether_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn whole(r: Result<Packet<'_>, Skip>) -> Segment<'_> {
    match r {
        Ok(Packet::Whole(s)) => s,
        Ok(Packet::Fragment(f)) => panic!("expected a whole segment, got fragment {f:?}"),
        Err(e) => panic!("expected a whole segment, got {e:?}"),
    }
}

fn fragment(r: Result<Packet<'_>, Skip>) -> Fragment<'_> {
    match r {
        Ok(Packet::Fragment(f)) => f,
        Ok(Packet::Whole(s)) => panic!("expected a fragment, got segment {s:?}"),
        Err(e) => panic!("expected a fragment, got {e:?}"),
    }
}

/// The segment of an IPv4 UDP query from CLIENT4:40000 to SERVER4:53.
fn assert_v4_udp_query(s: &Segment<'_>) {
    assert_eq!(s.src, IpAddr::V4(Ipv4Addr::from(CLIENT4)));
    assert_eq!(s.dst, IpAddr::V4(Ipv4Addr::from(SERVER4)));
    assert_eq!((s.sport, s.dport), (40000, 53));
    assert_eq!(s.transport, Transport::Udp);
    assert_eq!(s.payload, &query()[..]);
    assert!(!s.cut);
    assert_eq!(s.tcp, None);
    assert!(s.tunnels.is_empty());
}

fn assert_v6_udp_query(s: &Segment<'_>) {
    assert_eq!(s.src, IpAddr::V6(Ipv6Addr::from(CLIENT6)));
    assert_eq!(s.dst, IpAddr::V6(Ipv6Addr::from(SERVER6)));
    assert_eq!((s.sport, s.dport), (40000, 53));
    assert_eq!(s.transport, Transport::Udp);
    assert_eq!(s.payload, &query()[..]);
    assert!(!s.cut);
    assert_eq!(s.tcp, None);
}

fn v4_udp_query() -> Vec<u8> {
    ipv4(17, &udp(40000, 53, &query()))
}

#[test]
fn ethernet_ipv4_udp_query() {
    let data = eth(0x0800, &v4_udp_query());
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_v4_udp_query(&s);
    // the payload borrows from the frame, just past the 14+20+8 bytes of headers
    assert_eq!(s.payload.as_ptr(), data[42..].as_ptr());
}

#[test]
fn udp_response_from_port_53_is_taken() {
    let data = eth(0x0800, &ipv4(17, &udp(53, 40000, &query())));
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_eq!((s.sport, s.dport), (53, 40000));
    assert_eq!(s.payload, &query()[..]);
}

#[test]
fn ethernet_trailer_padding_is_not_payload() {
    // a short frame padded to Ethernet's minimum: the IP length bounds the payload
    let mut ip = ipv4(17, &udp(40000, 53, b"ab"));
    ip.extend_from_slice(&[0; 16]);
    let data = eth(0x0800, &ip);
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(s.payload, b"ab");
    assert!(!s.cut);
}

#[test]
fn vlan_8021q_tag_is_skipped() {
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00]; // VLAN 100, then IPv4
    tagged.extend_from_slice(&v4_udp_query());
    let data = eth(0x8100, &tagged);
    assert_v4_udp_query(&whole(decode_frame(&frame(1, &data), &[53])));
}

#[test]
fn qinq_double_tag_is_skipped() {
    // 802.1ad outer tag (VLAN 10), 802.1Q inner tag (VLAN 20), IPv4
    let mut tagged = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
    tagged.extend_from_slice(&v4_udp_query());
    let data = eth(0x88a8, &tagged);
    assert_v4_udp_query(&whole(decode_frame(&frame(1, &data), &[53])));
}

#[test]
fn ethernet_ipv6_udp_query() {
    let data = eth(0x86dd, &ipv6(17, &udp(40000, 53, &query())));
    assert_v6_udp_query(&whole(decode_frame(&frame(1, &data), &[53])));
}

#[test]
fn ipv6_hop_by_hop_and_destination_options_are_walked() {
    // hop-by-hop (next: destination options), destination options (next: UDP),
    // each 8 bytes with a PadN option
    let mut p = vec![60, 0, 1, 4, 0, 0, 0, 0];
    p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&udp(40000, 53, &query()));
    let data = eth(0x86dd, &ipv6(0, &p));
    assert_v6_udp_query(&whole(decode_frame(&frame(1, &data), &[53])));
}

#[test]
fn ipv6_fragment_header_gives_a_fragment() {
    // fragment header: next UDP, offset 0, M set, id 0xdeadbeef
    let body = udp(40000, 53, &query());
    let mut p = vec![17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef];
    p.extend_from_slice(&body);
    let data = eth(0x86dd, &ipv6(44, &p));
    let f = fragment(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(f.src, IpAddr::V6(Ipv6Addr::from(CLIENT6)));
    assert_eq!(f.dst, IpAddr::V6(Ipv6Addr::from(SERVER6)));
    assert_eq!(f.id, 0xdead_beef);
    assert_eq!(f.proto, 17);
    assert_eq!(f.offset, 0);
    assert!(f.more);
    assert_eq!(f.data, &body[..]);
}

#[test]
fn ipv6_later_fragment_behind_hop_by_hop_has_its_offset() {
    // hop-by-hop (next: fragment), fragment at offset 1448 (181 * 8), last one
    let mut p = vec![44, 0, 1, 4, 0, 0, 0, 0];
    let off: u16 = 181 << 3;
    p.extend_from_slice(&[17, 0]);
    p.extend_from_slice(&off.to_be_bytes());
    p.extend_from_slice(&7u32.to_be_bytes());
    p.extend_from_slice(b"tail of the datagram");
    let data = eth(0x86dd, &ipv6(0, &p));
    let f = fragment(decode_frame(&frame(1, &data), &[53]));
    assert_eq!((f.id, f.offset, f.more, f.proto), (7, 1448, false, 17));
    assert_eq!(f.data, b"tail of the datagram");
}

#[test]
fn ipv4_tcp_syn_has_seq_and_flags() {
    let seg = tcp(40000, 53, 0x0102_0304, 0x02, &[], &[]);
    let data = eth(0x0800, &ipv4(6, &seg));
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(s.transport, Transport::Tcp);
    assert_eq!((s.sport, s.dport), (40000, 53));
    assert_eq!(
        s.tcp,
        Some(TcpHeader {
            seq: 0x0102_0304,
            syn: true,
            fin: false,
            rst: false
        })
    );
    assert!(s.payload.is_empty());
    assert!(!s.cut);
}

#[test]
fn ipv4_tcp_payload_starts_after_options() {
    // PSH|ACK|FIN, 12 bytes of options (NOP NOP timestamp), a length-prefixed query
    let mut msg = (query().len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(&query());
    let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let seg = tcp(53, 40000, 0xffff_fff0, 0x19, &opts, &msg);
    let data = eth(0x0800, &ipv4(6, &seg));
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(s.transport, Transport::Tcp);
    assert_eq!(
        s.tcp,
        Some(TcpHeader {
            seq: 0xffff_fff0,
            syn: false,
            fin: true,
            rst: false
        })
    );
    assert_eq!(s.payload, &msg[..]);
}

#[test]
fn tcp_rst_flag_is_read() {
    let seg = tcp(40000, 53, 9, 0x14, &[], &[]); // RST|ACK
    let data = ipv4(6, &seg);
    let s = whole(decode_frame(&frame(101, &data), &[53]));
    let h = s.tcp.unwrap();
    assert!(h.rst && !h.syn && !h.fin);
    assert_eq!(h.seq, 9);
}

#[test]
fn tcp_data_offset_below_five_words_is_malformed() {
    let mut seg = tcp(40000, 53, 1, 0x18, &[], b"xx");
    seg[12] = 4 << 4;
    let data = ipv4(6, &seg);
    assert_eq!(
        decode_frame(&frame(101, &data), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn linux_sll_cooked_capture() {
    // packet type 0 (to us), ARPHRD_ETHER, address length 6, address padded to 8, IPv4
    let mut data = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    data.extend_from_slice(&v4_udp_query());
    assert_v4_udp_query(&whole(decode_frame(&frame(113, &data), &[53])));
}

#[test]
fn linux_sll2_cooked_capture() {
    // protocol IPv6, reserved, interface 3, ARPHRD_ETHER, packet type 4 (outgoing),
    // address length 6, address padded to 8
    let mut data = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6];
    data.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    data.extend_from_slice(&ipv6(17, &udp(40000, 53, &query())));
    assert_v6_udp_query(&whole(decode_frame(&frame(276, &data), &[53])));
}

#[test]
fn linux_sll_header_cut_short_is_malformed() {
    let data = [0u8, 0, 0, 1, 0, 6, 2, 0, 0];
    assert_eq!(
        decode_frame(&frame(113, &data), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn bsd_null_little_endian_ipv4() {
    let mut data = 2u32.to_le_bytes().to_vec(); // AF_INET, host (little-endian) order
    data.extend_from_slice(&v4_udp_query());
    assert_v4_udp_query(&whole(decode_frame(&frame(0, &data), &[53])));
}

#[test]
fn bsd_null_big_endian_ipv6() {
    // AF_INET6 as FreeBSD spells it (28), written big-endian
    let mut data = 28u32.to_be_bytes().to_vec();
    data.extend_from_slice(&ipv6(17, &udp(40000, 53, &query())));
    assert_v6_udp_query(&whole(decode_frame(&frame(0, &data), &[53])));
}

#[test]
fn openbsd_loopback_ipv6() {
    // OpenBSD loopback (108): network byte order, AF_INET6 = 24
    let mut data = 24u32.to_be_bytes().to_vec();
    data.extend_from_slice(&ipv6(17, &udp(40000, 53, &query())));
    assert_v6_udp_query(&whole(decode_frame(&frame(108, &data), &[53])));
}

#[test]
fn bsd_null_other_family_is_not_ip_and_short_header_is_malformed() {
    let mut data = 7u32.to_le_bytes().to_vec(); // AF_APPLETALK-ish
    data.extend_from_slice(&v4_udp_query());
    assert_eq!(
        decode_frame(&frame(0, &data), &[53]).err(),
        Some(Skip::NotIp)
    );
    assert_eq!(
        decode_frame(&frame(0, &[2, 0, 0]), &[53]).err(),
        Some(Skip::Malformed)
    );
}

#[test]
fn raw_ip_link_types() {
    let v4 = v4_udp_query();
    for lt in [101, 12, 14, 228] {
        assert_v4_udp_query(&whole(decode_frame(&frame(lt, &v4), &[53])));
    }
    let v6 = ipv6(17, &udp(40000, 53, &query()));
    for lt in [101, 229] {
        assert_v6_udp_query(&whole(decode_frame(&frame(lt, &v6), &[53])));
    }
}

#[test]
fn udp_on_another_port_is_other_port() {
    let data = eth(0x0800, &ipv4(17, &udp(40000, 123, b"ntp")));
    assert_eq!(
        decode_frame(&frame(1, &data), &[53]).err(),
        Some(Skip::OtherPort)
    );
    let data = eth(0x0800, &ipv4(6, &tcp(40000, 443, 1, 0x02, &[], &[])));
    assert_eq!(
        decode_frame(&frame(1, &data), &[53]).err(),
        Some(Skip::OtherPort)
    );
}

#[test]
fn ports_list_decides_which_ports_are_dns() {
    let data = eth(0x0800, &ipv4(17, &udp(40000, 5353, &query())));
    assert_eq!(
        decode_frame(&frame(1, &data), &[53]).err(),
        Some(Skip::OtherPort)
    );
    let s = whole(decode_frame(&frame(1, &data), &[53, 5353]));
    assert_eq!(s.dport, 5353);
    assert_eq!(s.payload, &query()[..]);
    // and with no ports at all, not even 53 is taken
    let data = eth(0x0800, &v4_udp_query());
    assert_eq!(
        decode_frame(&frame(1, &data), &[]).err(),
        Some(Skip::OtherPort)
    );
}

#[test]
fn dns_on_a_tunnel_port_in_ports_is_dns_not_a_tunnel() {
    // a DNS query to the VXLAN port: its first byte (0x12) lacks VXLAN's I flag
    let data = eth(0x0800, &ipv4(17, &udp(40000, 4789, &query())));
    assert_eq!(
        decode_frame(&frame(1, &data), &[53]).err(),
        Some(Skip::OtherPort)
    );
    let s = whole(decode_frame(&frame(1, &data), &[53, 4789]));
    assert_eq!(s.dport, 4789);
    assert_eq!(s.payload, &query()[..]);
    assert!(s.tunnels.is_empty());
}

#[test]
fn vxlan_inner_frame_is_decoded_and_named() {
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0]; // I flag, VNI 42
    vx.extend_from_slice(&eth(0x0800, &v4_udp_query()));
    let data = eth(0x0800, &ipv4(17, &udp(51000, 4789, &vx)));
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(s.payload, &query()[..]);
    assert_eq!((s.sport, s.dport), (40000, 53));
    assert_eq!(s.tunnels.iter().collect::<Vec<_>>(), vec![Tunnel::Vxlan]);
}

#[test]
fn mpls_label_stack_is_peeled() {
    // two labels, the second with bottom-of-stack set, then IPv4
    let mut p = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
    p.extend_from_slice(&v4_udp_query());
    let data = eth(0x8847, &p);
    let s = whole(decode_frame(&frame(1, &data), &[53]));
    assert_eq!(s.payload, &query()[..]);
    assert_eq!(s.tunnels.iter().collect::<Vec<_>>(), vec![Tunnel::Mpls]);
}

#[test]
fn non_ip_ether_type_is_not_ip() {
    let arp = [
        0u8, 1, 8, 0, 6, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let data = eth(0x0806, &arp);
    assert_eq!(
        decode_frame(&frame(1, &data), &[53]).err(),
        Some(Skip::NotIp)
    );
}

#[test]
fn ip_carrying_neither_udp_nor_tcp_is_not_ip() {
    // ICMP echo request
    let data = eth(0x0800, &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1]));
    assert_eq!(
        decode_frame(&frame(1, &data), &[53]).err(),
        Some(Skip::NotIp)
    );
}

#[test]
fn unknown_link_type_is_named() {
    let data = v4_udp_query();
    assert_eq!(
        decode_frame(&frame(147, &data), &[53]).err(),
        Some(Skip::UnknownLink(147))
    );
    // dnstap messages are never frames of a link type
    assert_eq!(
        decode_frame(&frame(u32::MAX, &data), &[53]).err(),
        Some(Skip::UnknownLink(u32::MAX))
    );
}

#[test]
fn every_listed_link_type_is_decoded() {
    for lt in LINKTYPES {
        let r = decode_frame(&frame(lt, &[]), &[53]).err();
        assert!(r.is_some(), "link type {lt}: an empty frame decoded");
        assert_ne!(r, Some(Skip::UnknownLink(lt)), "link type {lt}");
    }
}

mod cuts;
