//! Domain names on the wire: read (following compression pointers, with a
//! bounded number of hops) into lower-cased presentation form, or skipped.

use super::*;

/// Most compression pointers followed for one name before it is called a loop.
pub(super) const MAX_POINTER_HOPS: usize = 64;

/// Room reserved for a decoded name: most names are shorter.
pub(super) const NAME_CAPACITY: usize = 48;

/// An octet a name shows as itself: printable ASCII other than `.` and `\`.
pub(super) fn is_plain(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && b != b'.' && b != b'\\'
}

/// Appends one label's octets in presentation form: `.` and `\` escaped
/// with a backslash, octets outside printable ASCII as `\DDD` (RFC 4343 §2.1).
pub fn push_label(out: &mut String, label: &[u8], lower: bool) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7e => out.push(if lower {
                b.to_ascii_lowercase() as char
            } else {
                b as char
            }),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

/// Decompresses the name at `pos` into `out` (labels joined by `.`, no
/// trailing dot, the root as nothing) and returns the offset after it.
pub fn read_name(
    msg: &[u8],
    pos: usize,
    out: &mut String,
    lower: bool,
) -> Result<usize, DecodeError> {
    // Nearly every name is printable ASCII with nothing to escape: gathered
    // here in one pass and appended at once. Anything else (an escape, an
    // error) goes to `read_name_escaped`, which writes nothing before this.
    let mut text = [0u8; 256];
    let mut n = 0;
    let mut cur = pos;
    let mut after: Option<usize> = None;
    let mut hops = 0;
    let mut wire_len = 0usize;
    while let Some(&len) = msg.get(cur) {
        let len = len as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let text = std::str::from_utf8(&text[..n]).expect("printable ASCII is UTF-8");
                out.push_str(text);
                return Ok(after.unwrap_or(cur + 1));
            }
            0x00 => {
                let Some(label) = msg.get(cur + 1..cur + 1 + len) else {
                    break;
                };
                wire_len += len + 1;
                // the text of a name is one octet shorter than its wire form
                if wire_len > 255 {
                    break;
                }
                if n > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                let mut plain = true;
                for (d, &b) in text[n..n + len].iter_mut().zip(label) {
                    plain &= is_plain(b);
                    *d = if lower { b.to_ascii_lowercase() } else { b };
                }
                if !plain {
                    break;
                }
                n += len;
                cur += 1 + len;
            }
            0xc0 => {
                let Some(&low) = msg.get(cur + 1) else { break };
                let target = ((len & 0x3f) << 8) | low as usize;
                after.get_or_insert(cur + 2);
                hops += 1;
                if hops > MAX_POINTER_HOPS || target >= msg.len() {
                    break;
                }
                cur = target;
            }
            _ => break,
        }
    }
    read_name_escaped(msg, pos, out, lower)
}

/// `read_name` for names with octets to escape, and for errors.
pub(super) fn read_name_escaped(
    msg: &[u8],
    pos: usize,
    out: &mut String,
    lower: bool,
) -> Result<usize, DecodeError> {
    let mut cur = pos;
    let mut after: Option<usize> = None;
    let mut hops = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *msg.get(cur).ok_or(DecodeError::Truncated)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(after.unwrap_or(cur + 1));
                }
                let label = msg
                    .get(cur + 1..cur + 1 + len)
                    .ok_or(DecodeError::Truncated)?;
                wire_len += len + 1;
                if wire_len > 255 {
                    return Err(DecodeError::NameTooLong);
                }
                if wire_len > len + 1 {
                    out.push('.');
                }
                push_label(out, label, lower);
                cur += 1 + len;
            }
            0xc0 => {
                let target = (u16_at(msg, cur)? & 0x3fff) as usize;
                if after.is_none() {
                    after = Some(cur + 2);
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS || target >= msg.len() {
                    return Err(DecodeError::BadPointer);
                }
                cur = target;
            }
            _ => return Err(DecodeError::BadLabel),
        }
    }
}

/// Skips the name at `pos` without rendering it; returns the offset after it.
pub fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, DecodeError> {
    loop {
        let len = *msg.get(pos).ok_or(DecodeError::Truncated)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => pos += 1 + len,
            0xc0 if pos + 2 <= msg.len() => return Ok(pos + 2),
            0xc0 => return Err(DecodeError::Truncated),
            _ => return Err(DecodeError::BadLabel),
        }
    }
}
