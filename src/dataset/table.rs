//! The Delta tables as stored: the schema in Delta's terms, opening,
//! creating and upgrading them, and what their logs have committed.

use super::*;

/// The Delta schema of the transactions table: every column, and the
/// partition column `date`.
pub(super) fn delta_columns() -> Result<Vec<StructField>> {
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
pub(super) async fn open_or_create(
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
        // a creation that lost the race for version 0 must not be tried
        // again at version 1: with delta-rs' retries, two ingests of an
        // empty directory at once committed the table's creation twice
        .with_commit_properties(
            deltalake::kernel::transaction::CommitProperties::default().with_max_retries(0),
        )
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
pub(super) async fn add_missing_columns(
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

pub(super) type Legacy = (Vec<DataFile>, Vec<String>, Vec<String>);

/// The files and captures of a dataset written before the Delta log (every
/// whole file then counted), or `None` when there are none.
pub(super) fn legacy_contents(root: &Path) -> Result<Option<Legacy>> {
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

pub(super) fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>> {
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
pub(super) fn parquet_rows(path: &Path) -> Result<(u64, Option<(i64, i64)>)> {
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
        .map(|b| Ok(crate::dataset::schema::conform(b, &CAPTURES)?))
        .collect()
}

/// Of the captures file names `names`, those whose ingest the log has committed.
pub(super) async fn committed_capture_files(
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
pub(super) fn committed_paths(dir: &Path, table: &DeltaTable) -> Result<Vec<PathBuf>> {
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

#[cfg(test)]
mod tests;
