//! dnstap (<https://dnstap.info>): the DNS messages a server logged itself, as
//! protobuf `Dnstap` messages in a Frame Streams file.
//!
//! Frame Streams (farsightsec/fstrm, `fstrm/control.h`): big-endian 32-bit
//! lengths throughout. A data frame is its length (not 0) and that many bytes.
//! A control frame is the escape (a length of 0), the control frame's length
//! (at most 512), its type (ACCEPT 1, START 2, STOP 3, READY 4, FINISH 5) and
//! fields (type 1, CONTENT_TYPE, with a length and bytes). A file is START
//! (content type `protobuf:dnstap.Dnstap`), data frames, STOP; a writer that
//! was killed leaves no STOP. The reader takes every whole frame before a cut
//! or a corrupt length and says where reading stopped.
//!
//! The protobuf messages below mirror `proto/dnstap.proto` (vendored from
//! dnstap/dnstap.pb, CC0) field for field; enums are read as the integers
//! they are on the wire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use prost::Message as _;

mod fields;
mod frames;

pub use fields::*;
pub use frames::*;

/// The Frame Streams content type of dnstap.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// The largest data frame read (fstrm's own reader stops at 1 MiB; a DNS
/// message is at most 64 KiB).
pub const MAX_FRAME: usize = 1 << 20;
/// The largest control frame (fstrm's limit).
const MAX_CONTROL: usize = 512;
const CONTROL_START: u32 = 2;
const CONTROL_STOP: u32 = 3;
const FIELD_CONTENT_TYPE: u32 = 1;

/// `dnstap.Dnstap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dnstap {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub version: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub extra: Option<Vec<u8>>,
    /// `Dnstap.Type`: MESSAGE (1) is the only one.
    #[prost(int32, required, tag = "15")]
    pub r#type: i32,
    #[prost(message, optional, tag = "14")]
    pub message: Option<Message>,
}

/// `dnstap.Message`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// `Message.Type`: see [`MessageType`].
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    /// `SocketFamily`: INET 1, INET6 2.
    #[prost(int32, optional, tag = "2")]
    pub socket_family: Option<i32>,
    /// `SocketProtocol`: see `link::Transport::of_dnstap`.
    #[prost(int32, optional, tag = "3")]
    pub socket_protocol: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub query_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub response_address: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "6")]
    pub query_port: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    pub response_port: Option<u32>,
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "10")]
    pub query_message: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "11")]
    pub query_zone: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "14")]
    pub response_message: Option<Vec<u8>>,
    /// `HttpProtocol` of DoH: HTTP1 1, HTTP2 2, HTTP3 3.
    #[prost(int32, optional, tag = "16")]
    pub http_protocol: Option<i32>,
}

/// `Message.Type`: who logged the message and at which end of an exchange.
/// A response's value is its query's plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageType(pub i32);

impl MessageType {
    const NAMES: [&'static str; 14] = [
        "AUTH_QUERY",
        "AUTH_RESPONSE",
        "RESOLVER_QUERY",
        "RESOLVER_RESPONSE",
        "CLIENT_QUERY",
        "CLIENT_RESPONSE",
        "FORWARDER_QUERY",
        "FORWARDER_RESPONSE",
        "STUB_QUERY",
        "STUB_RESPONSE",
        "TOOL_QUERY",
        "TOOL_RESPONSE",
        "UPDATE_QUERY",
        "UPDATE_RESPONSE",
    ];

    pub fn is_response(self) -> bool {
        self.0 % 2 == 0
    }

    /// `CLIENT_RESPONSE`, or `TYPE99` for a value this dnsq does not know.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match usize::try_from(self.0 - 1)
            .ok()
            .and_then(|i| Self::NAMES.get(i))
        {
            Some(name) => (*name).into(),
            None => format!("TYPE{}", self.0).into(),
        }
    }
}

impl Message {
    pub fn kind(&self) -> MessageType {
        MessageType(self.r#type)
    }

    /// The query's time in nanoseconds since 1970, when the server logged it.
    pub fn query_time_ns(&self) -> Option<i64> {
        time_ns(self.query_time_sec, self.query_time_nsec)
    }

    pub fn response_time_ns(&self) -> Option<i64> {
        time_ns(self.response_time_sec, self.response_time_nsec)
    }

    pub fn query_ip(&self) -> Option<IpAddr> {
        address(self.query_address.as_deref())
    }

    pub fn response_ip(&self) -> Option<IpAddr> {
        address(self.response_address.as_deref())
    }
}

fn time_ns(sec: Option<u64>, nsec: Option<u32>) -> Option<i64> {
    i64::try_from(time_wide(sec, nsec)?).ok()
}

/// 4 bytes are IPv4, 16 IPv6; anything else is no address.
fn address(b: Option<&[u8]>) -> Option<IpAddr> {
    match b? {
        [a, b, c, d] => Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d))),
        b if b.len() == 16 => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// Decodes one data frame; `None` for bytes that are not a `Dnstap` message.
pub fn decode(frame: &[u8]) -> Option<Dnstap> {
    Dnstap::decode(frame).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(ty: u32, content: Option<&[u8]>) -> Vec<u8> {
        let mut body = ty.to_be_bytes().to_vec();
        if let Some(c) = content {
            body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
            body.extend_from_slice(&(c.len() as u32).to_be_bytes());
            body.extend_from_slice(c);
        }
        let mut f = vec![0, 0, 0, 0];
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend(body);
        f
    }

    fn data(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    fn message(t: i32) -> Vec<u8> {
        Dnstap {
            identity: Some(b"ns1".to_vec()),
            version: None,
            extra: None,
            r#type: 1,
            message: Some(Message {
                r#type: t,
                socket_family: Some(1),
                socket_protocol: Some(1),
                query_address: Some(vec![192, 0, 2, 1]),
                response_address: Some(vec![192, 0, 2, 53]),
                query_port: Some(40000),
                response_port: Some(53),
                query_time_sec: Some(1_700_000_000),
                query_time_nsec: Some(5),
                ..Message::default()
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn frames_between_start_and_stop() {
        let mut f = control(CONTROL_START, Some(CONTENT_TYPE));
        f.extend(data(&message(5)));
        f.extend(data(&message(6)));
        f.extend(control(CONTROL_STOP, None));
        let mut r = frames(&f).unwrap();
        let got: Vec<Dnstap> = r.by_ref().map(|b| decode(b).unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(r.stop, None);
        let m = got[0].message.as_ref().unwrap();
        assert_eq!(m.kind().name(), "CLIENT_QUERY");
        assert_eq!(
            got[1].message.as_ref().unwrap().kind().name(),
            "CLIENT_RESPONSE"
        );
        assert_eq!(m.query_ip(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(m.query_time_ns(), Some(1_700_000_000_000_000_005));
        assert_eq!(m.response_time_ns(), None);
    }

    #[test]
    fn a_cut_file_keeps_its_whole_frames() {
        let mut f = control(CONTROL_START, Some(CONTENT_TYPE));
        f.extend(data(&message(1)));
        let whole = f.len();
        f.extend(data(&message(2)));
        f.truncate(f.len() - 3);
        let mut r = frames(&f).unwrap();
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(
            r.stop,
            Some(Stop::Cut {
                offset: whole as u64
            })
        );
        // a length that lies is corrupt, not a reason to allocate
        let mut g = control(CONTROL_START, Some(CONTENT_TYPE));
        let at = g.len();
        g.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut r = frames(&g).unwrap();
        assert_eq!(r.next(), None);
        assert!(matches!(r.stop, Some(Stop::Corrupt { offset, .. }) if offset == at as u64));
    }

    /// `Fields::read` gives what prost's decoder gives, and fails where it fails.
    fn same_as_prost(frame: &[u8]) {
        let theirs = Dnstap::decode(frame).ok();
        let ours = Fields::read(frame);
        assert_eq!(
            ours,
            theirs.as_ref().map(Fields::of_decoded),
            "{frame:02x?}"
        );
    }

    #[test]
    fn fields_are_read_in_place_as_prost_reads_them() {
        let whole = message(6);
        same_as_prost(&whole);
        // every cut of a real message, and every byte changed
        for cut in 0..whole.len() {
            same_as_prost(&whole[..cut]);
        }
        for i in 0..whole.len() {
            for x in [
                0x00, 0x01, 0x02, 0x05, 0x07, 0x0a, 0x0b, 0x0c, 0x72, 0x7f, 0x80, 0xff,
            ] {
                let mut f = whole.clone();
                f[i] = x;
                same_as_prost(&f);
            }
        }
        let mut twice = whole.clone();
        // a second `message` merges into the first; a second identity replaces it
        twice.extend_from_slice(&[0x72, 0x04, 0x30, 0x39, 0x38, 0x35]);
        twice.extend_from_slice(&[0x0a, 0x02, b'n', b's']);
        same_as_prost(&twice);
        for odd in [
            // unknown fields of every wire type, groups nested and not
            &[0x78, 0x01, 0xa0, 0x01, 0x05][..],
            &[0x89, 0x01, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0x8b, 0x01, 0x08, 0x01, 0x8c, 0x01],
            &[0x8b, 0x01, 0x93, 0x01, 0x94, 0x01, 0x8c, 0x01],
            &[0x8b, 0x01, 0x94, 0x01],
            &[0x8c, 0x01],
            // a known field of the wrong wire type
            &[0x0d, 1, 2, 3, 4],
            &[0x78, 0x01, 0x72, 0x02, 0x0d, 0x01],
            // varints of ten bytes, the last too large, and of eleven
            &[
                0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            &[
                0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ],
            &[
                0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            // tag 0, a key over 32 bits, wire types 6 and 7
            &[0x00, 0x01],
            &[0x80, 0x80, 0x80, 0x80, 0x10, 0x00],
            &[0x0e],
            &[0x0f],
        ] {
            same_as_prost(odd);
        }
        // groups nested to prost's recursion limit, and one deeper
        for depth in [98, 99, 100, 101] {
            let mut f = Vec::new();
            for _ in 0..depth {
                f.extend_from_slice(&[0x8b, 0x01]);
            }
            for _ in 0..depth {
                f.extend_from_slice(&[0x8c, 0x01]);
            }
            same_as_prost(&f);
            // the same inside `message`, one level down
            let mut nested = vec![0x72];
            let mut n = f.len();
            while n >= 0x80 {
                nested.push(n as u8 | 0x80);
                n >>= 7;
            }
            nested.push(n as u8);
            nested.extend_from_slice(&f);
            same_as_prost(&nested);
        }
    }

    #[test]
    fn other_content_is_not_dnstap() {
        assert!(frames(b"\xd4\xc3\xb2\xa1rest of a pcap").is_err());
        assert!(frames(&control(CONTROL_START, Some(b"protobuf:other.Thing"))).is_err());
        assert!(frames(&control(CONTROL_START, None)).is_err());
        assert!(frames(&control(CONTROL_STOP, Some(CONTENT_TYPE))).is_err());
        assert!(is_dnstap(&control(CONTROL_START, Some(CONTENT_TYPE))));
    }

    #[test]
    fn message_types_are_named_as_the_proto_names_them() {
        let names: Vec<String> = (1..=14)
            .map(|t| MessageType(t).name().into_owned())
            .collect();
        assert_eq!(names[0], "AUTH_QUERY");
        assert_eq!(names[5], "CLIENT_RESPONSE");
        assert_eq!(names[13], "UPDATE_RESPONSE");
        assert_eq!(MessageType(15).name(), "TYPE15");
        assert_eq!(MessageType(0).name(), "TYPE0");
        // every name is in the vendored schema
        let proto = include_str!("../../../proto/dnstap.proto");
        for (t, n) in names.iter().enumerate() {
            assert!(proto.contains(&format!("{n} = {};", t + 1)), "{n}");
        }
    }

    #[test]
    fn fields_are_numbered_as_the_vendored_schema_numbers_them() {
        let proto = include_str!("../../../proto/dnstap.proto");
        for (decl, tag) in [
            ("bytes      identity", 1),
            ("bytes      version", 2),
            ("bytes      extra", 3),
            ("Type       type", 15),
            ("Message    message", 14),
            ("Type               type", 1),
            ("SocketFamily       socket_family", 2),
            ("SocketProtocol     socket_protocol", 3),
            ("bytes              query_address", 4),
            ("bytes              response_address", 5),
            ("uint32             query_port", 6),
            ("uint32             response_port", 7),
            ("uint64             query_time_sec", 8),
            ("fixed32            query_time_nsec", 9),
            ("bytes              query_message", 10),
            ("bytes              query_zone", 11),
            ("uint64             response_time_sec", 12),
            ("fixed32            response_time_nsec", 13),
            ("bytes              response_message", 14),
            ("HttpProtocol       http_protocol", 16),
        ] {
            assert!(
                proto.contains(&format!("{decl} = {tag};")),
                "{decl} = {tag}"
            );
        }
    }
}
