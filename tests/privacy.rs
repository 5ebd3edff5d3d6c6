//! GeoIP/ASN enrichment and anonymisation at ingest, against independent
//! oracles: MaxMind's own Python reader on real database files (`.ci/mmdb`
//! fetches them), `yacryptopan`, and Python's `hmac` and `ipaddress`
//! (`tests/py/privacy.py`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{dnsq, ingest, mmdb, public_sample, python, repo, run, sample, sql, zeek_ecs};

/// Runs `tests/py/privacy.py ARGS` with `input` on stdin; its TSV lines.
fn oracle(args: &[&str], input: &str) -> Vec<Vec<String>> {
    let mut child = Command::new(python())
        .arg(repo().join("tests/py/privacy.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "privacy.py {args:?}: {}\n(.ci/run installs maxminddb and yacryptopan in DNSQ_PYTHON's venv)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|f| {
                    if f == "\\N" {
                        String::new()
                    } else {
                        f.to_string()
                    }
                })
                .collect()
        })
        .collect()
}

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let p = dir.join(name);
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(byte))
        .collect();
    std::fs::write(&p, key).unwrap();
    p
}

/// The distinct values of a query's single column.
fn distinct(dir: &Path, q: &str) -> BTreeSet<String> {
    sql(dir, q)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect()
}

const ROLES: [(&str, &str); 3] = [
    ("client", "client_ip"),
    ("server", "server_ip"),
    ("ecs", "split_part(ecs, '/', 1)"),
];

#[test]
fn enrichment_matches_maxminds_own_reader_for_every_address() {
    let tmp = tempfile::tempdir().unwrap();
    let asn = mmdb("GeoLite2-ASN-Test.mmdb");
    let cases = [
        // ip-location-db's layout, real GeoLite2 data, real public traffic
        (zeek_ecs(), mmdb("geolite2-country.mmdb")),
        // MaxMind's layout, with continents
        (public_sample(tmp.path()), mmdb("GeoIP2-City-Test.mmdb")),
    ];
    let mut countries = BTreeSet::new();
    let mut asns = BTreeSet::new();
    let mut continents = BTreeSet::new();
    for (i, (capture, geoip)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("d{i}"));
        let asn_flag = format!("--asn={}", asn.display());
        let geoip_flag = format!("--geoip={}", geoip.display());
        ingest(&dir, &[capture], &[&geoip_flag, &asn_flag, "--ports", "53"]);
        let mut checked = 0;
        for (role, addr) in ROLES {
            let rows = sql(
                &dir,
                &format!(
                    "select distinct {addr} as a, {role}_continent, {role}_country, \
                     {role}_asn, {role}_as_org from transactions where {addr} is not null \
                     order by a"
                ),
            );
            let got: Vec<Vec<String>> = rows.into_iter().skip(1).collect();
            let input: String = got.iter().map(|r| format!("{}\n", r[0])).collect();
            let want = oracle(
                &["geo", geoip.to_str().unwrap(), asn.to_str().unwrap()],
                &input,
            );
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                // the continent of a country-only database is dnsq's own table: compared
                // where the database has one
                let g_cont = if w[1].is_empty() && i == 0 {
                    String::new()
                } else {
                    g[1].clone()
                };
                assert_eq!(
                    (&g[0], &g_cont, &g[2], &g[3], &g[4]),
                    (&w[0], &w[1], &w[2], &w[3], &w[4]),
                    "{role} {} in {}",
                    g[0],
                    capture.display()
                );
                if i == 0 && !g[2].is_empty() {
                    assert!(
                        !g[1].is_empty(),
                        "{role} {}: a country but no continent",
                        g[0]
                    );
                }
                countries.extend((!g[2].is_empty()).then(|| g[2].clone()));
                asns.extend((!g[3].is_empty()).then(|| g[3].clone()));
                continents.extend((!g[1].is_empty()).then(|| g[1].clone()));
                checked += 1;
            }
        }
        assert!(
            checked >= 8,
            "{checked} addresses checked in {}",
            capture.display()
        );
        saved_queries_group_as_the_oracle_says(&dir, geoip, &asn);
        // the captures table names each database with its build date, as its metadata says
        let rec = sql(&dir, "select geoip_db, asn_db, anonymization from captures");
        for (db, col) in [(geoip, 0), (&asn, 1)] {
            let meta = &oracle(&["built", db.to_str().unwrap()], "")[0];
            let name = db.file_name().unwrap().to_str().unwrap();
            assert_eq!(
                rec[1][col],
                format!("{name} ({}, built {})", meta[1], meta[0])
            );
        }
        assert_eq!(rec[1][2], "", "not anonymized");
    }
    // not all null: several countries, continents and networks were found
    assert!(countries.len() >= 4, "{countries:?}");
    assert!(continents.len() >= 3, "{continents:?}");
    assert!(asns.len() >= 3, "{asns:?}");
    // private and loopback addresses got nothing
    let dir = tmp.path().join("d1");
    let private = sql(
        &dir,
        "select count(*), count(client_country), count(client_asn), count(client_continent) \
         from transactions where client_ip in ('192.168.7.102', '::1')",
    );
    assert_ne!(private[1][0], "0");
    assert_eq!(&private[1][1..], ["0", "0", "0"]);
}

/// `top_countries` and `top_networks` (all legs, no `other` row) against
/// counts per client address joined with the oracle's answer for each.
fn saved_queries_group_as_the_oracle_says(dir: &Path, geoip: &Path, asn: &Path) {
    let per_client: Vec<Vec<String>> = sql(
        dir,
        "select client_ip, count(*) from transactions where status <> 'response_only' \
         group by 1 order by 1",
    )
    .into_iter()
    .skip(1)
    .collect();
    let input: String = per_client.iter().map(|r| format!("{}\n", r[0])).collect();
    let oracle = oracle(
        &["geo", geoip.to_str().unwrap(), asn.to_str().unwrap()],
        &input,
    );
    let mut countries: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut networks: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (row, o) in per_client.iter().zip(&oracle) {
        let n: u64 = row[1].parse().unwrap();
        let country = if o[2].is_empty() {
            "unknown".to_string()
        } else {
            o[2].clone()
        };
        let network = if o[3].is_empty() {
            "unknown".to_string()
        } else {
            format!("AS{}", o[3])
        };
        for (map, key) in [(&mut countries, country), (&mut networks, network)] {
            let e = map.entry(key).or_default();
            e.0 += n;
            e.1 += 1;
        }
    }
    for (query, want) in [("top_countries", countries), ("top_networks", networks)] {
        let out = run(dnsq().args(["sql", "-d"]).arg(dir).args([
            "--format", "csv", "-f", query, "--leg", "all", "--top", "1000",
        ]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = common::parse_csv(&out.stdout);
        let key = if query == "top_countries" { 1 } else { 0 };
        let got: BTreeMap<String, (u64, u64)> = rows
            .iter()
            .skip(1)
            .map(|r| {
                (
                    r[key].clone(),
                    (r[2].parse().unwrap(), r[3].parse().unwrap()),
                )
            })
            .collect();
        assert_eq!(got, want, "{query} in {}", dir.display());
    }
}

#[test]
fn columns_are_null_without_databases_and_datasets_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    ingest(&dir, &[&zeek_ecs()], &[]);
    let cols: Vec<String> = ROLES
        .iter()
        .flat_map(|(r, _)| {
            ["continent", "country", "asn", "as_org"].map(|c| format!("count({r}_{c})"))
        })
        .collect();
    let q = format!("select {} from transactions", cols.join(", "));
    assert!(sql(&dir, &q)[1].iter().all(|v| v == "0"));
    // the same table holds rows with and without enrichment
    let geoip = format!("--geoip={}", mmdb("GeoIP2-City-Test.mmdb").display());
    ingest(&dir, &[&public_sample(tmp.path())], &[&geoip]);
    let by_capture = sql(
        &dir,
        "select c.geoip_db is null, count(*), count(t.client_country) from transactions t \
         join captures c on t.capture = c.path group by 1 order by 1",
    );
    assert_eq!(by_capture[1][0], "false");
    assert_ne!(by_capture[1][2], "0");
    assert_eq!(by_capture[2][0], "true");
    assert_eq!(by_capture[2][2], "0");
}

/// The rows of `dir` keyed by where they came from, with the columns `cols`.
fn rows_by_frame(dir: &Path, cols: &str) -> BTreeMap<String, Vec<String>> {
    sql(
        dir,
        &format!(
            "select capture || '#' || coalesce(query_frame, -1) || '#' || \
             coalesce(response_frame, -1), {cols} from transactions"
        ),
    )
    .into_iter()
    .skip(1)
    .map(|mut r| (r.remove(0), r))
    .collect()
}

/// Maps `addresses` with the oracle `args`.
fn mapped_by(args: &[&str], addresses: &BTreeSet<String>) -> HashMap<String, String> {
    let input: String = addresses.iter().map(|a| format!("{a}\n")).collect();
    oracle(args, &input)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn subnet_image(ecs: &str, image: &HashMap<String, String>) -> String {
    if ecs.is_empty() {
        return String::new();
    }
    let (net, len) = ecs.split_once('/').unwrap();
    let bits: u8 = len.parse().unwrap();
    let ip: IpAddr = image[net].parse().unwrap();
    let masked = match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
            u32::from(a) & u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0),
        )),
        IpAddr::V6(a) => IpAddr::V6(
            (u128::from(a) & u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0)).into(),
        ),
    };
    format!("{masked}/{len}")
}

#[test]
fn every_method_maps_as_its_independent_implementation_does() {
    let tmp = tempfile::tempdir().unwrap();
    let captures = [public_sample(tmp.path()), zeek_ecs(), sample()];
    let caps: Vec<&Path> = captures.iter().map(PathBuf::as_path).collect();
    let plain = tmp.path().join("plain");
    ingest(&plain, &caps, &[]);
    let cols = "client_ip, server_ip, coalesce(ecs, ''), qname, rcode, ts";
    let want = rows_by_frame(&plain, cols);
    let mut addresses: BTreeSet<String> = want.values().map(|r| r[0].clone()).collect();
    let servers: BTreeSet<String> = want.values().map(|r| r[1].clone()).collect();
    let subnets: BTreeSet<String> = want
        .values()
        .filter(|r| !r[2].is_empty())
        .map(|r| r[2].split_once('/').unwrap().0.to_string())
        .collect();
    addresses.extend(subnets);
    let all: BTreeSet<String> = addresses.union(&servers).cloned().collect();
    assert!(addresses.len() >= 20, "{addresses:?}");

    let cryptopan = key_file(tmp.path(), "cryptopan.key", 1);
    let hmac_key = key_file(tmp.path(), "hmac.key", 2);
    let methods: Vec<(String, Vec<String>, bool)> = vec![
        (
            format!("cryptopan:{}", cryptopan.display()),
            vec!["cryptopan".into(), cryptopan.display().to_string()],
            false,
        ),
        (
            format!("hmac:{}", hmac_key.display()),
            vec!["hmac".into(), hmac_key.display().to_string()],
            true,
        ),
        (
            "truncate".into(),
            vec!["truncate".into(), "24".into(), "48".into()],
            false,
        ),
        (
            "truncate:16,32".into(),
            vec!["truncate".into(), "16".into(), "32".into()],
            false,
        ),
    ];
    for (n, (method, oracle_args, servers_too)) in methods.iter().enumerate() {
        let dir = tmp.path().join(format!("m{n}"));
        let flag = format!("--anonymize={method}");
        let mut extra = vec![flag.as_str()];
        if *servers_too {
            extra.push("--anonymize-servers");
        }
        ingest(&dir, &caps, &extra);
        let args: Vec<&str> = oracle_args.iter().map(String::as_str).collect();
        let image = mapped_by(&args, &all);
        let got = rows_by_frame(&dir, cols);
        assert_eq!(got.len(), want.len(), "{method}");
        for (k, w) in &want {
            let g = &got[k];
            let server = if *servers_too {
                image[&w[1]].clone()
            } else {
                w[1].clone()
            };
            let ecs = subnet_image(&w[2], &image);
            assert_eq!(
                (&g[0], &g[1], &g[2], &g[3..]),
                (&image[&w[0]], &server, &ecs, &w[3..]),
                "{method}: row {k}"
            );
        }
    }
}

#[test]
fn crypto_pan_keeps_exactly_the_shared_prefix_of_real_addresses() {
    // the property on the capture's own addresses, beside the unit test's random ones
    let tmp = tempfile::tempdir().unwrap();
    let key = key_file(tmp.path(), "k", 9);
    let dir = tmp.path().join("d");
    let plain = tmp.path().join("p");
    let caps = [zeek_ecs(), public_sample(tmp.path())];
    let caps: Vec<&Path> = caps.iter().map(PathBuf::as_path).collect();
    ingest(&plain, &caps, &[]);
    ingest(
        &dir,
        &caps,
        &[
            &format!("--anonymize=cryptopan:{}", key.display()),
            "--anonymize-servers",
        ],
    );
    let cols = "client_ip, server_ip";
    let want = rows_by_frame(&plain, cols);
    let got = rows_by_frame(&dir, cols);
    let mut pairs: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
    for (k, w) in &want {
        for i in 0..2 {
            pairs.insert(w[i].parse().unwrap(), got[k][i].parse().unwrap());
        }
    }
    let bits = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => (u128::from(u32::from(*a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(*a), 128),
    };
    let mut compared = 0;
    for (a, x) in &pairs {
        for (b, y) in &pairs {
            let ((a, la), (b, lb), (x, _), (y, _)) = (bits(a), bits(b), bits(x), bits(y));
            if la != lb || a == b {
                continue;
            }
            let shared = (a ^ b).leading_zeros().min(la);
            assert_eq!((x ^ y).leading_zeros().min(la), shared);
            compared += 1;
        }
    }
    assert!(compared > 200, "{compared}");
}

/// Every original address in text and binary form, looked for in every byte
/// of `dir` (files, names), in every decoded value of both tables, and in `log`.
fn assert_absent(dir: &Path, addresses: &BTreeSet<String>, log: &str) {
    let ips: Vec<IpAddr> = addresses.iter().map(|a| a.parse().unwrap()).collect();
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![("the ingest's output".into(), log.into())];
    for table in ["transactions", "captures"] {
        let out = run(dnsq().args(["sql", "-d"]).arg(dir).args([
            "--format",
            "json",
            &format!("select * from {table}"),
        ]));
        assert!(out.status.success());
        haystacks.push((format!("{table} rows"), out.stdout));
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        haystacks.push((
            format!("the name {}", p.display()),
            p.display().to_string().into(),
        ));
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            haystacks.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    let text_hit = |hay: &[u8], needle: &str| {
        let is_part = |c: u8| c.is_ascii_hexdigit() || c == b'.' || c == b':';
        hay.windows(needle.len()).enumerate().any(|(i, w)| {
            w == needle.as_bytes()
                && (i == 0 || !is_part(hay[i - 1]))
                && hay.get(i + needle.len()).is_none_or(|c| !is_part(*c))
        })
    };
    for (what, hay) in &haystacks {
        for ip in &ips {
            assert!(!text_hit(hay, &ip.to_string()), "{ip} appears in {what}");
            let packed: Vec<u8> = match ip {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            // four bytes can occur by chance in compressed data; sixteen cannot
            if matches!(ip, IpAddr::V6(_)) || !what.ends_with(".parquet") {
                assert!(
                    !hay.windows(packed.len()).any(|w| w == packed),
                    "{ip} appears in binary in {what}"
                );
            }
        }
    }
}

#[test]
fn nothing_personal_leaks() {
    let tmp = tempfile::tempdir().unwrap();
    let (public, zeek) = (public_sample(tmp.path()), zeek_ecs());
    let caps = [public.as_path(), zeek.as_path()];
    let plain = tmp.path().join("plain");
    ingest(&plain, &caps, &[]);
    let clients = distinct(&plain, "select client_ip from transactions");
    let servers = distinct(&plain, "select server_ip from transactions");
    let subnets = distinct(
        &plain,
        "select split_part(ecs, '/', 1) from transactions where ecs is not null",
    );
    assert!(!subnets.is_empty());
    // addresses that DNS records carry (a name server's A record) are DNS
    // content, not addressing, and are kept as they are
    let record_data: BTreeSet<String> = ["answers", "authority", "additional"]
        .iter()
        .flat_map(|s| {
            distinct(
                &plain,
                &format!(
                    "select distinct r['data'] from (select unnest({s}) as r from transactions) \
                     where r['type'] in ('A', 'AAAA')"
                ),
            )
        })
        .collect();
    let key = key_file(tmp.path(), "k", 3);
    let geoip = format!("--geoip={}", mmdb("GeoIP2-City-Test.mmdb").display());
    let asn = format!("--asn={}", mmdb("GeoLite2-ASN-Test.mmdb").display());
    for servers_too in [false, true] {
        let dir = tmp.path().join(format!("anon-{servers_too}"));
        let flag = format!("--anonymize=cryptopan:{}", key.display());
        let mut extra = vec![flag.as_str(), geoip.as_str(), asn.as_str()];
        if servers_too {
            extra.push("--anonymize-servers");
        }
        let out = ingest(&dir, &caps, &extra);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        // clients that are nothing else (a resolver's own address is a server
        // too, and stays unless --anonymize-servers)
        let mut secret: BTreeSet<String> = if servers_too {
            clients.union(&servers).cloned().collect()
        } else {
            clients.difference(&servers).cloned().collect()
        };
        let clients_in_records: Vec<&String> = clients.intersection(&record_data).collect();
        assert!(
            clients_in_records.is_empty() || servers_too,
            "{clients_in_records:?}"
        );
        secret.retain(|a| !record_data.contains(a));
        // the subnets' networks, except where a server's address is one
        secret.extend(subnets.difference(&servers).cloned());
        // loopback is no one's personal data, and `::1` is also the sample's server
        secret.retain(|a| !a.parse::<IpAddr>().unwrap().is_loopback());
        assert!(secret.len() >= 8, "{secret:?}");
        assert_absent(&dir, &secret, &log);
        if !servers_too {
            // the scan finds them where they are: in the plain dataset
            let found = std::panic::catch_unwind(|| assert_absent(&plain, &secret, ""));
            assert!(
                found.is_err(),
                "the scan did not see the plain dataset's clients"
            );
        }
        // enrichment saw the real addresses
        let countries = distinct(
            &dir,
            "select client_country from transactions where client_country is not null",
        );
        assert!(
            countries.contains("SE") && countries.contains("US"),
            "{countries:?}"
        );
    }
}

#[test]
fn one_dataset_never_mixes_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let k1 = key_file(tmp.path(), "k1", 1);
    let k2 = key_file(tmp.path(), "k2", 2);
    let with = |k: &Path| format!("--anonymize=cryptopan:{}", k.display());
    ingest(&dir, &[&sample()], &[&with(&k1)]);
    let rows = sql(&dir, "select count(*) from transactions")[1][0].clone();
    let refused = |extra: Vec<String>, capture: &Path| {
        let out = run(dnsq()
            .args(["ingest", "-o"])
            .arg(&dir)
            .args(&extra)
            .arg(capture));
        assert!(!out.status.success(), "{extra:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("never mixes them"), "{err}");
        // the key never appears, only its id
        for k in [&k1, &k2] {
            let hex: String = std::fs::read(k)
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(!err.contains(&hex[..16]), "{err}");
        }
        err
    };
    let legs = repo().join("data/legs.pcap");
    let err = refused(vec![], &legs);
    assert!(
        err.contains("as captured (not anonymized)") && err.contains("cryptopan key-id="),
        "{err}"
    );
    refused(vec![with(&k2)], &legs);
    refused(vec![with(&k1), "--anonymize-servers".into()], &legs);
    refused(vec!["--anonymize=truncate".into()], &legs);
    assert_eq!(sql(&dir, "select count(*) from transactions")[1][0], rows);
    // the same method and key is welcome
    ingest(&dir, &[&legs], &[&with(&k1), "--ports", "5300"]);
    let methods = sql(&dir, "select distinct anonymization from captures");
    assert_eq!(methods.len(), 2, "{methods:?}");
    // and the other way round: a plain dataset refuses pseudonymised rows
    let plain = tmp.path().join("p");
    ingest(&plain, &[&sample()], &[]);
    let out = run(dnsq()
        .args(["ingest", "-o"])
        .arg(&plain)
        .arg(with(&k1))
        .arg(&legs));
    assert!(!out.status.success());
}

#[test]
fn anonymize_rewrites_a_dataset_as_ingest_would_have() {
    let tmp = tempfile::tempdir().unwrap();
    let key = key_file(tmp.path(), "k", 5);
    let flag = format!("--anonymize=cryptopan:{}", key.display());
    let caps = [public_sample(tmp.path()), zeek_ecs()];
    let caps: Vec<&Path> = caps.iter().map(PathBuf::as_path).collect();
    let src = tmp.path().join("src");
    ingest(&src, &caps, &[]);
    let direct = tmp.path().join("direct");
    ingest(&direct, &caps, &[&flag, "--anonymize-servers"]);

    let snapshot = |dir: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else if !p.starts_with(dir.join("_writers")) {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
        out
    };
    let before = snapshot(&src);
    let dst = tmp.path().join("dst");
    let out = run(dnsq()
        .arg("anonymize")
        .arg(&src)
        .arg(&dst)
        .args([flag.as_str(), "--anonymize-servers"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(&src), before, "the source was changed");

    let all = "* exclude (ingested_at)";
    let q = |t: &str| {
        format!(
            "select {} from {t} order by 1, 2, 3, 4",
            if t == "captures" { all } else { "*" }
        )
    };
    for t in ["transactions", "captures"] {
        assert_eq!(sql(&dst, &q(t)), sql(&direct, &q(t)), "{t}");
    }
    // a second run adds nothing; a rewrite of the rewrite is refused
    let again = run(dnsq()
        .arg("anonymize")
        .arg(&src)
        .arg(&dst)
        .arg(&flag)
        .arg("--anonymize-servers"));
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds every capture"));
    let twice = run(dnsq()
        .arg("anonymize")
        .arg(&dst)
        .arg(tmp.path().join("x"))
        .arg(&flag));
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already pseudonymised"));
    let none = run(dnsq().arg("anonymize").arg(&src).arg(tmp.path().join("y")));
    assert!(!none.status.success());
}

#[test]
fn bad_databases_and_keys_are_clear_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let short = tmp.path().join("short.key");
    std::fs::write(&short, b"0123456789").unwrap();
    // a capture whose busiest client sits where the database's data is corrupt
    let corrupt = tmp.path().join("corrupt.pcap");
    common::rewrite_addresses(&sample(), &corrupt, &[("127.0.0.101", "1.1.1.16")]);
    let broken = mmdb("MaxMind-DB-test-broken-pointers-24.mmdb");
    let cases: Vec<(Vec<String>, PathBuf, &str, &str)> = vec![
        (
            vec![format!("--geoip={}", sample().display())],
            sample(),
            "not a MaxMind DB file",
            "sample.pcap",
        ),
        (
            vec!["--asn=/dev/zero".into()],
            sample(),
            "not a regular file",
            "/dev/zero",
        ),
        (
            vec!["--anonymize=cryptopan:/dev/zero".into()],
            sample(),
            "not a regular file",
            "/dev/zero",
        ),
        (
            vec![format!("--anonymize=cryptopan:{}", short.display())],
            sample(),
            "exactly 32 bytes",
            "short.key",
        ),
        (
            vec![format!("--anonymize=hmac:{}", short.display())],
            sample(),
            "at least 16",
            "short.key",
        ),
        (
            vec!["--anonymize=rot13".into()],
            sample(),
            "not a method",
            "cryptopan:KEYFILE",
        ),
        (
            vec![
                format!("--geoip={}", broken.display()),
                format!(
                    "--anonymize=cryptopan:{}",
                    key_file(tmp.path(), "k", 1).display()
                ),
            ],
            corrupt.clone(),
            "corrupt MaxMind DB record",
            "MaxMind-DB-test-broken-pointers-24.mmdb",
        ),
    ];
    for (flags, capture, says, names) in cases {
        let out = run(dnsq()
            .args(["ingest", "-o"])
            .arg(&dir)
            .args(&flags)
            .arg(&capture));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(
            err.contains(says) && err.contains(names),
            "{flags:?}: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("0123456789"),
            "{err}"
        );
        // the address behind the corrupt record is not named while anonymizing
        assert!(!err.contains("1.1.1.16"), "{err}");
        // nothing was committed
        let rows = run(dnsq().args(["sql", "-d"]).arg(&dir).args([
            "--format",
            "csv",
            "select count(*) from transactions",
        ]));
        let text = String::from_utf8_lossy(&rows.stdout).into_owned();
        assert!(
            !rows.status.success() || text.ends_with("0\n"),
            "{flags:?}: {text}"
        );
    }
}

/// A dataset written by dnsq before the enrichment and tunnel columns
/// (tests/fixtures/before-geo: data/legs.pcap ingested by the build of
/// 79a678f), copied so that the test may change it.
fn dataset_before_geo(to: &Path) {
    let from = repo().join("tests/fixtures/before-geo");
    let mut stack = vec![from.clone()];
    while let Some(p) = stack.pop() {
        let dest = to.join(p.strip_prefix(&from).unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn a_dataset_from_before_the_new_columns_reads_and_upgrades() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    dataset_before_geo(&dir);
    // before any ingest: the new columns read as null, and their saved queries run
    let q = "select count(*), count(client_country), count(tunnel) from transactions";
    assert_eq!(sql(&dir, q)[1], ["37", "0", "0"]);
    let out = run(dnsq().args(["sql", "-d"]).arg(&dir).args([
        "--format",
        "csv",
        "-f",
        "top_countries",
        "--leg",
        "all",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown"));
    // an enriched ingest adds the columns to the table's schema and says so
    let geoip = format!("--geoip={}", mmdb("GeoIP2-City-Test.mmdb").display());
    let o = ingest(&dir, &[&public_sample(tmp.path())], &[&geoip]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("added") && err.contains("client_country"),
        "{err}"
    );
    let by = sql(
        &dir,
        "select capture like '%legs.pcap', count(*), count(client_country) from transactions \
         group by 1 order by 1",
    );
    // the old rows are there, null in the new columns; the new rows enriched
    assert_eq!(by[1][0], "false");
    assert_ne!(by[1][2], "0");
    assert_eq!(by[2], ["true", "37", "0"]);
    // and the captures table reads both generations of its files
    let caps = sql(&dir, "select count(*), count(geoip_db) from captures");
    assert_eq!(caps[1], ["2", "1"]);
}
