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
                // a subnet that does not parse gives no scope either
                edns.ecs = Some(render_ecs(data)?.into());
                edns.ecs_scope = data.get(3).copied();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One EDNS option: OPTION-CODE, OPTION-LENGTH, OPTION-DATA (RFC 6891 §6.1.2).
    fn opt(code: u16, data: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend((data.len() as u16).to_be_bytes());
        v.extend(data);
        v
    }

    fn decode(opts: &[u8]) -> (Edns, Result<(), DecodeError>) {
        let mut e = Edns::default();
        let r = decode_options(opts, &mut e);
        (e, r)
    }

    #[test]
    fn client_subnet_v4_and_v6() {
        // RFC 7871 §6: family 1, /24, scope 0, three address octets
        let (e, r) = decode(&opt(8, &[0, 1, 24, 0, 198, 51, 100]));
        assert_eq!(r, Ok(()));
        assert_eq!(e.ecs.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(e.ecs_scope, Some(0));
        // a response's scope, and a /0 with no address at all
        let (e, _) = decode(&opt(8, &[0, 1, 32, 20, 192, 0, 2, 7]));
        assert_eq!(
            (e.ecs.as_deref(), e.ecs_scope),
            (Some("192.0.2.7/32"), Some(20))
        );
        let (e, _) = decode(&opt(8, &[0, 1, 0, 0]));
        assert_eq!(e.ecs.as_deref(), Some("0.0.0.0/0"));
        // family 2, /56: seven octets of 2001:db8:1234:56::
        let (e, r) = decode(&opt(
            8,
            &[0, 2, 56, 48, 0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56],
        ));
        assert_eq!(r, Ok(()));
        assert_eq!(e.ecs.as_deref(), Some("2001:db8:1234:5600::/56"));
        assert_eq!(e.ecs_scope, Some(48));
    }

    #[test]
    fn client_subnets_that_cannot_be_are_bad_rdata() {
        for data in [
            &[0, 1, 24][..],               // no scope octet
            &[0, 1, 33, 0, 1, 2, 3, 4],    // an IPv4 prefix over 32
            &[0, 1, 32, 0, 1, 2, 3, 4, 5], // five IPv4 octets
            &[0, 2, 129, 0, 0x20, 0x01],   // an IPv6 prefix over 128
            &[
                0, 2, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ], // 17 octets
            &[0, 3, 8, 0, 1],              // no such family
        ] {
            let (e, r) = decode(&opt(8, data));
            assert_eq!(r, Err(DecodeError::BadRdata), "{data:?}");
            assert_eq!(e.ecs, None, "{data:?}");
            assert_eq!(e.ecs_scope, None, "{data:?}");
        }
        assert_eq!(render_ecs(&[0, 1, 16, 0, 10, 1]), Ok("10.1.0.0/16".into()));
    }

    #[test]
    fn cookies_client_alone_and_with_server() {
        let client = [0x24, 0xa3, 0x5b, 0x15, 0x2f, 0x9d, 0x4b, 0x1e];
        let (e, r) = decode(&opt(10, &client));
        assert_eq!(r, Ok(()));
        assert_eq!(e.client_cookie.as_deref(), Some("24a35b152f9d4b1e"));
        assert_eq!(e.server_cookie, None);
        let server: Vec<u8> = (0..16).collect();
        let (e, r) = decode(&opt(10, &[&client[..], &server].concat()));
        assert_eq!(r, Ok(()));
        assert_eq!(e.client_cookie.as_deref(), Some("24a35b152f9d4b1e"));
        assert_eq!(
            e.server_cookie.as_deref(),
            Some("000102030405060708090a0b0c0d0e0f")
        );
        // RFC 7873 §4: 8 octets of client cookie, at most 32 of server cookie
        for len in [0, 7, 41] {
            let (e, r) = decode(&opt(10, &vec![1; len]));
            assert_eq!(r, Err(DecodeError::BadRdata), "{len} octets");
            assert_eq!(e.client_cookie, None);
        }
        assert_eq!(decode(&opt(10, &[1; 40])).1, Ok(()));
    }

    #[test]
    fn nsid_as_text_when_printable_else_hex() {
        let (e, _) = decode(&opt(3, b"ns1.fra example"));
        assert_eq!(e.nsid.as_deref(), Some("ns1.fra example"));
        let (e, _) = decode(&opt(3, &[0x67, 0x70, 0x64, 0x6e, 0x73, 0x00]));
        assert_eq!(e.nsid.as_deref(), Some("6770646e7300"));
        let (e, _) = decode(&opt(3, "ü".as_bytes()));
        assert_eq!(e.nsid.as_deref(), Some("c3bc"));
        // a query asks for it with an empty option
        let (e, r) = decode(&opt(3, b""));
        assert_eq!((e.nsid.as_deref(), r), (Some(""), Ok(())));
    }

    #[test]
    fn padding_length_and_extended_errors() {
        let (e, _) = decode(&opt(12, &[0; 468]));
        assert_eq!(e.padding, Some(468));
        let (e, _) = decode(&opt(12, &[]));
        assert_eq!(e.padding, Some(0));
        // RFC 8914: INFO-CODE 18 (Prohibited), EXTRA-TEXT, a C string's NULs trimmed
        let (e, r) = decode(&opt(15, b"\x00\x12blocked by policy\0\0"));
        assert_eq!(r, Ok(()));
        assert_eq!(e.ede_code, Some(18));
        assert_eq!(e.ede_text.as_deref(), Some("blocked by policy"));
        let (e, _) = decode(&opt(15, &[0, 6]));
        assert_eq!((e.ede_code, e.ede_text), (Some(6), None));
        // under two octets there is no INFO-CODE: nothing is kept
        let (e, r) = decode(&opt(15, &[7]));
        assert_eq!((e.ede_code, r), (None, Ok(())));
    }

    #[test]
    fn unknown_options_are_skipped_and_all_known_ones_kept() {
        let opts = [
            opt(65001, b"private"),
            opt(3, b"ns1"),
            opt(8, &[0, 1, 24, 0, 192, 0, 2]),
            opt(9, &[0, 0, 0, 0]), // EDNS EXPIRE
            opt(15, &[0, 3, b's']),
            opt(12, &[0; 4]),
        ]
        .concat();
        let (e, r) = decode(&opts);
        assert_eq!(r, Ok(()));
        assert_eq!(e.nsid.as_deref(), Some("ns1"));
        assert_eq!(e.ecs.as_deref(), Some("192.0.2.0/24"));
        assert_eq!((e.ede_code, e.ede_text.as_deref()), (Some(3), Some("s")));
        assert_eq!(e.padding, Some(4));
        assert_eq!(decode(&[]), (Edns::default(), Ok(())));
    }

    #[test]
    fn an_option_past_the_record_is_truncated_and_earlier_ones_kept() {
        let good = [opt(3, b"ns1"), opt(15, &[0, 9])].concat();
        // OPTION-LENGTH 8 with 3 octets left
        let mut over = good.clone();
        over.extend([0, 8, 0, 8, 0, 1, 24]);
        // half an option header, and a header without its length
        for opts in [
            over,
            [&good[..], &[0, 12, 0]].concat(),
            [&good[..], &[0]].concat(),
        ] {
            let (e, r) = decode(&opts);
            assert_eq!(r, Err(DecodeError::Truncated), "{opts:02x?}");
            assert_eq!(e.nsid.as_deref(), Some("ns1"));
            assert_eq!(e.ede_code, Some(9));
            assert_eq!((e.ecs, e.padding), (None, None));
        }
        // a bad option stops the walk too: the options after it are not read
        let (e, r) = decode(&[opt(10, &[1; 3]), opt(3, b"ns2")].concat());
        assert_eq!((r, e.nsid), (Err(DecodeError::BadRdata), None));
    }
}
