//! The dataset module's helpers: `ts_range` and the Delta statistics it
//! feeds, the interrupt flag, the application transaction ids, and the
//! table URL of a dataset directory.

use super::*;

use arrow::array::{Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

fn ts_batch(values: Vec<Option<i64>>) -> RecordBatch {
    let schema = Schema::new(vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )]);
    let ts = TimestampMicrosecondArray::from(values).with_timezone("UTC");
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ts)]).unwrap()
}

#[test]
fn ts_range_is_the_smallest_and_largest_of_the_first_column() {
    assert_eq!(
        ts_range(&ts_batch(vec![Some(5), Some(-3), Some(9), Some(0)])),
        Some((-3, 9))
    );
    assert_eq!(ts_range(&ts_batch(vec![None, Some(7), None])), Some((7, 7)));
    assert_eq!(ts_range(&ts_batch(vec![None, None])), None);
    assert_eq!(ts_range(&ts_batch(vec![])), None);
    // not a timestamp in µs: no range
    let ints = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("ts", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1, 2]))],
    )
    .unwrap();
    assert_eq!(ts_range(&ints), None);
}

#[test]
fn ts_range_of_the_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap");
    let report = crate::ingest::run(&crate::ingest::IngestConfig::new(
        vec![sample],
        tmp.path().to_path_buf(),
    ))
    .unwrap();
    let batches = table::read_parquet(&report.files_written[0]).unwrap();
    let ranges: Vec<(i64, i64)> = batches.iter().filter_map(ts_range).collect();
    assert_eq!(ranges.len(), batches.len());
    let lo = ranges.iter().map(|r| r.0).min();
    let hi = ranges.iter().map(|r| r.1).max();
    // 2026-11-28T09:49:56.273670Z and 09:50:09.724381Z
    assert_eq!(
        (lo, hi),
        (Some(1_795_859_396_273_670), Some(1_795_859_409_724_381))
    );
}

#[test]
fn iso_millis_formats_and_falls_back() {
    assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(iso_millis(1_795_859_409_725), "2026-11-28T09:50:09.725Z");
    assert_eq!(iso_millis(i64::MAX), "9223372036854775807 ms since 1970");
}

fn stats(f: &DataFile) -> serde_json::Value {
    serde_json::from_str(f.add().stats.as_deref().unwrap()).unwrap()
}

/// Delta keeps `ts` statistics in milliseconds: the range is rounded
/// outwards, so that no row falls outside it and a reader that skips files
/// by time never skips one it needs.
#[test]
fn a_data_files_add_action_rounds_its_range_outwards() {
    let f = DataFile {
        rel: "date=1970-01-01/part-x-0-0.parquet".into(),
        day: "1970-01-01".into(),
        size: 1234,
        rows: 3,
        ts_range: Some((1_000_999, 1_000_001)),
    };
    let add = f.add();
    assert_eq!(add.path, f.rel);
    assert_eq!(add.size, 1234);
    assert!(add.data_change);
    assert_eq!(
        add.partition_values,
        HashMap::from([(DATE.to_string(), Some("1970-01-01".to_string()))])
    );
    assert_eq!(
        stats(&f),
        serde_json::json!({
            "numRecords": 3,
            "minValues": { "ts": "1970-01-01T00:00:01.000Z" },
            "maxValues": { "ts": "1970-01-01T00:00:01.001Z" },
            "nullCount": { "ts": 0 },
        })
    );
    // exact milliseconds stay; before 1970 the floor is still below
    let exact = DataFile {
        ts_range: Some((2_000, 3_000)),
        ..f.clone()
    };
    assert_eq!(stats(&exact)["minValues"]["ts"], "1970-01-01T00:00:00.002Z");
    assert_eq!(stats(&exact)["maxValues"]["ts"], "1970-01-01T00:00:00.003Z");
    let early = DataFile {
        ts_range: Some((-1, -1)),
        ..f.clone()
    };
    assert_eq!(stats(&early)["minValues"]["ts"], "1969-12-31T23:59:59.999Z");
    assert_eq!(stats(&early)["maxValues"]["ts"], "1970-01-01T00:00:00.000Z");
    // no rows with a time: only the count
    let none = DataFile {
        ts_range: None,
        rows: 0,
        ..f
    };
    assert_eq!(stats(&none), serde_json::json!({ "numRecords": 0 }));
}

/// The flag set by the signal handler turns into the error that names the
/// signal. The flag is process-wide and every ingest checks it, so it is set
/// only in a process of its own: this test binary, running this test alone.
#[test]
fn an_interrupt_names_its_signal() {
    use std::sync::atomic::Ordering;
    const CHILD: &str = "DNSQ_TEST_INTERRUPT_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "dataset::tests::an_interrupt_names_its_signal",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("1 passed"), "{said}");
        return;
    }
    assert!(check_interrupt().is_ok());
    let said = |signal: usize| {
        INTERRUPT.store(signal, Ordering::Relaxed);
        let r = check_interrupt();
        INTERRUPT.store(0, Ordering::Relaxed);
        r.unwrap_err().to_string()
    };
    assert_eq!(
        said(2),
        "interrupted by SIGINT; nothing of this ingest was committed"
    );
    assert_eq!(
        said(15),
        "interrupted by SIGTERM; nothing of this ingest was committed"
    );
    assert_eq!(
        said(1),
        "interrupted by a signal; nothing of this ingest was committed"
    );
    assert!(check_interrupt().is_ok());
}

/// The ids the log records are read by other tools and by later versions
/// of dnsq: their form is part of the dataset.
#[test]
fn application_transaction_ids() {
    assert_eq!(app_id_capture("ab12"), "dnsq-capture-ab12");
    assert_eq!(app_id_ingest("0123"), "dnsq-ingest-0123");
}

#[test]
fn a_dataset_directory_becomes_an_absolute_directory_url() {
    let tmp = tempfile::tempdir().unwrap();
    let url = table_url(&tmp.path().join("transactions")).unwrap();
    assert_eq!(url.scheme(), "file");
    assert_eq!(url.to_file_path().unwrap(), tmp.path().join("transactions"));
    assert!(url.as_str().ends_with("/transactions/"), "{url}");
    let rel = table_url(Path::new("ds/transactions")).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(rel.to_file_path().unwrap(), cwd.join("ds/transactions"));
    assert!(rel.as_str().ends_with('/'), "{rel}");
}

#[test]
fn a_delta_error_names_the_directory() {
    let e = delta_err(
        Path::new("/data/ds"),
        DeltaTableError::Generic("boom".into()),
    );
    assert_eq!(
        e.to_string(),
        "/data/ds: Delta log: Generic DeltaTable error: boom"
    );
}
