#!/usr/bin/env python3
"""Writes data/tunnels/*.pcap: the overlay traffic of data/vxlan-overlay.pcap
(real DNS recorded inside a VXLAN, see record-vxlan.sh) wrapped in the
encapsulations this machine's kernel cannot make (no GRE, Geneve, VLAN or
MPLS devices): one capture per kind, every overlay frame wrapped alike, with
its original time. Plain Python, no dependencies; the headers are written
field by field after their RFCs, and tshark is the oracle that reads them back
(make-tunnels.sh writes each file's .tshark.tsv).

    geneve.pcap       Ethernet/IPv4/UDP 6081/Geneve (one option)/Ethernet   RFC 8926
    gre.pcap          Ethernet/IPv4/GRE (key and sequence number)/IPv4     RFC 2784, 2890
    gre-eth.pcap      Ethernet/IPv6/GRE 0x6558/Ethernet                    transparent bridging
    erspan1.pcap      Ethernet/IPv4/GRE 0x88be (no sequence)/Ethernet      ERSPAN type I
    erspan2.pcap      Ethernet/IPv4/GRE 0x88be/ERSPAN II/Ethernet          draft-foschiano-erspan
    erspan3.pcap      Ethernet/IPv4/GRE 0x22eb/ERSPAN III (+subheader)/Ethernet
    gtp-u.pcap        Ethernet/IPv4/UDP 2152/GTP-U (extension header)/IP    3GPP TS 29.281
    mpls.pcap         Ethernet/MPLS (two labels)/IP                         RFC 3032
    pppoe.pcap        Ethernet/PPPoE session/PPP/IP                         RFC 2516
    qinq-vxlan.pcap   Ethernet/IPv4/UDP 4789/VXLAN/Ethernet/802.1ad/802.1Q/IP (nested tags)

Usage: data/make-tunnels.py [OVERLAY.pcap [OUT_DIR]]
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAC_A = bytes.fromhex("020000000a01")
MAC_B = bytes.fromhex("020000000a02")


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}[magic]
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    at, frames = 24, []
    while at + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[at:at + 16])
        frames.append((sec, frac // 1000 if nano else frac, data[at + 16:at + 16 + incl]))
        at += 16 + incl
    return linktype, frames


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for sec, usec, frame in frames:
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                    bytes(src), bytes(dst))
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:] + payload


def ipv6(src, dst, proto, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, 64, bytes(src),
                       bytes(dst)) + payload


def udp(sport, dport, payload):
    # checksum 0: none, as VXLAN and Geneve senders commonly send over IPv4
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(ethertype, payload, dst=MAC_B, src=MAC_A):
    return dst + src + struct.pack("!H", ethertype) + payload


OUT_A, OUT_B = [192, 0, 2, 1], [192, 0, 2, 2]
OUT6_A = [0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [1]
OUT6_B = [0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [2]


def inner_ip(frame):
    """The overlay Ethernet frame's IP packet and its EtherType."""
    return struct.unpack("!H", frame[12:14])[0], frame[14:]


def wrap(kind, frame, n):
    et, ip = inner_ip(frame)
    if kind == "geneve":
        # version 0, one 4-byte option (class 0x0103, type 0x80, length 1 word)
        opt = struct.pack("!HBB", 0x0103, 0x80, 1) + b"\xaa\xbb\xcc\xdd"
        gen = struct.pack("!BBH", len(opt) // 4, 0, 0x6558) + struct.pack("!I", 4242 << 8) + opt
        return ether(0x0800, ipv4(OUT_A, OUT_B, 17, udp(49152 + n % 1000, 6081, gen + frame), n))
    if kind == "gre":
        # C=0 K=1 S=1, key 4242, sequence n
        gre = struct.pack("!HHII", 0x3000, et, 4242, n)
        return ether(0x0800, ipv4(OUT_A, OUT_B, 47, gre + ip, n))
    if kind == "gre-eth":
        gre = struct.pack("!HH", 0x0000, 0x6558)
        return ether(0x86DD, ipv6(OUT6_A, OUT6_B, 47, gre + frame))
    if kind == "erspan1":
        gre = struct.pack("!HH", 0x0000, 0x88BE)
        return ether(0x0800, ipv4(OUT_A, OUT_B, 47, gre + frame, n))
    if kind == "erspan2":
        gre = struct.pack("!HHI", 0x1000, 0x88BE, n)
        # version 1, VLAN 0, COS 0, En 0, T 0, session 42; reserved, index 7
        span = struct.pack("!HHI", (1 << 12) | 0, 42, 7)
        return ether(0x0800, ipv4(OUT_A, OUT_B, 47, gre + span + frame, n))
    if kind == "erspan3":
        gre = struct.pack("!HHI", 0x1000, 0x22EB, n)
        # version 2, VLAN 0, session 42; timestamp; SGT 0, P 0, FT 0, HW ID 1, D 0, Gra 0, O 1
        span = struct.pack("!HHIHH", (2 << 12) | 0, 42, 123456 + n, 0, (1 << 4) | 1)
        sub = struct.pack("!II", 0, 0)  # platform-specific subheader (platform id 0)
        return ether(0x0800, ipv4(OUT_A, OUT_B, 47, gre + span + sub + frame, n))
    if kind == "gtp-u":
        # version 1, PT 1, E 1; G-PDU; TEID 0x1234; then a PDU session container extension
        ext = struct.pack("!BBBB", 1, 0x10, 0x01, 0)
        body = struct.pack("!HBB", 0, 0, 0x85) + ext + ip
        gtp = struct.pack("!BBHI", 0x34, 0xFF, len(body), 0x1234) + body
        return ether(0x0800, ipv4(OUT_A, OUT_B, 17, udp(2152, 2152, gtp), n))
    if kind == "mpls":
        labels = struct.pack("!II", (1000 << 12) | 64, (2000 << 12) | (1 << 8) | 64)
        return ether(0x8847, labels + ip)
    if kind == "pppoe":
        proto = 0x0021 if et == 0x0800 else 0x0057
        ppp = struct.pack("!H", proto) + ip
        return ether(0x8864, struct.pack("!BBHH", 0x11, 0, 0x0042, len(ppp)) + ppp)
    if kind == "qinq-vxlan":
        tagged = frame[:12] + struct.pack("!HHHH", 0x88A8, 100, 0x8100, 200) + frame[12:]
        vx = struct.pack("!II", 0x08000000, 4242 << 8)
        return ether(0x0800, ipv4(OUT_A, OUT_B, 17, udp(49152 + n % 1000, 4789, vx + tagged), n))
    raise ValueError(kind)


KINDS = ["geneve", "gre", "gre-eth", "erspan1", "erspan2", "erspan3", "gtp-u", "mpls",
         "pppoe", "qinq-vxlan"]


def main():
    overlay = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "vxlan-overlay.pcap")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "tunnels")
    linktype, frames = read_pcap(overlay)
    assert linktype == 1, "the overlay capture is Ethernet"
    os.makedirs(out, exist_ok=True)
    for kind in KINDS:
        wrapped = [(s, u, wrap(kind, f, n + 1)) for n, (s, u, f) in enumerate(frames)]
        write_pcap(os.path.join(out, kind + ".pcap"), wrapped)
        print(f"{kind}.pcap: {len(wrapped)} frames")


if __name__ == "__main__":
    main()
