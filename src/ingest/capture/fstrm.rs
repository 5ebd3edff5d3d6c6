//! A dnstap log (Frame Streams): a walk over its frames into chunks.

use super::*;

/// Cuts a dnstap file into chunks of whole data frames; the frames before a
/// cut or corrupt frame are kept, and the walk says where it stopped.
pub(super) fn walk_dnstap(d: &[u8], chunk_bytes: usize, release: &dyn Fn(usize, usize)) -> Walk {
    use crate::ingest::dnstap::{self, Stop};
    let mut walk = Walk {
        chunks: Vec::new(),
        records: 0,
        problem: None,
    };
    let mut frames = match dnstap::frames(d) {
        Ok(f) => f,
        Err(e) => {
            walk.problem = Some(Problem::Corrupt {
                offset: 0,
                what: e.0,
            });
            return walk;
        }
    };
    let mut end = frames.offset() as usize;
    let mut chunks = Chunker::new(end, true, chunk_bytes);
    while frames.next().is_some() {
        walk.records += 1;
        end = frames.offset() as usize;
        chunks.record(&mut walk, end, release);
    }
    chunks.cut(&mut walk, end, release);
    walk.problem = match frames.stop.take() {
        Some(Stop::Cut { offset }) => Some(Problem::Truncated { offset }),
        Some(Stop::Corrupt { offset, what }) => Some(Problem::Corrupt { offset, what }),
        None => None,
    };
    walk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/dnstap.fstrm"))
            .expect("data/dnstap.fstrm is in the repository")
    }

    /// Where each data frame starts and where the last one ends, as the
    /// frame reader walks them.
    fn frame_bounds(d: &[u8]) -> (Vec<usize>, usize) {
        let mut frames = crate::ingest::dnstap::frames(d).unwrap();
        let mut starts = vec![frames.offset() as usize];
        while frames.next().is_some() {
            starts.push(frames.offset() as usize);
        }
        let end = starts.pop().unwrap();
        (starts, end)
    }

    #[test]
    fn chunks_cover_every_frame_once_and_number_them() {
        let d = log();
        let (starts, end) = frame_bounds(&d);
        assert_eq!(starts.len(), 58);
        let released = std::cell::RefCell::new(Vec::new());
        let walk = walk_dnstap(&d, 1024, &|a, b| released.borrow_mut().push((a, b)));
        assert_eq!(walk.records, 58);
        assert_eq!(walk.problem, None);
        assert!(walk.chunks.len() > 1, "{} chunks", walk.chunks.len());
        // contiguous, from the first data frame to the end of the last one,
        // each starting on a frame with the number of the frames before it
        assert_eq!(walk.chunks[0].start, starts[0]);
        assert_eq!(walk.chunks.last().unwrap().end, end);
        for pair in walk.chunks.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for c in &walk.chunks {
            let i = starts
                .iter()
                .position(|&s| s == c.start)
                .expect("a chunk starts on a frame");
            assert_eq!(c.first_frame, i as u64 + 1);
        }
    }

    #[test]
    fn a_cut_log_keeps_its_whole_frames() {
        let d = log();
        let (starts, end) = frame_bounds(&d);
        // the log ends with a STOP frame; cut inside the last data frame
        assert!(end < d.len());
        let cut = &d[..end - 3];
        let walk = walk_dnstap(cut, 1 << 20, &|_, _| {});
        assert_eq!(walk.records, 57);
        assert_eq!(
            walk.problem,
            Some(Problem::Truncated {
                offset: starts[57] as u64
            })
        );
        assert_eq!(walk.chunks.last().unwrap().end, starts[57]);
    }

    #[test]
    fn a_file_that_is_not_dnstap_is_corrupt_at_its_start() {
        let walk = walk_dnstap(b"\0\0\0\0\0\0\0\x08not fstrm", 1 << 20, &|_, _| {});
        assert_eq!(walk.records, 0);
        assert!(walk.chunks.is_empty());
        assert!(
            matches!(walk.problem, Some(Problem::Corrupt { offset: 0, .. })),
            "{:?}",
            walk.problem
        );
    }
}
