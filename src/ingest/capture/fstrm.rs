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
    let empty = Arc::new(Vec::new());
    let mut chunk_start = frames.offset() as usize;
    let mut chunk_first = 1;
    let mut end = chunk_start;
    while frames.next().is_some() {
        walk.records += 1;
        end = frames.offset() as usize;
        if end - chunk_start >= chunk_bytes {
            release(chunk_start, end);
            walk.chunks.push(Chunk {
                start: chunk_start,
                end,
                first_frame: chunk_first,
                big_endian: true,
                interfaces: empty.clone(),
            });
            chunk_start = end;
            chunk_first = walk.records + 1;
        }
    }
    if end > chunk_start {
        walk.chunks.push(Chunk {
            start: chunk_start,
            end,
            first_frame: chunk_first,
            big_endian: true,
            interfaces: empty,
        });
    }
    walk.problem = match frames.stop.take() {
        Some(Stop::Cut { offset }) => Some(Problem::Truncated { offset }),
        Some(Stop::Corrupt { offset, what }) => Some(Problem::Corrupt { offset, what }),
        None => None,
    };
    walk
}
