//! Datasets on an object store (`s3://bucket/path`, and whatever else
//! delta-rs has a handler for): files are written to a local staging
//! directory by the same code as for a local dataset, uploaded, then
//! committed to the table's Delta log on the store. The commit file is
//! created with a conditional write (put-if-absent), as on a local disk.
//!
//! There is no lock an object store drops when a process dies, so a writer's
//! files that the log does not know count as abandoned once they are older
//! than `ORPHAN_AGE` (`dnsq vacuum --older-than` chooses another age).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::object_store::ObjectStoreExt;
use deltalake::{DeltaTable, DeltaTableBuilder, ObjectStore, ObjectStoreError, Path as StorePath};
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use url::Url;

use super::{other, writer_of, TRANSACTIONS_DIR};
use crate::error::{Error, Result};

/// How old an uncommitted file on an object store must be before an ingest
/// removes it: a running ingest uploads and commits within this time.
pub const ORPHAN_AGE: Duration = Duration::from_secs(6 * 3600);

/// The object store URL of a dataset given as `s3://…` (also `s3a`, `gs`,
/// `az`, `azure`, `abfs`, `abfss`), with a trailing slash. Credentials and
/// endpoints come from the environment as each store's own tools read them
/// (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
pub fn url_of(dir: &Path) -> Option<Url> {
    let s = dir.to_str()?;
    let (scheme, _) = s.split_once("://")?;
    // a URL's scheme is case-insensitive (RFC 3986 §3.1): `S3://` too
    let scheme = scheme.to_ascii_lowercase();
    if !["s3", "s3a", "gs", "az", "azure", "abfs", "abfss"].contains(&scheme.as_str()) {
        return None;
    }
    let with_slash = if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    };
    Url::parse(&with_slash).ok()
}

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        deltalake::aws::register_handlers(None);
        deltalake::gcp::register_handlers(None);
        deltalake::azure::register_handlers(None);
    });
}

fn store_err(url: &Url, e: impl std::fmt::Display) -> Error {
    Error::io(PathBuf::from(url.as_str()), other(e))
}

/// An object store rooted at the dataset's URL.
pub fn store(url: &Url) -> Result<Arc<dyn ObjectStore>> {
    register();
    let log_store = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| store_err(url, e))?
        .build_storage()
        .map_err(|e| store_err(url, e))?;
    Ok(log_store.object_store(None))
}

/// The transactions table of the dataset at `url` (not loaded when it does
/// not exist yet).
pub async fn table(url: &Url) -> Result<DeltaTable> {
    let tx = url
        .join(&format!("{TRANSACTIONS_DIR}/"))
        .map_err(|e| store_err(url, e))?;
    table_at(&tx).await
}

/// The Delta table at `tx` itself.
pub async fn table_at(tx: &Url) -> Result<DeltaTable> {
    register();
    DeltaTable::try_from_url(tx.clone())
        .await
        .map_err(|e| store_err(tx, e))
}

/// Uploads `rel` (a path relative to the dataset root) from `staging`.
pub async fn upload(store: &dyn ObjectStore, url: &Url, staging: &Path, rel: &str) -> Result<()> {
    let local = staging.join(rel);
    let bytes = std::fs::read(&local).map_err(|e| Error::io(&local, e))?;
    store
        .put(&StorePath::from(rel), bytes.into())
        .await
        .map_err(|e| store_err(url, format!("uploading {rel}: {e}")))?;
    Ok(())
}

pub async fn delete(store: &dyn ObjectStore, url: &Url, rel: &str) -> Result<()> {
    match store.delete(&StorePath::from(rel)).await {
        Ok(()) | Err(ObjectStoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_err(url, e)),
    }
}

/// Every object under `prefix/` with its age, as paths relative to the root.
pub async fn list(
    store: &dyn ObjectStore,
    url: &Url,
    prefix: &str,
) -> Result<Vec<(String, Duration)>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    store
        .list(Some(&StorePath::from(prefix)))
        .map_ok(|m| {
            let age = (now - m.last_modified.timestamp()).max(0) as u64;
            (m.location.to_string(), Duration::from_secs(age))
        })
        .try_collect()
        .await
        .map_err(|e| store_err(url, e))
}

/// Of the listed objects (`data` under `transactions/`, `caps` under
/// `captures/`), the files of other writers that the log does not know and
/// that are older than `age`, as paths relative to the root.
pub fn orphans(
    data: Vec<(String, Duration)>,
    caps: Vec<(String, Duration)>,
    me: &str,
    committed_data: &std::collections::HashSet<String>,
    committed_ingests: &std::collections::HashSet<String>,
    age: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, file_age) in data {
        if rel.contains("/_delta_log/") || file_age < age {
            continue;
        }
        let name = rel.rsplit('/').next().unwrap_or_default();
        let Some(owner) = writer_of(name) else {
            continue;
        };
        if owner != me && !committed_data.contains(name) {
            out.push(rel.clone());
        }
    }
    for (rel, file_age) in caps {
        let name = rel.rsplit('/').next().unwrap_or_default();
        let Some(owner) = writer_of(name) else {
            continue;
        };
        if owner != me && file_age >= age && !committed_ingests.contains(owner) {
            out.push(rel.clone());
        }
    }
    out
}

/// Reads a Parquet object whole.
pub async fn read_parquet(
    store: &dyn ObjectStore,
    url: &Url,
    rel: &str,
) -> Result<Vec<RecordBatch>> {
    let bytes = store
        .get(&StorePath::from(rel))
        .await
        .map_err(|e| store_err(url, e))?
        .bytes()
        .await
        .map_err(|e| store_err(url, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| store_err(url, format!("{rel}: {e}")))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| store_err(url, format!("{rel}: {e}")))
}

#[cfg(test)]
mod tests;
