//! The tables read back: the Delta schema and its partition column, the
//! files and captures the log holds (after a commit that removes a file
//! too), and a dataset written before the Delta log, upgraded.

use super::*;

const SAMPLE_SHA: &str = "e88a9b6203ea463c6ea3bc8f32050e4ff7e161181e3b4edc6127bc23a025cb4e";
const DAY: &str = "2026-11-28";
/// First and last `ts` of the sample's transactions, µs since the epoch
/// (2026-11-28T09:49:56.273670Z and 09:50:09.724381Z).
const TS_RANGE: (i64, i64) = (1_795_859_396_273_670, 1_795_859_409_724_381);

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap")
}

/// data/sample.pcap ingested into `dir`; the writer id of that ingest.
fn ingest(dir: &Path) -> String {
    let report = crate::ingest::run(&crate::ingest::IngestConfig::new(
        vec![sample()],
        dir.to_path_buf(),
    ))
    .expect("the sample ingests");
    assert_eq!(report.version, Some(1));
    let name = report.files_written[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    writer_of(&name).unwrap().to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn tx_url(dir: &Path) -> Url {
    table_url(&dir.join(TRANSACTIONS_DIR)).unwrap()
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.strip_prefix(p.parent().unwrap().parent().unwrap())
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .collect()
}

/// `metaData` of the table's first commit.
fn metadata(dir: &Path) -> serde_json::Value {
    let v0 = dir
        .join(TRANSACTIONS_DIR)
        .join(LOG_DIR)
        .join(format!("{:020}.json", 0));
    fs::read_to_string(v0)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find_map(|a| a.get("metaData").cloned())
        .unwrap()
}

#[test]
fn the_delta_schema_is_the_transactions_schema_and_date() {
    let cols = delta_columns().unwrap();
    let names: Vec<&str> = cols.iter().map(|f| f.name().as_str()).collect();
    let mut want: Vec<&str> = TRANSACTIONS
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    want.push(DATE);
    assert_eq!(names, want);
    let date = cols.last().unwrap();
    assert_eq!(date.data_type(), &DeltaType::STRING);
    assert!(date.is_nullable());
    for (d, a) in cols.iter().zip(TRANSACTIONS.fields()) {
        assert_eq!(d.is_nullable(), a.is_nullable(), "{}", a.name());
    }
}

#[test]
fn a_committed_dataset_reads_back_with_its_partition_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = ingest(dir);
    let table = rt().block_on(open_table(dir)).unwrap().unwrap();
    assert_eq!(table.version(), Some(1));
    let schema: Vec<String> = table
        .snapshot()
        .unwrap()
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    let want: Vec<String> = delta_columns()
        .unwrap()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    assert_eq!(schema, want);
    assert_eq!(metadata(dir)["partitionColumns"], serde_json::json!([DATE]));
    assert_eq!(metadata(dir)["name"], "transactions");
    let paths = committed_paths(dir, &table).unwrap();
    assert_eq!(names(&paths), [format!("date={DAY}/part-{id}-0-0.parquet")]);
    assert!(
        paths[0].starts_with(dir.join(TRANSACTIONS_DIR)),
        "{paths:?}"
    );
    assert_eq!(parquet_rows(&paths[0]).unwrap(), (1300, Some(TS_RANGE)));
}

#[test]
fn only_a_dataset_with_a_log_opens_as_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(rt()
        .block_on(open_table(&dir.join("none")))
        .unwrap()
        .is_none());
    fs::create_dir_all(dir.join(TRANSACTIONS_DIR).join("date=2026-11-28")).unwrap();
    assert!(rt().block_on(open_table(dir)).unwrap().is_none());
}

/// A later commit removes the sample's file and adds a copy: only the copy
/// is live, though both are on disk.
#[test]
fn a_file_a_commit_removes_is_no_longer_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = ingest(dir);
    let rt = rt();
    let mut table = rt.block_on(open_table(dir)).unwrap().unwrap();
    let old = format!("date={DAY}/part-{id}-0-0.parquet");
    let new = format!("date={DAY}/part-{}-0-0.parquet", "e".repeat(32));
    let tx = dir.join(TRANSACTIONS_DIR);
    fs::copy(tx.join(&old), tx.join(&new)).unwrap();
    let (rows, ts_range) = parquet_rows(&tx.join(&new)).unwrap();
    let add = DataFile {
        rel: new.clone(),
        day: DAY.into(),
        size: fs::metadata(tx.join(&new)).unwrap().len(),
        rows,
        ts_range,
    }
    .add();
    let remove = deltalake::kernel::Remove {
        path: old.clone(),
        data_change: true,
        deletion_timestamp: Some(0),
        extended_file_metadata: None,
        partition_values: None,
        size: None,
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    };
    let done = rt
        .block_on(async {
            CommitBuilder::default()
                .with_actions(vec![Action::Remove(remove), Action::Add(add)])
                .build(
                    Some(table.snapshot().unwrap()),
                    table.log_store(),
                    DeltaOperation::Delete { predicate: None },
                )
                .await
        })
        .unwrap();
    assert_eq!(done.version(), 2);
    rt.block_on(table.update_incremental(None)).unwrap();
    assert_eq!(names(&committed_paths(dir, &table).unwrap()), [new]);
    assert!(tx.join(&old).is_file());
    // the captures of the first ingest still count: its txn is in the log
    let caps = rt.block_on(committed_captures(dir, &table)).unwrap();
    assert_eq!(caps.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
}

/// Captures files count when their ingest is committed; others (a killed
/// ingest's, a temporary one, files that are not a writer's) do not.
#[test]
fn only_committed_ingests_captures_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = ingest(dir);
    let caps = dir.join(CAPTURES_DIR);
    let committed = format!("part-{id}.parquet");
    let orphan = format!("part-{}.parquet", "d".repeat(32));
    for extra in [
        orphan.as_str(),
        ".part-x.parquet.tmp",
        "part-.parquet",
        "notes.txt",
    ] {
        fs::copy(caps.join(&committed), caps.join(extra)).unwrap();
    }
    let rt = rt();
    let table = rt.block_on(open_table(dir)).unwrap().unwrap();
    let all: Vec<String> = read_dir(&caps)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(all.len(), 5);
    assert_eq!(
        rt.block_on(committed_capture_files(dir, &table, all))
            .unwrap(),
        [committed]
    );
    let batches = rt.block_on(committed_captures(dir, &table)).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].schema(), CAPTURES.clone());
    let b = &batches[0];
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        b.column_by_name("sha256")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        SAMPLE_SHA
    );
    assert_eq!(
        b.column_by_name("path")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        sample().to_string_lossy()
    );
}

/// A dataset written before the Delta log: every whole Parquet file under
/// `date=…/` and every captures file counts; hidden and foreign files do not.
#[test]
fn a_dataset_without_a_log_lists_its_whole_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(legacy_contents(dir).unwrap().is_none());
    let id = ingest(dir);
    fs::remove_dir_all(dir.join(TRANSACTIONS_DIR).join(LOG_DIR)).unwrap();
    let day = dir.join(TRANSACTIONS_DIR).join(format!("date={DAY}"));
    fs::write(day.join(".part-x-0-0.parquet.tmp"), b"x").unwrap();
    fs::write(day.join("notes.txt"), b"x").unwrap();
    fs::create_dir_all(dir.join(TRANSACTIONS_DIR).join("other")).unwrap();
    fs::write(dir.join(TRANSACTIONS_DIR).join("other/a.parquet"), b"x").unwrap();
    fs::write(dir.join(CAPTURES_DIR).join(".part-y.parquet.tmp"), b"x").unwrap();

    let (files, hashes, ingests) = legacy_contents(dir).unwrap().unwrap();
    assert_eq!(files.len(), 1);
    let f = &files[0];
    let rel = format!("date={DAY}/part-{id}-0-0.parquet");
    assert_eq!(
        (f.rel.as_str(), f.day.as_str(), f.rows, f.ts_range),
        (rel.as_str(), DAY, 1300, Some(TS_RANGE))
    );
    assert_eq!(
        f.size,
        fs::metadata(dir.join(TRANSACTIONS_DIR).join(&rel))
            .unwrap()
            .len()
    );
    assert_eq!(hashes, [SAMPLE_SHA]);
    assert_eq!(ingests, [id]);
}

/// The next writer makes version 0 of the log out of such a dataset, and
/// says so.
#[test]
fn a_dataset_without_a_log_is_upgraded_to_version_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = ingest(dir);
    fs::remove_dir_all(dir.join(TRANSACTIONS_DIR).join(LOG_DIR)).unwrap();
    let mut notes = Vec::new();
    let rt = rt();
    let table = rt
        .block_on(open_or_create(tx_url(dir), Some(dir), &mut notes))
        .unwrap();
    assert_eq!(table.version(), Some(0));
    assert_eq!(
        notes,
        [format!(
            "upgraded {} to a Delta table: 1 files and 1 captures committed as version 0",
            dir.display()
        )]
    );
    assert_eq!(
        names(&committed_paths(dir, &table).unwrap()),
        [format!("date={DAY}/part-{id}-0-0.parquet")]
    );
    let snapshot = table.snapshot().unwrap();
    for app in [app_id_capture(SAMPLE_SHA), app_id_ingest(&id)] {
        let v = rt
            .block_on(snapshot.transaction_version(table.log_store().as_ref(), app.clone()))
            .unwrap();
        assert_eq!(v, Some(0), "{app}");
    }
    assert_eq!(metadata(dir)["partitionColumns"], serde_json::json!([DATE]));
}

#[test]
fn an_empty_directory_becomes_an_empty_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join(TRANSACTIONS_DIR)).unwrap();
    let mut notes = Vec::new();
    let rt = rt();
    let table = rt
        .block_on(open_or_create(tx_url(dir), Some(dir), &mut notes))
        .unwrap();
    assert_eq!(table.version(), Some(0));
    assert!(notes.is_empty(), "{notes:?}");
    assert!(committed_paths(dir, &table).unwrap().is_empty());
    // opened again: the same table, nothing to say
    let again = rt
        .block_on(open_or_create(tx_url(dir), Some(dir), &mut notes))
        .unwrap();
    assert_eq!(again.version(), Some(0));
    assert!(notes.is_empty(), "{notes:?}");
}

/// A table made by an earlier dnsq, without the last column, gets it in
/// version 1; opened again, nothing changes.
#[test]
fn a_column_an_older_table_lacks_is_added() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut cols = delta_columns().unwrap();
    let date = cols.pop().unwrap();
    let lacking = cols.pop().unwrap();
    cols.push(date);
    let rt = rt();
    fs::create_dir_all(dir.join(TRANSACTIONS_DIR)).unwrap();
    let url = tx_url(dir);
    let table = rt
        .block_on(deltalake::DeltaTable::try_from_url(url.clone()))
        .unwrap();
    rt.block_on(async {
        table
            .create()
            .with_columns(cols)
            .with_partition_columns([DATE])
            .with_save_mode(SaveMode::ErrorIfExists)
            .await
    })
    .unwrap();
    let mut notes = Vec::new();
    let table = rt
        .block_on(open_or_create(url.clone(), Some(dir), &mut notes))
        .unwrap();
    assert_eq!(table.version(), Some(1));
    assert_eq!(
        notes,
        [format!(
            "added 1 column(s) to the dataset's schema ({}); rows already there read them as null",
            lacking.name()
        )]
    );
    let have: HashSet<String> = table
        .snapshot()
        .unwrap()
        .schema()
        .fields()
        .map(|f| f.name().to_string())
        .collect();
    assert!(have.contains(lacking.name()));
    assert_eq!(have.len(), delta_columns().unwrap().len());
    notes.clear();
    let again = rt
        .block_on(open_or_create(url, Some(dir), &mut notes))
        .unwrap();
    assert_eq!(again.version(), Some(1));
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn a_file_that_is_not_parquet_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("part-x.parquet");
    fs::write(&path, b"PAR1 but not really").unwrap();
    match read_parquet(&path) {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    match parquet_rows(&tmp.path().join("none.parquet")) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, tmp.path().join("none.parquet"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}
