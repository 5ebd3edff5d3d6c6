#!/usr/bin/env bash
# Records data/sample.pcap: real DNS software talking on loopback.
#
#   knotd    authoritative for example.test (DNSSEC-signed) and other.test on 127.0.0.2
#   python   a "server" on 127.0.0.3 that reads queries and never answers (dead.test)
#   servfail.test is configured in knotd without a zone file: it answers SERVFAIL
#   unbound  resolver on 127.0.0.10 and ::1; it queries the authorities from 127.0.0.10
#   dig, dnsperf  clients on 127.0.0.100-102 and ::1
#   tcpdump  on lo, port 53
#
# Needs root and the Debian packages knot knot-dnsutils unbound dnsutils dnsperf tcpdump.
# Usage: sudo data/record-sample.sh [OUT.pcap]   (default data/sample.pcap)
# DNSPERF_SECONDS and DNSPERF_QPS (default 8 and 150: data/sample.pcap) lengthen the load,
# for a capture of real servers' traffic at scale (benches/real.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/sample.pcap}
w=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$w"; }
trap cleanup EXIT

mkdir -p "$w/zones" "$w/db" "$w/run"
cat > "$w/zones/example.test.zone" <<'ZONE'
$ORIGIN example.test.
$TTL 300
@       SOA   ns1 hostmaster 2026112801 3600 900 604800 300
@       NS    ns1
ns1     A     127.0.0.2
@       A     192.0.2.1
www     A     192.0.2.10
www     AAAA  2001:db8::10
@       MX    10 mail
mail    A     192.0.2.25
@       TXT   "v=spf1 -all" "second string"
alias   CNAME www
_sip._udp SRV 10 5 5060 sip
sip     A     192.0.2.60
@       CAA   0 issue "letsencrypt.org"
ZONE
for i in $(seq 1 40); do echo "host$i A 192.0.2.$((100 + i))" >> "$w/zones/example.test.zone"; done
cat > "$w/zones/other.test.zone" <<'ZONE'
$ORIGIN other.test.
$TTL 60
@       SOA   ns hostmaster 1 3600 900 604800 60
@       NS    ns
ns      A     127.0.0.2
@       A     198.51.100.1
api     A     198.51.100.2
api     AAAA  2001:db8:1::2
cdn     CNAME api
ZONE
cat > "$w/knot.conf" <<CONF
server:
    rundir: "$w/run"
    listen: 127.0.0.2@53
database:
    storage: "$w/db"
template:
  - id: default
    storage: "$w/zones"
zone:
  - domain: example.test
    file: example.test.zone
    dnssec-signing: on
  - domain: other.test
    file: other.test.zone
  - domain: servfail.test
    file: missing.zone
CONF
cat > "$w/unbound.conf" <<CONF
server:
    interface: 127.0.0.10
    interface: ::1
    outgoing-interface: 127.0.0.10
    port: 53
    do-ip6: yes
    access-control: 127.0.0.0/8 allow
    access-control: ::1 allow
    do-not-query-localhost: no
    module-config: "iterator"
    username: ""
    chroot: ""
    directory: "$w"
    pidfile: "$w/unbound.pid"
    use-syslog: no
    logfile: "$w/unbound.log"
    verbosity: 1
    qname-minimisation: no
    prefetch: no
    harden-referral-path: no
    infra-host-ttl: 1
    infra-cache-max-rtt: 1500
    local-zone: "test." nodefault
stub-zone:
    name: "example.test"
    stub-addr: 127.0.0.2
stub-zone:
    name: "other.test"
    stub-addr: 127.0.0.2
stub-zone:
    name: "servfail.test"
    stub-addr: 127.0.0.2
stub-zone:
    name: "dead.test"
    stub-addr: 127.0.0.3
CONF
cat > "$w/silent.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.3", 53))
while True:
    s.recvfrom(4096)
PY

tcpdump -i lo -U -s 0 -w "$out" 'port 53' 2>"$w/tcpdump.log" & pids+=($!)
knotd -c "$w/knot.conf" 2>"$w/knot.log" & pids+=($!)
python3 "$w/silent.py" & pids+=($!)
sleep 2
unbound -d -c "$w/unbound.conf" 2>"$w/unbound.err" & pids+=($!)
sleep 2

R=127.0.0.10
q() { dig +time=10 +tries=1 "$@" > /dev/null || true; }
# Clients of the resolver: answers, NXDOMAIN, a CNAME chain, several types
q -b 127.0.0.100 @$R www.example.test A
q -b 127.0.0.100 @$R www.example.test AAAA
q -b 127.0.0.100 @$R example.test MX
q -b 127.0.0.100 @$R example.test TXT
q -b 127.0.0.100 @$R alias.example.test A
q -b 127.0.0.100 @$R _sip._udp.example.test SRV
q -b 127.0.0.100 @$R example.test CAA
q -b 127.0.0.100 @$R nosuchname.example.test A
q -b 127.0.0.100 @$R cdn.other.test A
q -b 127.0.0.100 @$R nothere.other.test AAAA
# DNSSEC through the resolver and straight from the authority
q -b 127.0.0.101 @$R +dnssec www.example.test A
q -b 127.0.0.101 @127.0.0.2 +dnssec +norec example.test DNSKEY
q -b 127.0.0.101 @127.0.0.2 +dnssec +norec nosuch.example.test A
# EDNS client subnet, to the resolver and to the authority
q -b 127.0.0.101 @$R +subnet=198.51.100.0/24 api.other.test A
q -b 127.0.0.101 @127.0.0.2 +norec +subnet=2001:db8:42::/48 www.example.test AAAA
# IPv6 clients
q -6 @::1 www.example.test AAAA
q -6 @::1 api.other.test A
q -6 @::1 missing.other.test A
# TCP
q -b 127.0.0.100 @$R +tcp example.test SOA
q -b 127.0.0.101 @127.0.0.2 +tcp +norec +dnssec example.test DNSKEY
# Mixed case in the question (0x20)
q -b 127.0.0.100 @$R WwW.ExAmPlE.TeSt A
# A zone its authority cannot load: SERVFAIL from the authority and the resolver
q -b 127.0.0.102 @$R www.servfail.test A
q -b 127.0.0.102 @$R servfail.test MX
# A zone whose server never answers: the resolver retries upstream without an
# answer and the clients give up (in the background, while the load runs)
dig +time=6 +tries=1 -b 127.0.0.102 @$R www.dead.test A > /dev/null & slow=($!)
dig +time=6 +tries=2 -b 127.0.0.102 @$R mail.dead.test MX > /dev/null & slow+=($!)
# A client that asks a server that never answers: unanswered downstream
dig -b 127.0.0.102 +time=2 +tries=2 @127.0.0.3 www.example.test A > /dev/null || true
# A load of queries with a Zipf-like mix of names
for i in $(seq 1 40); do
  n=$(( 40 / i ))
  for _ in $(seq 1 "$n"); do echo "host$i.example.test A"; done
done > "$w/queries.txt"
{ echo "www.example.test A"; echo "www.example.test AAAA"; echo "nosuch$RANDOM.example.test A";
  echo "api.other.test A"; echo "example.test MX"; } >> "$w/queries.txt"
dnsperf -a 127.0.0.101 -s $R -d "$w/queries.txt" -l "${DNSPERF_SECONDS:-8}" -Q "${DNSPERF_QPS:-150}" -c 4 \
  > "$w/dnsperf.log" 2>&1 || true
wait "${slow[@]}" || true
sleep 1
kill "${pids[0]}"; sleep 1
echo "recorded $(stat -c %s "$out") bytes to $out"
