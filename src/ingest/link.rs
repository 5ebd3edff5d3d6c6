//! Ingest stage 2: `Frame` → link layer → IP → UDP/TCP payload on a DNS port.
//!
//! In: a frame and its link type. Out: a `Segment` (addresses, ports,
//! transport, payload) or the reason the frame carries no DNS.
//! Link types: Ethernet with 802.1Q/QinQ tags, Linux SLL and SLL2, raw
//! IPv4/IPv6, BSD null/loopback (either byte order). Tunnels (VXLAN, Geneve,
//! GTP-U, GRE, ERSPAN, MPLS, PPPoE, IP in IP) are peeled by `tunnel.rs`'s
//! readers, outermost first, and named in the segment.

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket};
use pcap_parser::data::{get_packetdata, PacketData};
use pcap_parser::Linktype;

use crate::ingest::capture::Frame;
use crate::ingest::tunnel::{self, Inner, Tunnel, Tunnels};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    /// The encrypted transports a server's own log (dnstap) names; a
    /// capture sees them only as TLS, HTTPS or QUIC, which dnsq does not open.
    Dot,
    Doh,
    Doq,
    DnscryptUdp,
    DnscryptTcp,
    /// A dnstap message that names no transport dnsq knows.
    Unknown,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Dot => "dot",
            Transport::Doh => "doh",
            Transport::Doq => "doq",
            Transport::DnscryptUdp => "dnscrypt-udp",
            Transport::DnscryptTcp => "dnscrypt-tcp",
            Transport::Unknown => "unknown",
        }
    }

    /// dnstap's `SocketProtocol`.
    pub fn of_dnstap(protocol: Option<i32>) -> Transport {
        match protocol {
            Some(1) => Transport::Udp,
            Some(2) => Transport::Tcp,
            Some(3) => Transport::Dot,
            Some(4) => Transport::Doh,
            Some(5) => Transport::DnscryptUdp,
            Some(6) => Transport::DnscryptTcp,
            Some(7) => Transport::Doq,
            _ => Transport::Unknown,
        }
    }

    /// Whether messages go over a byte stream (a zone transfer's many
    /// responses can only come this way).
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Transport::Tcp | Transport::Dot | Transport::Doh | Transport::DnscryptTcp
        )
    }
}

/// A transport payload between two endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub transport: Transport,
    pub payload: &'a [u8],
    /// The payload is shorter than its headers say (snaplen cut, bad length).
    pub cut: bool,
    /// TCP only: sequence number and control flags.
    pub tcp: Option<TcpHeader>,
    /// What was peeled off to reach it.
    pub tunnels: Tunnels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One piece of a fragmented IP datagram (RFC 791 §2.3, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 Identification or IPv6 fragment header Identification.
    pub id: u32,
    pub proto: u8,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
    /// What was peeled off to reach it.
    pub tunnels: Tunnels,
}

/// What a frame carries: a whole transport segment, or a fragment to reassemble.
#[derive(Debug, Clone, Copy)]
pub enum Packet<'a> {
    Whole(Segment<'a>),
    Fragment(Fragment<'a>),
}

/// Why a frame yields no segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type dnsq does not decode.
    UnknownLink(u32),
    /// Not IP, or IP but neither UDP nor TCP.
    NotIp,
    /// UDP/TCP that is not on a DNS port.
    OtherPort,
    /// Headers that cannot be read.
    Malformed,
}

/// The fragment header's (identification, byte offset, more fragments) among
/// the IPv6 extension headers `exts`, the first of type `next` (RFC 8200 §4).
/// Read here rather than with etherparse's extension iterator: on a header cut
/// short, etherparse 0.21 indexes past its slice (found by fuzz/decode_frame).
fn ipv6_fragment(mut next: u8, mut exts: &[u8]) -> Option<(u32, usize, bool)> {
    loop {
        let len = match next {
            // fragment header: fixed 8 bytes
            44 => {
                let b = exts.get(..8)?;
                let off = u16::from_be_bytes([b[2], b[3]]);
                let id = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                return Some((id, (off >> 3) as usize * 8, off & 1 == 1));
            }
            // hop-by-hop, routing, destination options, mobility, HIP, shim6
            0 | 43 | 60 | 135 | 139 | 140 => (*exts.get(1)? as usize + 1) * 8,
            // authentication header: length in 4-octet units, minus 2
            51 => (*exts.get(1)? as usize + 2) * 4,
            _ => return None,
        };
        next = *exts.first()?;
        exts = exts.get(len..)?;
    }
}

/// Every link type `decode_frame` reads: Ethernet, BSD null and loopback, raw
/// IP (three spellings), raw IPv4 and IPv6, Linux SLL and SLL2.
pub const LINKTYPES: [u32; 10] = [1, 0, 101, 12, 14, 228, 229, 113, 276, 108];

/// Decodes a frame down to its transport payload if either port is in `ports`.
pub fn decode_frame<'a>(frame: &Frame<'a>, ports: &[u16]) -> Result<Packet<'a>, Skip> {
    let data = frame.data;
    let sliced = match frame.linktype {
        1 => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        // BSD null (host byte order) and OpenBSD loopback (network byte order)
        0 | 108 => {
            let fam = data.get(..4).ok_or(Skip::Malformed)?;
            let (le, be) = (
                u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]),
                u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]),
            );
            let family = if le < 256 { le } else { be };
            let et = match family {
                2 => EtherType::IPV4,
                10 | 24 | 28 | 30 => EtherType::IPV6,
                _ => return Err(Skip::NotIp),
            };
            LaxSlicedPacket::from_ether_type(et, &data[4..])
        }
        // raw IP: 101 (LINKTYPE_RAW), 12 and 14 (DLT_RAW on some BSDs), 228/229
        12 | 14 | 101 | 228 | 229 => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?,
        lt @ (113 | 276) => match get_packetdata(data, Linktype(lt as i32), data.len()) {
            Some(PacketData::L3(et, l3)) => LaxSlicedPacket::from_ether_type(EtherType(et), l3),
            Some(PacketData::L2(l2)) => {
                LaxSlicedPacket::from_ethernet(l2).map_err(|_| Skip::Malformed)?
            }
            _ => return Err(Skip::Malformed),
        },
        other => return Err(Skip::UnknownLink(other)),
    };
    decode_sliced(&sliced, ports, Tunnels::default())
}

/// The IP packet of a sliced frame (or of a tunnel's inner frame), down to
/// its DNS segment, a fragment of one, or the next tunnel inside.
fn decode_sliced<'a>(
    sliced: &LaxSlicedPacket<'a>,
    ports: &[u16],
    tunnels: Tunnels,
) -> Result<Packet<'a>, Skip> {
    let (src, dst, payload, frag) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let frag = (
                h.identification() as u32,
                h.fragments_offset().value() as usize * 8,
                h.more_fragments(),
            );
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                ip.payload(),
                frag,
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let exts = ip.extensions();
            let frag = exts
                .first_header()
                .and_then(|first| ipv6_fragment(first.0, exts.slice()))
                .unwrap_or((0, 0, false));
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                ip.payload(),
                frag,
            )
        }
        // EtherTypes etherparse leaves alone: MPLS and PPPoE sessions
        _ => {
            let ep = sliced.ether_payload().ok_or(Skip::NotIp)?;
            let (inner, t) = match ep.ether_type.0 {
                0x8847 | 0x8848 => (tunnel::mpls(ep.payload), Tunnel::Mpls),
                0x8864 => (tunnel::pppoe(ep.payload), Tunnel::Pppoe),
                _ => return Err(Skip::NotIp),
            };
            return peel(inner.ok_or(Skip::Malformed)?, t, ports, tunnels);
        }
    };
    if payload.fragmented {
        let (id, offset, more) = frag;
        return Ok(Packet::Fragment(Fragment {
            src,
            dst,
            id,
            proto: payload.ip_number.0,
            offset,
            more,
            data: payload.payload,
            tunnels,
        }));
    }
    decode_datagram(
        src,
        dst,
        payload.ip_number.0,
        payload.payload,
        payload.incomplete,
        ports,
        tunnels,
    )
}

/// An IP payload (of a frame, or reassembled from fragments): a tunnel to
/// peel, or a UDP/TCP segment on a DNS port.
pub fn decode_datagram<'a>(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    p: &'a [u8],
    ip_cut: bool,
    ports: &[u16],
    tunnels: Tunnels,
) -> Result<Packet<'a>, Skip> {
    match proto {
        47 => {
            let (inner, t) = tunnel::gre(p).ok_or(Skip::Malformed)?;
            return peel(inner, t, ports, tunnels);
        }
        4 | 41 => return peel(Inner::Ip(p), Tunnel::IpInIp, ports, tunnels),
        17 if p.len() >= 8 => {
            let (sport, dport) = (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            );
            // DNS on a port a tunnel also uses is DNS (zeek's gtp3_false_gtp);
            // the ports are compared only for a datagram on a tunnel's port
            let tunnelled = tunnel::udp_tunnel(sport, dport)
                .filter(|_| !ports.contains(&sport) && !ports.contains(&dport));
            if let Some(t) = tunnelled {
                let ulen = usize::from(u16::from_be_bytes([p[4], p[5]]));
                let body = &p[8..ulen.clamp(8, p.len())];
                let inner = match t {
                    Tunnel::Vxlan => tunnel::vxlan(body),
                    Tunnel::Geneve => tunnel::geneve(body),
                    Tunnel::GtpU => tunnel::gtp_u(body),
                    _ => tunnel::gre(body).map(|(inner, _)| inner),
                };
                // a header that does not read as its tunnel's is other traffic
                return match inner {
                    Some(inner) => peel(inner, t, ports, tunnels),
                    None => Err(Skip::OtherPort),
                };
            }
        }
        _ => {}
    }
    decode_transport(src, dst, proto, p, ip_cut, ports).map(|mut s| {
        s.tunnels = tunnels;
        Packet::Whole(s)
    })
}

/// Decodes what a tunnel carries, with the tunnel added to `tunnels`; a
/// packet nested deeper than `Tunnels::MAX` is not decoded.
fn peel<'a>(
    inner: Inner<'a>,
    t: Tunnel,
    ports: &[u16],
    tunnels: Tunnels,
) -> Result<Packet<'a>, Skip> {
    let tunnels = tunnels.push(t).ok_or(Skip::Malformed)?;
    let sliced = match inner {
        Inner::Ethernet(b) => LaxSlicedPacket::from_ethernet(b).map_err(|_| Skip::Malformed)?,
        Inner::Ip(b) => LaxSlicedPacket::from_ip(b).map_err(|_| Skip::Malformed)?,
        Inner::Ppp(b) => LaxSlicedPacket::from_ip(tunnel::ppp(b).ok_or(Skip::NotIp)?)
            .map_err(|_| Skip::Malformed)?,
    };
    decode_sliced(&sliced, ports, tunnels)
}

/// Reads the UDP or TCP header of an IP payload (a whole datagram, or one
/// reassembled from fragments) and keeps it if either port is in `ports`.
pub fn decode_transport<'a>(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    p: &'a [u8],
    ip_cut: bool,
    ports: &[u16],
) -> Result<Segment<'a>, Skip> {
    let mut tcp = None;
    let (transport, sport, dport, body, cut) = match proto {
        17 => {
            let hdr = p.get(..8).ok_or(Skip::Malformed)?;
            let sport = u16::from_be_bytes([hdr[0], hdr[1]]);
            let dport = u16::from_be_bytes([hdr[2], hdr[3]]);
            let ulen = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
            // A UDP length of 0 happens with jumbograms and some offloads: trust the IP length.
            let want = if ulen >= 8 { ulen - 8 } else { p.len() - 8 };
            let have = p.len() - 8;
            (
                Transport::Udp,
                sport,
                dport,
                &p[8..8 + want.min(have)],
                ip_cut || want > have,
            )
        }
        6 => {
            let hdr = p.get(..20).ok_or(Skip::Malformed)?;
            let sport = u16::from_be_bytes([hdr[0], hdr[1]]);
            let dport = u16::from_be_bytes([hdr[2], hdr[3]]);
            let off = ((hdr[12] >> 4) as usize) * 4;
            if off < 20 || off > p.len() {
                return Err(Skip::Malformed);
            }
            tcp = Some(TcpHeader {
                seq: u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]),
                syn: hdr[13] & 0x02 != 0,
                fin: hdr[13] & 0x01 != 0,
                rst: hdr[13] & 0x04 != 0,
            });
            (Transport::Tcp, sport, dport, &p[off..], ip_cut)
        }
        _ => return Err(Skip::NotIp),
    };
    if !ports.contains(&sport) && !ports.contains(&dport) {
        return Err(Skip::OtherPort);
    }
    Ok(Segment {
        src,
        dst,
        sport,
        dport,
        transport,
        payload: body,
        cut,
        tcp,
        tunnels: Tunnels::default(),
    })
}

#[cfg(test)]
mod tests {
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
}
