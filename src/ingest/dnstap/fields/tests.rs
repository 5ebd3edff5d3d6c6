use prost::Message as _;

use super::*;

const QUERY: &[u8] = b"\x2e\x0f\x01\x20\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01";
const RESPONSE: &[u8] = b"\x2e\x0f\x81\xa0\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01";

/// A CLIENT_QUERY (5) or CLIENT_RESPONSE (6) over IPv4/UDP, as prost writes it.
fn message(m: Message) -> Vec<u8> {
    Dnstap {
        identity: Some(b"resolver-1".to_vec()),
        version: None,
        extra: None,
        r#type: 1,
        message: Some(m),
    }
    .encode_to_vec()
}

fn exchange(t: i32) -> Message {
    Message {
        r#type: t,
        socket_family: Some(1),
        socket_protocol: Some(1),
        query_address: Some(vec![192, 0, 2, 1]),
        response_address: Some(vec![192, 0, 2, 53]),
        query_port: Some(40000),
        response_port: Some(53),
        query_time_sec: Some(1_700_000_000),
        query_time_nsec: Some(5),
        query_message: Some(QUERY.to_vec()),
        response_time_sec: Some(1_700_000_001),
        response_time_nsec: Some(7),
        response_message: Some(RESPONSE.to_vec()),
        ..Message::default()
    }
}

fn v4(a: [u8; 4], port: u16) -> (IpAddr, u16) {
    (IpAddr::V4(Ipv4Addr::from(a)), port)
}

#[test]
fn varints_as_prost_writes_them() {
    for v in [0, 1, 127, 128, 150, 300, 1 << 32, u64::MAX - 1, u64::MAX] {
        let mut buf = Vec::new();
        prost::encoding::encode_varint(v, &mut buf);
        buf.push(0xee);
        let mut b = &buf[..];
        assert_eq!(varint(&mut b), Some(v));
        assert_eq!(b, [0xee], "{v}: the rest is left");
    }
    // the protobuf guide's example: 150 is 96 01
    assert_eq!(varint(&mut &[0x96, 0x01][..]), Some(150));
    // a tenth byte over 1, an eleventh byte, a cut one
    let mut ten = [0xff; 10];
    ten[9] = 0x02;
    assert_eq!(varint(&mut &ten[..]), None);
    let mut eleven = [0xff; 11];
    eleven[10] = 0x01;
    assert_eq!(varint(&mut &eleven[..]), None);
    assert_eq!(varint(&mut &[0x80][..]), None);
    assert_eq!(varint(&mut &[][..]), None);
}

#[test]
fn lengths_and_fields() {
    let mut b = &[3, b'a', b'b', b'c', b'd'][..];
    assert_eq!(bytes(&mut b), Some(&b"abc"[..]));
    assert_eq!(b, b"d");
    assert_eq!(bytes(&mut &[5, b'a'][..]), None);
    assert_eq!(take(&mut &[1, 2][..], u64::MAX), None);
    // field 1 as a varint, a fixed32, a fixed64 and a group
    let mut b = &[0x08, 0x96, 0x01, 0x0d, 1, 0, 0, 0][..];
    assert!(matches!(field(&mut b, 100), Some((1, Value::Varint(150)))));
    assert!(matches!(field(&mut b, 100), Some((1, Value::Fixed32(1)))));
    assert!(b.is_empty());
    let mut b = &[0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1b, 0x08, 0x01, 0x1c][..];
    assert!(matches!(field(&mut b, 100), Some((2, Value::Other))));
    assert!(matches!(field(&mut b, 100), Some((3, Value::Other))));
    assert!(b.is_empty());
    // a group with a field in it needs a level of nesting left
    assert!(field(&mut &[0x1b, 0x08, 0x01, 0x1c][..], 1).is_none());
    assert!(field(&mut &[0x1b, 0x1c][..], 1).is_some());
    // tag 0, wire types 6 and 7, an end of group with no start
    for bad in [&[0x00, 0x01][..], &[0x0e], &[0x0f], &[0x0c]] {
        assert!(field(&mut &bad[..], 100).is_none(), "{bad:02x?}");
    }
}

#[test]
fn a_query_is_sent_by_its_initiator() {
    let frame = message(exchange(5));
    let e = Entry::of(&frame).expect("a usable query");
    assert_eq!(
        e,
        Entry {
            kind: MessageType(5),
            time: 1_700_000_000_000_000_005,
            query_time: None,
            src: v4([192, 0, 2, 1], 40000),
            dst: v4([192, 0, 2, 53], 53),
            protocol: Some(1),
            dns: QUERY,
            identity: Some(b"resolver-1"),
        }
    );
}

#[test]
fn a_response_is_sent_by_its_responder_and_keeps_its_query_time() {
    let frame = message(exchange(6));
    let e = Entry::of(&frame).expect("a usable response");
    assert_eq!(e.kind, MessageType(6));
    assert_eq!(e.time, 1_700_000_001_000_000_007);
    assert_eq!(e.query_time, Some(1_700_000_000_000_000_005));
    assert_eq!(
        (e.src, e.dst),
        (v4([192, 0, 2, 53], 53), v4([192, 0, 2, 1], 40000))
    );
    assert_eq!(e.dns, RESPONSE);
    // a response logged without its query's time
    let frame = message(Message {
        query_time_sec: None,
        ..exchange(6)
    });
    assert_eq!(Entry::of(&frame).map(|e| e.query_time), Ok(None));
}

#[test]
fn messages_that_cannot_be_rows() {
    let not_message = Dnstap {
        r#type: 2,
        ..Dnstap::decode(&message(exchange(5))[..]).expect("prost reads its own")
    }
    .encode_to_vec();
    let no_message = Dnstap {
        identity: None,
        version: None,
        extra: None,
        r#type: 1,
        message: None,
    }
    .encode_to_vec();
    for (frame, why) in [
        (not_message, Unusable::NotMessage),
        (no_message, Unusable::NotMessage),
        (b"\xff\xff".to_vec(), Unusable::NotMessage),
        // the response's side has no bytes (only the query's)
        (
            message(Message {
                response_message: None,
                ..exchange(6)
            }),
            Unusable::NoDns,
        ),
        (
            message(Message {
                query_message: Some(Vec::new()),
                ..exchange(5)
            }),
            Unusable::NoDns,
        ),
        (
            message(Message {
                query_time_sec: None,
                ..exchange(5)
            }),
            Unusable::NoTime,
        ),
        // no bytes and no time: the bytes are missed first
        (
            message(Message {
                response_message: None,
                response_time_sec: None,
                ..exchange(6)
            }),
            Unusable::NoDns,
        ),
    ] {
        assert_eq!(Entry::of(&frame), Err(why), "{frame:02x?}");
    }
}

#[test]
fn odd_addresses_ports_and_times() {
    let frame = message(Message {
        socket_family: Some(2),
        query_address: None,
        response_address: Some(vec![1, 2, 3, 4, 5]),
        query_port: Some(70_000),
        query_time_nsec: None,
        response_time_nsec: Some(2_000_000_000),
        ..exchange(6)
    });
    let e = Entry::of(&frame).expect("a usable response");
    let none = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    // no address, or one of 5 bytes: the family's unspecified one; a port
    // over 65535: 0
    assert_eq!((e.src, e.dst), ((none, 53), (none, 0)));
    // nanoseconds past a second are held to it; none are 0
    assert_eq!(e.time, 1_700_000_001_999_999_999);
    assert_eq!(e.query_time, Some(1_700_000_000_000_000_000));
    let v6 = message(Message {
        socket_family: Some(2),
        query_address: Some(Ipv6Addr::LOCALHOST.octets().to_vec()),
        ..exchange(5)
    });
    let e = Entry::of(&v6).expect("a usable query");
    assert_eq!(e.src, (IpAddr::V6(Ipv6Addr::LOCALHOST), 40000));
    // an empty identity is none
    let mut d = Dnstap::decode(&v6[..]).expect("prost reads its own");
    d.identity = Some(Vec::new());
    let anon = d.encode_to_vec();
    assert_eq!(Entry::of(&anon).map(|e| e.identity), Ok(None));
    assert_eq!(time_wide(None, Some(5)), None);
}

#[test]
fn servers_are_numbered_once_each() {
    // unique to this test: the table is shared by the whole process
    let a = server_number(b"fields-test-server-a");
    let b = server_number(b"fields-test-server-b");
    assert_ne!(a, b);
    assert!(a >= 1 && b >= 1);
    assert_eq!(server_number(b"fields-test-server-a"), a);
    assert_eq!(server_name(a).as_deref(), Some("fields-test-server-a"));
    assert_eq!(server_name(b).as_deref(), Some("fields-test-server-b"));
    assert_eq!(server_name(0), None);
    assert_eq!(server_name(u32::MAX), None);
    // two identities that are not UTF-8 and differ only where they are not
    // are two servers, named with those bytes escaped
    let c = server_number(b"fields-test-\xfe");
    let d = server_number(b"fields-test-\xff");
    assert_ne!(c, d);
    assert_eq!(server_name(c).as_deref(), Some("fields-test-\\xfe"));
    assert_eq!(server_name(d).as_deref(), Some("fields-test-\\xff"));
}

#[test]
fn a_real_log_gives_its_entries() {
    // data/dnstap.fstrm, rendered by dnstap-ldns in data/dnstap.fstrm.ldns.txt
    let f = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/dnstap.fstrm"))
        .expect("data/dnstap.fstrm is in the repository");
    let entries: Vec<Entry> = frames(&f)
        .expect("a dnstap START")
        .map(|frame| Entry::of(frame).expect("a usable message"))
        .collect();
    let count = |t: i32| entries.iter().filter(|e| e.kind == MessageType(t)).count();
    // CLIENT_QUERY/RESPONSE, RESOLVER_QUERY/RESPONSE
    assert_eq!([count(5), count(6), count(3), count(4)], [12, 12, 17, 17]);
    let first = &entries[0];
    assert_eq!(first.kind, MessageType(5));
    // 2026-11-30 21:58:15.610255 (dnstap-ldns shows microseconds)
    assert_eq!(first.time / 1000, 1_796_075_895_610_255);
    assert_eq!(first.src, v4([127, 0, 0, 100], 56192));
    assert_eq!(first.dst, v4([127, 0, 0, 30], 53));
    assert_eq!(first.protocol, Some(1));
    assert_eq!(first.identity, Some(&b"resolver-1"[..]));
    let answer = entries
        .iter()
        .find(|e| e.kind == MessageType(6))
        .expect("a CLIENT_RESPONSE");
    assert_eq!(answer.time / 1000, 1_796_075_895_611_322);
    assert_eq!(answer.src, v4([127, 0, 0, 30], 53));
    assert_eq!(answer.dst, v4([127, 0, 0, 100], 56192));
    assert_eq!(&answer.dns[..2], &first.dns[..2], "the same DNS id");
}
