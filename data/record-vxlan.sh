#!/usr/bin/env bash
# Records data/vxlan.pcap: DNS inside VXLAN, made on this machine with two Linux network
# namespaces joined by a veth pair (the underlay, 10.99.0.0/24) and a VXLAN device on
# each end (VNI 4242, UDP 4789; the overlay, 10.98.0.0/24 and fd98::/64):
#
#   dnsq-vxa   the client side: kdig asks over UDP and TCP, IPv4 and IPv6
#   dnsq-vxb   unbound answering from local data (NOERROR of several types, NXDOMAIN,
#              a truncated UDP answer retried over TCP, and SERVFAIL for a name outside
#              its data, since it cannot reach the Internet from the namespace)
#
# tcpdump records, at the same time, the underlay (OUT: every DNS message inside VXLAN)
# and, as the reference, the overlay device itself (OUT with .pcap replaced by
# -overlay.pcap: the same messages without the tunnel). Then writes OUT.tshark.tsv
# with tshark (the same export as sample.pcap.tshark.tsv; tshark decodes VXLAN on 4789),
# and data/tunnels/ (make-tunnels.py: the overlay in Geneve, GRE, ERSPAN, GTP-U, MPLS,
# PPPoE and QinQ inside VXLAN) with a .tshark.tsv for each file.
#
# Addresses exist only inside the namespaces; nothing leaves the machine.
# Needs root, a kernel with VXLAN devices, and the Debian packages iproute2 unbound
# knot-dnsutils tcpdump tshark.
# Usage: sudo data/record-vxlan.sh [OUT.pcap]   (default data/vxlan.pcap)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/vxlan.pcap}
overlay=${out%.pcap}-overlay.pcap
w=$(mktemp -d)
A=dnsq-vxa
B=dnsq-vxb
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
    rm -rf "$w"
}
trap cleanup EXIT

ip netns add $A
ip netns add $B
ip link add dnsq-va type veth peer name dnsq-vb
ip link set dnsq-va netns $A
ip link set dnsq-vb netns $B
ip -n $A addr add 10.99.0.1/24 dev dnsq-va
ip -n $B addr add 10.99.0.2/24 dev dnsq-vb
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set dnsq-va up
ip -n $B link set dnsq-vb up
ip -n $A link add vx0 type vxlan id 4242 dstport 4789 local 10.99.0.1 remote 10.99.0.2 dev dnsq-va
ip -n $B link add vx0 type vxlan id 4242 dstport 4789 local 10.99.0.2 remote 10.99.0.1 dev dnsq-vb
ip -n $A addr add 10.98.0.1/24 dev vx0
ip -n $B addr add 10.98.0.2/24 dev vx0
ip -n $A addr add fd98::1/64 dev vx0 nodad
ip -n $B addr add fd98::2/64 dev vx0 nodad
ip -n $A link set vx0 up
ip -n $B link set vx0 up

cat > "$w/unbound.conf" <<CONF
server:
    interface: 10.98.0.2
    interface: fd98::2
    port: 53
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$w"
    pidfile: "$w/unbound.pid"
    use-syslog: no
    logfile: "$w/unbound.log"
    access-control: 10.98.0.0/24 allow
    access-control: fd98::/64 allow
    do-not-query-localhost: yes
    module-config: "iterator"
    local-zone: "test." nodefault
    local-zone: "tunnel.test." static
    local-data: "tunnel.test. 300 IN SOA ns.tunnel.test. hostmaster.tunnel.test. 1 3600 900 604800 300"
    local-data: "www.tunnel.test. 300 IN A 192.0.2.80"
    local-data: "www.tunnel.test. 300 IN AAAA 2001:db8::80"
    local-data: "tunnel.test. 300 IN MX 10 mail.tunnel.test."
    local-data: "mail.tunnel.test. 300 IN A 192.0.2.25"
    local-data: 'tunnel.test. 300 IN TXT "v=spf1 mx -all"'
CONF
# a name with many addresses, so that its UDP answer is truncated and asked again over TCP
for i in $(seq 1 60); do
    echo "    local-data: \"big.tunnel.test. 300 IN A 198.51.100.$i\"" >> "$w/unbound.conf"
done

ip netns exec $A tcpdump -i dnsq-va -U -s 0 -w "$out" 'udp port 4789' 2>"$w/under.log" & pids+=($!)
ip netns exec $A tcpdump -i vx0 -U -s 0 -w "$overlay" 'port 53' 2>"$w/over.log" & pids+=($!)
ip netns exec $B unbound -d -c "$w/unbound.conf" 2>"$w/unbound.err" & pids+=($!)
sleep 2

q() { ip netns exec $A kdig +time=5 +retry=0 "$@" > /dev/null || true; sleep 0.2; }
for s in 10.98.0.2 fd98::2; do
    q @$s www.tunnel.test A
    q @$s www.tunnel.test AAAA
    q @$s tunnel.test MX
    q @$s tunnel.test TXT
    q @$s nosuch.tunnel.test A
    q @$s www.tunnel.test A +tcp
    q @$s +bufsize=512 big.tunnel.test A
    q @$s +ignore +bufsize=512 big.tunnel.test A
    q @$s www.elsewhere.example A
done
sleep 1
kill "${pids[0]}" "${pids[1]}"
sleep 1
echo "recorded $(stat -c %s "$out") bytes to $out and $(stat -c %s "$overlay") to $overlay"

tshark -2 -n -r "$out" -Y "dns" -T fields -E header=y \
  -e frame.number -e frame.time_epoch -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst \
  -e udp.srcport -e tcp.srcport -e udp.dstport -e tcp.dstport -e dns.id \
  -e dns.flags.response -e dns.flags.rcode -e dns.qry.name -e dns.qry.type \
  -e dns.time -e dns.response_to -e dns.response_in > "$out.tshark.tsv" 2>/dev/null

# The encapsulations the kernel cannot make here, written around the overlay's frames
python3 "$here/make-tunnels.py" "$overlay" "$here/tunnels"
for f in "$here"/tunnels/*.pcap "$overlay"; do
    tshark -2 -n -r "$f" -Y "dns" -T fields -E header=y \
      -e frame.number -e frame.time_epoch -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst \
      -e udp.srcport -e tcp.srcport -e udp.dstport -e tcp.dstport -e dns.id \
      -e dns.flags.response -e dns.flags.rcode -e dns.qry.name -e dns.qry.type \
      -e dns.time -e dns.response_to -e dns.response_in > "$f.tshark.tsv" 2>/dev/null
done
