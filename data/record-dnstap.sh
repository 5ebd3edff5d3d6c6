#!/usr/bin/env bash
# Records data/dnstap.fstrm, data/dnstap-knot.fstrm and data/dnstap.pcap: the same DNS
# traffic logged by a real resolver and a real authority as dnstap (Frame Streams) and
# captured on the wire at the same time.
#
#   knotd          authoritative on 127.0.0.31 for dnstap.test; broken.test configured
#                  without a zone file (SERVFAIL); its dnstap module writes every query
#                  and response it handles (AUTH_QUERY, AUTH_RESPONSE) to a file,
#                  OUT with .fstrm replaced by -knot.fstrm
#   unbound        resolver on 127.0.0.30 (stub zones at 127.0.0.31), logging dnstap to a
#                  Frame Streams socket: client and resolver queries and responses
#   fstrm_capture  reads the socket into OUT (content type protobuf:dnstap.Dnstap)
#   kdig           clients on 127.0.0.100 and 127.0.0.101: UDP and TCP, cache misses and
#                  hits, NXDOMAIN, SERVFAIL
#   tcpdump        on lo, host 127.0.0.30 or 127.0.0.31, into OUT with .fstrm replaced by
#                  .pcap
#
# Then writes OUT.ldns.txt (and the same of the Knot file), dnstap-ldns's YAML rendering
# of every message (the oracle).
# Needs root and the Debian packages knot knot-module-dnstap knot-dnsutils unbound
# fstrm-bin dnstap-ldns tcpdump.  Usage: sudo data/record-dnstap.sh [OUT.fstrm]   (default data/dnstap.fstrm)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/dnstap.fstrm}
pcap=${out%.fstrm}.pcap
knot_out=${out%.fstrm}-knot.fstrm
rm -f "$knot_out"
w=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$w"; }
trap cleanup EXIT

R=127.0.0.30
A=127.0.0.31
mkdir -p "$w/zones" "$w/db" "$w/run"
cat > "$w/zones/dnstap.test.zone" <<'ZONE'
$ORIGIN dnstap.test.
$TTL 300
@       SOA   ns hostmaster 2026113001 3600 900 604800 300
@       NS    ns
ns      A     127.0.0.31
@       A     192.0.2.40
www     A     192.0.2.41
www     AAAA  2001:db8::41
@       MX    10 mail
mail    A     192.0.2.45
@       TXT   "v=spf1 mx -all"
alias   CNAME www
ZONE
cat > "$w/knot.conf" <<CONF
server:
    rundir: "$w/run"
    listen: $A@53
database:
    storage: "$w/db"
mod-dnstap:
  - id: tap
    sink: "$knot_out"
    identity: "auth-1"
    version: "knot 3.2"
    log-queries: on
    log-responses: on
template:
  - id: default
    storage: "$w/zones"
    global-module: mod-dnstap/tap
zone:
  - domain: dnstap.test
    file: dnstap.test.zone
  - domain: broken.test
    file: missing.zone
CONF
cat > "$w/unbound.conf" <<CONF
server:
    interface: $R
    outgoing-interface: $R
    port: 53
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    username: ""
    chroot: ""
    directory: "$w"
    pidfile: "$w/unbound.pid"
    use-syslog: no
    logfile: "$w/unbound.log"
    qname-minimisation: no
    prefetch: no
    local-zone: "test." nodefault
stub-zone:
    name: "dnstap.test"
    stub-addr: $A
stub-zone:
    name: "broken.test"
    stub-addr: $A
dnstap:
    dnstap-enable: yes
    dnstap-socket-path: "$w/dnstap.sock"
    dnstap-send-identity: yes
    dnstap-identity: "resolver-1"
    dnstap-send-version: yes
    dnstap-log-client-query-messages: yes
    dnstap-log-client-response-messages: yes
    dnstap-log-resolver-query-messages: yes
    dnstap-log-resolver-response-messages: yes
CONF

fstrm_capture -t protobuf:dnstap.Dnstap -u "$w/dnstap.sock" -w "$out" 2>"$w/fstrm.log" & pids+=($!)
tcpdump -i lo -U -s 0 -w "$pcap" "host $R or host $A" 2>"$w/tcpdump.log" & pids+=($!)
knotd -c "$w/knot.conf" 2>"$w/knot.log" & pids+=($!)
sleep 2
unbound -d -c "$w/unbound.conf" 2>"$w/unbound.err" & pids+=($!)
sleep 2

q() { kdig +time=5 +retry=0 "$@" > /dev/null || true; sleep 0.2; }
q -b 127.0.0.100 @$R www.dnstap.test A
q -b 127.0.0.100 @$R www.dnstap.test AAAA
q -b 127.0.0.100 @$R dnstap.test MX
q -b 127.0.0.100 @$R dnstap.test TXT +tcp
q -b 127.0.0.100 @$R alias.dnstap.test A
q -b 127.0.0.100 @$R nosuch.dnstap.test A
q -b 127.0.0.100 @$R www.broken.test A
q -b 127.0.0.101 @$R www.dnstap.test A
q -b 127.0.0.101 @$R mail.dnstap.test A
q -b 127.0.0.101 @$R nosuch.dnstap.test A +tcp
q -b 127.0.0.101 @$R broken.test MX
q -b 127.0.0.101 @$R WwW.DnStAp.TeSt A
sleep 1
# unbound first: it sends STOP on its socket, then fstrm_capture closes the file
kill "${pids[3]}"; sleep 1
kill "${pids[0]}" "${pids[1]}"; sleep 1
# knotd closes its dnstap file (writing its STOP) when it stops
kill "${pids[2]}"; sleep 1
echo "recorded $(stat -c %s "$out") bytes to $out and $(stat -c %s "$pcap") to $pcap"
dnstap-ldns -r "$out" -y > "$out.ldns.txt"
dnstap-ldns -r "$knot_out" -y > "$knot_out.ldns.txt"
echo "recorded $(stat -c %s "$knot_out") bytes to $knot_out"
