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
                // 255 octets at most with the root's (RFC 1035 §2.3.4); the
                // text of a name is one octet shorter than its wire form
                if wire_len + 1 > 255 {
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
                // the root's octet counts too
                if wire_len + 1 > 255 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Wire form of `labels` ending in the root (RFC 1035 §3.1).
    fn name(labels: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in labels {
            v.push(l.len() as u8);
            v.extend_from_slice(l);
        }
        v.push(0);
        v
    }

    fn pointer(to: usize) -> [u8; 2] {
        [0xc0 | (to >> 8) as u8, to as u8]
    }

    fn read(msg: &[u8], pos: usize, lower: bool) -> Result<(String, usize), DecodeError> {
        let mut out = String::new();
        let end = read_name(msg, pos, &mut out, lower)?;
        Ok((out, end))
    }

    #[test]
    fn plain_names_and_the_root() {
        let msg = name(&[b"WWW", b"Example", b"com"]);
        assert_eq!(read(&msg, 0, true), Ok(("www.example.com".into(), 17)));
        assert_eq!(read(&msg, 0, false), Ok(("WWW.Example.com".into(), 17)));
        assert_eq!(skip_name(&msg, 0), Ok(17));
        // from the second label on
        assert_eq!(read(&msg, 4, true), Ok(("example.com".into(), 17)));
        // the root is nothing
        assert_eq!(read(&[0], 0, true), Ok((String::new(), 1)));
        assert_eq!(skip_name(&[0], 0), Ok(1));
        // the name is appended to what `out` holds
        let mut out = String::from("qname=");
        assert_eq!(read_name(&msg, 0, &mut out, true), Ok(17));
        assert_eq!(out, "qname=www.example.com");
    }

    #[test]
    fn compression_pointers_are_followed() {
        // RFC 1035 §4.1.4: F.ISI.ARPA at 20, FOO.F.ISI.ARPA at 40, ARPA at 64
        let mut msg = vec![0; 20];
        msg.extend(name(&[b"F", b"ISI", b"ARPA"]));
        msg.resize(40, 0);
        msg.extend([3, b'F', b'O', b'O']);
        msg.extend(pointer(20));
        msg.resize(64, 0);
        msg.extend(pointer(26));
        assert_eq!(read(&msg, 40, true), Ok(("foo.f.isi.arpa".into(), 46)));
        assert_eq!(read(&msg, 64, false), Ok(("ARPA".into(), 66)));
        // a pointer to a name that itself ends in a pointer
        let chain = msg.len();
        msg.extend([4, b'm', b'a', b'i', b'l']);
        msg.extend(pointer(40));
        assert_eq!(
            read(&msg, chain, true),
            Ok(("mail.foo.f.isi.arpa".into(), chain + 7))
        );
        // skipping does not follow them: the name ends with its first pointer
        assert_eq!(skip_name(&msg, 40), Ok(46));
        assert_eq!(skip_name(&msg, 64), Ok(66));
        assert_eq!(skip_name(&msg, chain), Ok(chain + 7));
    }

    #[test]
    fn forward_pointers_are_followed() {
        // a pointer to a name later in the message
        let mut msg = pointer(4).to_vec();
        msg.extend([0, 0]);
        msg.extend(name(&[b"later", b"example"]));
        assert_eq!(read(&msg, 0, true), Ok(("later.example".into(), 2)));
    }

    #[test]
    fn pointer_loops_and_bad_targets_are_bad_pointers() {
        // to itself; two pointing at each other; a label and a pointer back to it
        for (msg, pos) in [
            (pointer(0).to_vec(), 0),
            ([pointer(2), pointer(0)].concat(), 0),
            (vec![1, b'a', 0xc0, 0], 0),
            // past the end of the message
            ([&name(&[b"a"])[..], &pointer(3)].concat(), 3),
            (pointer(0x3fff).to_vec(), 0),
        ] {
            assert_eq!(
                read(&msg, pos, true),
                Err(DecodeError::BadPointer),
                "{msg:02x?}"
            );
        }
        // a chain of MAX_POINTER_HOPS pointers is read; one more is a loop
        // (to a plain name, and to one with an octet to escape, which the
        // escaping reader reads)
        for (label, text) in [(&b"a"[..], "a"), (b"a.", r"a\.")] {
            let mut msg = name(&[label]);
            let mut last = 0;
            for _ in 0..=MAX_POINTER_HOPS {
                let at = msg.len();
                msg.extend(pointer(last));
                last = at;
            }
            let hops = |first: usize| read(&msg, first, true);
            assert_eq!(
                hops(last - 2),
                Ok((text.into(), last)),
                "{MAX_POINTER_HOPS} hops"
            );
            assert_eq!(hops(last), Err(DecodeError::BadPointer));
        }
    }

    #[test]
    fn names_over_255_octets_are_too_long() {
        let l63 = [b'x'; 63];
        // 64 + 64 + 64 + 62 + the root: 255 octets, the most a name may have
        let longest = name(&[&l63, &l63, &l63, &l63[..61]]);
        assert_eq!(longest.len(), 255);
        let (text, end) = read(&longest, 0, true).expect("a 255-octet name");
        assert_eq!((text.len(), end), (253, 255));
        // 257 octets
        let over = name(&[&l63, &l63, &l63, &l63]);
        assert_eq!(read(&over, 0, true), Err(DecodeError::NameTooLong));
        // made long through a pointer: 64 + 64 + 64 here, 64 + 2 at the target
        let mut msg = name(&[&l63[..63], b"y"]);
        let at = msg.len();
        msg.extend([&[63][..], &l63, &[63], &l63, &[63], &l63].concat());
        msg.extend(pointer(0));
        assert_eq!(read(&msg, at, true), Err(DecodeError::NameTooLong));
        // and an escaped label counts its wire octets, not its text
        let escaped = name(&[&[0xff; 63], &[0xff; 63], &[0xff; 63], &[0xff; 63]]);
        assert_eq!(read(&escaped, 0, true), Err(DecodeError::NameTooLong));
    }

    #[test]
    fn a_256_octet_name_is_too_long() {
        let l63 = [b'x'; 63];
        let over = name(&[&l63, &l63, &l63, &l63[..62]]);
        assert_eq!(over.len(), 256);
        assert_eq!(read(&over, 0, true), Err(DecodeError::NameTooLong));
    }

    #[test]
    fn odd_octets_are_escaped_as_rfc_4343_says() {
        let msg = name(&[
            b"A.b",
            b"c\\D",
            &[0x00, b' ', 0x7f, 0xff, b'~', b'!'],
            b"Com",
        ]);
        assert_eq!(
            read(&msg, 0, true),
            Ok((r"a\.b.c\\d.\000\032\127\255~!.com".into(), msg.len()))
        );
        assert_eq!(
            read(&msg, 0, false),
            Ok((r"A\.b.c\\D.\000\032\127\255~!.Com".into(), msg.len()))
        );
        let mut out = String::new();
        push_label(&mut out, b"Tab\there", false);
        assert_eq!(out, r"Tab\009here");
        out.clear();
        push_label(&mut out, b"MiXeD-_09", true);
        assert_eq!(out, "mixed-_09");
        assert!(is_plain(b'!') && is_plain(b'~') && is_plain(b'A'));
        assert!(!is_plain(b'.') && !is_plain(b'\\') && !is_plain(b' ') && !is_plain(0x7f));
    }

    #[test]
    fn reserved_label_types_and_cut_names() {
        for first in [0x40, 0x80] {
            let msg = [first | 1, b'a', 0];
            assert_eq!(read(&msg, 0, true), Err(DecodeError::BadLabel));
            assert_eq!(skip_name(&msg, 0), Err(DecodeError::BadLabel));
        }
        for cut in [
            &[3, b'w', b'w'][..],   // a label past the end
            &[3, b'w', b'w', b'w'], // no root
            &[0xc0],                // half a pointer
            &[],
        ] {
            assert_eq!(
                read(cut, 0, true),
                Err(DecodeError::Truncated),
                "{cut:02x?}"
            );
            assert_eq!(skip_name(cut, 0), Err(DecodeError::Truncated), "{cut:02x?}");
        }
        // a start past the end
        assert_eq!(read(&[0], 1, true), Err(DecodeError::Truncated));
    }
}
