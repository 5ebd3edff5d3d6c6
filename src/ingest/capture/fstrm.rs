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
