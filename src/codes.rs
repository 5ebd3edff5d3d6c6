//! DNS protocol numbers as newtypes with their IANA mnemonics.
//!
//! Unknown values round-trip in the RFC 3597 forms (`TYPE65280`, `CLASS3`,
//! `RCODE24`); strings appear only when a value is displayed.

use std::fmt;

/// Resource record type (IANA "Resource Record (RR) TYPEs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Qtype(pub u16);

impl Qtype {
    pub const A: Qtype = Qtype(1);
    pub const NS: Qtype = Qtype(2);
    pub const CNAME: Qtype = Qtype(5);
    pub const SOA: Qtype = Qtype(6);
    pub const PTR: Qtype = Qtype(12);
    pub const HINFO: Qtype = Qtype(13);
    pub const MX: Qtype = Qtype(15);
    pub const TXT: Qtype = Qtype(16);
    pub const AAAA: Qtype = Qtype(28);
    pub const SRV: Qtype = Qtype(33);
    pub const DNAME: Qtype = Qtype(39);
    pub const OPT: Qtype = Qtype(41);
    pub const DS: Qtype = Qtype(43);
    pub const RRSIG: Qtype = Qtype(46);
    pub const DNSKEY: Qtype = Qtype(48);
    pub const CAA: Qtype = Qtype(257);

    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "A",
            2 => "NS",
            3 => "MD",
            4 => "MF",
            5 => "CNAME",
            6 => "SOA",
            7 => "MB",
            8 => "MG",
            9 => "MR",
            10 => "NULL",
            11 => "WKS",
            12 => "PTR",
            13 => "HINFO",
            14 => "MINFO",
            15 => "MX",
            16 => "TXT",
            17 => "RP",
            18 => "AFSDB",
            19 => "X25",
            20 => "ISDN",
            21 => "RT",
            22 => "NSAP",
            23 => "NSAP-PTR",
            24 => "SIG",
            25 => "KEY",
            26 => "PX",
            27 => "GPOS",
            28 => "AAAA",
            29 => "LOC",
            30 => "NXT",
            31 => "EID",
            32 => "NIMLOC",
            33 => "SRV",
            34 => "ATMA",
            35 => "NAPTR",
            36 => "KX",
            37 => "CERT",
            38 => "A6",
            39 => "DNAME",
            40 => "SINK",
            41 => "OPT",
            42 => "APL",
            43 => "DS",
            44 => "SSHFP",
            45 => "IPSECKEY",
            46 => "RRSIG",
            47 => "NSEC",
            48 => "DNSKEY",
            49 => "DHCID",
            50 => "NSEC3",
            51 => "NSEC3PARAM",
            52 => "TLSA",
            53 => "SMIMEA",
            55 => "HIP",
            56 => "NINFO",
            57 => "RKEY",
            58 => "TALINK",
            59 => "CDS",
            60 => "CDNSKEY",
            61 => "OPENPGPKEY",
            62 => "CSYNC",
            63 => "ZONEMD",
            64 => "SVCB",
            65 => "HTTPS",
            66 => "DSYNC",
            99 => "SPF",
            100 => "UINFO",
            101 => "UID",
            102 => "GID",
            103 => "UNSPEC",
            104 => "NID",
            105 => "L32",
            106 => "L64",
            107 => "LP",
            108 => "EUI48",
            109 => "EUI64",
            249 => "TKEY",
            250 => "TSIG",
            251 => "IXFR",
            252 => "AXFR",
            253 => "MAILB",
            254 => "MAILA",
            255 => "ANY",
            256 => "URI",
            257 => "CAA",
            258 => "AVC",
            259 => "DOA",
            260 => "AMTRELAY",
            261 => "RESINFO",
            262 => "WALLET",
            32768 => "TA",
            32769 => "DLV",
            _ => return None,
        })
    }
}

/// Class (RFC 1035 §3.2.4, RFC 6895).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Qclass(pub u16);

impl Qclass {
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "IN",
            3 => "CH",
            4 => "HS",
            254 => "NONE",
            255 => "ANY",
            _ => return None,
        })
    }
}

/// Response code, including the EDNS extended bits (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rcode(pub u16);

impl Rcode {
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            11 => "DSOTYPENI",
            16 => "BADVERS",
            17 => "BADKEY",
            18 => "BADTIME",
            19 => "BADMODE",
            20 => "BADNAME",
            21 => "BADALG",
            22 => "BADTRUNC",
            23 => "BADCOOKIE",
            _ => return None,
        })
    }
}

/// Header OPCODE (RFC 1035 §4.1.1, RFC 1996, RFC 2136, RFC 8490).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opcode(pub u8);

impl Opcode {
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "QUERY",
            1 => "IQUERY",
            2 => "STATUS",
            4 => "NOTIFY",
            5 => "UPDATE",
            6 => "DSO",
            _ => return None,
        })
    }
}

/// A protocol number that has a mnemonic for some of its values.
pub trait Mnemonic: fmt::Display + Copy {
    fn mnemonic(self) -> Option<&'static str>;
}

/// `Mnemonic`, and `Display` as the mnemonic or `PREFIX<number>` (RFC 3597
/// style) without one.
macro_rules! display_mnemonic {
    ($($ty:ident => $prefix:literal),* $(,)?) => {$(
        impl Mnemonic for $ty {
            fn mnemonic(self) -> Option<&'static str> {
                $ty::mnemonic(self)
            }
        }

        impl From<$ty> for u32 {
            fn from(v: $ty) -> u32 {
                v.0.into()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.mnemonic() {
                    Some(m) => f.write_str(m),
                    None => write!(f, concat!($prefix, "{}"), self.0),
                }
            }
        }
    )*};
}

display_mnemonic!(Qtype => "TYPE", Qclass => "CLASS", Rcode => "RCODE", Opcode => "OPCODE");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_use_rfc3597_forms() {
        assert_eq!(Qtype(65280).to_string(), "TYPE65280");
        assert_eq!(Qtype(65).to_string(), "HTTPS");
        assert_eq!(Qclass(3).to_string(), "CH");
        assert_eq!(Qclass(7).to_string(), "CLASS7");
        assert_eq!(Rcode(23).to_string(), "BADCOOKIE");
        assert_eq!(Rcode(30).to_string(), "RCODE30");
        assert_eq!(Opcode(4).to_string(), "NOTIFY");
    }
}
