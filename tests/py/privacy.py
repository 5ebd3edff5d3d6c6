"""Independent oracles for tests/privacy.rs: MaxMind's own Python reader
(`maxminddb`), `yacryptopan`, and the standard library's `hmac` and
`ipaddress`. Addresses come one per line on standard input; answers go out
as tab-separated lines, `\\N` for none.

    privacy.py geo GEOIP.mmdb ASN.mmdb   address, continent, country, asn, org
    privacy.py built DB.mmdb             build date (UTC) and database type
    privacy.py cryptopan KEYFILE         address, Crypto-PAn image
    privacy.py hmac KEYFILE              address, HMAC-SHA-256 image
    privacy.py truncate V4 V6            address, truncated
"""
import datetime
import hashlib
import hmac
import ipaddress
import sys

NONE = "\\N"


def addresses():
    for line in sys.stdin:
        line = line.strip()
        if line:
            yield line


def out(*fields):
    print("\t".join(NONE if f is None else str(f) for f in fields))


def geo(geoip_path, asn_path):
    import maxminddb

    geoip = maxminddb.open_database(geoip_path)
    asn = maxminddb.open_database(asn_path)
    for a in addresses():
        ip = ipaddress.ip_address(a)
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        if not ip.is_global:
            out(a, None, None, None, None)
            continue
        g = geoip.get(ip) or {}
        country = (g.get("country") or {}).get("iso_code") or g.get("country_code")
        continent = (g.get("continent") or {}).get("code")
        s = asn.get(ip) or {}
        out(a, continent, country, s.get("autonomous_system_number"),
            s.get("autonomous_system_organization"))


def built(path):
    import maxminddb

    m = maxminddb.open_database(path).metadata()
    day = datetime.datetime.fromtimestamp(m.build_epoch, datetime.timezone.utc)
    out(day.strftime("%Y-%m-%d"), m.database_type)


def cryptopan(key_path):
    from yacryptopan import CryptoPAn

    cp = CryptoPAn(open(key_path, "rb").read())
    for a in addresses():
        out(a, ipaddress.ip_address(cp.anonymize(a)))


def keyed(key_path):
    key = open(key_path, "rb").read()
    for a in addresses():
        ip = ipaddress.ip_address(a)
        digest = hmac.new(key, bytes([ip.version]) + ip.packed, hashlib.sha256).digest()
        out(a, ipaddress.ip_address(digest[: len(ip.packed)]))


def truncate(v4, v6):
    for a in addresses():
        ip = ipaddress.ip_address(a)
        bits = int(v4) if ip.version == 4 else int(v6)
        out(a, ipaddress.ip_network(f"{a}/{bits}", strict=False).network_address)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"geo": geo, "built": built, "cryptopan": cryptopan, "hmac": keyed,
     "truncate": truncate}[cmd](*args)
