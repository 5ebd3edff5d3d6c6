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

#[cfg(test)]
mod tests {
    use super::*;

    /// A control frame: escape, length, type and a content type field.
    fn control(ty: u32, content: Option<&[u8]>) -> Vec<u8> {
        let mut body = ty.to_be_bytes().to_vec();
        if let Some(c) = content {
            body.extend(FIELD_CONTENT_TYPE.to_be_bytes());
            body.extend((c.len() as u32).to_be_bytes());
            body.extend(c);
        }
        let mut f = vec![0, 0, 0, 0];
        f.extend((body.len() as u32).to_be_bytes());
        f.extend(body);
        f
    }

    fn start() -> Vec<u8> {
        control(CONTROL_START, Some(CONTENT_TYPE))
    }

    fn data(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend(payload);
        f
    }

    /// A frame of `len` bytes claimed, holding only `have` of them.
    fn control_of_len(len: u32, have: usize) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 0];
        f.extend(len.to_be_bytes());
        f.extend(CONTROL_START.to_be_bytes());
        f.resize(8 + have, 0);
        f
    }

    fn read_all(file: &[u8]) -> (Vec<&[u8]>, Option<Stop>) {
        let mut r = frames(file).expect("a dnstap START");
        let got = r.by_ref().collect();
        (got, r.stop)
    }

    #[test]
    fn offsets_follow_the_frames() {
        let f = [start(), data(b"one"), data(b"three")].concat();
        let mut r = frames(&f).expect("a dnstap START");
        let first = start().len() as u64;
        assert_eq!(r.offset(), first);
        assert_eq!(r.next(), Some(&b"one"[..]));
        assert_eq!(r.offset(), first + 7);
        // resuming at a frame boundary reads on from there
        let mut rest = frames_at(&f, r.offset() as usize);
        assert_eq!(rest.next(), Some(&b"three"[..]));
        assert_eq!(rest.offset(), f.len() as u64);
        assert_eq!(rest.next(), None);
        assert_eq!(rest.stop, None);
        // and after its end nothing more comes
        assert_eq!(rest.next(), None);
    }

    #[test]
    fn files_joined_by_cat_read_on_past_a_stop() {
        let stop = control(CONTROL_STOP, None);
        let two = [
            start(),
            data(b"a"),
            stop.clone(),
            start(),
            data(b"b"),
            stop.clone(),
        ]
        .concat();
        assert_eq!(read_all(&two), (vec![&b"a"[..], b"b"], None));
        // a STOP followed by anything else ends the file there
        let tail = [start(), data(b"a"), stop.clone(), data(b"b")].concat();
        assert_eq!(read_all(&tail), (vec![&b"a"[..]], None));
        // the first bytes of a START after a STOP: a cut where it starts
        let at = [start(), data(b"a"), stop].concat();
        let cut = [&at[..], &[0, 0, 0, 0, 0, 0]].concat();
        assert_eq!(
            read_all(&cut),
            (
                vec![&b"a"[..]],
                Some(Stop::Cut {
                    offset: at.len() as u64
                })
            )
        );
    }

    #[test]
    fn other_control_frames_carry_no_data() {
        let ready = control(4, None);
        let f = [start(), ready, data(b"a"), start(), data(b"b")].concat();
        assert_eq!(read_all(&f), (vec![&b"a"[..], b"b"], None));
    }

    #[test]
    fn control_frame_lengths_are_checked() {
        let head = [start(), data(b"a")].concat();
        let at = head.len() as u64;
        let corrupt = |len: u32| Stop::Corrupt {
            offset: at,
            what: format!("a control frame of {len} bytes"),
        };
        for (frame, stop) in [
            (control_of_len(3, 3), Some(corrupt(3))),
            (control_of_len(513, 513), Some(corrupt(513))),
            (control_of_len(u32::MAX, 4), Some(corrupt(u32::MAX))),
            // the longest there is, whole: read and skipped
            (control_of_len(512, 512), None),
            // cut in its body, and in its length
            (control_of_len(512, 100), Some(Stop::Cut { offset: at })),
            (vec![0, 0, 0, 0, 0, 0], Some(Stop::Cut { offset: at })),
            (vec![0, 0], Some(Stop::Cut { offset: at })),
        ] {
            let f = [&head[..], &frame].concat();
            assert_eq!(read_all(&f), (vec![&b"a"[..]], stop));
        }
    }

    #[test]
    fn data_frames_up_to_the_limit_are_read() {
        let big = vec![7; MAX_FRAME];
        let f = [start(), data(&big)].concat();
        let (got, stop) = read_all(&f);
        assert_eq!((got.len(), got[0].len(), stop), (1, MAX_FRAME, None));
        let mut over = [start(), data(b"a")].concat();
        let at = over.len() as u64;
        over.extend((MAX_FRAME as u32 + 1).to_be_bytes());
        over.extend(&big);
        assert_eq!(
            read_all(&over),
            (
                vec![&b"a"[..]],
                Some(Stop::Corrupt {
                    offset: at,
                    what: "a data frame of 1048577 bytes".into()
                })
            )
        );
    }

    #[test]
    fn the_start_frame_is_checked_before_anything_is_read() {
        let why = |b: &[u8]| frames(b).map(|_| ()).map_err(|e| e.0);
        assert_eq!(why(&start()), Ok(()));
        assert_eq!(
            why(&[0, 0, 0, 0, 0, 0]),
            Err("cut inside its first frame".into())
        );
        assert_eq!(
            why(&control_of_len(40, 10)),
            Err("cut inside its first frame".into())
        );
        for len in [3, 513] {
            assert_eq!(
                why(&control_of_len(len, len as usize)),
                Err("a first control frame of impossible length".into())
            );
        }
        // a field that claims more bytes than its frame holds
        let mut lying = start();
        lying[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert_eq!(
            why(&lying),
            Err("a START field longer than its frame".into())
        );
        assert_eq!(
            why(&data(b"x")),
            Err("no Frame Streams control frame at its start".into())
        );
        // the content type may follow other fields
        let mut body = CONTROL_START.to_be_bytes().to_vec();
        body.extend([0, 0, 0, 9, 0, 0, 0, 2, b'h', b'i']);
        body.extend(FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend((CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend(CONTENT_TYPE);
        let f = [&[0, 0, 0, 0][..], &(body.len() as u32).to_be_bytes(), &body].concat();
        assert_eq!(why(&f), Ok(()));
    }

    #[test]
    fn a_start_is_told_from_its_first_bytes() {
        let s = start();
        assert!(start_at(&s, 0));
        // the first bytes of one: the next read will find it cut
        assert!(start_at(&s[..4], 0));
        assert!(start_at(&s[..11], 0));
        assert!(!start_at(&control(CONTROL_STOP, None), 0));
        assert!(!start_at(&data(b"abc"), 0));
        assert!(!start_at(&s, s.len()));
        assert!(!start_at(&s, s.len() + 10));
    }

    #[test]
    fn a_real_log_reads_whole() {
        // data/dnstap.fstrm (data/README.md): 58 messages, then STOP
        let f = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/dnstap.fstrm"))
            .expect("data/dnstap.fstrm is in the repository");
        let mut r = frames(&f).expect("a dnstap START");
        assert_eq!(r.by_ref().count(), 58);
        assert_eq!(r.stop, None);
        assert_eq!(r.offset() as usize, f.len());
    }
}
