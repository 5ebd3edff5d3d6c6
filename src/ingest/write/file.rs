//! One transactions file written with ArrowWriter's settings and bytes,
//! its columns encoded in parallel.

use std::fs::File;
use std::ops::Range;
use std::sync::LazyLock;

use arrow::array::{new_empty_array, ArrayRef, RecordBatch};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

use super::{properties, BATCH_ROWS, ROW_GROUP_ROWS};
use crate::dataset::schema::TRANSACTIONS;
use crate::error::Result;

/// One transactions file as ArrowWriter writes it (its properties, the
/// Arrow schema in the metadata, row groups of `ROW_GROUP_ROWS`, the same
/// bytes), except that its columns are encoded in parallel (rayon), where
/// ArrowWriter encodes them one after the other. A spool's flush is the
/// largest piece of work in a window: encoded on one thread, a shard's flush
/// kept that thread busy while the other waited. A spool's rows are
/// gathered into sorted order by the same per-column tasks
/// (`write_columns`, docs/DESIGN.md "A flush").
pub struct FileWriter {
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    /// The open row group's column writers, and its rows so far.
    columns: Vec<ArrowColumnWriter>,
    rows: usize,
    groups: usize,
}

impl FileWriter {
    pub fn new(file: File) -> Result<Self> {
        let (file, factory) = ArrowWriter::try_new(file, TRANSACTIONS.clone(), Some(properties()))?
            .into_serialized_writer()?;
        let columns = factory.create_column_writers(0)?;
        if columns.len() != LEAVES.iter().sum::<usize>() {
            return Err(parquet::errors::ParquetError::General(
                "the transactions schema's leaves are not its writers'".into(),
            )
            .into());
        }
        Ok(FileWriter {
            file,
            factory,
            columns,
            rows: 0,
            groups: 0,
        })
    }

    /// Encodes `b`, cut where a row group ends as ArrowWriter cuts it. Its
    /// columns must be the transactions schema's, as ArrowWriter requires.
    pub fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let fields = TRANSACTIONS.fields();
        if b.num_columns() != fields.len()
            || b.columns()
                .iter()
                .zip(fields.iter())
                .any(|(c, f)| c.data_type() != f.data_type())
        {
            return Err(parquet::errors::ParquetError::General(
                "a batch that is not of the transactions schema".into(),
            )
            .into());
        }
        self.write_columns(b.num_rows(), &|c, rows| {
            Ok(b.column(c).slice(rows.start, rows.len()))
        })
    }

    /// Encodes `rows` more rows, which `column(c, range)` gives a column
    /// and a slice of at most `BATCH_ROWS` rows at a time, of the
    /// transactions schema's types. The columns are encoded in parallel,
    /// each taking its slices in order and closing its chunk where a row
    /// group ends (row groups cut as ArrowWriter cuts them).
    pub fn write_columns(&mut self, rows: usize, column: &Slicer<'_>) -> Result<()> {
        let mut at = 0;
        while at < rows {
            let n = (rows - at).min(ROW_GROUP_ROWS - self.rows);
            let ends_group = self.rows + n == ROW_GROUP_ROWS;
            self.encode(at..at + n, ends_group, column)?;
            (at, self.rows) = (at + n, self.rows + n);
            if ends_group {
                self.rows = 0;
            }
        }
        Ok(())
    }

    /// Writes the last row group and the footer; the file, unsynced.
    pub fn finish(mut self) -> Result<File> {
        if self.rows > 0 {
            // no rows left to take: only the open columns are closed
            self.encode(0..0, true, &|c, _| {
                Ok(new_empty_array(TRANSACTIONS.field(c).data_type()))
            })?;
        }
        Ok(self.file.into_inner()?)
    }

    /// Encodes the rows `range` of `column`, each column on its own rayon
    /// task: a flush is the largest piece of work in a window, and a
    /// barrier between gathering and encoding, or between batches, left a
    /// thread waiting on the slowest column each time. `close`: the row
    /// group ends here; its chunks are appended to the file in schema
    /// order and the next row group's writers are opened.
    fn encode(&mut self, range: Range<usize>, close: bool, column: &Slicer<'_>) -> Result<()> {
        let fields = TRANSACTIONS.fields();
        let mut writers = std::mem::take(&mut self.columns).into_iter();
        let by_column: Vec<Vec<ArrowColumnWriter>> = LEAVES
            .iter()
            .map(|&n| writers.by_ref().take(n).collect())
            .collect();
        let done = by_column
            .into_par_iter()
            .enumerate()
            .map(|(c, mut leaves)| -> Result<Encoded> {
                let mut at = range.start;
                while at < range.end {
                    let end = (at + BATCH_ROWS).min(range.end);
                    let array = column(c, at..end)?;
                    for (w, leaf) in leaves.iter_mut().zip(compute_leaves(&fields[c], &array)?) {
                        w.write(&leaf)?;
                    }
                    at = end;
                }
                Ok(match close {
                    true => Encoded::Closed(
                        leaves
                            .into_iter()
                            .map(|w| w.close())
                            .collect::<std::result::Result<_, _>>()?,
                    ),
                    false => Encoded::Open(leaves),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !close {
            for e in done {
                if let Encoded::Open(leaves) = e {
                    self.columns.extend(leaves);
                }
            }
            return Ok(());
        }
        self.groups += 1;
        self.columns = self.factory.create_column_writers(self.groups)?;
        let mut group = self.file.next_row_group()?;
        for e in done {
            if let Encoded::Closed(chunks) = e {
                for chunk in chunks {
                    chunk.append_to_row_group(&mut group)?;
                }
            }
        }
        group.close()?;
        Ok(())
    }
}

/// A file's rows a column at a time: `(column, rows)` gives that slice of
/// the column (`FileWriter::write_columns`).
pub type Slicer<'a> = dyn Fn(usize, Range<usize>) -> Result<ArrayRef> + Sync + 'a;

/// A column's leaf writers after its rows of a row group: still open, or
/// closed into chunks at the row group's end.
enum Encoded {
    Open(Vec<ArrowColumnWriter>),
    Closed(Vec<ArrowColumnChunk>),
}

/// Leaf columns of each of the transactions schema's columns (a list of
/// records has one a field).
static LEAVES: LazyLock<Vec<usize>> = LazyLock::new(|| {
    TRANSACTIONS
        .fields()
        .iter()
        .map(|f| {
            compute_leaves(f, &new_empty_array(f.data_type())).map_or(1, |leaves| leaves.len())
        })
        .collect()
});
