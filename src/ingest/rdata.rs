//! RDATA in presentation form (RFC 1035 §5.1 and each type's own RFC), or the
//! RFC 3597 generic form `\# LEN HEX` for every type without a renderer here.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXUPPER};

use crate::codes::Qtype;
use crate::ingest::dns::{read_name, DecodeError};

/// Renders the RDATA at `msg[start..start + len]` (names may point anywhere
/// in `msg`). On error `out` holds a partial rendering the caller discards.
pub fn render(
    msg: &[u8],
    rtype: Qtype,
    start: usize,
    len: usize,
    out: &mut String,
) -> Result<(), DecodeError> {
    let rd = &msg[start..start + len];
    let end = start + len;
    match rtype {
        Qtype::A => {
            let b: [u8; 4] = rd.try_into().map_err(|_| DecodeError::BadRdata)?;
            out.push_str(ipv4_text(b, &mut [0; 15]));
        }
        Qtype::AAAA => {
            let b: [u8; 16] = rd.try_into().map_err(|_| DecodeError::BadRdata)?;
            let _ = write!(out, "{}", Ipv6Addr::from(b));
        }
        Qtype::NS | Qtype::CNAME | Qtype::PTR | Qtype::DNAME => {
            let after = name(msg, start, out)?;
            expect_end(after, end)?;
        }
        Qtype::MX => {
            let _ = write!(out, "{} ", be16(rd, 0)?);
            expect_end(name(msg, start + 2, out)?, end)?;
        }
        Qtype::SRV => {
            let _ = write!(out, "{} {} {} ", be16(rd, 0)?, be16(rd, 2)?, be16(rd, 4)?);
            expect_end(name(msg, start + 6, out)?, end)?;
        }
        Qtype::SOA => {
            let p = name(msg, start, out)?;
            out.push(' ');
            let p = name(msg, p, out)?;
            let nums = msg
                .get(p..end)
                .filter(|n| n.len() == 20)
                .ok_or(DecodeError::BadRdata)?;
            for i in 0..5 {
                let _ = write!(out, " {}", be32(nums, i * 4)?);
            }
        }
        Qtype::TXT | Qtype::HINFO | Qtype(99) => {
            let mut p = 0;
            while p < rd.len() {
                if p > 0 {
                    out.push(' ');
                }
                p = character_string(rd, p, out)?;
            }
        }
        Qtype::CAA => {
            let flags = *rd.first().ok_or(DecodeError::BadRdata)?;
            let tag_len = *rd.get(1).ok_or(DecodeError::BadRdata)? as usize;
            let tag = rd.get(2..2 + tag_len).ok_or(DecodeError::BadRdata)?;
            let _ = write!(out, "{flags} {} ", String::from_utf8_lossy(tag));
            quoted(&rd[2 + tag_len..], out);
        }
        Qtype::DS => {
            if rd.len() < 4 {
                return Err(DecodeError::BadRdata);
            }
            let _ = write!(
                out,
                "{} {} {} {}",
                be16(rd, 0)?,
                rd[2],
                rd[3],
                HEXUPPER.encode(&rd[4..])
            );
        }
        Qtype::DNSKEY => {
            if rd.len() < 4 {
                return Err(DecodeError::BadRdata);
            }
            let _ = write!(
                out,
                "{} {} {} {}",
                be16(rd, 0)?,
                rd[2],
                rd[3],
                BASE64.encode(&rd[4..])
            );
        }
        Qtype::RRSIG => {
            if rd.len() < 18 {
                return Err(DecodeError::BadRdata);
            }
            let _ = write!(
                out,
                "{} {} {} {} {} {} {} ",
                Qtype(be16(rd, 0)?),
                rd[2],
                rd[3],
                be32(rd, 4)?,
                sig_time(be32(rd, 8)?),
                sig_time(be32(rd, 12)?),
                be16(rd, 16)?
            );
            let p = name(msg, start + 18, out)?;
            let sig = msg.get(p..end).ok_or(DecodeError::BadRdata)?;
            let _ = write!(out, " {}", BASE64.encode(sig));
        }
        // RFC 1183, RFC 2163, RFC 2230: preference and a name
        Qtype(18) | Qtype(21) | Qtype(36) => {
            let _ = write!(out, "{} ", be16(rd, 0)?);
            expect_end(name(msg, start + 2, out)?, end)?;
        }
        // RP (RFC 1183): two names
        Qtype(17) => {
            let p = name(msg, start, out)?;
            out.push(' ');
            expect_end(name(msg, p, out)?, end)?;
        }
        // CDS (RFC 7344) like DS; CDNSKEY like DNSKEY
        Qtype(59) => return render(msg, Qtype::DS, start, len, out),
        Qtype(60) => return render(msg, Qtype::DNSKEY, start, len, out),
        // NSEC (RFC 4034 §4.2): next owner name and type bitmap
        Qtype(47) => {
            let p = name(msg, start, out)?;
            type_bitmap(msg.get(p..end).ok_or(DecodeError::BadRdata)?, out)?;
        }
        // NSEC3 (RFC 5155 §3.3) and NSEC3PARAM (§4.3)
        Qtype(50) | Qtype(51) => {
            let salt_len = *rd.get(4).ok_or(DecodeError::BadRdata)? as usize;
            let salt = rd.get(5..5 + salt_len).ok_or(DecodeError::BadRdata)?;
            let salt = if salt.is_empty() {
                "-".to_string()
            } else {
                HEXUPPER.encode(salt)
            };
            let _ = write!(out, "{} {} {} {salt}", rd[0], rd[1], be16(rd, 2)?);
            if rtype == Qtype(50) {
                let p = 5 + salt_len;
                let hash_len = *rd.get(p).ok_or(DecodeError::BadRdata)? as usize;
                let hash = rd
                    .get(p + 1..p + 1 + hash_len)
                    .ok_or(DecodeError::BadRdata)?;
                let _ = write!(out, " {}", BASE32HEX_NOPAD.encode(hash));
                type_bitmap(&rd[p + 1 + hash_len..], out)?;
            } else if rd.len() != 5 + salt_len {
                return Err(DecodeError::BadRdata);
            }
        }
        // SSHFP (RFC 4255), TLSA (RFC 6698), SMIMEA (RFC 8162): small numbers, then hex
        Qtype(44) | Qtype(52) | Qtype(53) => {
            let n = if rtype == Qtype(44) { 2 } else { 3 };
            if rd.len() < n {
                return Err(DecodeError::BadRdata);
            }
            for b in &rd[..n] {
                let _ = write!(out, "{b} ");
            }
            out.push_str(&HEXUPPER.encode(&rd[n..]));
        }
        // NAPTR (RFC 3403 §4.1)
        Qtype(35) => {
            let _ = write!(out, "{} {} ", be16(rd, 0)?, be16(rd, 2)?);
            let mut p = 4;
            for _ in 0..3 {
                p = character_string(rd, p, out)?;
                out.push(' ');
            }
            expect_end(name(msg, start + p, out)?, end)?;
        }
        // URI (RFC 7553)
        Qtype(256) => {
            let _ = write!(out, "{} {} ", be16(rd, 0)?, be16(rd, 2)?);
            quoted(&rd[4..], out);
        }
        // SVCB and HTTPS (RFC 9460 §2.2)
        Qtype(64) | Qtype(65) => {
            let _ = write!(out, "{} ", be16(rd, 0)?);
            let p = name(msg, start + 2, out)?;
            svc_params(msg.get(p..end).ok_or(DecodeError::BadRdata)?, out)?;
        }
        // LOC (RFC 1876 §3)
        Qtype(29) => loc(rd, out)?,
        // DHCID (RFC 4701), OPENPGPKEY (RFC 7929): base64
        Qtype(49) | Qtype(61) => out.push_str(&BASE64.encode(rd)),
        _ => render_generic(rd, out),
    }
    Ok(())
}

/// The type bitmap of NSEC/NSEC3 (RFC 4034 §4.1.2), each type after a space.
fn type_bitmap(mut b: &[u8], out: &mut String) -> Result<(), DecodeError> {
    while !b.is_empty() {
        let (window, len) = (
            *b.first().ok_or(DecodeError::BadRdata)? as u16,
            *b.get(1).ok_or(DecodeError::BadRdata)? as usize,
        );
        let bits = b
            .get(2..2 + len)
            .filter(|_| (1..=32).contains(&len))
            .ok_or(DecodeError::BadRdata)?;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let _ = write!(out, " {}", Qtype(window * 256 + (i * 8 + bit) as u16));
                }
            }
        }
        b = &b[2 + len..];
    }
    Ok(())
}

/// SvcParams (RFC 9460 §2.2): ` key=value` each, known keys in their own form.
fn svc_params(mut b: &[u8], out: &mut String) -> Result<(), DecodeError> {
    while !b.is_empty() {
        let key = be16(b, 0)?;
        let len = be16(b, 2)? as usize;
        let v = b.get(4..4 + len).ok_or(DecodeError::BadRdata)?;
        match key {
            0 => {
                out.push_str(" mandatory=");
                let keys: Result<Vec<String>, _> =
                    v.chunks(2).map(|k| be16(k, 0).map(svc_key)).collect();
                out.push_str(&keys?.join(","));
            }
            1 => {
                out.push_str(" alpn=");
                let mut p = 0;
                let mut ids = Vec::new();
                while p < v.len() {
                    let l = v[p] as usize;
                    let id = v.get(p + 1..p + 1 + l).ok_or(DecodeError::BadRdata)?;
                    ids.push(String::from_utf8_lossy(id).replace(',', "\\,"));
                    p += 1 + l;
                }
                out.push_str(&ids.join(","));
            }
            2 if v.is_empty() => out.push_str(" no-default-alpn"),
            3 => {
                let _ = write!(
                    out,
                    " port={}",
                    be16(v, 0)
                        .ok()
                        .filter(|_| len == 2)
                        .ok_or(DecodeError::BadRdata)?
                );
            }
            4 if len.is_multiple_of(4) && len > 0 => {
                let a: Vec<String> = v
                    .chunks(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                    .collect();
                let _ = write!(out, " ipv4hint={}", a.join(","));
            }
            5 => {
                let _ = write!(out, " ech={}", BASE64.encode(v));
            }
            6 if len.is_multiple_of(16) && len > 0 => {
                let a: Vec<String> = v
                    .chunks(16)
                    .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or([0; 16])).to_string())
                    .collect();
                let _ = write!(out, " ipv6hint={}", a.join(","));
            }
            _ => {
                let _ = write!(out, " {}=", svc_key(key));
                quoted(v, out);
            }
        }
        b = &b[4 + len..];
    }
    Ok(())
}

fn svc_key(k: u16) -> String {
    match k {
        0 => "mandatory".into(),
        1 => "alpn".into(),
        2 => "no-default-alpn".into(),
        3 => "port".into(),
        4 => "ipv4hint".into(),
        5 => "ech".into(),
        6 => "ipv6hint".into(),
        n => format!("key{n}"),
    }
}

/// LOC (RFC 1876 §3): `42 21 54.000 N 71 6 18.000 W -24.00m 30.00m 10000.00m 10.00m`.
fn loc(rd: &[u8], out: &mut String) -> Result<(), DecodeError> {
    if rd.len() != 16 || rd[0] != 0 {
        return Err(DecodeError::BadRdata);
    }
    let size = |b: u8| -> f64 { (b >> 4) as f64 * 10f64.powi((b & 0xf) as i32) / 100.0 };
    let angle = |v: u32, pos: char, neg: char| -> String {
        let ms = v as i64 - (1i64 << 31);
        let (h, ms) = (if ms < 0 { neg } else { pos }, ms.abs());
        format!(
            "{} {} {:.3} {h}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            (ms % 60_000) as f64 / 1000.0
        )
    };
    let lat = angle(be32(rd, 4)?, 'N', 'S');
    let lon = angle(be32(rd, 8)?, 'E', 'W');
    let alt = (be32(rd, 12)? as f64 - 10_000_000.0) / 100.0;
    let _ = write!(
        out,
        "{lat} {lon} {alt:.2}m {:.2}m {:.2}m {:.2}m",
        size(rd[1]),
        size(rd[2]),
        size(rd[3])
    );
    Ok(())
}

/// Dotted-quad text of an IPv4 address, as `Ipv4Addr`'s `Display` writes
/// it, without the formatting machinery (every A record and most addresses
/// of a capture pass here).
pub fn ipv4_text(octets: [u8; 4], buf: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, o) in octets.into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    std::str::from_utf8(&buf[..n]).expect("digits and dots are ASCII")
}

/// RFC 3597 §5: `\# <length> <hex>`.
pub fn render_generic(rd: &[u8], out: &mut String) {
    let _ = write!(out, "\\# {}", rd.len());
    if !rd.is_empty() {
        let _ = write!(out, " {}", HEXUPPER.encode(rd));
    }
}

/// Appends a name; on an error `out` holds part of it (the caller renders
/// the record generically instead).
fn name(msg: &[u8], pos: usize, out: &mut String) -> Result<usize, DecodeError> {
    let after = read_name(msg, pos, out, false)?;
    out.push('.'); // the root renders as "." alone
    Ok(after)
}

fn expect_end(after: usize, end: usize) -> Result<(), DecodeError> {
    if after == end {
        Ok(())
    } else {
        Err(DecodeError::BadRdata)
    }
}

fn be16(b: &[u8], i: usize) -> Result<u16, DecodeError> {
    b.get(i..i + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]))
        .ok_or(DecodeError::BadRdata)
}

fn be32(b: &[u8], i: usize) -> Result<u32, DecodeError> {
    b.get(i..i + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or(DecodeError::BadRdata)
}

/// One <character-string> (RFC 1035 §3.3) at `p`, quoted; returns the offset after it.
fn character_string(rd: &[u8], p: usize, out: &mut String) -> Result<usize, DecodeError> {
    let len = *rd.get(p).ok_or(DecodeError::BadRdata)? as usize;
    let s = rd.get(p + 1..p + 1 + len).ok_or(DecodeError::BadRdata)?;
    quoted(s, out);
    Ok(p + 1 + len)
}

fn quoted(s: &[u8], out: &mut String) {
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

/// RRSIG times as YYYYMMDDHHmmSS (RFC 4034 §3.2), serial-number arithmetic ignored.
fn sig_time(t: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(t), 0)
        .expect("every u32 of seconds is a time chrono holds")
        .format("%Y%m%d%H%M%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_text_is_std_display() {
        let mut buf = [0; 15];
        for o in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 0, 9, 100],
            [192, 168, 1, 10],
            [1, 20, 199, 7],
        ] {
            assert_eq!(ipv4_text(o, &mut buf), Ipv4Addr::from(o).to_string());
        }
        for i in 0..=255u8 {
            let o = [i, i.wrapping_mul(7), 255 - i, i / 3];
            assert_eq!(ipv4_text(o, &mut buf), Ipv4Addr::from(o).to_string());
        }
    }

    #[test]
    fn renders_mx_with_compressed_name() {
        // "example.com" at offset 0, then MX rdata: pref 10, "mail" + pointer to 0
        let mut msg = vec![7];
        msg.extend_from_slice(b"example");
        msg.push(3);
        msg.extend_from_slice(b"com");
        msg.push(0);
        let start = msg.len();
        msg.extend_from_slice(&[0, 10, 4, b'm', b'a', b'i', b'l', 0xc0, 0]);
        let mut out = String::new();
        render(&msg, Qtype::MX, start, msg.len() - start, &mut out).expect("valid MX");
        assert_eq!(out, "10 mail.example.com.");
    }

    #[test]
    fn unknown_types_use_generic_form() {
        let mut out = String::new();
        render(&[0xab, 0xcd], Qtype(65280), 0, 2, &mut out).expect("generic never fails");
        assert_eq!(out, "\\# 2 ABCD");
    }

    #[test]
    fn txt_keeps_every_string() {
        let rd = b"\x03abc\x02d\"";
        let mut out = String::new();
        render(rd, Qtype::TXT, 0, rd.len(), &mut out).expect("valid TXT");
        assert_eq!(out, "\"abc\" \"d\\\"\"");
    }

    #[test]
    fn nsec_bitmap_and_svcb_params() {
        // NSEC: next name "a." then window 0 with A (1), MX (15), RRSIG (46), NSEC (47)
        let rd = [1, b'a', 0, 0, 6, 0x40, 0x01, 0, 0, 0, 0x03];
        let mut out = String::new();
        render(&rd, Qtype(47), 0, rd.len(), &mut out).expect("valid NSEC");
        assert_eq!(out, "a. A MX RRSIG NSEC");
        // HTTPS 1 . alpn=h2,h3 port=8443 (RFC 9460 appendix D style)
        let rd = [
            0, 1, 0, 0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3', 0, 3, 0, 2, 0x20, 0xfb,
        ];
        let mut out = String::new();
        render(&rd, Qtype(65), 0, rd.len(), &mut out).expect("valid HTTPS");
        assert_eq!(out, "1 . alpn=h2,h3 port=8443");
    }

    #[test]
    fn signature_times() {
        assert_eq!(sig_time(0), "19700101000000");
        assert_eq!(sig_time(1_428_667_200), "20150410120000");
        assert_eq!(sig_time(u32::MAX), "21060207062815");
    }
}
