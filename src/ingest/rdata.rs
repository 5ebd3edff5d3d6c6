//! RDATA in presentation form (RFC 1035 §5.1 and each type's own RFC), or the
//! RFC 3597 generic form `\# LEN HEX` for every type without a renderer here.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE64, HEXUPPER};

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
            let _ = write!(out, "{}", Ipv4Addr::from(b));
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
        _ => render_generic(rd, out),
    }
    Ok(())
}

/// RFC 3597 §5: `\# <length> <hex>`.
pub fn render_generic(rd: &[u8], out: &mut String) {
    let _ = write!(out, "\\# {}", rd.len());
    if !rd.is_empty() {
        let _ = write!(out, " {}", HEXUPPER.encode(rd));
    }
}

fn name(msg: &[u8], pos: usize, out: &mut String) -> Result<usize, DecodeError> {
    let mut n = String::new();
    let after = read_name(msg, pos, &mut n, false)?;
    out.push_str(&n);
    out.push('.');
    if n.is_empty() {
        // the root renders as "." alone
    }
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
    let len = rd[p] as usize;
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
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), H. Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(16535), (2015, 4, 10));
    }
}
