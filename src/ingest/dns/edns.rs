//! EDNS options (RFC 6891 §6.1.2) of an OPT record: client subnet, NSID,
//! cookies, padding and Extended DNS Errors.

use super::*;

/// EDNS options (RFC 6891 §6.1.2): client subnet (8) and Extended DNS Error (15).
pub(super) fn decode_options(mut opts: &[u8], edns: &mut Edns) -> Result<(), DecodeError> {
    while !opts.is_empty() {
        let code = u16_at(opts, 0)?;
        let len = u16_at(opts, 2)? as usize;
        let data = opts.get(4..4 + len).ok_or(DecodeError::Truncated)?;
        match code {
            8 => {
                edns.ecs_scope = data.get(3).copied();
                edns.ecs = Some(render_ecs(data)?.into());
            }
            3 => {
                let printable =
                    !data.is_empty() && data.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
                let nsid = if printable {
                    String::from_utf8_lossy(data).into_owned()
                } else {
                    data_encoding::HEXLOWER.encode(data)
                };
                edns.nsid = Some(nsid.into());
            }
            10 => {
                if !(8..=40).contains(&len) {
                    return Err(DecodeError::BadRdata);
                }
                edns.client_cookie = Some(data_encoding::HEXLOWER.encode(&data[..8]).into());
                if len > 8 {
                    edns.server_cookie = Some(data_encoding::HEXLOWER.encode(&data[8..]).into());
                }
            }
            12 => edns.padding = Some(len as u16),
            15 if len >= 2 => {
                edns.ede_code = Some(u16::from_be_bytes([data[0], data[1]]));
                let text = String::from_utf8_lossy(&data[2..]);
                let text = text.trim_end_matches('\0');
                if !text.is_empty() {
                    edns.ede_text = Some(text.into());
                }
            }
            _ => {}
        }
        opts = &opts[4 + len..];
    }
    Ok(())
}

/// RFC 7871 §6: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS
/// (truncated to the prefix). Rendered as `198.51.100.0/24`.
pub(super) fn render_ecs(data: &[u8]) -> Result<String, DecodeError> {
    if data.len() < 4 {
        return Err(DecodeError::BadRdata);
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let prefix = data[2];
    let addr = &data[4..];
    match family {
        1 if addr.len() <= 4 && prefix <= 32 => {
            let mut b = [0u8; 4];
            b[..addr.len()].copy_from_slice(addr);
            Ok(format!("{}/{prefix}", std::net::Ipv4Addr::from(b)))
        }
        2 if addr.len() <= 16 && prefix <= 128 => {
            let mut b = [0u8; 16];
            b[..addr.len()].copy_from_slice(addr);
            Ok(format!("{}/{prefix}", std::net::Ipv6Addr::from(b)))
        }
        _ => Err(DecodeError::BadRdata),
    }
}
