#!/usr/bin/env bash
# Records data/legs.pcap: a resolver and an authority on ONE address, told apart only by port.
#
#   knotd    authoritative on 127.0.0.20 port 5300 for legs.test, and for broken.test
#            configured without a zone file: it answers SERVFAIL
#   unbound  resolver on 127.0.0.20 port 53; it queries the authority from 127.0.0.20
#            (stub zones at 127.0.0.20@5300), so both legs run between the same address
#   dig      clients of the resolver on 127.0.0.100 and 127.0.0.101, a local stub on
#            127.0.0.20 itself (downstream, not upstream), and one query from 127.0.0.100
#            straight to the authority on port 5300
#   tcpdump  on lo, port 53 or port 5300
#
# Then writes beside OUT, with tshark only: OUT.tshark.tsv (the same export as
# sample.pcap.tshark.tsv, plus port 5300 decoded as DNS) and OUT with .pcap replaced
# by .expected.tsv (the figures listed in data/README.md).
#
# Needs root and the Debian packages knot knot-dnsutils unbound dnsutils tcpdump tshark.
# Usage: sudo data/record-legs.sh [OUT.pcap]   (default data/legs.pcap)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/legs.pcap}
w=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$w"; }
trap cleanup EXIT

A=127.0.0.20   # the one address: resolver on :53, authority on :5300
mkdir -p "$w/zones" "$w/db" "$w/run"
cat > "$w/zones/legs.test.zone" <<'ZONE'
$ORIGIN legs.test.
$TTL 300
@       SOA   ns hostmaster 2026113001 3600 900 604800 300
@       NS    ns
ns      A     127.0.0.20
@       A     192.0.2.20
www     A     192.0.2.21
www     AAAA  2001:db8::21
@       MX    10 mail
mail    A     192.0.2.25
mail    AAAA  2001:db8::25
@       TXT   "v=spf1 mx -all"
alias   CNAME www
api     A     192.0.2.30
ZONE
cat > "$w/knot.conf" <<CONF
server:
    rundir: "$w/run"
    listen: $A@5300
database:
    storage: "$w/db"
template:
  - id: default
    storage: "$w/zones"
zone:
  - domain: legs.test
    file: legs.test.zone
  - domain: broken.test
    file: missing.zone
CONF
cat > "$w/unbound.conf" <<CONF
server:
    interface: $A
    outgoing-interface: $A
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
    verbosity: 1
    qname-minimisation: no
    prefetch: no
    harden-referral-path: no
    local-zone: "test." nodefault
stub-zone:
    name: "legs.test"
    stub-addr: $A@5300
stub-zone:
    name: "broken.test"
    stub-addr: $A@5300
CONF

tcpdump -i lo -U -s 0 -w "$out" 'port 53 or port 5300' 2>"$w/tcpdump.log" & pids+=($!)
knotd -c "$w/knot.conf" 2>"$w/knot.log" & pids+=($!)
sleep 2
unbound -d -c "$w/unbound.conf" 2>"$w/unbound.err" & pids+=($!)
sleep 2

q() { dig +time=10 +tries=1 "$@" > /dev/null || true; sleep 0.2; }
# First client: every name is new to the resolver (cache misses: one upstream query each)
q -b 127.0.0.100 @$A www.legs.test A
q -b 127.0.0.100 @$A www.legs.test AAAA
q -b 127.0.0.100 @$A legs.test MX
q -b 127.0.0.100 @$A legs.test TXT
q -b 127.0.0.100 @$A alias.legs.test A
q -b 127.0.0.100 @$A nosuch.legs.test A
q -b 127.0.0.100 @$A www.broken.test A
# Second client: repeats (cache hits, NXDOMAIN from the negative cache), new names, SERVFAIL
q -b 127.0.0.101 @$A www.legs.test A
q -b 127.0.0.101 @$A legs.test MX
q -b 127.0.0.101 @$A mail.legs.test A
q -b 127.0.0.101 @$A nosuch.legs.test A
q -b 127.0.0.101 @$A gone.legs.test AAAA
q -b 127.0.0.101 @$A broken.test MX
q -b 127.0.0.101 @$A www.broken.test A
# First client again: cache hits only
q -b 127.0.0.100 @$A www.legs.test A
q -b 127.0.0.100 @$A alias.legs.test A
# A local stub on the resolver's host: 127.0.0.20 -> 127.0.0.20:53 is downstream traffic
q -b $A @$A api.legs.test A
# A client asking the authority directly, recursion off: neither leg of the resolver
q -b 127.0.0.100 -p 5300 @$A +norec www.legs.test A
sleep 1
kill "${pids[0]}"; sleep 1
echo "recorded $(stat -c %s "$out") bytes to $out"

# The tshark export, as for sample.pcap.tshark.tsv, with port 5300 decoded as DNS
ts() { tshark -2 -n -r "$out" -d tcp.port==8053,dns -d udp.port==8053,dns \
  -d udp.port==5300,dns -d tcp.port==5300,dns "$@" 2>/dev/null; }
ts -Y "dns || mdns || llmnr" -T fields -E header=y \
  -e frame.number -e frame.time_epoch -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst \
  -e udp.srcport -e tcp.srcport -e udp.dstport -e tcp.dstport -e dns.id \
  -e dns.flags.response -e dns.flags.rcode -e dns.qry.name -e dns.qry.type \
  -e dns.time -e dns.response_to -e dns.response_in > "$out.tshark.tsv"

# The expected figures: distinct messages, each (client ip, client port, id) once
to53="(udp.dstport==53 || tcp.dstport==53) && ip.dst==$A"
to5300="(udp.dstport==5300 || tcp.dstport==5300) && ip.dst==$A"
from53="(udp.srcport==53 || tcp.srcport==53) && ip.src==$A"
from5300="(udp.srcport==5300 || tcp.srcport==5300) && ip.src==$A"
msgs() {  # FILTER PEER_IP_FIELD PEER_PORT_SUFFIX: one line per distinct message
  ts -Y "$1" -T fields -e "$2" -e "udp.$3port" -e "tcp.$3port" -e dns.id | sort -u; }
qnames() {  # FILTER: one lower-cased name per distinct query
  ts -Y "$1" -T fields -e ip.src -e udp.srcport -e tcp.srcport -e dns.id -e dns.qry.name \
    | sort -u | cut -f5 | tr 'A-Z' 'a-z' | sed 's/\.$//'; }
down_q="dns.flags.response==0 && $to53"
up_q="dns.flags.response==0 && $to5300 && ip.src==$A"
expected=${out%.pcap}.expected.tsv
{
  printf 'downstream_queries\t%s\n' "$(msgs "$down_q" ip.src src | wc -l)"
  printf 'upstream_queries\t%s\n' "$(msgs "$up_q" ip.src src | wc -l)"
  printf 'direct_queries\t%s\n' "$(msgs "dns.flags.response==0 && $to5300 && ip.src==127.0.0.100" ip.src src | wc -l)"
  printf 'downstream_servfail\t%s\n' "$(msgs "dns.flags.response==1 && dns.flags.rcode==2 && $from53" ip.dst dst | wc -l)"
  printf 'upstream_servfail\t%s\n' "$(msgs "dns.flags.response==1 && dns.flags.rcode==2 && $from5300 && ip.dst==$A" ip.dst dst | wc -l)"
  printf 'downstream_clients\t%s\n' "$(ts -Y "$down_q" -T fields -e ip.src | sort -u | wc -l)"
  qnames "$down_q" | sort | uniq -c | awk '{printf "downstream_qname\t%s\t%s\n", $2, $1}'
  qnames "$up_q" | sort | uniq -c | awk '{printf "upstream_qname\t%s\t%s\n", $2, $1}'
} > "$expected"
echo "wrote $out.tshark.tsv and $expected"
