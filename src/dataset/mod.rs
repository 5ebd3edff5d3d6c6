//! The dataset as a Delta Lake table: one atomic commit per ingest.
//!
//! `DIR/transactions/` is a Delta table (its log in `_delta_log/`) over the
//! same Hive-partitioned Parquet files as before (`date=YYYY-MM-DD/`), so plain
//! Parquet readers keep working and table readers (dnsq, Spark, the deltalake
//! packages) see exactly the committed files. dnsq writes its own Parquet
//! files and commits them with delta-rs. The protocol (docs/DESIGN.md, "The
//! commit"):
//!
//! 1. An ingest takes a writer id (a random UUID) and holds an exclusive lock
//!    on `DIR/_writers/<id>.lock` while it runs: a dead writer's lock is free.
//! 2. It writes every transactions file under a hidden temporary name, renames
//!    it to `part-<id>-…parquet`, and writes its captures rows to
//!    `DIR/captures/part-<id>.parquet` (captures are few; the file is small).
//! 3. One Delta commit adds every transactions file and records, as Delta
//!    application transactions (`txn` actions), `dnsq-ingest-<id>` and one
//!    `dnsq-capture-<sha256>` per capture. The commit file is created
//!    put-if-absent: of two writers racing for a version, one wins.
//! 4. The commit is tried without delta-rs' own retries: when another writer
//!    committed first, dnsq reloads the table, checks again which captures it
//!    holds, and tries again; a capture already there is never added twice.
//!
//! A captures file counts only when its ingest's `txn` is committed; a
//! transactions file only when the log adds it. Files of a writer whose lock is
//! free and that the log does not know (a killed ingest) are removed by the
//! next ingest or by `dnsq vacuum`, and never counted before that.

pub mod anonymize;
pub mod remote;
pub mod schema;

mod check;
mod table;
mod writer;

pub use check::*;
pub use table::*;
pub use writer::*;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::Transaction as AppTransaction;
use deltalake::kernel::{Action, Add, DataType as DeltaType, StructField, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError, ObjectStore};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use url::Url;

use crate::dataset::schema::{CAPTURES, DATE, TRANSACTIONS};
use crate::error::{Error, Result};

pub const TRANSACTIONS_DIR: &str = "transactions";
/// Where a commit's `commitInfo` keeps what its ingest found out about the
/// dataset (`query::summary`).
pub const SUMMARY_KEY: &str = "dnsq.summary";
pub const CAPTURES_DIR: &str = "captures";
pub const WRITERS_DIR: &str = "_writers";
pub const LOG_DIR: &str = "_delta_log";

/// The signal (SIGINT, SIGTERM) that asked the running ingest to stop, 0 if none.
pub static INTERRUPT: std::sync::LazyLock<std::sync::Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::LazyLock::new(Default::default);

/// `Err(Interrupted)` once SIGINT or SIGTERM arrived: checked at the ingest's
/// safe points (between windows of packets, before the commit).
pub fn check_interrupt() -> Result<()> {
    match INTERRUPT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => Ok(()),
        2 => Err(Error::Interrupted("SIGINT")),
        15 => Err(Error::Interrupted("SIGTERM")),
        _ => Err(Error::Interrupted("a signal")),
    }
}

/// Test-only crash points: `DNSQ_TEST_CRASH=<point>` aborts the process there,
/// as a `kill -9` would (no destructor, no cleanup).
pub fn crash_point(point: &str) {
    if std::env::var("DNSQ_TEST_CRASH").is_ok_and(|p| p == point) {
        eprintln!("dnsq: DNSQ_TEST_CRASH={point}: aborting");
        std::process::abort();
    }
}

/// Test-only: `DNSQ_TEST_COMMIT_DELAY_MS=N` waits N ms before the commit, so
/// that tests can make two writers race for one version.
pub fn test_delay() {
    if let Some(ms) = std::env::var("DNSQ_TEST_COMMIT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    }
}

pub(super) fn app_id_capture(sha256: &str) -> String {
    format!("dnsq-capture-{sha256}")
}

pub(super) fn app_id_ingest(id: &str) -> String {
    format!("dnsq-ingest-{id}")
}

pub(super) fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

pub(super) fn delta_err(dir: &Path, e: DeltaTableError) -> Error {
    Error::io(dir, other(format!("Delta log: {e}")))
}

pub(super) fn table_url(dir: &Path) -> Result<Url> {
    let abs = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    Url::from_directory_path(&abs).map_err(|()| Error::io(dir, other("not an absolute local path")))
}

/// A transactions file written and renamed into place, waiting for the commit.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Path relative to `DIR/transactions/`: `date=2015-04-10/part-….parquet`.
    pub rel: String,
    pub day: String,
    pub size: u64,
    pub rows: u64,
    /// Smallest and largest `ts` (µs since the epoch).
    pub ts_range: Option<(i64, i64)>,
}

impl DataFile {
    fn add(&self) -> Add {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut stats = serde_json::json!({ "numRecords": self.rows });
        if let Some((lo, hi)) = self.ts_range {
            // Delta keeps timestamp statistics in milliseconds: round outwards
            stats["minValues"] = serde_json::json!({ "ts": iso_millis(lo.div_euclid(1000)) });
            stats["maxValues"] =
                serde_json::json!({ "ts": iso_millis((hi + 999).div_euclid(1000)) });
            stats["nullCount"] = serde_json::json!({ "ts": 0 });
        }
        Add {
            path: self.rel.clone(),
            partition_values: HashMap::from([(DATE.to_string(), Some(self.day.clone()))]),
            size: self.size as i64,
            modification_time: millis,
            data_change: true,
            stats: Some(stats.to_string()),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        }
    }
}

/// `2015-04-10T12:00:00.123Z`
pub(super) fn iso_millis(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => format!("{ms} ms since 1970"),
    }
}

/// Smallest and largest `ts` of a batch of transactions rows.
pub fn ts_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let ts = batch
        .column(0)
        .as_primitive_opt::<TimestampMicrosecondType>()?;
    let lo = arrow::compute::min(ts)?;
    let hi = arrow::compute::max(ts)?;
    Some((lo, hi))
}

/// What became of a commit.
#[derive(Debug)]
pub enum Committed {
    /// The Delta table version that holds this ingest.
    Version(i64),
    /// Every capture of the ingest was committed by another writer meanwhile:
    /// nothing was added.
    AlreadyThere(Vec<String>),
}

#[cfg(test)]
mod tests;
