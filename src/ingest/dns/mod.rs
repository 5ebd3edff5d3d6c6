//! Ingest stage 3: DNS wire bytes → `DnsMessage` (only what the schema stores).
//!
//! In: one DNS message (RFC 1035 §4.1), without the TCP length prefix.
//! Out: header, first question, EDNS (RFC 6891) with client subnet (RFC 7871)
//! and Extended DNS Errors (RFC 8914).
//!
//! Decoding reads what pairing needs (header, question) and what is small
//! (EDNS). The records of the other sections are either checked without
//! being kept, or skipped by their lengths: the ingest keeps a UDP
//! response's wire bytes instead, and its records are rendered and checked
//! once, straight into its row (`for_each_record`). A message that can be
//! read only in part keeps what was read and is flagged `malformed`.

use std::fmt::Write as _;

use crate::codes::{Opcode, Qclass, Qtype, Rcode};
use crate::ingest::rdata;

/// Why a message could be read only in part. Small and `Copy`: per-packet
/// errors are data, not failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The message ends before the field that starts at this offset.
    Truncated,
    /// A label type other than a plain label or a pointer (RFC 6891 §5).
    BadLabel,
    /// A compression pointer outside the message or a chain that loops.
    BadPointer,
    /// A name longer than 255 octets on the wire (RFC 1035 §2.3.4).
    NameTooLong,
    /// RDATA that does not match its type's format.
    BadRdata,
}

impl DecodeError {
    pub fn name(self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::BadLabel => "bad_label",
            DecodeError::BadPointer => "bad_pointer",
            DecodeError::NameTooLong => "name_too_long",
            DecodeError::BadRdata => "bad_rdata",
        }
    }
}

mod edns;
mod malformed;
mod name;

use edns::*;
pub use malformed::{Malformed, MalformedCounts};
use name::*;
pub use name::{push_label, read_name, skip_name};

pub const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lower-cased presentation form without the trailing dot; the root is `.`.
    pub qname: QName,
    pub qtype: Qtype,
    pub qclass: Qclass,
}

/// Bytes of a name held inline: nearly every name a server sees is shorter.
const QNAME_INLINE: usize = 62;

/// A question's name in presentation form, held inline (no allocation) up to
/// 62 bytes and boxed beyond. Every message has one, and pairing compares it
/// where the message already is in cache.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum QName {
    Inline(u8, [u8; QNAME_INLINE]),
    Boxed(Box<str>),
}

impl QName {
    pub fn new(name: &str) -> QName {
        let n = name.len();
        if n <= QNAME_INLINE {
            let mut bytes = [0; QNAME_INLINE];
            bytes[..n].copy_from_slice(name.as_bytes());
            QName::Inline(n as u8, bytes)
        } else {
            QName::Boxed(name.into())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // built from a `str`, so always UTF-8 (presentation form is ASCII)
            QName::Inline(n, bytes) => std::str::from_utf8(&bytes[..*n as usize]).unwrap_or(""),
            QName::Boxed(s) => s,
        }
    }
}

impl From<&str> for QName {
    fn from(name: &str) -> QName {
        QName::new(name)
    }
}

impl std::ops::Deref for QName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for QName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for QName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// The texts are `Box<str>` (16 bytes, not a `String`'s 24): a query
/// waits in the pairing with its message for up to the match timeout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub do_bit: bool,
    /// Client subnet as `address/source-prefix`.
    pub ecs: Option<Box<str>>,
    /// Client subnet SCOPE PREFIX-LENGTH (set by servers, RFC 7871 §6).
    pub ecs_scope: Option<u8>,
    pub ede_code: Option<u16>,
    pub ede_text: Option<Box<str>>,
    /// DNS Cookie (RFC 7873 §4): client cookie and, if present, server cookie, in hex.
    pub client_cookie: Option<Box<str>>,
    pub server_cookie: Option<Box<str>>,
    /// Name server identifier (RFC 5001): the text when printable, else hex.
    pub nsid: Option<Box<str>>,
    /// Length of the Padding option (RFC 7830).
    pub padding: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Owner name, in the same form as `Question::qname`.
    pub name: String,
    pub rtype: Qtype,
    pub ttl: u32,
    /// RDATA in presentation form (names with their trailing dot).
    pub data: String,
}

/// The header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u16);

impl Flags {
    pub fn qr(self) -> bool {
        self.0 & 0x8000 != 0
    }
    pub fn opcode(self) -> Opcode {
        Opcode(((self.0 >> 11) & 0xf) as u8)
    }
    pub fn aa(self) -> bool {
        self.0 & 0x0400 != 0
    }
    pub fn tc(self) -> bool {
        self.0 & 0x0200 != 0
    }
    pub fn rd(self) -> bool {
        self.0 & 0x0100 != 0
    }
    pub fn ra(self) -> bool {
        self.0 & 0x0080 != 0
    }
    pub fn ad(self) -> bool {
        self.0 & 0x0020 != 0
    }
    pub fn cd(self) -> bool {
        self.0 & 0x0010 != 0
    }
    pub fn rcode_low(self) -> u16 {
        self.0 & 0xf
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    pub flags: Flags,
    /// RCODE with the EDNS extended bits folded in.
    pub rcode: Rcode,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    pub question: Option<Question>,
    pub edns: Option<Edns>,
    /// Message length in octets.
    pub size: u32,
    pub malformed: bool,
    /// Why the message could be read only in part.
    pub error: Option<DecodeError>,
    /// Cut short by the capture's snapshot length.
    pub cut: bool,
    /// Its records were skipped, not checked (`decode` without
    /// `check_records`): until they are rendered (`for_each_record`),
    /// `malformed` and `error` tell only of its header, question, record
    /// framing and OPT record.
    pub unchecked: bool,
    /// The message's own bytes, kept by the ingest for a response: its
    /// records are rendered from them once, into its row (`records`). A zone
    /// transfer's later messages follow in `more`.
    pub wire: Option<Box<[u8]>>,
    pub more: Vec<Box<[u8]>>,
}

/// The section a resource record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    /// The additional section, the OPT pseudo-record left out.
    Additional,
}

/// One rendered resource record, borrowed from the renderer's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Rr<'a> {
    /// Owner name, in the same form as `Question::qname`.
    pub name: &'a str,
    pub rtype: Qtype,
    pub ttl: u32,
    /// RDATA in presentation form (names with their trailing dot).
    pub data: &'a str,
}

/// The rendered records of a message's three sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    pub answers: Vec<Answer>,
    pub authority: Vec<Answer>,
    pub additional: Vec<Answer>,
}

impl Records {
    /// The records of `msg`, as far as they can be read (the same ones a
    /// row holds).
    pub fn of(msg: &[u8]) -> Records {
        let mut out = Records::default();
        for_each_record(msg, &mut |section, rr| out.push(section, rr));
        out
    }

    fn push(&mut self, section: Section, rr: Rr<'_>) {
        let list = match section {
            Section::Answer => &mut self.answers,
            Section::Authority => &mut self.authority,
            Section::Additional => &mut self.additional,
        };
        list.push(Answer {
            name: rr.name.to_string(),
            rtype: rr.rtype,
            ttl: rr.ttl,
            data: rr.data.to_string(),
        });
    }
}

impl DnsMessage {
    /// Renders the records kept in `wire`, then those of `more`, into `sink`
    /// (nothing without `wire`); returns why `wire` could be read only in
    /// part, as a checking decode would have found it. `wire` was decoded
    /// into this message: when that found no fault, its question and OPT
    /// record are skipped by their lengths instead of being read again.
    pub fn for_each_record(&self, sink: &mut dyn FnMut(Section, Rr<'_>)) -> Option<DecodeError> {
        let fault = self
            .wire
            .as_ref()
            .and_then(|wire| walk_records(wire, self.error.is_none(), sink).err());
        for wire in &self.more {
            let _ = walk_records(wire, false, sink);
        }
        fault
    }

    /// The records kept in `wire` and `more`, rendered (none without `wire`).
    pub fn records(&self) -> Records {
        let mut out = Records::default();
        self.for_each_record(&mut |section, rr| out.push(section, rr));
        out
    }
}

/// Renders each record of `msg`'s answer, authority and additional sections
/// into `sink`, in order, up to where the message stops making sense: the
/// same walk `decode` makes, so a record is rendered here exactly when
/// decoding read it. The record lent to `sink` lives in this thread's scratch
/// strings: `sink` must not decode another message itself.
pub fn for_each_record(msg: &[u8], sink: &mut dyn FnMut(Section, Rr<'_>)) {
    let _ = walk_records(msg, false, sink);
}

/// `for_each_record`; `whole`: `msg` is known to hold no fault outside its
/// records, so the walk need not read its question and OPT record to learn
/// where it stops. The fault the walk stopped at, if any.
fn walk_records(
    msg: &[u8],
    whole: bool,
    sink: &mut dyn FnMut(Section, Rr<'_>),
) -> Result<(), DecodeError> {
    match header(msg) {
        Some(mut m) => decode_sections(msg, &mut m, Walk::Render { sink, whole }),
        None => Err(DecodeError::Truncated),
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, DecodeError> {
    match msg.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DecodeError::Truncated),
    }
}

fn u32_at(msg: &[u8], pos: usize) -> Result<u32, DecodeError> {
    match msg.get(pos..pos + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(DecodeError::Truncated),
    }
}

/// Reads just the header fields needed to route a message: `(id, qr)`.
pub fn peek_id(msg: &[u8]) -> Option<(u16, bool)> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    Some((u16::from_be_bytes([msg[0], msg[1]]), msg[2] & 0x80 != 0))
}

/// The header of `msg`; nothing read past it yet.
fn header(msg: &[u8]) -> Option<DnsMessage> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let h = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let flags = Flags(h(2));
    Some(DnsMessage {
        id: h(0),
        flags,
        rcode: Rcode(flags.rcode_low()),
        qdcount: h(4),
        ancount: h(6),
        nscount: h(8),
        arcount: h(10),
        question: None,
        edns: None,
        size: msg.len() as u32,
        malformed: false,
        error: None,
        cut: false,
        unchecked: false,
        wire: None,
        more: Vec::new(),
    })
}

/// Decodes a message. `None` when it is too short to hold a header.
/// `check_records` reads every record of the answer, authority and additional
/// sections as a row would render it, so that one that does not parse makes
/// the message malformed; without it they are only skipped (their framing
/// and the OPT record are still read) and the message is `unchecked`. The
/// ingest skips them in a response whose bytes it keeps: rendering them into
/// its row checks them (`for_each_record`).
pub fn decode(msg: &[u8], check_records: bool) -> Option<DnsMessage> {
    let mut m = header(msg)?;
    m.unchecked = !check_records;
    let walk = if check_records {
        Walk::Check
    } else {
        Walk::Skip
    };
    if let Err(e) = decode_sections(msg, &mut m, walk) {
        m.malformed = true;
        m.error = Some(e);
    }
    Some(m)
}

/// What `decode_sections` does with the records of the last three sections.
enum Walk<'s> {
    /// Skips them by their lengths.
    Skip,
    /// Renders each, to find those that do not parse.
    Check,
    /// Renders each into the sink; `whole`: the message decoded before
    /// without a fault, so its question and OPT record are only skipped.
    Render {
        sink: &'s mut dyn FnMut(Section, Rr<'_>),
        whole: bool,
    },
}

thread_local! {
    /// A record's name and data while it is rendered: one pair per thread,
    /// so that no record allocates.
    static SCRATCH: std::cell::RefCell<(String, String)> =
        std::cell::RefCell::new((String::with_capacity(NAME_CAPACITY), String::with_capacity(NAME_CAPACITY)));
}

fn decode_sections(msg: &[u8], m: &mut DnsMessage, mut walk: Walk<'_>) -> Result<(), DecodeError> {
    let render = !matches!(walk, Walk::Skip);
    // a message already decoded whole: what it holds besides its records is known
    let known = matches!(walk, Walk::Render { whole: true, .. });
    let mut pos = HEADER_LEN;
    for i in 0..m.qdcount {
        if i == 0 && !known {
            // rendered in the thread's scratch string, kept inline
            let qname = SCRATCH.with_borrow_mut(|(name, _)| {
                name.clear();
                pos = read_name(msg, pos, name, true)?;
                if name.is_empty() {
                    name.push('.');
                }
                Ok::<_, DecodeError>(QName::new(name))
            })?;
            let qtype = Qtype(u16_at(msg, pos)?);
            let qclass = Qclass(u16_at(msg, pos + 2)?);
            pos += 4;
            m.question = Some(Question {
                qname,
                qtype,
                qclass,
            });
        } else {
            pos = skip_name(msg, pos)? + 4;
            if pos > msg.len() {
                return Err(DecodeError::Truncated);
            }
        }
    }
    let mut answers_bad = false;
    let mut rr =
        |msg: &[u8], pos: usize, section: Section, bad: &mut bool| -> Result<usize, DecodeError> {
            if !render {
                let (_, _, rd_start, rd_len) = rr_fixed(msg, skip_name(msg, pos)?)?;
                return Ok(rd_start + rd_len);
            }
            SCRATCH.with_borrow_mut(|(name, data)| {
                let (end, rtype, ttl) = read_rr(msg, pos, name, data, bad)?;
                if let Walk::Render { sink, .. } = &mut walk {
                    sink(
                        section,
                        Rr {
                            name: name.as_str(),
                            rtype,
                            ttl,
                            data: data.as_str(),
                        },
                    );
                }
                Ok(end)
            })
        };
    for _ in 0..m.ancount {
        pos = rr(msg, pos, Section::Answer, &mut answers_bad)?;
    }
    for _ in 0..m.nscount {
        pos = rr(msg, pos, Section::Authority, &mut answers_bad)?;
    }
    for _ in 0..m.arcount {
        let name_end = skip_name(msg, pos)?;
        let (rtype, ttl, rd_start, rd_len) = rr_fixed(msg, name_end)?;
        if rtype == Qtype::OPT.0 {
            if m.edns.is_none() && !known {
                let udp_size = u16_at(msg, name_end + 2)?;
                let ext_rcode = (ttl >> 24) as u16;
                m.rcode = Rcode((ext_rcode << 4) | m.flags.rcode_low());
                let mut edns = Edns {
                    udp_size,
                    version: (ttl >> 16) as u8,
                    do_bit: ttl & 0x8000 != 0,
                    ..Edns::default()
                };
                let opts = decode_options(&msg[rd_start..rd_start + rd_len], &mut edns);
                m.edns = Some(edns);
                opts?;
            }
            pos = rd_start + rd_len;
        } else {
            pos = rr(msg, pos, Section::Additional, &mut answers_bad)?;
        }
    }
    if answers_bad {
        return Err(DecodeError::BadRdata);
    }
    Ok(())
}

/// Renders the resource record at `pos` into `name` and `data` (cleared
/// first); returns the offset after it, its type and TTL. RDATA that does not
/// parse as its type is rendered in the generic form and sets `bad`.
fn read_rr(
    msg: &[u8],
    pos: usize,
    name: &mut String,
    data: &mut String,
    bad: &mut bool,
) -> Result<(usize, Qtype, u32), DecodeError> {
    name.clear();
    data.clear();
    let name_end = read_name(msg, pos, name, true)?;
    if name.is_empty() {
        name.push('.');
    }
    let (rtype, ttl, rd_start, rd_len) = rr_fixed(msg, name_end)?;
    // DNS UPDATE (RFC 2136 §2.4, §2.5): class ANY or NONE with no RDATA says
    // an RRset exists, does not, or is to be deleted; it has no RDATA to read
    let class = u16_at(msg, name_end + 2)?;
    if rd_len == 0 && matches!(class, 254 | 255) {
        rdata::render_generic(&[], data);
    } else if rdata::render(msg, Qtype(rtype), rd_start, rd_len, data).is_err() {
        data.clear();
        rdata::render_generic(&msg[rd_start..rd_start + rd_len], data);
        *bad = true;
    }
    Ok((rd_start + rd_len, Qtype(rtype), ttl))
}

/// Reads TYPE, TTL and RDLENGTH after an owner name ending at `pos`;
/// returns `(type, ttl, rdata_start, rdata_len)` with the RDATA in bounds.
fn rr_fixed(msg: &[u8], pos: usize) -> Result<(u16, u32, usize, usize), DecodeError> {
    let rtype = u16_at(msg, pos)?;
    let ttl = u32_at(msg, pos + 4)?;
    let rd_len = u16_at(msg, pos + 8)? as usize;
    let rd_start = pos + 10;
    if rd_start + rd_len > msg.len() {
        return Err(DecodeError::Truncated);
    }
    Ok((rtype, ttl, rd_start, rd_len))
}

#[cfg(test)]
mod tests;
