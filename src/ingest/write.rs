//! Ingest stage 6: transactions → the Parquet dataset (SPEC §3).
//!
//! In: transactions of one ingest. Out: files under
//! `DIR/transactions/date=YYYY-MM-DD/`, zstd, dictionary encoded, sorted by
//! `ts`, with page statistics. Every file is written under a hidden temporary
//! name and renamed into place once all are complete; they count only when
//! the ingest's Delta commit adds them (`crate::dataset`). File names carry
//! the writer's id, so a killed ingest's files are found and removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{interleave, take};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::dataset::schema::{SCHEMA_VERSION, TRANSACTIONS};
use crate::dataset::{self, DataFile};
use crate::error::{Error, Result};
use crate::ingest::correlate::Transaction;
use crate::ingest::{batch, dns};

mod file;

pub use crate::dataset::{CAPTURES_DIR, TRANSACTIONS_DIR};
pub use file::{FileWriter, Slicer};

/// Rows of a column the Parquet writer takes at a time: a spool's rows are
/// gathered into `ts` order and encoded a slice of this many rows a column.
/// When a flush gathered whole batches of all columns, 64 Ki rows held about
/// 70 MiB at a 2-thread ingest's peak (heaptrack), and the peak RSS of a
/// 20 M-packet ingest was 818-824 MiB; at 8 Ki rows, 772-773 MiB in the
/// same time (2 rounds interleaved). 32 Ki-row slices of one column were not
/// faster (docs/DESIGN.md "A flush").
const BATCH_ROWS: usize = 8_192;
/// Finished transactions a spool holds before it turns them into an Arrow
/// batch: a `Transaction` takes several times the memory of its row.
const BUILD_ROWS: usize = 8_192;
const ROW_GROUP_ROWS: usize = 1 << 18;

/// Integer columns whose values are nearly all distinct, so a dictionary
/// only adds a page. Delta encoding stores the small steps between rows
/// sorted by `ts` (the file's order): `ts` and `query_frame`.
const DELTA_COLUMNS: [&str; 2] = ["ts", "query_frame"];
/// Distinct integers with no small steps between rows: random 16-bit ids and
/// ports, and a response's time and frame, which follow the query's by a
/// varying gap. Byte stream split puts each byte of the values in a stream
/// of its own, and zstd then finds the high bytes' runs. Against delta
/// encoding, on the rows of `dnsq synth --packets 2000000 --seed 1` written
/// as one file (`dnsq limits writer`): id and client_port -1.06% of the file,
/// response_ts -0.89%, response_frame -0.75%; ts and query_frame +0.89% and
/// +1.40%, so they stay delta. DataFusion, DuckDB, pyarrow, Polars and Spark
/// read both encodings (tests/engines.rs).
const SPLIT_COLUMNS: [&str; 4] = ["id", "client_port", "response_ts", "response_frame"];
/// zstd level for most columns: higher levels gain little on them.
const ZSTD_LEVEL: i32 = 3;
/// Columns zstd compresses much better at a higher level, and the level:
/// names (their dictionary pages above all) and the response times'
/// dictionary. The rows of `dnsq synth --packets 2000000 --seed 1`, ingested
/// on 2 threads (`benches/e2e.sh`'s capture; 238,907,471 bytes of pcap):
/// 34,383,225 bytes of Parquet (14.39%) with all at 3, 33,267,028 (13.92%)
/// with these, 33,140,037 (13.87%) with all five at 9. The writer alone on
/// one core (`dnsq limits writer`, the same rows as one file, best of 4)
/// took 1.05-1.14 s, 1.45-1.53 s and 1.61-1.85 s. Alone at 9 against 3,
/// the name columns saved 570 kB (answer names) and 342 kB (qname), the
/// rest under 200 kB each.
const ZSTD_DEEP_COLUMNS: [(&[&str], i32); 5] = [
    (&["answers", "list", "element", "name"], 9),
    (&["qname"], 9),
    (&["reg_domain"], 6),
    (&["response_time_ms"], 6),
    (&["client_ip"], 6),
];

pub fn properties() -> WriterProperties {
    let mut builder = WriterProperties::builder();
    for name in DELTA_COLUMNS {
        let column = ColumnPath::from(name);
        builder = builder
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
    }
    for name in SPLIT_COLUMNS {
        let column = ColumnPath::from(name);
        builder = builder
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_encoding(column, Encoding::BYTE_STREAM_SPLIT);
    }
    for (path, level) in ZSTD_DEEP_COLUMNS {
        builder = builder.set_column_compression(column_path(path), zstd(level));
    }
    builder
        .set_compression(zstd(ZSTD_LEVEL))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_coerce_types(true)
        .set_key_value_metadata(Some(vec![
            KeyValue::new("dnsq.schema_version".into(), SCHEMA_VERSION.to_string()),
            KeyValue::new("dnsq.version".into(), env!("CARGO_PKG_VERSION").to_string()),
        ]))
        .build()
}

/// A leaf column's path (`["answers", "list", "element", "name"]`).
fn column_path(parts: &[&str]) -> ColumnPath {
    ColumnPath::new(parts.iter().map(|p| p.to_string()).collect())
}

fn zstd(level: i32) -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(level).expect("a zstd level in 1..=22"))
}

/// `YYYY-MM-DD` (UTC) of a timestamp in nanoseconds.
pub fn day_of(ts_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts_ns)
        .format("%Y-%m-%d")
        .to_string()
}

/// Files written under temporary names, waiting for `commit`.
#[derive(Default)]
pub struct Staged {
    files: Vec<(PathBuf, PathBuf, DataFile)>,
}

impl Staged {
    /// Renames every staged file into place; the files count only once the
    /// Delta commit adds them (`dataset::Writer::commit`).
    pub fn place(self) -> Result<Vec<DataFile>> {
        let mut done = Vec::new();
        for (tmp, dest, file) in self.files {
            fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
            done.push(file);
        }
        Ok(done)
    }

    /// Removes the temporary files (an ingest that failed).
    pub fn abandon(self) {
        for (tmp, _, _) in self.files {
            let _ = fs::remove_file(tmp);
        }
    }

    /// Adds another spool's staged files, to be committed together.
    pub fn absorb(&mut self, other: Staged) {
        self.files.extend(other.files);
    }

    /// Writes `batches` as the file `name` of the day partition `day`,
    /// under a temporary name until `place`.
    pub fn write(
        &mut self,
        root: &Path,
        day: &str,
        name: &str,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        self.stage(root, day, name, |file, info| {
            write_file(file, batches, info)
        })
    }

    /// Writes a spool's rows as the file `name` of the day partition `day`
    /// (as `write`): the rows `order` picks from `sources`, in that order,
    /// each column gathered a slice at a time as it is encoded
    /// (`FileWriter::write_columns`). Every row of `sources` is picked.
    fn write_spooled(
        &mut self,
        root: &Path,
        day: &str,
        name: &str,
        sources: &[&RecordBatch],
        order: &[(usize, usize)],
        texts: &[Option<ArrayRef>],
    ) -> Result<()> {
        self.stage(root, day, name, |file, info| {
            info.rows = order.len() as u64;
            info.ts_range = sources
                .iter()
                .filter_map(|b| dataset::ts_range(b))
                .reduce(|(a, z), (lo, hi)| (a.min(lo), z.max(hi)));
            let mut w = FileWriter::new(file)?;
            w.write_columns(order.len(), &|c, rows| {
                gather_column(&TRANSACTIONS, c, sources, &order[rows], texts)
            })?;
            w.finish()
        })
    }

    /// Creates the file `name` of the day partition `day` under a temporary
    /// name, has `write` fill it, and syncs it.
    fn stage(
        &mut self,
        root: &Path,
        day: &str,
        name: &str,
        write: impl FnOnce(File, &mut DataFile) -> Result<File>,
    ) -> Result<()> {
        let dir = root.join(TRANSACTIONS_DIR).join(format!("date={day}"));
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let dest = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut info = DataFile {
            rel: format!("date={day}/{name}"),
            day: day.to_string(),
            size: 0,
            rows: 0,
            ts_range: None,
        };
        self.files.push((tmp.clone(), dest, info.clone()));
        let file = write(file, &mut info).map_err(|e| naming(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        info.size = file.metadata().map_err(|e| Error::io(&tmp, e))?.len();
        if let Some(last) = self.files.last_mut() {
            last.2 = info;
        }
        Ok(())
    }
}

/// Writes `batches` into `file` as one transactions file, counting them
/// into `info`; the file, unsynced.
fn write_file(
    file: File,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    info: &mut DataFile,
) -> Result<File> {
    let mut w = FileWriter::new(file)?;
    for b in batches {
        let b = b?;
        info.rows += b.num_rows() as u64;
        if let Some((lo, hi)) = dataset::ts_range(&b) {
            info.ts_range = Some(
                info.ts_range
                    .map_or((lo, hi), |(a, z)| (a.min(lo), z.max(hi))),
            );
        }
        w.write(&b)?;
    }
    w.finish()
}

/// An error of the Parquet writer names the file (`Error::parquet_at`).
fn naming(path: &Path, e: Error) -> Error {
    match e {
        Error::Parquet(e) => Error::parquet_at(path, e),
        e => e,
    }
}

/// Sort key that makes output independent of threads and chunking.
type OrderKey = (i64, u32, u64, u64);

fn order_key(t: &Transaction) -> OrderKey {
    let f = t.first();
    (
        f.ts_ns,
        f.capture,
        f.frame,
        t.response.as_ref().map_or(0, |r| r.frame),
    )
}

/// One day's rows of a spool: Arrow batches and the sort key of every row.
#[derive(Default)]
struct DaySpool {
    batches: Vec<RecordBatch>,
    /// (key, batch, row) of every row, in arrival order.
    keys: Vec<(OrderKey, u32, u32)>,
}

/// Transactions on their way to Parquet, for one shard of the pairing.
///
/// Finished transactions are turned into Arrow batches (`BATCH_ROWS` at a
/// time), which hold a row in a fraction of the memory a `Transaction` takes;
/// once `file_rows` rows wait, each day's rows are sorted by `ts` and written
/// as one file. Memory stays bounded by `file_rows` whatever the capture size.
pub struct Spool {
    root: PathBuf,
    /// `part-<writer id>-<shard>`: file names are `<prefix>-<n>.parquet`.
    prefix: String,
    file_rows: usize,
    /// Rows that make this spool's next file: `file_rows`, but for the
    /// first file of a shard (`Spool::staggered`).
    next_rows: usize,
    rows: Arc<batch::Rows>,
    memo: batch::Memo,
    pending: Vec<Transaction>,
    days: BTreeMap<String, DaySpool>,
    spooled: usize,
    files: usize,
    pub staged: Staged,
}

impl Spool {
    pub fn new(root: &Path, prefix: String, file_rows: usize, rows: Arc<batch::Rows>) -> Self {
        Spool {
            root: root.to_path_buf(),
            prefix,
            file_rows: file_rows.max(1),
            next_rows: file_rows.max(1),
            rows,
            memo: batch::Memo::default(),
            pending: Vec::new(),
            days: BTreeMap::new(),
            spooled: 0,
            files: 0,
            staged: Staged::default(),
        }
    }

    /// Shard `shard` of `shards` writes its first file at `shard + 1`
    /// shards' part of `file_rows`, then every file at `file_rows`. The
    /// shards get rows at the same pace, so without this they all filled
    /// up, and wrote, at the same moment: the peak held every shard's spool
    /// full and as many Parquet writers at once. Out of step by a quarter
    /// (4 shards), the spools hold between three and five eighths of their
    /// rows at any time.
    pub fn staggered(mut self, shard: usize, shards: usize) -> Self {
        self.next_rows = (self.file_rows * (shard + 1) / shards.max(1)).max(1);
        self
    }

    pub fn push(&mut self, t: Transaction) -> Result<()> {
        self.pending.push(t);
        if self.pending.len() >= BUILD_ROWS {
            self.build()?;
        }
        if self.spooled >= self.next_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Turns the pending transactions into one Arrow batch per day.
    fn build(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // by UTC day (nearly always one: then the sort finds one run and moves nothing)
        let day = |t: &Transaction| t.ts_ns().div_euclid(86_400 * 1_000_000_000);
        self.pending.sort_by_key(day);
        while let Some(first) = self.pending.first() {
            let d = day(first);
            let spool = self.days.entry(day_of(first.ts_ns())).or_default();
            let len = self.pending.partition_point(|t| day(t) == d);
            let b = spool.batches.len() as u32;
            spool.keys.extend(
                self.pending[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (order_key(t), b, i as u32)),
            );
            spool.batches.push(batch::build(
                self.pending.drain(..len),
                &self.rows,
                &mut self.memo,
            )?);
            self.spooled += len;
        }
        Ok(())
    }

    /// Writes every day's spooled rows, sorted, as a file of its own.
    fn flush(&mut self) -> Result<()> {
        self.build()?;
        let texts = self.memo.texts();
        for (day, mut spool) in std::mem::take(&mut self.days) {
            spool.keys.sort_unstable();
            let name = format!("{}-{}.parquet", self.prefix, self.files);
            self.files += 1;
            let sources: Vec<&RecordBatch> = spool.batches.iter().collect();
            let order: Vec<(usize, usize)> = spool
                .keys
                .iter()
                .map(|&(_, b, r)| (b as usize, r as usize))
                .collect();
            drop(spool.keys);
            self.staged
                .write_spooled(&self.root, &day, &name, &sources, &order, &texts)?;
        }
        self.memo.forget_texts();
        self.spooled = 0;
        self.next_rows = self.file_rows;
        Ok(())
    }

    /// Writes what is left; the files stay staged until `Staged::commit`.
    /// Also returns the responses found malformed as their rows were built,
    /// by capture (`batch::Memo::checked`).
    pub fn finish(mut self) -> Result<(Staged, Vec<dns::MalformedCounts>)> {
        match self.flush() {
            Ok(()) => Ok((self.staged, self.memo.take_malformed())),
            Err(e) => {
                self.staged.abandon();
                Err(e)
            }
        }
    }
}

/// A batch [`batch::build`] made, as rows of `transactions` in its own
/// order (what the writer is handed; for benchmarks and tests).
pub fn unspool(spooled: &RecordBatch, memo: &mut batch::Memo) -> Result<RecordBatch> {
    let rows: Vec<(usize, usize)> = (0..spooled.num_rows()).map(|r| (0, r)).collect();
    gather(&TRANSACTIONS, &[spooled], &rows, &memo.texts())
}

/// The rows `rows` (batch, row) of `sources`, in that order, as a batch of
/// `schema`: arrow's `interleave`, except for booleans, which it copies a
/// row at a time through `MutableArrayData` (gathering the eight boolean
/// columns here saved 3.6% of an ingest's instructions, callgrind, 200 k
/// packets), and for the columns with `texts` (`batch::CODED`), whose keys
/// are gathered and then looked up.
fn gather(
    schema: &SchemaRef,
    sources: &[&RecordBatch],
    rows: &[(usize, usize)],
    texts: &[Option<ArrayRef>],
) -> Result<RecordBatch> {
    let columns = (0..schema.fields().len())
        .map(|c| gather_column(schema, c, sources, rows, texts))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Column `c` of `schema`, of the rows `rows` picks from spooled
/// `sources`, a coded column turned back into its `texts`.
fn gather_column(
    schema: &SchemaRef,
    c: usize,
    sources: &[&RecordBatch],
    rows: &[(usize, usize)],
    texts: &[Option<ArrayRef>],
) -> Result<ArrayRef> {
    if let Some(Some(texts)) = texts.get(c) {
        let keys: Vec<&dyn Array> = sources.iter().map(|b| b.column(c).as_ref()).collect();
        Ok(take(texts, &interleave(&keys, rows)?, None)?)
    } else if schema.field(c).data_type() == &DataType::Boolean {
        let arrays: Vec<&BooleanArray> = sources.iter().map(|b| b.column(c).as_boolean()).collect();
        let gathered: BooleanArray = rows
            .iter()
            .map(|&(b, r)| arrays[b].is_valid(r).then(|| arrays[b].value(r)))
            .collect();
        Ok(Arc::new(gathered) as ArrayRef)
    } else {
        let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(c).as_ref()).collect();
        Ok(interleave(&arrays, rows)?)
    }
}

#[cfg(test)]
mod tests;
