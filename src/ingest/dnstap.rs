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
    let sec = i64::try_from(sec?).ok()?;
    sec.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nsec.unwrap_or(0).min(999_999_999)))
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

/// Why reading a Frame Streams file stopped before its STOP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The file ends inside a frame: the writer was killed, or the copy is short.
    Cut { offset: u64 },
    /// A length that no writer makes (a data frame over `MAX_FRAME`, a control
    /// frame over 512 bytes or without its type).
    Corrupt { offset: u64, what: String },
}

/// Not a dnstap file: no Frame Streams START frame, or another content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDnstap(pub String);

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// The data frames of a Frame Streams file held in memory.
#[derive(Debug)]
pub struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    /// Why reading stopped early; `None` after a STOP frame or a clean end.
    pub stop: Option<Stop>,
    done: bool,
}

/// Whether `data` starts as a dnstap Frame Streams file does (for sniffing
/// an input by its content, whatever its name).
pub fn is_dnstap(data: &[u8]) -> bool {
    frames(data).is_ok()
}

/// Reads the START frame and checks its content type.
pub fn frames(data: &[u8]) -> Result<Frames<'_>, NotDnstap> {
    let not = |why: &str| NotDnstap(why.to_string());
    if be32(data, 0) != Some(0) {
        return Err(not("no Frame Streams control frame at its start"));
    }
    let len = be32(data, 4).ok_or_else(|| not("cut inside its first frame"))? as usize;
    if !(4..=MAX_CONTROL).contains(&len) {
        return Err(not("a first control frame of impossible length"));
    }
    let control = data
        .get(8..8 + len)
        .ok_or_else(|| not("cut inside its first frame"))?;
    if be32(control, 0) != Some(CONTROL_START) {
        return Err(not("its first control frame is not START"));
    }
    // fields: type, length, bytes; a START without a content type names none
    let mut at = 4;
    let mut content = None;
    while at + 8 <= control.len() {
        let (ty, flen) = (be32(control, at), be32(control, at + 4));
        let (Some(ty), Some(flen)) = (ty, flen) else {
            break;
        };
        let value = control
            .get(at + 8..at + 8 + flen as usize)
            .ok_or_else(|| not("a START field longer than its frame"))?;
        if ty == FIELD_CONTENT_TYPE {
            content = Some(value);
        }
        at += 8 + flen as usize;
    }
    match content {
        Some(CONTENT_TYPE) => Ok(Frames {
            data,
            pos: 8 + len,
            stop: None,
            done: false,
        }),
        Some(other) => Err(NotDnstap(format!(
            "Frame Streams of content type {:?}, not dnstap",
            String::from_utf8_lossy(other)
        ))),
        None => Err(not("Frame Streams without a content type")),
    }
}

/// The data frames of `data` from `pos`, a frame boundary after the START
/// frame (the start of a chunk that [`frames`] found).
pub fn frames_at(data: &[u8], pos: usize) -> Frames<'_> {
    Frames {
        data,
        pos,
        stop: None,
        done: false,
    }
}

/// Whether `data[at..]` starts with a START control frame (of any content),
/// or with the first bytes of one (then the next read finds it cut).
fn start_at(data: &[u8], at: usize) -> bool {
    let rest = data.get(at..).unwrap_or_default();
    !rest.is_empty()
        && rest.iter().take(4).all(|&b| b == 0)
        && (rest.len() < 12 || be32(rest, 8) == Some(CONTROL_START))
}

impl<'a> Frames<'a> {
    /// Byte offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn end(&mut self, stop: Option<Stop>) -> Option<&'a [u8]> {
        self.stop = stop;
        self.done = true;
        None
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.done {
                return None;
            }
            let at = self.pos;
            if at == self.data.len() {
                // no STOP: a writer killed between frames, kept whole
                return self.end(None);
            }
            let offset = at as u64;
            let Some(len) = be32(self.data, at) else {
                return self.end(Some(Stop::Cut { offset }));
            };
            let len = len as usize;
            if len == 0 {
                let Some(clen) = be32(self.data, at + 4) else {
                    return self.end(Some(Stop::Cut { offset }));
                };
                let clen = clen as usize;
                if !(4..=MAX_CONTROL).contains(&clen) {
                    return self.end(Some(Stop::Corrupt {
                        offset,
                        what: format!("a control frame of {clen} bytes"),
                    }));
                }
                if self.data.len() < at + 8 + clen {
                    return self.end(Some(Stop::Cut { offset }));
                }
                self.pos = at + 8 + clen;
                // a STOP ends the file, unless another one follows it
                // (`cat` of rotated files): then its START goes on
                if be32(self.data, at + 8) == Some(CONTROL_STOP) && !start_at(self.data, self.pos) {
                    return self.end(None);
                }
                // other control frames (a second START, READY...) carry no data
                continue;
            }
            if len > MAX_FRAME {
                return self.end(Some(Stop::Corrupt {
                    offset,
                    what: format!("a data frame of {len} bytes"),
                }));
            }
            let Some(frame) = self.data.get(at + 4..at + 4 + len) else {
                return self.end(Some(Stop::Cut { offset }));
            };
            self.pos = at + 4 + len;
            return Some(frame);
        }
    }
}

/// Decodes one data frame; `None` for bytes that are not a `Dnstap` message.
pub fn decode(frame: &[u8]) -> Option<Dnstap> {
    Dnstap::decode(frame).ok()
}

/// Identities of the servers whose logs this process read, in the order seen.
static SERVERS: std::sync::Mutex<Vec<std::sync::Arc<str>>> = std::sync::Mutex::new(Vec::new());

/// A logging server's number in this process (from 1): the same identity in
/// any file has the same number.
pub fn server_number(identity: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(identity);
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let i = match servers.iter().position(|s| **s == *text) {
        Some(i) => i,
        None => {
            servers.push(text.into());
            servers.len() - 1
        }
    };
    i as u32 + 1
}

/// The identity of server number `n` (`None` for 0, which is no identity).
pub fn server_name(n: u32) -> Option<std::sync::Arc<str>> {
    let servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    servers.get((n as usize).checked_sub(1)?).cloned()
}

/// The fields of a `Dnstap` message that ingest reads, borrowed from the
/// frame: what prost's [`Dnstap`] gives, without a copy.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    pub identity: Option<&'a [u8]>,
    pub r#type: i32,
    pub message: Option<MessageFields<'a>>,
}

/// The fields of a `Message` that ingest reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageFields<'a> {
    pub r#type: i32,
    pub socket_family: Option<i32>,
    pub socket_protocol: Option<i32>,
    pub query_address: Option<&'a [u8]>,
    pub response_address: Option<&'a [u8]>,
    pub query_port: Option<u32>,
    pub response_port: Option<u32>,
    pub query_time_sec: Option<u64>,
    pub query_time_nsec: Option<u32>,
    pub query_message: Option<&'a [u8]>,
    pub response_time_sec: Option<u64>,
    pub response_time_nsec: Option<u32>,
    pub response_message: Option<&'a [u8]>,
}

/// One field of the protobuf wire format.
enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A 64-bit value or a group: no field read here has one.
    Other,
}

/// prost's recursion limit (`RECURSION_LIMIT`), which bounds group nesting.
const RECURSION_LIMIT: u32 = 100;

/// A base-128 varint as prost reads one: at most ten bytes, the tenth 0 or 1.
/// Keys and most values are one byte: that is read first.
#[inline(always)]
fn varint(b: &mut &[u8]) -> Option<u64> {
    match b.split_first() {
        Some((&x, rest)) if x < 0x80 => {
            *b = rest;
            Some(u64::from(x))
        }
        _ => varint_long(b),
    }
}

fn varint_long(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return (i < 9 || byte < 2).then_some(v);
        }
    }
    None
}

/// A length-delimited value.
#[inline(always)]
fn bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = varint(b)?;
    take(b, n)
}

#[inline(always)]
fn take<'a>(b: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let (x, rest) = b.split_at_checked(usize::try_from(n).ok()?)?;
    *b = rest;
    Some(x)
}

/// The next field: its tag and value. `None` where prost fails too (a bad
/// key, a value past the end, an unmatched end of group, nesting too deep).
#[inline(always)]
fn field<'a>(b: &mut &'a [u8], depth: u32) -> Option<(u32, Value<'a>)> {
    let key = varint(b)?;
    let key = u32::try_from(key).ok()?;
    let tag = key >> 3;
    if tag == 0 {
        return None;
    }
    let value = match key & 7 {
        0 => Value::Varint(varint(b)?),
        1 => {
            take(b, 8)?;
            Value::Other
        }
        2 => {
            let n = varint(b)?;
            Value::Bytes(take(b, n)?)
        }
        3 => {
            skip_group(b, tag, depth)?;
            Value::Other
        }
        5 => {
            let x = take(b, 4)?;
            Value::Fixed32(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
        }
        _ => return None,
    };
    Some((tag, value))
}

/// Skips a group up to its end tag, as prost's `skip_field` does.
/// `depth` is what is left of prost's recursion limit where the group is:
/// each field inside it is skipped one level down, and none at level 0.
fn skip_group(b: &mut &[u8], tag: u32, depth: u32) -> Option<()> {
    let depth = depth.checked_sub(1)?;
    loop {
        let key = u32::try_from(varint(b)?).ok()?;
        let (inner, wire) = (key >> 3, key & 7);
        if inner == 0 || wire > 5 {
            return None;
        }
        match wire {
            4 if inner == tag => return Some(()),
            4 => return None,
            _ if depth == 0 => return None,
            0 => {
                varint(b)?;
            }
            1 => {
                take(b, 8)?;
            }
            2 => {
                let n = varint(b)?;
                take(b, n)?;
            }
            3 => skip_group(b, inner, depth)?,
            5 => {
                take(b, 4)?;
            }
            _ => return None,
        }
    }
}

impl<'a> Fields<'a> {
    /// Reads a data frame in place, field by field as prost's decoder does
    /// (the last value of a field wins; a repeated `message` merges), and
    /// fails where it fails: a known field of the wrong wire type, a bad
    /// varint or length. `tests` hold it to prost's own decoding.
    pub fn read(frame: &'a [u8]) -> Option<Fields<'a>> {
        let mut f = Fields::default();
        let mut b = frame;
        while let Some((&key, rest)) = b.split_first() {
            // the keys real messages hold are one byte: read those at once
            match key {
                0x0a => {
                    b = rest;
                    f.identity = Some(bytes(&mut b)?);
                    continue;
                }
                0x72 => {
                    b = rest;
                    let x = bytes(&mut b)?;
                    f.message
                        .get_or_insert_with(MessageFields::default)
                        .merge(x, RECURSION_LIMIT - 1)?;
                    continue;
                }
                0x78 => {
                    b = rest;
                    f.r#type = varint(&mut b)? as i32;
                    continue;
                }
                _ => {}
            }
            match field(&mut b, RECURSION_LIMIT)? {
                (1, Value::Bytes(x)) => f.identity = Some(x),
                (2 | 3, Value::Bytes(_)) => {}
                (14, Value::Bytes(x)) => {
                    f.message
                        .get_or_insert_with(MessageFields::default)
                        .merge(x, RECURSION_LIMIT - 1)?;
                }
                (15, Value::Varint(v)) => f.r#type = v as i32,
                (1 | 2 | 3 | 14 | 15, _) => return None,
                _ => {}
            }
        }
        Some(f)
    }

    /// The same fields of a message prost decoded: the reference that
    /// [`Fields::read`] is tested against.
    pub fn of_decoded(d: &'a Dnstap) -> Fields<'a> {
        Fields {
            identity: d.identity.as_deref(),
            r#type: d.r#type,
            message: d.message.as_ref().map(|m| MessageFields {
                r#type: m.r#type,
                socket_family: m.socket_family,
                socket_protocol: m.socket_protocol,
                query_address: m.query_address.as_deref(),
                response_address: m.response_address.as_deref(),
                query_port: m.query_port,
                response_port: m.response_port,
                query_time_sec: m.query_time_sec,
                query_time_nsec: m.query_time_nsec,
                query_message: m.query_message.as_deref(),
                response_time_sec: m.response_time_sec,
                response_time_nsec: m.response_time_nsec,
                response_message: m.response_message.as_deref(),
            }),
        }
    }
}

impl<'a> MessageFields<'a> {
    fn merge(&mut self, mut b: &'a [u8], depth: u32) -> Option<()> {
        while let Some((&key, rest)) = b.split_first() {
            // a one-byte key of a field read here, with its own wire type
            let known = match key {
                0x08 | 0x10 | 0x18 | 0x30 | 0x38 | 0x40 | 0x60 => {
                    b = rest;
                    let v = varint(&mut b)?;
                    match key {
                        0x08 => self.r#type = v as i32,
                        0x10 => self.socket_family = Some(v as i32),
                        0x18 => self.socket_protocol = Some(v as i32),
                        0x30 => self.query_port = Some(v as u32),
                        0x38 => self.response_port = Some(v as u32),
                        0x40 => self.query_time_sec = Some(v),
                        _ => self.response_time_sec = Some(v),
                    }
                    true
                }
                0x22 | 0x2a | 0x52 | 0x72 => {
                    b = rest;
                    let x = Some(bytes(&mut b)?);
                    match key {
                        0x22 => self.query_address = x,
                        0x2a => self.response_address = x,
                        0x52 => self.query_message = x,
                        _ => self.response_message = x,
                    }
                    true
                }
                0x4d | 0x6d => {
                    b = rest;
                    let x = take(&mut b, 4)?;
                    let v = Some(u32::from_le_bytes([x[0], x[1], x[2], x[3]]));
                    if key == 0x4d {
                        self.query_time_nsec = v;
                    } else {
                        self.response_time_nsec = v;
                    }
                    true
                }
                _ => false,
            };
            if known {
                continue;
            }
            match field(&mut b, depth)? {
                (1, Value::Varint(v)) => self.r#type = v as i32,
                (2, Value::Varint(v)) => self.socket_family = Some(v as i32),
                (3, Value::Varint(v)) => self.socket_protocol = Some(v as i32),
                (4, Value::Bytes(x)) => self.query_address = Some(x),
                (5, Value::Bytes(x)) => self.response_address = Some(x),
                (6, Value::Varint(v)) => self.query_port = Some(v as u32),
                (7, Value::Varint(v)) => self.response_port = Some(v as u32),
                (8, Value::Varint(v)) => self.query_time_sec = Some(v),
                (9, Value::Fixed32(v)) => self.query_time_nsec = Some(v),
                (10, Value::Bytes(x)) => self.query_message = Some(x),
                (11, Value::Bytes(_)) | (16, Value::Varint(_)) => {}
                (12, Value::Varint(v)) => self.response_time_sec = Some(v),
                (13, Value::Fixed32(v)) => self.response_time_nsec = Some(v),
                (14, Value::Bytes(x)) => self.response_message = Some(x),
                (1..=14 | 16, _) => return None,
                _ => {}
            }
        }
        Some(())
    }
}

/// What ingest takes from one logged message, borrowed from its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: MessageType,
    /// When the server logged it, ns since 1970 (unclamped): the response's
    /// time for a response, the query's for a query.
    pub time: i128,
    /// For a response: its query's time, when the server logged that too.
    pub query_time: Option<i128>,
    /// Sender and receiver of this message: the initiator (`query_address`)
    /// sends a query and receives the response.
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    /// `SocketProtocol`, see `link::Transport::of_dnstap`.
    pub protocol: Option<i32>,
    /// The DNS message in wire format.
    pub dns: &'a [u8],
    pub identity: Option<&'a [u8]>,
}

/// Why a message cannot become a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Not a `Dnstap` protobuf, or not of type MESSAGE.
    NotMessage,
    /// No DNS message of its own side (a response logged without its bytes).
    NoDns,
    /// No time of its own side.
    NoTime,
}

fn time_wide(sec: Option<u64>, nsec: Option<u32>) -> Option<i128> {
    Some(i128::from(sec?) * 1_000_000_000 + i128::from(nsec.unwrap_or(0).min(999_999_999)))
}

impl<'a> Entry<'a> {
    /// The entry of a data frame, read in place.
    pub fn of(frame: &'a [u8]) -> Result<Entry<'a>, Unusable> {
        Entry::of_fields(Fields::read(frame).ok_or(Unusable::NotMessage)?)
    }

    pub fn of_fields(f: Fields<'a>) -> Result<Entry<'a>, Unusable> {
        let m = match f.message {
            Some(m) if f.r#type == 1 => m,
            _ => return Err(Unusable::NotMessage),
        };
        let kind = MessageType(m.r#type);
        let response = kind.is_response();
        let query_time = time_wide(m.query_time_sec, m.query_time_nsec);
        let (time, dns) = if response {
            (
                time_wide(m.response_time_sec, m.response_time_nsec),
                m.response_message,
            )
        } else {
            (query_time, m.query_message)
        };
        let dns = dns.filter(|d| !d.is_empty()).ok_or(Unusable::NoDns)?;
        let time = time.ok_or(Unusable::NoTime)?;
        // a side without an address is the family's unspecified address
        let none = match m.socket_family {
            Some(2) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let port = |p: Option<u32>| p.and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
        let initiator = (address(m.query_address).unwrap_or(none), port(m.query_port));
        let responder = (
            address(m.response_address).unwrap_or(none),
            port(m.response_port),
        );
        let (src, dst) = if response {
            (responder, initiator)
        } else {
            (initiator, responder)
        };
        Ok(Entry {
            kind,
            time,
            query_time: if response { query_time } else { None },
            src,
            dst,
            protocol: m.socket_protocol,
            dns,
            identity: f.identity.filter(|i| !i.is_empty()),
        })
    }
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
        let proto = include_str!("../../proto/dnstap.proto");
        for (t, n) in names.iter().enumerate() {
            assert!(proto.contains(&format!("{n} = {};", t + 1)), "{n}");
        }
    }

    #[test]
    fn fields_are_numbered_as_the_vendored_schema_numbers_them() {
        let proto = include_str!("../../proto/dnstap.proto");
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
