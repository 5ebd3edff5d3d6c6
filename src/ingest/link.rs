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
mod tests;
