//! `dnsq info --check` and `dnsq vacuum`: damage found, and files no
//! commit holds removed.

use super::*;

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

pub(super) fn footer(path: &Path) -> Result<()> {
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
