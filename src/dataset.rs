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

use crate::error::{Error, Result};
use crate::ingest::schema::{CAPTURES, DATE, TRANSACTIONS};

pub const TRANSACTIONS_DIR: &str = "transactions";
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

fn app_id_capture(sha256: &str) -> String {
    format!("dnsq-capture-{sha256}")
}

fn app_id_ingest(id: &str) -> String {
    format!("dnsq-ingest-{id}")
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn delta_err(dir: &Path, e: DeltaTableError) -> Error {
    Error::io(dir, other(format!("Delta log: {e}")))
}

fn table_url(dir: &Path) -> Result<Url> {
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
fn iso_millis(ms: i64) -> String {
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

/// The object store side of a writer whose dataset is not on a local disk.
struct Remote {
    url: Url,
    store: Arc<dyn ObjectStore>,
    /// Objects this writer uploaded (removed if it does not commit).
    uploaded: Vec<String>,
}

/// A dataset opened for writing by one ingest.
pub struct Writer {
    /// Where the files are written: the dataset, or for a dataset on an
    /// object store a local staging directory.
    root: PathBuf,
    remote: Option<Remote>,
    pub id: String,
    table: DeltaTable,
    rt: tokio::runtime::Runtime,
    lock: Option<(PathBuf, File)>,
    /// Messages for the user (an upgrade).
    pub notes: Vec<String>,
    /// Files of killed ingests removed on opening.
    pub removed: usize,
    /// How this ingest pseudonymises addresses (`None` inside: not at all),
    /// once `require_anonymization` has checked it against the dataset.
    anonymization: Option<Option<String>>,
}

impl Writer {
    /// Opens (creating, or upgrading a dataset written before the Delta log)
    /// the dataset at `root`, takes a writer id and its lock, and removes what
    /// killed ingests left.
    pub fn open(root: &Path) -> Result<Writer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(root, e))?;
        if let Some(url) = remote::url_of(root) {
            return Writer::open_remote(url, rt, remote::ORPHAN_AGE);
        }
        let tx_dir = root.join(TRANSACTIONS_DIR);
        fs::create_dir_all(&tx_dir).map_err(|e| Error::io(&tx_dir, e))?;
        let writers = root.join(WRITERS_DIR);
        fs::create_dir_all(&writers).map_err(|e| Error::io(&writers, e))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        // locked under a hidden name, then renamed: a visible lock is always held
        let lock_path = writers.join(format!("{id}.lock"));
        let hidden = writers.join(format!(".{id}.lock.tmp"));
        let lock = File::create(&hidden).map_err(|e| Error::io(&hidden, e))?;
        lock.lock().map_err(|e| Error::io(&hidden, e))?;
        fs::rename(&hidden, &lock_path).map_err(|e| Error::io(&lock_path, e))?;
        let mut notes = Vec::new();
        let url = table_url(&tx_dir)?;
        let table = rt.block_on(open_or_create(url, Some(root), &mut notes))?;
        let mut w = Writer {
            root: root.to_path_buf(),
            remote: None,
            id,
            table,
            rt,
            lock: Some((lock_path, lock)),
            notes,
            removed: 0,
            anonymization: None,
        };
        w.removed = w.clean_up()?;
        Ok(w)
    }

    /// A writer for the dataset at `url` on an object store; removes other
    /// writers' uncommitted files older than `age`.
    fn open_remote(url: Url, rt: tokio::runtime::Runtime, age: Duration) -> Result<Writer> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let staging = std::env::temp_dir().join(format!("dnsq-staging-{id}"));
        let tx_dir = staging.join(TRANSACTIONS_DIR);
        fs::create_dir_all(&tx_dir).map_err(|e| Error::io(&tx_dir, e))?;
        let mut notes = Vec::new();
        let tx_url = url
            .join(&format!("{TRANSACTIONS_DIR}/"))
            .map_err(|e| Error::io(url.as_str(), other(e)))?;
        let table = rt.block_on(open_or_create(tx_url, None, &mut notes))?;
        let store = remote::store(&url)?;
        let mut w = Writer {
            root: staging,
            remote: Some(Remote {
                url,
                store,
                uploaded: Vec::new(),
            }),
            id,
            table,
            rt,
            lock: None,
            notes,
            removed: 0,
            anonymization: None,
        };
        w.removed = w.clean_up_remote(age)?;
        Ok(w)
    }

    /// The local directory this writer writes its files to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The dataset as the user named it: a directory or an object store URL.
    fn dataset(&self) -> PathBuf {
        match &self.remote {
            Some(r) => PathBuf::from(r.url.as_str()),
            None => self.root.clone(),
        }
    }

    /// Refuses to add rows whose addresses are pseudonymised otherwise than
    /// the rows the dataset holds (`method` as `Anonymizer::describe` gives
    /// it, `None` for addresses as captured): one dataset never mixes real
    /// and pseudonymised addresses, or two keys. Checked again before a
    /// commit that follows another writer's.
    pub fn require_anonymization(&mut self, method: Option<String>) -> Result<()> {
        self.anonymization = Some(method);
        self.check_anonymization()
    }

    /// The `anonymization` values of the committed captures (null before the
    /// column existed: `committed_captures` conforms old files to the schema).
    fn anonymizations(&self) -> Result<HashSet<Option<String>>> {
        let dir = self.dataset();
        let batches = self.rt.block_on(committed_captures(&dir, &self.table))?;
        Ok(batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("anonymization")
                    .expect("conformed to the captures schema")
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    fn check_anonymization(&self) -> Result<()> {
        let Some(want) = &self.anonymization else {
            return Ok(());
        };
        let describe = |m: &Option<String>| match m {
            Some(m) => format!("pseudonymised ({m})"),
            None => "as captured (not anonymized)".to_string(),
        };
        let held = self.anonymizations()?;
        if let Some(other) = held.iter().find(|h| *h != want) {
            return Err(Error::Refused(format!(
                "the dataset holds addresses {}, and this ingest's would be {}: one dataset \
                 never mixes them. Write to another dataset (-o), or rewrite this one with \
                 `dnsq anonymize`",
                describe(other),
                describe(want)
            )));
        }
        Ok(())
    }

    fn committed_names(&self) -> Result<HashSet<String>> {
        Ok(self
            .table
            .get_file_uris()
            .map_err(|e| delta_err(&self.root, e))?
            .map(|u| u.rsplit('/').next().unwrap_or_default().to_string())
            .collect())
    }

    fn clean_up_remote(&mut self, age: Duration) -> Result<usize> {
        let Some(r) = &self.remote else {
            return Ok(0);
        };
        let (url, store) = (r.url.clone(), r.store.clone());
        // the listing first, the log second: a file old enough is committed
        // before the log is read, or abandoned
        let data = self
            .rt
            .block_on(remote::list(store.as_ref(), &url, TRANSACTIONS_DIR))?;
        let caps = self
            .rt
            .block_on(remote::list(store.as_ref(), &url, CAPTURES_DIR))?;
        self.rt
            .block_on(self.table.update_incremental(None))
            .map_err(|e| delta_err(Path::new(url.as_str()), e))?;
        let committed = self.committed_names()?;
        let mut done = HashSet::new();
        for (rel, _) in &caps {
            if let Some(owner) = writer_of(rel.rsplit('/').next().unwrap_or_default()) {
                if self.ingest_committed(owner)? {
                    done.insert(owner.to_string());
                }
            }
        }
        let orphans = remote::orphans(data, caps, &self.id, &committed, &done, age);
        for rel in &orphans {
            self.rt
                .block_on(remote::delete(store.as_ref(), &url, rel))?;
        }
        Ok(orphans.len())
    }

    /// Uploads the staged files of a writer on an object store (once).
    fn upload(&mut self, files: &[DataFile]) -> Result<()> {
        let Some(r) = &mut self.remote else {
            return Ok(());
        };
        if !r.uploaded.is_empty() {
            return Ok(());
        }
        let mut rels: Vec<String> = files
            .iter()
            .map(|f| format!("{TRANSACTIONS_DIR}/{}", f.rel))
            .collect();
        rels.push(format!("{CAPTURES_DIR}/part-{}.parquet", self.id));
        for rel in rels {
            r.uploaded.push(rel.clone());
            self.rt
                .block_on(remote::upload(r.store.as_ref(), &r.url, &self.root, &rel))?;
        }
        crash_point("after-upload");
        Ok(())
    }

    /// Is this capture (by content hash) committed in the dataset?
    pub fn holds(&self, sha256: &str) -> Result<bool> {
        self.has_app(app_id_capture(sha256))
    }

    fn ingest_committed(&self, id: &str) -> Result<bool> {
        self.has_app(app_id_ingest(id))
    }

    /// Does the log record the application transaction `app_id`?
    fn has_app(&self, app_id: String) -> Result<bool> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(|e| delta_err(&self.root, e))?;
        let v = self
            .rt
            .block_on(snapshot.transaction_version(self.table.log_store().as_ref(), app_id))
            .map_err(|e| delta_err(&self.root, e))?;
        Ok(v.is_some())
    }

    /// Where this writer's files go: names carry the writer id.
    pub fn file_prefix(&self) -> String {
        format!("part-{}", self.id)
    }

    /// Writes the captures rows of this ingest (before the commit, which makes
    /// them count).
    pub fn write_captures(&self, batch: &RecordBatch) -> Result<()> {
        let dir = self.root.join(CAPTURES_DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let dest = dir.join(format!("part-{}.parquet", self.id));
        let tmp = dir.join(format!(".part-{}.parquet.tmp", self.id));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = parquet::arrow::ArrowWriter::try_new(
            file,
            CAPTURES.clone(),
            Some(crate::ingest::write::properties()),
        )?;
        w.write(batch)?;
        let file = w.into_inner()?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(())
    }

    /// Commits `files` and the captures `sha256s` as one Delta version.
    /// Captures another writer committed meanwhile are not added again: when
    /// all of them are there, nothing is committed; when only some are, the
    /// ingest fails without committing (its files mix their rows).
    pub fn commit(&mut self, files: &[DataFile], sha256s: &[String]) -> Result<Committed> {
        self.upload(files)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let there: Vec<String> = sha256s
                .iter()
                .filter_map(|h| match self.holds(h) {
                    Ok(true) => Some(Ok(h.clone())),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_>>()?;
            if !there.is_empty() {
                if there.len() == sha256s.len() {
                    return Ok(Committed::AlreadyThere(there));
                }
                return Err(Error::io(
                    &self.root,
                    other(format!(
                        "another dnsq committed {} of this ingest's captures while it ran \
                         (sha256 {}); nothing of this ingest was committed: run it again to \
                         add the others",
                        there.len(),
                        there[0]
                    )),
                ));
            }
            let mut actions: Vec<Action> = files.iter().map(|f| Action::Add(f.add())).collect();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut txns = vec![AppTransaction {
                app_id: app_id_ingest(&self.id),
                version: 0,
                last_updated: Some(now),
            }];
            txns.extend(sha256s.iter().map(|h| AppTransaction {
                app_id: app_id_capture(h),
                version: 0,
                last_updated: Some(now),
            }));
            actions.extend(txns.into_iter().map(Action::Txn));
            let operation = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: Some(vec![DATE.to_string()]),
                predicate: None,
            };
            let metadata = HashMap::from([
                ("dnsq.version".to_string(), env!("CARGO_PKG_VERSION").into()),
                ("dnsq.ingest".to_string(), self.id.clone().into()),
            ]);
            let props = CommitProperties::default()
                .with_metadata(metadata)
                .with_max_retries(0);
            let snapshot = self
                .table
                .snapshot()
                .map_err(|e| delta_err(&self.root, e))?;
            let log_store = self.table.log_store();
            let result = self.rt.block_on(async {
                CommitBuilder::from(props)
                    .with_actions(actions)
                    .build(Some(snapshot), log_store, operation)
                    .await
            });
            match result {
                Ok(done) => {
                    crash_point("after-commit");
                    return Ok(Committed::Version(done.version() as i64));
                }
                Err(e) if is_race(&e) && attempts < 100 => {
                    // another writer took the version: see what it committed, try again
                    let root = self.root.clone();
                    self.rt
                        .block_on(self.table.update_incremental(None))
                        .map_err(|e| delta_err(&root, e))?;
                    self.check_anonymization()?;
                }
                Err(e) => return Err(delta_err(&self.root, e)),
            }
        }
    }

    /// Removes the files of dead writers that the log does not know; returns
    /// how many. Live writers (their lock held) are left alone.
    pub fn clean_up(&mut self) -> Result<usize> {
        if self.remote.is_some() {
            return self.clean_up_remote(remote::ORPHAN_AGE);
        }
        let root = self.root.clone();
        // liveness first, the log second: a writer found dead has committed
        // before the log is read, or never will
        let live = live_writers(&self.root, &self.id)?;
        self.rt
            .block_on(self.table.update_incremental(None))
            .map_err(|e| delta_err(&root, e))?;
        let committed: HashSet<String> = self
            .table
            .get_file_uris()
            .map_err(|e| delta_err(&root, e))?
            .map(|u| u.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        let mut removed = 0;
        let tx_dir = self.root.join(TRANSACTIONS_DIR);
        let mut candidates = Vec::new();
        for day in read_dir(&tx_dir)? {
            if day
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('_'))
            {
                continue;
            }
            if day.is_dir() {
                candidates.extend(read_dir(&day)?);
            }
        }
        for path in candidates {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
                continue;
            };
            let Some(owner) = writer_of(&name) else {
                continue;
            };
            if owner == self.id || live.contains(owner) || committed.contains(&name) {
                continue;
            }
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
        let cap_dir = self.root.join(CAPTURES_DIR);
        for path in read_dir(&cap_dir)? {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
                continue;
            };
            let Some(owner) = writer_of(&name) else {
                continue;
            };
            if owner == self.id || live.contains(owner) {
                continue;
            }
            let done = name.ends_with(".parquet") && self.ingest_committed(owner)?;
            if !done {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed += 1;
            }
        }
        // locks of dead writers, whose files are gone: a lock this process can
        // take is nobody's (a writer started since the scan holds its own)
        for path in read_dir(&self.root.join(WRITERS_DIR))? {
            let mine = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(self.id.as_str()));
            if mine {
                continue;
            }
            if let Ok(f) = File::open(&path) {
                if f.try_lock().is_ok() {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(removed)
    }

    /// Removes this writer's files (an ingest that failed or was interrupted)
    /// and its lock.
    pub fn abandon(mut self) {
        if let Some(r) = &self.remote {
            for rel in &r.uploaded {
                let _ = self
                    .rt
                    .block_on(remote::delete(r.store.as_ref(), &r.url, rel));
            }
        }
        let _ = self.remove_own_files();
        self.release();
    }

    fn remove_own_files(&self) -> Result<()> {
        let tx_dir = self.root.join(TRANSACTIONS_DIR);
        for day in read_dir(&tx_dir)? {
            if day.is_dir() {
                for path in read_dir(&day)? {
                    if path
                        .file_name()
                        .and_then(|n| writer_of(&n.to_string_lossy()).map(|w| w == self.id))
                        == Some(true)
                    {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        for path in read_dir(&self.root.join(CAPTURES_DIR))? {
            if path
                .file_name()
                .and_then(|n| writer_of(&n.to_string_lossy()).map(|w| w == self.id))
                == Some(true)
            {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Ends the ingest: drops the lock (its files are committed or removed).
    pub fn release(&mut self) {
        if let Some((path, file)) = self.lock.take() {
            let _ = fs::remove_file(&path);
            drop(file);
        }
        if self.remote.is_some() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.release();
    }
}

/// Was the commit refused because another writer took the version first?
fn is_race(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
}

/// The writer id in a file name `part-<id>-….parquet`, `.part-<id>….tmp` or
/// `part-<id>.parquet`: 32 hex digits.
fn writer_of(name: &str) -> Option<&str> {
    let rest = name
        .strip_prefix('.')
        .unwrap_or(name)
        .strip_prefix("part-")?;
    let id = rest.get(..32)?;
    let tail = &rest[32..];
    (id.bytes().all(|b| b.is_ascii_hexdigit()) && (tail.starts_with('-') || tail.starts_with('.')))
        .then_some(id)
}

/// The writer id of a lock file `<id>.lock` (not of one being created).
fn lock_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(".lock")?;
    (!id.starts_with('.')).then(|| id.to_string())
}

/// Ids of the writers whose lock is held by a running ingest.
fn live_writers(root: &Path, me: &str) -> Result<HashSet<String>> {
    let mut live = HashSet::new();
    for path in read_dir(&root.join(WRITERS_DIR))? {
        let Some(id) = lock_id(&path) else {
            continue;
        };
        if id == me {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        match f.try_lock() {
            Ok(()) => {} // nobody holds it: that writer is gone
            Err(_) => {
                live.insert(id);
            }
        }
    }
    Ok(live)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut out = Vec::new();
            for e in entries {
                out.push(e.map_err(|e| Error::io(dir, e))?.path());
            }
            out.sort();
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// The Delta schema of the transactions table: every column, and the
/// partition column `date`.
fn delta_columns() -> Result<Vec<StructField>> {
    let st: StructType = TRANSACTIONS
        .as_ref()
        .try_into_kernel()
        .map_err(|e| Error::io("transactions schema", other(e)))?;
    let mut fields: Vec<StructField> = st.fields().cloned().collect();
    fields.push(StructField::new(DATE, DeltaType::STRING, true));
    Ok(fields)
}

/// Loads the table at `tx_dir`; creates it when there is none, adding the
/// files and captures of a dataset written before the Delta log.
async fn open_or_create(
    url: Url,
    legacy_root: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<DeltaTable> {
    let tx_dir = PathBuf::from(url.as_str());
    let tx_dir = tx_dir.as_path();
    let table = match url.scheme() {
        "file" => DeltaTable::try_from_url(url.clone())
            .await
            .map_err(|e| delta_err(tx_dir, e))?,
        _ => remote::table_at(&url).await?,
    };
    if table.version().is_some() {
        return add_missing_columns(table, tx_dir, notes).await;
    }
    let legacy = match legacy_root {
        Some(root) => legacy_contents(root)?,
        None => None,
    };
    let mut actions = Vec::new();
    if let Some((files, hashes, ingests)) = &legacy {
        actions.extend(files.iter().map(|f| Action::Add(f.add())));
        let txn = |app_id| {
            Action::Txn(AppTransaction {
                app_id,
                version: 0,
                last_updated: None,
            })
        };
        actions.extend(hashes.iter().map(|h| txn(app_id_capture(h))));
        actions.extend(ingests.iter().map(|i| txn(app_id_ingest(i))));
    }
    let created = table
        .create()
        .with_columns(delta_columns()?)
        .with_partition_columns([DATE])
        .with_table_name("transactions")
        .with_comment("DNS transactions written by dnsq (one row per query and its response)")
        .with_actions(actions)
        .with_save_mode(SaveMode::ErrorIfExists)
        .await;
    match created {
        Ok(t) => {
            if let (Some((files, hashes, _)), Some(root)) = (legacy, legacy_root) {
                notes.push(format!(
                    "upgraded {} to a Delta table: {} files and {} captures committed as version 0",
                    root.display(),
                    files.len(),
                    hashes.len()
                ));
            }
            Ok(t)
        }
        Err(_) => {
            // another writer created it first
            let mut t = match url.scheme() {
                "file" => DeltaTable::try_from_url(url)
                    .await
                    .map_err(|e| delta_err(tx_dir, e))?,
                _ => remote::table_at(&url).await?,
            };
            t.load().await.map_err(|e| delta_err(tx_dir, e))?;
            Ok(t)
        }
    }
}

/// Adds to the table's schema the columns this dnsq writes that a dataset
/// made by an earlier one lacks; the files it holds read them as null.
async fn add_missing_columns(
    mut table: DeltaTable,
    tx_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<DeltaTable> {
    for _ in 0..100 {
        let have: HashSet<String> = table
            .snapshot()
            .map_err(|e| delta_err(tx_dir, e))?
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        let missing: Vec<StructField> = delta_columns()?
            .into_iter()
            .filter(|f| !have.contains(f.name()))
            .collect();
        if missing.is_empty() {
            return Ok(table);
        }
        let names: Vec<String> = missing.iter().map(|f| f.name().to_string()).collect();
        match table.clone().add_columns().with_fields(missing).await {
            Ok(t) => {
                notes.push(format!(
                    "added {} column(s) to the dataset's schema ({}); rows already there read them as null",
                    names.len(),
                    names.join(", ")
                ));
                return Ok(t);
            }
            // another writer changed the table meanwhile: look again
            Err(_) => table
                .update_incremental(None)
                .await
                .map_err(|e| delta_err(tx_dir, e))?,
        }
    }
    Err(delta_err(
        tx_dir,
        DeltaTableError::Generic("could not add the new columns to the schema".into()),
    ))
}

type Legacy = (Vec<DataFile>, Vec<String>, Vec<String>);

/// The files and captures of a dataset written before the Delta log (every
/// whole file then counted), or `None` when there are none.
fn legacy_contents(root: &Path) -> Result<Option<Legacy>> {
    let tx_dir = root.join(TRANSACTIONS_DIR);
    let mut files = Vec::new();
    for day_dir in read_dir(&tx_dir)? {
        let Some(day) = day_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("date="))
            .map(str::to_string)
        else {
            continue;
        };
        for path in read_dir(&day_dir)? {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string());
            let Some(name) = name.filter(|n| n.ends_with(".parquet") && !n.starts_with('.')) else {
                continue;
            };
            let (rows, ts) = parquet_rows(&path)?;
            let size = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            files.push(DataFile {
                rel: format!("date={day}/{name}"),
                day: day.clone(),
                size,
                rows,
                ts_range: ts,
            });
        }
    }
    let mut hashes = Vec::new();
    let mut ingests = Vec::new();
    for path in read_dir(&root.join(CAPTURES_DIR))? {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let Some(name) = name.filter(|n| n.ends_with(".parquet") && !n.starts_with('.')) else {
            continue;
        };
        if let Some(id) = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"))
        {
            ingests.push(id.to_string());
        }
        for b in read_parquet(&path)? {
            if let Some(col) = b
                .column_by_name("sha256")
                .and_then(|c| c.as_string_opt::<i32>())
            {
                hashes.extend((0..col.len()).map(|i| col.value(i).to_string()));
            }
        }
    }
    if files.is_empty() && hashes.is_empty() {
        return Ok(None);
    }
    Ok(Some((files, hashes, ingests)))
}

fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::io(path, other(e)))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::io(path, other(e)))
}

/// Rows and `ts` range of a transactions file (from its footer's statistics
/// where possible).
fn parquet_rows(path: &Path) -> Result<(u64, Option<(i64, i64)>)> {
    let mut rows = 0;
    let mut range: Option<(i64, i64)> = None;
    for b in read_parquet(path)? {
        rows += b.num_rows() as u64;
        if let Some((lo, hi)) = ts_range(&b) {
            range = Some(range.map_or((lo, hi), |(a, z)| (a.min(lo), z.max(hi))));
        }
    }
    Ok((rows, range))
}

/// Opens the dataset's Delta table for reading (`None` when `dir` has a
/// dataset written before the Delta log: it is read as plain files).
pub async fn open_table(dir: &Path) -> Result<Option<DeltaTable>> {
    if let Some(url) = remote::url_of(dir) {
        let table = remote::table(&url).await?;
        if table.version().is_none() {
            return Err(Error::io(
                dir,
                other("no dnsq dataset here (run `dnsq ingest -o URL` first)"),
            ));
        }
        return Ok(Some(table));
    }
    let tx_dir = dir.join(TRANSACTIONS_DIR);
    if !tx_dir.join(LOG_DIR).is_dir() {
        return Ok(None);
    }
    let url = table_url(&tx_dir)?;
    let table = deltalake::open_table(url)
        .await
        .map_err(|e| delta_err(&tx_dir, e))?;
    Ok(Some(table))
}

/// The captures rows of the ingests `table` has committed.
pub async fn committed_captures(dir: &Path, table: &DeltaTable) -> Result<Vec<RecordBatch>> {
    let remote = match remote::url_of(dir) {
        Some(url) => Some((remote::store(&url)?, url)),
        None => None,
    };
    let names: Vec<String> = match &remote {
        Some((store, url)) => remote::list(store.as_ref(), url, CAPTURES_DIR)
            .await?
            .into_iter()
            .map(|(rel, _)| rel.rsplit('/').next().unwrap_or_default().to_string())
            .collect(),
        None => read_dir(&dir.join(CAPTURES_DIR))?
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .collect(),
    };
    let mut out = Vec::new();
    for name in committed_capture_files(dir, table, names).await? {
        match &remote {
            Some((store, url)) => out.extend(
                remote::read_parquet(store.as_ref(), url, &format!("{CAPTURES_DIR}/{name}"))
                    .await?,
            ),
            None => out.extend(read_parquet(&dir.join(CAPTURES_DIR).join(&name))?),
        }
    }
    out.iter()
        .map(|b| Ok(crate::ingest::schema::conform(b, &CAPTURES)?))
        .collect()
}

/// Of the captures file names `names`, those whose ingest the log has committed.
async fn committed_capture_files(
    dir: &Path,
    table: &DeltaTable,
    names: Vec<String>,
) -> Result<Vec<String>> {
    let snapshot = table.snapshot().map_err(|e| delta_err(dir, e))?;
    let mut out = Vec::new();
    for name in names {
        if name.starts_with('.') {
            continue;
        }
        let Some(id) = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"))
        else {
            continue;
        };
        let v = snapshot
            .transaction_version(table.log_store().as_ref(), app_id_ingest(id))
            .await
            .map_err(|e| delta_err(dir, e))?;
        if v.is_some() {
            out.push(name);
        }
    }
    Ok(out)
}

/// The data files the log of the table at `dir` holds, as local paths.
fn committed_paths(dir: &Path, table: &DeltaTable) -> Result<Vec<PathBuf>> {
    let uris: Vec<String> = table
        .get_file_uris()
        .map_err(|e| delta_err(dir, e))?
        .collect();
    uris.iter()
        .map(|u| match Url::parse(u) {
            Ok(url) if url.scheme() == "file" => url
                .to_file_path()
                .map_err(|()| Error::io(dir, other(format!("{u}: not a local file")))),
            Ok(_) => Err(Error::io(dir, other(format!("{u}: not a local file")))),
            Err(_) => Ok(PathBuf::from(u)),
        })
        .collect()
}

/// What `dnsq info --check` found wrong with one file.
pub struct Damage {
    pub path: PathBuf,
    pub what: String,
}

/// Reads every committed file of the dataset whole (`full`) or its footer
/// only, and lists those that cannot be read; also files the log holds that
/// are missing.
pub async fn check(dir: &Path, full: bool) -> Result<(usize, Vec<Damage>)> {
    if remote::url_of(dir).is_some() {
        return Err(Error::io(
            dir,
            other("--check reads datasets on a local disk only (download it first)"),
        ));
    }
    let Some(table) = open_table(dir).await? else {
        return Err(Error::io(
            dir.join(TRANSACTIONS_DIR),
            other("no Delta log here: run `dnsq ingest` to upgrade the dataset first"),
        ));
    };
    let mut paths = committed_paths(dir, &table)?;
    let cap_dir = dir.join(CAPTURES_DIR);
    let names = read_dir(&cap_dir)?
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .collect();
    for name in committed_capture_files(dir, &table, names).await? {
        paths.push(cap_dir.join(name));
    }
    let mut damaged = Vec::new();
    for path in &paths {
        let result = if full {
            read_parquet(path).map(|_| ())
        } else {
            footer(path)
        };
        if let Err(e) = result {
            let what = match e {
                Error::Io { source, .. } => source.to_string(),
                e => e.to_string(),
            };
            damaged.push(Damage {
                path: path.clone(),
                what,
            });
        }
    }
    Ok((paths.len(), damaged))
}

fn footer(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map(|_| ())
        .map_err(|e| Error::io(path, other(e)))
}

/// Opens the dataset for cleaning only (`dnsq vacuum`): removes what killed
/// ingests left, and returns how many files.
/// On an object store, where no lock tells a running writer from a dead one,
/// files count as abandoned once older than `older_than` (default
/// `remote::ORPHAN_AGE`).
pub fn vacuum(root: &Path, older_than: Option<Duration>) -> Result<(usize, Vec<String>)> {
    if let Some(url) = remote::url_of(root) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(root, e))?;
        let mut w = Writer::open_remote(url, rt, older_than.unwrap_or(remote::ORPHAN_AGE))?;
        return Ok((w.removed, std::mem::take(&mut w.notes)));
    }
    if !root.join(TRANSACTIONS_DIR).is_dir() {
        return Err(Error::io(
            root,
            other("no dnsq dataset here (run `dnsq ingest` first, or pass -d DIR)"),
        ));
    }
    let mut w = Writer::open(root)?;
    Ok((w.removed, std::mem::take(&mut w.notes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_ids_in_file_names() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(writer_of(&format!("part-{id}-0-3.parquet")), Some(id));
        assert_eq!(writer_of(&format!(".part-{id}-0-3.parquet.tmp")), Some(id));
        assert_eq!(writer_of(&format!("part-{id}.parquet")), Some(id));
        assert_eq!(writer_of("part-0123abcd-0-1.parquet"), None);
        assert_eq!(writer_of("other.parquet"), None);
    }

    #[test]
    fn millisecond_timestamps() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_428_667_200_123), "2015-04-10T12:00:00.123Z");
    }
}
