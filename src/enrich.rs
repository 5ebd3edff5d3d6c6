//! GeoIP and ASN enrichment at ingest (`--geoip`, `--asn`): continent,
//! country, AS number and organisation of the client, the server and the EDNS
//! Client Subnet, from MaxMind DB files.
//!
//! Any vendor's `.mmdb` works: MaxMind's GeoIP2/GeoLite2 layout
//! (`country.iso_code`, `continent.code`, `autonomous_system_number`), DB-IP's
//! (the same), and ip-location-db's (`country_code` only; the continent then
//! comes from [`continent_of`]). Addresses that are not globally routed
//! (private, loopback, link-local, documentation, shared, multicast) get no
//! answer at all rather than whatever a database says of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::Reader;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A database larger than this is not a GeoIP database (the largest city
/// databases are a few hundred MiB); it is refused.
const MAX_DB_BYTES: u64 = 2 << 30;

/// One MaxMind DB file, mapped: its pages stay in the page cache, shared by
/// every ingest, rather than copied into each.
pub struct Database {
    path: PathBuf,
    reader: Reader<memmap2::Mmap>,
}

impl Database {
    pub fn open(path: &Path) -> Result<Database> {
        let file = open_bounded(path, MAX_DB_BYTES, "a MaxMind DB file")?;
        let bytes = crate::ingest::capture::map(&file).map_err(|e| Error::io(path, e))?;
        let reader = Reader::from_source(bytes)
            .map_err(|e| Error::Usage(format!("{}: not a MaxMind DB file: {e}", path.display())))?;
        Ok(Database {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// What the captures table records: the file name, the database type
    /// and its build date (`GeoLite2-City.mmdb (GeoLite2-City, built 2026-11-24)`).
    pub fn describe(&self) -> String {
        let m = self.reader.metadata();
        let name = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let built = chrono::DateTime::from_timestamp(m.build_epoch.min(i64::MAX as u64) as i64, 0)
            .map_or_else(
                || m.build_epoch.to_string(),
                |t| t.format("%Y-%m-%d").to_string(),
            );
        format!("{name} ({}, built {built})", m.database_type)
    }

    fn lookup(&self, ip: IpAddr) -> Result<Option<Record>> {
        let found = self
            .reader
            .lookup(ip)
            .and_then(|r| r.decode::<Raw>())
            .map_err(|e| {
                Error::Usage(format!(
                    "{}: corrupt MaxMind DB record: {e}",
                    self.path.display()
                ))
            })?;
        Ok(found.map(|r| r.into_record()))
    }
}

/// A regular file opened, refused when it is something else (a device, a
/// FIFO) or larger than `max`.
fn open_bounded(path: &Path, max: u64, what: &str) -> Result<std::fs::File> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::Usage(format!(
            "{}: not a regular file, so not {what}",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(Error::Usage(format!(
            "{}: {} bytes is too large for {what}",
            path.display(),
            meta.len()
        )));
    }
    Ok(file)
}

/// A regular file's bytes, refused (not read) when it is something else
/// (a device, a FIFO) or larger than `max`.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_bounded(path, max, what)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut bytes = Vec::with_capacity(len as usize);
    // a file that grows while it is read stops at the bound all the same
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::Usage(format!(
            "{}: too large for {what}",
            path.display()
        )));
    }
    Ok(bytes)
}

#[derive(Deserialize)]
struct Code<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    code: Option<&'a str>,
}

/// The fields dnsq reads, in every layout it knows.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    country: Option<Code<'a>>,
    #[serde(borrow)]
    continent: Option<Code<'a>>,
    /// ip-location-db's country files.
    #[serde(borrow)]
    country_code: Option<&'a str>,
    autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

impl Raw<'_> {
    fn into_record(self) -> Record {
        let country = self
            .country
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .filter(|c| !c.is_empty())
            .map(str::to_ascii_uppercase);
        let continent = self
            .continent
            .and_then(|c| c.code)
            .map(str::to_string)
            .or_else(|| {
                country
                    .as_deref()
                    .and_then(continent_of)
                    .map(str::to_string)
            });
        Record {
            continent: continent.map(Arc::from),
            country: country.map(Arc::from),
            asn: self.autonomous_system_number.map(i64::from),
            as_org: self.autonomous_system_organization.map(Arc::from),
        }
    }
}

/// What is known of one address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub continent: Option<Arc<str>>,
    pub country: Option<Arc<str>>,
    pub asn: Option<i64>,
    pub as_org: Option<Arc<str>>,
}

/// The databases of one ingest.
pub struct Enricher {
    pub geoip: Option<Database>,
    pub asn: Option<Database>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("geoip", &self.geoip.as_ref().map(Database::describe))
            .field("asn", &self.asn.as_ref().map(Database::describe))
            .finish()
    }
}

impl Enricher {
    /// Looks `ip` up in both databases; nothing for an address that is not
    /// globally routed.
    pub fn lookup(&self, ip: IpAddr) -> Result<Record> {
        let ip = canonical(ip);
        if !is_global(ip) {
            return Ok(Record::default());
        }
        let mut rec = match &self.geoip {
            Some(db) => db.lookup(ip)?.unwrap_or_default(),
            None => Record::default(),
        };
        if let Some(db) = &self.asn {
            if let Some(a) = db.lookup(ip)? {
                rec.asn = a.asn;
                rec.as_org = a.as_org;
            }
        }
        Ok(rec)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Globally routed unicast: not private, loopback, link-local, shared
/// (CGNAT), documentation, benchmarking, multicast, reserved or unspecified
/// (RFC 6890 and the IANA special-purpose registries).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_global_v4(a),
        IpAddr::V6(a) => is_global_v6(a),
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_global_v4(a: Ipv4Addr) -> bool {
    const SPECIAL: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and the broadcast address
    ];
    !SPECIAL.iter().any(|(net, bits)| in_v4(a, *net, *bits))
}

fn is_global_v6(a: Ipv6Addr) -> bool {
    let x = u128::from(a);
    let in6 = |net: u128, bits: u32| {
        let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
        x & mask == net & mask
    };
    // global unicast is 2000::/3; within it, the special-purpose blocks
    in6(0x2000 << 112, 3)
        && !in6(0x2001_0db8 << 96, 32) // documentation
        && !in6(0x3fff << 112, 20) // documentation (RFC 9637)
        && !in6(0x2001_0000 << 96, 23) // IETF protocol assignments (Teredo, ORCHID, ...)
        && !in6(0x2002 << 112, 16) // 6to4: the IPv4 address inside is what it is
}

/// Every country of each continent.
const CONTINENTS: [(&str, &str); 7] = [
    ("AF", "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW"),
    ("AN", "AQ BV GS HM TF"),
    ("AS", "AE AF AM AZ BD BH BN BT CC CN CX GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TM TR TW UZ VN YE"),
    ("EU", "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK"),
    ("NA", "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX NI PA PM PR SV SX TC TT US VC VG VI"),
    ("OC", "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TL TO TV UM VU WF WS"),
    ("SA", "AR BO BR CL CO EC FK GF GY PE PY SR UY VE"),
];

/// The continent code (AF, AN, AS, EU, NA, OC, SA) of an ISO 3166-1 country
/// code, for databases that give only the country. The table is MaxMind's own
/// assignment: the continent of every country in GeoLite2-City (2018-07-03),
/// where each country has exactly one.
pub fn continent_of(country: &str) -> Option<&'static str> {
    if country.len() != 2 {
        return None;
    }
    CONTINENTS
        .iter()
        .find(|(_, cs)| cs.split(' ').any(|c| c.eq_ignore_ascii_case(country)))
        .map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ranges_are_not_global() {
        for s in [
            "10.1.2.3",
            "127.0.0.1",
            "192.168.1.1",
            "172.31.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.251",
            "255.255.255.255",
            "0.0.0.0",
            "198.19.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "64:ff9b::1",
        ] {
            assert!(!is_global(canonical(s.parse().unwrap())), "{s}");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "89.160.20.115",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_global(canonical(s.parse().unwrap())), "{s}");
        }
    }

    #[test]
    fn every_country_has_one_continent() {
        assert_eq!(continent_of("SE"), Some("EU"));
        assert_eq!(continent_of("us"), Some("NA"));
        assert_eq!(continent_of("AU"), Some("OC"));
        assert_eq!(continent_of("ZZ"), None);
        assert_eq!(continent_of("EUR"), None);
        let all: Vec<&str> = ["AO", "AQ", "JP", "DE", "CA", "NZ", "BR"]
            .iter()
            .map(|c| continent_of(c).unwrap())
            .collect();
        assert_eq!(all, ["AF", "AN", "AS", "EU", "NA", "OC", "SA"]);
    }

    #[test]
    fn no_country_is_on_two_continents() {
        let mut seen = std::collections::HashSet::new();
        for c in b'A'..=b'Z' {
            for d in b'A'..=b'Z' {
                let code = String::from_utf8(vec![c, d]).unwrap();
                if continent_of(&code).is_some() {
                    seen.insert(code);
                }
            }
        }
        // 250 countries and territories, each found in exactly one list
        assert_eq!(seen.len(), 250);
        let listed: usize = CONTINENTS.iter().map(|(_, cs)| cs.split(' ').count()).sum();
        assert_eq!(listed, seen.len(), "a country is listed twice");
    }
}
