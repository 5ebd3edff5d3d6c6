//! Pseudonymising addresses before anything is written (`--anonymize`).
//!
//! Three methods, as RSSAC040 describes them:
//!
//! - `cryptopan:KEYFILE`: Crypto-PAn (Xu, Fan, Ammar, Moon 2002), prefix
//!   preserving: two addresses that share their first k bits share exactly
//!   their first k bits after mapping. The key is 32 bytes (AES-128 key, then
//!   the pad); the same key maps the same way on every run and machine.
//! - `truncate:V4BITS,V6BITS` (default 24,48): keep the prefix, zero the rest.
//! - `hmac:KEYFILE`: HMAC-SHA-256 of the address under the key, cut back to
//!   the address's own length. Not reversible without the key (an unkeyed hash
//!   of an IPv4 address is not anonymisation: all 2^32 can be tried).
//!
//! What is recorded of a method ([`Anonymizer::describe`]) names it, its
//! parameters and a key id (a keyed hash of a fixed text, from which the key
//! cannot be found), never the key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// Crypto-PAn with one key.
#[derive(Clone)]
pub struct CryptoPan {
    cipher: Aes128,
    /// The AES encryption of the key's second half.
    pad: u128,
}

impl CryptoPan {
    pub fn new(key: &[u8; 32]) -> CryptoPan {
        let cipher = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut block = GenericArray::clone_from_slice(&key[16..]);
        cipher.encrypt_block(&mut block);
        CryptoPan {
            cipher,
            pad: u128::from_be_bytes(block.into()),
        }
    }

    /// The one-time pad of the first `bits` bits of `addr` (left-aligned in
    /// 128 bits): bit i is the first bit of AES(first i bits of addr, then
    /// the pad's bits from i on). The blocks do not depend on each other, so
    /// they are encrypted together.
    fn flips(&self, addr: u128, bits: u32) -> u128 {
        let mut blocks: Vec<GenericArray<u8, _>> = (0..bits)
            .map(|pos| {
                let prefix = if pos == 0 {
                    0
                } else {
                    addr >> (128 - pos) << (128 - pos)
                };
                let pad = if pos == 0 {
                    self.pad
                } else {
                    self.pad & (u128::MAX >> pos)
                };
                GenericArray::from((prefix | pad).to_be_bytes())
            })
            .collect();
        self.cipher.encrypt_blocks(&mut blocks);
        blocks
            .iter()
            .fold(0u128, |acc, b| (acc << 1) | u128::from(b[0] >> 7))
    }

    pub fn v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let a = u32::from(a);
        Ipv4Addr::from(a ^ self.flips(u128::from(a) << 96, 32) as u32)
    }

    pub fn v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let a = u128::from(a);
        Ipv6Addr::from(a ^ self.flips(a, 128))
    }
}

#[derive(Clone)]
enum Method {
    CryptoPan(Box<CryptoPan>),
    Truncate { v4: u8, v6: u8 },
    Hmac(Hmac<Sha256>),
}

/// One pseudonymisation, as `--anonymize` gives it.
#[derive(Clone)]
pub struct Anonymizer {
    method: Method,
    /// `cryptopan:KEYFILE`, with the key replaced by its id: see `describe`.
    described: String,
    /// Server addresses too (`--anonymize-servers`), not only clients and ECS.
    pub servers: bool,
}

impl std::fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The methods `--anonymize` takes, for help and errors.
pub const METHODS: &str = "cryptopan:KEYFILE, truncate[:V4BITS,V6BITS] or hmac:KEYFILE";

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

/// A key file's bytes: 32 raw bytes, or 64 hexadecimal digits (a line of
/// `openssl rand -hex 32`). Its content is never printed.
fn read_key(path: &Path, raw_len: Option<usize>) -> Result<Vec<u8>> {
    let bytes = crate::enrich::read_bounded(path, 4096, "a key file (a key is 32 bytes)")?;
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    let key = match text {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(t.as_bytes())
                .map_err(|e| usage(format!("{}: {e}", path.display())))?
        }
        _ => bytes,
    };
    match raw_len {
        Some(n) if key.len() != n => Err(usage(format!(
            "{}: holds {} bytes; the key must be exactly {n} bytes, or {} hexadecimal digits \
             (make one with `head -c {n} /dev/urandom > {}`)",
            path.display(),
            key.len(),
            2 * n,
            path.display()
        ))),
        None if key.len() < 16 => Err(usage(format!(
            "{}: holds {} bytes; an HMAC key needs at least 16 (make one with \
             `head -c 32 /dev/urandom > {}`)",
            path.display(),
            key.len(),
            path.display()
        ))),
        _ => Ok(key),
    }
}

/// A key's id: the first 8 bytes of HMAC-SHA-256(key, "dnsq key id"), in hex.
fn key_id(key: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"dnsq key id");
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()[..8])
}

impl Anonymizer {
    /// Parses `--anonymize METHOD`; reads the key file of a keyed method.
    pub fn parse(spec: &str, servers: bool) -> Result<Anonymizer> {
        let (name, arg) = match spec.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (spec, None),
        };
        let (method, described) = match (name, arg) {
            ("cryptopan", Some(path)) if !path.is_empty() => {
                let key = read_key(Path::new(path), Some(32))?;
                let arr: [u8; 32] = key
                    .as_slice()
                    .try_into()
                    .expect("read_key checked the length");
                (
                    Method::CryptoPan(Box::new(CryptoPan::new(&arr))),
                    format!("cryptopan key-id={}", key_id(&key)),
                )
            }
            ("hmac", Some(path)) if !path.is_empty() => {
                let key = read_key(Path::new(path), None)?;
                let mac =
                    <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
                (
                    Method::Hmac(mac),
                    format!("hmac-sha256 key-id={}", key_id(&key)),
                )
            }
            ("truncate", arg) => {
                let (v4, v6) = match arg {
                    None | Some("") => (24, 48),
                    Some(a) => {
                        let (a4, a6) = a.split_once(',').unwrap_or((a, "48"));
                        let bits = |s: &str, max: u8| -> Result<u8> {
                            s.trim()
                                .parse::<u8>()
                                .ok()
                                .filter(|b| *b <= max)
                                .ok_or_else(|| {
                                    usage(format!(
                                        "--anonymize truncate:{a}: `{s}` is not a prefix length \
                                     from 0 to {max}"
                                    ))
                                })
                        };
                        (bits(a4, 32)?, bits(a6, 128)?)
                    }
                };
                (Method::Truncate { v4, v6 }, format!("truncate {v4},{v6}"))
            }
            _ => {
                return Err(usage(format!(
                    "--anonymize {spec}: not a method; use {METHODS}"
                )))
            }
        };
        Ok(Anonymizer {
            method,
            described,
            servers,
        })
    }

    /// What is recorded per capture: the method, its parameters and what it
    /// applies to; a keyed method's key id but never its key.
    pub fn describe(&self) -> String {
        format!(
            "{} on {}",
            self.described,
            if self.servers {
                "clients, ECS, servers"
            } else {
                "clients, ECS"
            }
        )
    }

    pub fn map(&self, ip: IpAddr) -> IpAddr {
        match (&self.method, ip) {
            (Method::CryptoPan(c), IpAddr::V4(a)) => IpAddr::V4(c.v4(a)),
            (Method::CryptoPan(c), IpAddr::V6(a)) => IpAddr::V6(c.v6(a)),
            (Method::Truncate { v4, .. }, IpAddr::V4(a)) => IpAddr::V4(truncate_v4(a, *v4)),
            (Method::Truncate { v6, .. }, IpAddr::V6(a)) => IpAddr::V6(truncate_v6(a, *v6)),
            (Method::Hmac(mac), ip) => {
                let mut mac = mac.clone();
                match ip {
                    IpAddr::V4(a) => {
                        mac.update(&[4]);
                        mac.update(&a.octets());
                        let h = mac.finalize().into_bytes();
                        IpAddr::V4(Ipv4Addr::new(h[0], h[1], h[2], h[3]))
                    }
                    IpAddr::V6(a) => {
                        mac.update(&[6]);
                        mac.update(&a.octets());
                        let h = mac.finalize().into_bytes();
                        let b: [u8; 16] = h[..16].try_into().expect("32 bytes of SHA-256");
                        IpAddr::V6(Ipv6Addr::from(b))
                    }
                }
            }
        }
    }

    /// An EDNS Client Subnet as dnsq writes it (`198.51.100.0/24`): the
    /// network mapped like a client address, then cut back to its prefix
    /// length. `None` for text that is not a subnet, which then is not written.
    pub fn map_subnet(&self, subnet: &str) -> Option<String> {
        map_subnet_with(subnet, |ip| self.map(ip))
    }
}

/// `map_subnet` with the network address mapped by `map` (a memo of `map`).
pub fn map_subnet_with(subnet: &str, map: impl FnOnce(IpAddr) -> IpAddr) -> Option<String> {
    let (addr, len) = subnet.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    let ip: IpAddr = addr.parse().ok()?;
    let mapped = match map(ip) {
        IpAddr::V4(a) => IpAddr::V4(truncate_v4(a, len.min(32))),
        IpAddr::V6(a) => IpAddr::V6(truncate_v6(a, len.min(128))),
    };
    Some(format!("{mapped}/{len}"))
}

pub fn truncate_v4(a: Ipv4Addr, bits: u8) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(bits.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & mask)
}

pub fn truncate_v6(a: Ipv6Addr, bits: u8) -> Ipv6Addr {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(bits.min(128)))
        .unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The key of the original implementation's sample (Xu et al.,
    /// `sample_trace_raw.dat` and its anonymised form).
    const ORIGINAL_KEY: [u8; 32] = [
        21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131,
        121, 121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
    ];

    #[test]
    fn crypto_pan_published_vectors() {
        let c = CryptoPan::new(&ORIGINAL_KEY);
        for (raw, anon) in [
            ("128.11.68.132", "135.242.180.132"),
            ("129.118.74.4", "134.136.186.123"),
            ("130.132.252.244", "133.68.164.234"),
            ("141.223.7.43", "141.167.8.160"),
            ("141.233.145.108", "141.129.237.235"),
            ("152.163.225.39", "151.140.114.167"),
            ("156.29.3.236", "147.225.12.42"),
            ("165.247.96.84", "162.9.99.234"),
            ("166.107.77.190", "160.132.178.185"),
            ("192.102.249.13", "252.138.62.131"),
            ("192.215.32.125", "252.43.47.189"),
            ("192.233.80.103", "252.25.108.8"),
            ("192.41.57.43", "252.222.221.184"),
            ("193.150.244.223", "253.169.52.216"),
            ("195.205.63.100", "255.186.223.5"),
            ("198.200.171.101", "249.199.68.213"),
            ("198.26.132.101", "249.36.123.202"),
            ("198.36.213.5", "249.7.21.132"),
            ("198.51.77.238", "249.18.186.254"),
        ] {
            assert_eq!(c.v4(raw.parse().unwrap()).to_string(), anon, "{raw}");
        }
    }

    #[test]
    fn crypto_pan_ipv6_as_yacryptopan_documents() {
        let c = CryptoPan::new(b"32-char-str-for-AES-key-and-pad.");
        assert_eq!(
            c.v4("192.0.2.1".parse().unwrap()).to_string(),
            "192.0.125.244"
        );
        assert_eq!(
            c.v6("2001:db8::1".parse().unwrap()).to_string(),
            "27fe:8bc7:fee:1e:1e1f:f0fe:f0e1:83fd"
        );
    }

    #[test]
    fn truncation_keeps_the_prefix() {
        let t = |s: &str, b| truncate_v4(s.parse().unwrap(), b).to_string();
        assert_eq!(t("198.51.100.77", 24), "198.51.100.0");
        assert_eq!(t("198.51.100.77", 0), "0.0.0.0");
        assert_eq!(t("198.51.100.77", 32), "198.51.100.77");
        assert_eq!(t("198.51.100.77", 20), "198.51.96.0");
        let a: Ipv6Addr = "2001:db8:1234:5678::1".parse().unwrap();
        assert_eq!(truncate_v6(a, 48).to_string(), "2001:db8:1234::");
        assert_eq!(truncate_v6(a, 128), a);
    }

    #[test]
    fn methods_parse_and_describe_without_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, ORIGINAL_KEY).unwrap();
        let a = Anonymizer::parse(&format!("cryptopan:{}", key.display()), false).unwrap();
        let d = a.describe();
        assert!(d.starts_with("cryptopan key-id="), "{d}");
        assert!(
            !d.contains(&data_encoding::HEXLOWER.encode(&ORIGINAL_KEY[..4])),
            "{d}"
        );
        // the same key as 64 hex digits is the same key
        let hex = dir.path().join("h");
        std::fs::write(&hex, data_encoding::HEXLOWER.encode(&ORIGINAL_KEY) + "\n").unwrap();
        let b = Anonymizer::parse(&format!("cryptopan:{}", hex.display()), false).unwrap();
        assert_eq!(a.describe(), b.describe());
        assert_eq!(
            b.map("128.11.68.132".parse().unwrap()).to_string(),
            "135.242.180.132"
        );
        assert_eq!(
            Anonymizer::parse("truncate", true).unwrap().describe(),
            "truncate 24,48 on clients, ECS, servers"
        );
        assert_eq!(
            Anonymizer::parse("truncate:16,32", false)
                .unwrap()
                .describe(),
            "truncate 16,32 on clients, ECS"
        );
        for bad in [
            "truncate:33,48",
            "truncate:x",
            "rot13",
            "cryptopan:",
            "hmac",
        ] {
            assert!(Anonymizer::parse(bad, false).is_err(), "{bad}");
        }
        std::fs::write(&key, b"short").unwrap();
        let e = Anonymizer::parse(&format!("cryptopan:{}", key.display()), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exactly 32 bytes") && !e.contains("short"),
            "{e}"
        );
    }

    #[test]
    fn hmac_is_the_keyed_hash_cut_to_the_family() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, [7u8; 32]).unwrap();
        let a = Anonymizer::parse(&format!("hmac:{}", key.display()), false).unwrap();
        // by its definition: HMAC-SHA-256(key, family byte ‖ address bytes)
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(&[4, 192, 0, 2, 1]);
        let h = mac.finalize().into_bytes();
        assert_eq!(
            a.map("192.0.2.1".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::new(h[0], h[1], h[2], h[3]))
        );
        assert!(a.map("2001:db8::1".parse().unwrap()).is_ipv6());
        // another key, another mapping
        std::fs::write(&key, [8u8; 32]).unwrap();
        let b = Anonymizer::parse(&format!("hmac:{}", key.display()), false).unwrap();
        assert_ne!(
            a.map("192.0.2.1".parse().unwrap()),
            b.map("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn subnets_map_like_their_addresses() {
        let c = Anonymizer {
            method: Method::CryptoPan(Box::new(CryptoPan::new(&ORIGINAL_KEY))),
            described: String::new(),
            servers: false,
        };
        // prefix preserving: the /24 of an address maps to the /24 of its image
        let host = c.map("128.11.68.132".parse().unwrap()).to_string();
        assert_eq!(host, "135.242.180.132");
        assert_eq!(c.map_subnet("128.11.68.0/24").unwrap(), "135.242.180.0/24");
        assert_eq!(c.map_subnet("not a subnet"), None);
        let t = Anonymizer::parse("truncate:16,32", false).unwrap();
        assert_eq!(t.map_subnet("198.51.100.0/24").unwrap(), "198.51.0.0/24");
        assert_eq!(t.map_subnet("2001:db8:42::/48").unwrap(), "2001:db8::/48");
    }

    fn common_prefix(a: u128, b: u128) -> u32 {
        (a ^ b).leading_zeros()
    }

    proptest! {
        #[test]
        fn crypto_pan_preserves_exactly_the_shared_prefix_v4(a: u32, b: u32, key: [u8; 32]) {
            let c = CryptoPan::new(&key);
            let (x, y) = (u32::from(c.v4(a.into())), u32::from(c.v4(b.into())));
            prop_assert_eq!((a ^ b).leading_zeros(), (x ^ y).leading_zeros());
        }

        #[test]
        fn crypto_pan_preserves_exactly_the_shared_prefix_v6(a: u128, k in 0u32..128, flip: u128, key: [u8; 32]) {
            // b shares exactly k leading bits with a
            let b = (a ^ (1u128 << (127 - k))) ^ (flip & u128::MAX.checked_shr(k + 1).unwrap_or(0));
            prop_assert_eq!(common_prefix(a, b), k);
            let c = CryptoPan::new(&key);
            let (x, y) = (u128::from(c.v6(a.into())), u128::from(c.v6(b.into())));
            prop_assert_eq!(common_prefix(x, y), k);
        }
    }
}
