//! Ingest stage 6: transactions → the Parquet dataset (SPEC §3).
//!
//! In: transactions and capture records of one ingest. Out: files under
//! `DIR/transactions/date=YYYY-MM-DD/` and `DIR/captures/`, zstd, dictionary
//! encoded, sorted by `ts`, with page statistics. Every file is written under
//! a hidden temporary name and renamed into place only when all are complete
//! (transactions first, the captures record last), so readers see the
//! dataset as it was or with whole files only. File names derive from the
//! content hashes of the ingested captures: a repeated ingest after a crash
//! replaces files instead of adding rows.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::{Error, Result};
use crate::ingest::batch;
use crate::ingest::correlate::Transaction;
use crate::ingest::rdata::civil_from_days;
use crate::ingest::schema::{CAPTURES, SCHEMA_VERSION, TRANSACTIONS};

pub const TRANSACTIONS_DIR: &str = "transactions";
pub const CAPTURES_DIR: &str = "captures";
/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 65_536;
const ROW_GROUP_ROWS: usize = 1 << 20;

fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("zstd level 3 is valid"),
        ))
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

/// `YYYY-MM-DD` (UTC) of a timestamp in nanoseconds.
pub fn day_of(ts_ns: i64) -> String {
    let (y, m, d) = civil_from_days(ts_ns.div_euclid(86_400 * 1_000_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Files written under temporary names, waiting for `commit`.
#[derive(Default)]
pub struct Staged {
    renames: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    /// Renames every staged file into place, in the order staged.
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        for (tmp, dest) in self.renames {
            fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
            done.push(dest);
        }
        Ok(done)
    }

    /// Removes the temporary files (an ingest that failed).
    pub fn abandon(self) {
        for (tmp, _) in self.renames {
            let _ = fs::remove_file(tmp);
        }
    }

    fn write(
        &mut self,
        dir: &Path,
        name: &str,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let dest = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        self.renames.push((tmp.clone(), dest));
        let mut w = ArrowWriter::try_new(file, schema, Some(properties()))?;
        for b in batches {
            w.write(&b?)?;
        }
        let file = w.into_inner()?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        Ok(())
    }
}

/// Sort key that makes output independent of threads and chunking.
fn order_key(t: &Transaction) -> (i64, u32, u64, u64) {
    let f = t.first();
    (
        f.ts_ns,
        f.capture,
        f.frame,
        t.response.as_ref().map_or(0, |r| r.frame),
    )
}

/// Writes the transactions, one file per day, under temporary names.
pub fn stage_transactions(
    staged: &mut Staged,
    root: &Path,
    ingest_id: &str,
    mut txs: Vec<Transaction>,
    captures: &[String],
) -> Result<usize> {
    txs.sort_by_key(order_key);
    let mut days: BTreeMap<String, Vec<Transaction>> = BTreeMap::new();
    for t in txs {
        days.entry(day_of(t.ts_ns())).or_default().push(t);
    }
    let mut files = 0;
    for (day, rows) in days {
        let dir = root.join(TRANSACTIONS_DIR).join(format!("date={day}"));
        let batches = rows.chunks(BATCH_ROWS).map(|c| batch::build(c, captures));
        staged.write(
            &dir,
            &format!("part-{ingest_id}.parquet"),
            batches,
            TRANSACTIONS.clone(),
        )?;
        files += 1;
    }
    Ok(files)
}

/// Writes the captures record of this ingest under a temporary name.
pub fn stage_captures(
    staged: &mut Staged,
    root: &Path,
    ingest_id: &str,
    batch: RecordBatch,
) -> Result<()> {
    let dir = root.join(CAPTURES_DIR);
    staged.write(
        &dir,
        &format!("part-{ingest_id}.parquet"),
        [Ok(batch)],
        CAPTURES.clone(),
    )
}

/// Content hashes of every capture already in the dataset.
pub fn ingested_hashes(root: &Path) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let dir = root.join(CAPTURES_DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let is_part = path.extension().is_some_and(|e| e == "parquet")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !is_part {
            continue;
        }
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
        for b in reader {
            let b = b?;
            if let Some(col) = b
                .column_by_name("sha256")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            {
                for i in 0..col.len() {
                    out.insert(col.value(i).to_string());
                }
            }
        }
    }
    Ok(out)
}
