//! Frame Streams: the data frames of a file held in memory, every length
//! checked before it is used, and where reading stopped early.

use super::*;

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

pub(super) fn be32(b: &[u8], at: usize) -> Option<u32> {
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
pub(super) fn start_at(data: &[u8], at: usize) -> bool {
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
