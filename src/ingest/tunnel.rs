//! Ingest stage 2b: the encapsulations a span port at an ISP, a mobile core or
//! a cloud network puts around DNS, peeled until the inner packet.
//!
//! VXLAN (UDP 4789, RFC 7348), Geneve (UDP 6081, RFC 8926), GTP-U (UDP 2152,
//! 3GPP TS 29.281), GRE (IP protocol 47, RFC 2784/2890, with keys and
//! sequence numbers; version 1 as PPTP uses it, RFC 2637), GRE in UDP (UDP
//! 4754, RFC 8086), ERSPAN types I, II and III (GRE 0x88BE/0x22EB), MPLS
//! label stacks (RFC 3032), PPPoE sessions (RFC 2516) and IP in IP (IP
//! protocols 4 and 41). Each function reads one header and says what follows;
//! `link::decode_frame` walks them, outermost first, and records what it
//! peeled in a [`Tunnels`].

use std::fmt;

/// One kind of encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tunnel {
    Vxlan = 1,
    Geneve,
    GtpU,
    Gre,
    Erspan,
    Mpls,
    Pppoe,
    IpInIp,
}

impl Tunnel {
    const ALL: [Tunnel; 8] = [
        Tunnel::Vxlan,
        Tunnel::Geneve,
        Tunnel::GtpU,
        Tunnel::Gre,
        Tunnel::Erspan,
        Tunnel::Mpls,
        Tunnel::Pppoe,
        Tunnel::IpInIp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Vxlan => "vxlan",
            Tunnel::Geneve => "geneve",
            Tunnel::GtpU => "gtp-u",
            Tunnel::Gre => "gre",
            Tunnel::Erspan => "erspan",
            Tunnel::Mpls => "mpls",
            Tunnel::Pppoe => "pppoe",
            Tunnel::IpInIp => "ip-in-ip",
        }
    }
}

/// The encapsulations peeled off one packet, outermost first: up to
/// [`Tunnels::MAX`], four bits each. `Tunnels::default()` is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tunnels(u32);

impl Tunnels {
    /// The deepest nesting dnsq follows; a packet nested deeper is not decoded.
    pub const MAX: usize = 8;

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        (32 - self.0.leading_zeros() as usize).div_ceil(4)
    }

    /// `self` with `t` inside the others; `None` past `MAX`.
    pub fn push(self, t: Tunnel) -> Option<Tunnels> {
        let n = self.len();
        (n < Self::MAX).then(|| Tunnels(self.0 | (t as u32) << (4 * n)))
    }

    pub fn iter(self) -> impl Iterator<Item = Tunnel> {
        // codes are 1-based positions in `ALL`
        (0..self.len()).filter_map(move |i| {
            let code = (self.0 >> (4 * i)) & 0xf;
            Tunnel::ALL.get((code as usize).wrapping_sub(1)).copied()
        })
    }
}

/// `vxlan`, or `geneve/vxlan` for VXLAN inside Geneve.
impl fmt::Display for Tunnels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(t.as_str())?;
        }
        Ok(())
    }
}

/// What follows a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An Ethernet frame (with its own VLAN tags, if any).
    Ethernet(&'a [u8]),
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// A PPP frame without address and control fields: protocol, then data.
    Ppp(&'a [u8]),
}

pub const VXLAN_PORT: u16 = 4789;
/// The port Linux used for VXLAN before IANA assigned 4789, still the default
/// of flannel and of `ip link add type vxlan` without `dstport`.
pub const VXLAN_LINUX_PORT: u16 = 8472;
pub const GENEVE_PORT: u16 = 6081;
pub const GTP_U_PORT: u16 = 2152;
pub const GRE_IN_UDP_PORT: u16 = 4754;

/// The tunnel a UDP datagram to or from these ports carries, by its ports.
/// VXLAN's and Geneve's source port is a per-flow hash, so only the
/// destination counts; GTP-U uses 2152 on both sides.
pub fn udp_tunnel(sport: u16, dport: u16) -> Option<Tunnel> {
    match dport {
        VXLAN_PORT | VXLAN_LINUX_PORT => Some(Tunnel::Vxlan),
        GENEVE_PORT => Some(Tunnel::Geneve),
        GRE_IN_UDP_PORT => Some(Tunnel::Gre),
        GTP_U_PORT => Some(Tunnel::GtpU),
        _ if sport == GTP_U_PORT => Some(Tunnel::GtpU),
        _ => None,
    }
}

/// VXLAN: 8 bytes, the I flag set; an Ethernet frame follows.
pub fn vxlan(p: &[u8]) -> Option<Inner<'_>> {
    let h = p.get(..8)?;
    (h[0] & 0x08 != 0).then(|| Inner::Ethernet(&p[8..]))
}

/// Geneve: version 0, 8 bytes plus options; the protocol type says what follows.
pub fn geneve(p: &[u8]) -> Option<Inner<'_>> {
    let h = p.get(..8)?;
    if h[0] >> 6 != 0 {
        return None;
    }
    let opts = usize::from(h[0] & 0x3f) * 4;
    let body = p.get(8 + opts..)?;
    by_ether_type(u16::from_be_bytes([h[2], h[3]]), body)
}

/// An EtherType's payload as an inner layer: Ethernet (transparent
/// bridging), IPv4, IPv6 or PPP.
fn by_ether_type(et: u16, body: &[u8]) -> Option<Inner<'_>> {
    match et {
        0x6558 => Some(Inner::Ethernet(body)),
        0x0800 | 0x86dd => Some(Inner::Ip(body)),
        // PPP in GRE version 1 (PPTP): address and control, when present, first
        0x880b => match body {
            [0xff, 0x03, rest @ ..] => Some(Inner::Ppp(rest)),
            _ => Some(Inner::Ppp(body)),
        },
        _ => None,
    }
}

/// GTP-U version 1: a G-PDU (message type 255) carries a user's IP packet,
/// after 8 bytes, the optional sequence/N-PDU/next-extension word, and the
/// extension headers it chains.
pub fn gtp_u(p: &[u8]) -> Option<Inner<'_>> {
    let h = p.get(..8)?;
    let (version, pt, flags) = (h[0] >> 5, h[0] & 0x10 != 0, h[0] & 0x07);
    if version != 1 || !pt || h[1] != 0xff {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // the length counts what follows the first 8 bytes
    let end = (8 + len).min(p.len());
    let mut at = 8;
    if flags != 0 {
        let word = p.get(8..12)?;
        at = 12;
        let mut next = word[3];
        while next != 0 {
            // an extension header: length in 4-byte units, last byte the next type
            let units = usize::from(*p.get(at)?);
            if units == 0 {
                return None;
            }
            next = *p.get(at + units * 4 - 1)?;
            at += units * 4;
        }
    }
    let inner = p.get(at..end)?;
    matches!(inner.first()? >> 4, 4 | 6).then_some(Inner::Ip(inner))
}

/// GRE: version 0 (RFC 2784, with RFC 2890's key and sequence number) or
/// version 1 (PPTP's enhanced GRE). ERSPAN rides on version 0.
pub fn gre(p: &[u8]) -> Option<(Inner<'_>, Tunnel)> {
    let h = p.get(..4)?;
    let (c, k, s) = (h[0] & 0x80 != 0, h[0] & 0x20 != 0, h[0] & 0x10 != 0);
    let version = h[1] & 0x07;
    let et = u16::from_be_bytes([h[2], h[3]]);
    let ack = version == 1 && h[1] & 0x80 != 0;
    let at = match version {
        0 => 4 + 4 * (usize::from(c) + usize::from(k) + usize::from(s)),
        // PPTP: the key field (payload length, call id) is always there
        1 => 8 + 4 * (usize::from(s) + usize::from(ack)),
        _ => return None,
    };
    let body = p.get(at..)?;
    match et {
        // ERSPAN type II (a sequence number present) or type I (none, no header)
        0x88be if version == 0 => {
            let body = if s { body.get(8..)? } else { body };
            Some((Inner::Ethernet(body), Tunnel::Erspan))
        }
        // ERSPAN type III: 12 bytes, 8 more with the platform-specific subheader
        0x22eb if version == 0 => {
            let h3 = body.get(..12)?;
            let o = h3[11] & 0x01 != 0;
            Some((
                Inner::Ethernet(body.get(12 + 8 * usize::from(o)..)?),
                Tunnel::Erspan,
            ))
        }
        _ => by_ether_type(et, body).map(|i| (i, Tunnel::Gre)),
    }
}

/// An MPLS label stack: labels until the bottom-of-stack bit; then IPv4 or
/// IPv6 by its version nibble, or a pseudowire's control word (first nibble
/// 0) and an Ethernet frame.
pub fn mpls(p: &[u8]) -> Option<Inner<'_>> {
    let mut at = 0;
    loop {
        let label = p.get(at..at + 4)?;
        at += 4;
        if label[2] & 0x01 != 0 {
            break;
        }
        if at >= 4 * 16 {
            return None;
        }
    }
    let body = &p[at..];
    match body.first()? >> 4 {
        4 | 6 => Some(Inner::Ip(body)),
        0 => Some(Inner::Ethernet(body.get(4..)?)),
        _ => None,
    }
}

/// A PPPoE session frame: 6 bytes (version and type 1, code 0), then PPP.
pub fn pppoe(p: &[u8]) -> Option<Inner<'_>> {
    let h = p.get(..6)?;
    if h[0] != 0x11 || h[1] != 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let body = &p[6..];
    Some(Inner::Ppp(&body[..len.min(body.len())]))
}

/// A PPP frame's IP packet (protocol 0x0021 IPv4, 0x0057 IPv6; the
/// protocol field compressed to one byte too).
pub fn ppp(p: &[u8]) -> Option<&[u8]> {
    match p {
        [0x00, 0x21 | 0x57, ip @ ..] | [0x21 | 0x57, ip @ ..] => Some(ip),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels_nest_and_print_outermost_first() {
        let t = Tunnels::default()
            .push(Tunnel::Geneve)
            .and_then(|t| t.push(Tunnel::Vxlan))
            .unwrap();
        assert_eq!(t.to_string(), "geneve/vxlan");
        assert_eq!(t.len(), 2);
        assert!(Tunnels::default().is_empty());
        let mut deep = Tunnels::default();
        for _ in 0..Tunnels::MAX {
            deep = deep.push(Tunnel::IpInIp).unwrap();
        }
        assert_eq!(deep.push(Tunnel::Gre), None);
        assert_eq!(deep.iter().count(), Tunnels::MAX);
    }

    #[test]
    fn udp_tunnels_by_port() {
        assert_eq!(udp_tunnel(51234, 4789), Some(Tunnel::Vxlan));
        assert_eq!(udp_tunnel(51234, 8472), Some(Tunnel::Vxlan));
        assert_eq!(udp_tunnel(51234, 6081), Some(Tunnel::Geneve));
        assert_eq!(udp_tunnel(2152, 40000), Some(Tunnel::GtpU));
        assert_eq!(udp_tunnel(4789, 40000), None);
    }

    #[test]
    fn headers_say_what_follows() {
        let eth = [0u8; 14];
        let mut v = vec![0x08, 0, 0, 0, 0, 0x10, 0x92, 0];
        v.extend_from_slice(&eth);
        assert_eq!(vxlan(&v), Some(Inner::Ethernet(&eth)));
        v[0] = 0;
        assert_eq!(vxlan(&v), None);

        // Geneve with one 4-byte option word, carrying Ethernet
        let mut g = vec![0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        g.extend_from_slice(&eth);
        assert_eq!(geneve(&g), Some(Inner::Ethernet(&eth)));

        // GRE with key and sequence number, carrying IPv4
        let ip = [0x45u8, 0, 0, 20];
        let mut r = vec![0x30, 0, 0x08, 0, 0, 0, 0, 7, 0, 0, 0, 1];
        r.extend_from_slice(&ip);
        assert_eq!(gre(&r), Some((Inner::Ip(&ip), Tunnel::Gre)));
        // ERSPAN type II: S set, 8-byte ERSPAN header, then Ethernet
        let mut e = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0];
        e.extend_from_slice(&eth);
        assert_eq!(gre(&e), Some((Inner::Ethernet(&eth), Tunnel::Erspan)));
        // ERSPAN type I: no sequence number, no ERSPAN header
        let mut e1 = vec![0, 0, 0x88, 0xbe];
        e1.extend_from_slice(&eth);
        assert_eq!(gre(&e1), Some((Inner::Ethernet(&eth), Tunnel::Erspan)));

        // GTP-U G-PDU with a PDU session container extension header
        let mut u = vec![
            0x34, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x01, 0,
        ];
        u.extend_from_slice(&ip);
        let len = (u.len() - 8) as u16;
        u[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(gtp_u(&u), Some(Inner::Ip(&ip)));
        // version 3 is not GTP (zeek's gtp3_false_gtp)
        u[0] = 0x74;
        assert_eq!(gtp_u(&u), None);

        // two MPLS labels, the second at the bottom of the stack
        let mut m = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40];
        m.extend_from_slice(&ip);
        assert_eq!(mpls(&m), Some(Inner::Ip(&ip)));

        let mut s = vec![0x11, 0, 0, 1, 0, 6, 0x00, 0x21];
        s.extend_from_slice(&ip);
        assert_eq!(pppoe(&s), Some(Inner::Ppp(&s[6..12])));
        assert_eq!(ppp(&[0x00, 0x21, 0x45]), Some(&[0x45u8][..]));
        assert_eq!(ppp(&[0xc0, 0x21, 0x01]), None);
    }
}
