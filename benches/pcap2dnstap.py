#!/usr/bin/env python3
"""Writes the DNS messages of a capture made by `dnsq synth` as a dnstap log:
the same traffic, message for message, for benches/dnstap.sh.

    benches/pcap2dnstap.py IN.pcap OUT.fstrm

Each message becomes the dnstap record a resolver would write for it: a query
to port 53 is CLIENT_QUERY (RESOLVER_QUERY when it comes from the resolver's
own address, the upstream leg), an answer CLIENT_RESPONSE or RESOLVER_RESPONSE,
at the packet's time, with its addresses, ports and transport. Only the
layouts `dnsq synth` writes are read (Ethernet, IPv4 without options or IPv6,
UDP, or TCP carrying one whole message); anything else is an error.
Standard library only; the protobuf and Frame Streams encodings are written
by hand from proto/dnstap.proto and fstrm's control.h.
"""
import struct
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(tag, n):
    return varint(tag << 3) + varint(n)


def field_bytes(tag, b):
    return varint(tag << 3 | 2) + varint(len(b)) + b


def field_fixed32(tag, n):
    return varint(tag << 3 | 5) + struct.pack("<I", n)


def control(ctype, content=None):
    body = struct.pack(">I", ctype)
    if content is not None:
        body += struct.pack(">II", 1, len(content)) + content
    return struct.pack(">II", 0, len(body)) + body


# Message.Type
CLIENT_QUERY, CLIENT_RESPONSE, RESOLVER_QUERY, RESOLVER_RESPONSE = 5, 6, 3, 4
RESOLVERS = {bytes([10, 0, 0, 53]), bytes.fromhex("20010db8000000000000000000000053"),
             bytes([214, 78, 120, 53]), bytes.fromhex("20010218000000000000000000000053")}


def record(ts_us, src, dst, sport, dport, tcp, dns):
    response = sport == 53
    initiator, responder = (dst, src) if response else (src, dst)
    iport, rport = (dport, sport) if response else (sport, dport)
    upstream = initiator in RESOLVERS
    kind = (RESOLVER_QUERY if upstream else CLIENT_QUERY) + (1 if response else 0)
    sec, nsec = divmod(ts_us, 1_000_000)
    nsec *= 1000
    m = field_varint(1, kind)
    m += field_varint(2, 1 if len(src) == 4 else 2)
    m += field_varint(3, 2 if tcp else 1)
    m += field_bytes(4, initiator) + field_bytes(5, responder)
    m += field_varint(6, iport) + field_varint(7, rport)
    if response:
        m += field_varint(12, sec) + field_fixed32(13, nsec) + field_bytes(14, dns)
    else:
        m += field_varint(8, sec) + field_fixed32(9, nsec) + field_bytes(10, dns)
    d = field_bytes(1, b"synth-resolver") + field_bytes(14, m) + field_varint(15, 1)
    return struct.pack(">I", len(d)) + d


def main(src_path, dst_path):
    data = open(src_path, "rb").read()
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        sys.exit(f"{src_path}: not a little-endian microsecond pcap from dnsq synth")
    out = open(dst_path, "wb")
    out.write(control(2, b"protobuf:dnstap.Dnstap"))
    pos, n = 24, 0
    while pos + 16 <= len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        f = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        ethertype = f[12:14]
        if ethertype == b"\x08\x00":
            proto, src, dst, l4 = f[23], f[26:30], f[30:34], f[34:]
        elif ethertype == b"\x86\xdd":
            proto, src, dst, l4 = f[20], f[22:38], f[38:54], f[54:]
        else:
            sys.exit(f"{src_path}: frame {n + 1}: ethertype {ethertype.hex()}")
        sport, dport = struct.unpack_from(">HH", l4)
        tcp = proto == 6
        dns = l4[22:] if tcp else l4[8:]
        out.write(record(sec * 1_000_000 + usec, src, dst, sport, dport, tcp, dns))
        n += 1
    out.write(control(3))
    out.close()
    print(f"{n} messages written to {dst_path}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
