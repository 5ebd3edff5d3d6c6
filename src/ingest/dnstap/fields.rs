//! What ingest reads of a logged message, in place: the protobuf wire format
//! as prost reads it (held to prost by the tests and the fuzz target), the
//! entry a message becomes, and the numbering of logging servers.

use super::*;

/// A logging server's identity as logged, and its name.
type Server = (Box<[u8]>, std::sync::Arc<str>);

/// The servers whose logs this process read, in the order seen.
pub(super) static SERVERS: std::sync::Mutex<Vec<Server>> = std::sync::Mutex::new(Vec::new());

/// A logging server's number in this process (from 1): the same identity in
/// any file has the same number. Identities are told apart by their bytes;
/// one that is not UTF-8 is named with its other bytes escaped (`\xff`).
pub fn server_number(identity: &[u8]) -> u32 {
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let i = match servers.iter().position(|(bytes, _)| **bytes == *identity) {
        Some(i) => i,
        None => {
            let name = match std::str::from_utf8(identity) {
                Ok(text) => text.into(),
                Err(_) => identity.escape_ascii().to_string().into(),
            };
            servers.push((identity.into(), name));
            servers.len() - 1
        }
    };
    i as u32 + 1
}

/// The identity of server number `n` (`None` for 0, which is no identity).
pub fn server_name(n: u32) -> Option<std::sync::Arc<str>> {
    let servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    servers
        .get((n as usize).checked_sub(1)?)
        .map(|(_, name)| name.clone())
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
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A 64-bit value or a group: no field read here has one.
    Other,
}

/// prost's recursion limit (`RECURSION_LIMIT`), which bounds group nesting.
pub(super) const RECURSION_LIMIT: u32 = 100;

/// A base-128 varint as prost reads one: at most ten bytes, the tenth 0 or 1.
/// Keys and most values are one byte: that is read first.
#[inline(always)]
pub(super) fn varint(b: &mut &[u8]) -> Option<u64> {
    match b.split_first() {
        Some((&x, rest)) if x < 0x80 => {
            *b = rest;
            Some(u64::from(x))
        }
        _ => varint_long(b),
    }
}

pub(super) fn varint_long(b: &mut &[u8]) -> Option<u64> {
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
pub(super) fn bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = varint(b)?;
    take(b, n)
}

#[inline(always)]
pub(super) fn take<'a>(b: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let (x, rest) = b.split_at_checked(usize::try_from(n).ok()?)?;
    *b = rest;
    Some(x)
}

/// The next field: its tag and value. `None` where prost fails too (a bad
/// key, a value past the end, an unmatched end of group, nesting too deep).
#[inline(always)]
pub(super) fn field<'a>(b: &mut &'a [u8], depth: u32) -> Option<(u32, Value<'a>)> {
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
pub(super) fn skip_group(b: &mut &[u8], tag: u32, depth: u32) -> Option<()> {
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

pub(super) fn time_wide(sec: Option<u64>, nsec: Option<u32>) -> Option<i128> {
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
mod tests;
