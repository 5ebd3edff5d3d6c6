//! The rows dnsq writes do not change by accident: the transactions files of
//! data/sample.pcap and of a generated capture, read in file order (every
//! row, every column, the capture column by file name), hash to the digests
//! in tests/fixtures/rows.sha256. A change of the rows on purpose updates
//! them: `DNSQ_WRITE_DIGEST=1 cargo test --test rows_digest`, and the commit
//! says why the rows changed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

/// The transactions files of a dataset, in partition and name order (one
/// ingest writes one file per day, so the order is the rows' own).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() && !p.ends_with("_delta_log") {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
}

/// SHA-256 of every row in file order, one line a row, values as Arrow
/// displays them, tab-separated; and the row count.
fn digest(dataset: &Path) -> (String, usize) {
    let mut list = Vec::new();
    files(&dataset.join("transactions"), &mut list);
    assert!(!list.is_empty());
    let mut h = Sha256::new();
    let mut rows = 0;
    let opts = FormatOptions::default().with_null("\\N");
    for f in list {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            let shown: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
                .collect();
            for r in 0..batch.num_rows() {
                let mut line = String::new();
                for (i, col) in shown.iter().enumerate() {
                    let v = col.value(r).to_string();
                    // the path as given differs between checkouts: its name does not
                    let v = if schema.field(i).name() == "capture" {
                        Path::new(&v).file_name().unwrap().to_string_lossy().into()
                    } else {
                        v
                    };
                    line.push_str(&v);
                    line.push('\t');
                }
                line.push('\n');
                h.update(line.as_bytes());
                rows += 1;
            }
        }
    }
    (data_encoding::HEXLOWER.encode(&h.finalize()), rows)
}

#[test]
fn rows_are_the_ones_committed() {
    let t = tempfile::tempdir().unwrap();
    let synth = t.path().join("synth.pcap");
    let out = common::run(
        common::dnsq()
            .args(["synth", "--packets", "50000", "--seed", "7"])
            .arg(&synth),
    );
    assert!(out.status.success());
    let mut got = String::new();
    for (name, capture) in [("sample.pcap", common::sample()), ("synth-50000-7", synth)] {
        let dir = t.path().join(name);
        common::ingest(&dir, &[&capture], &["--threads", "2"]);
        let (d, rows) = digest(&dir);
        assert!(rows > 1000, "{name}: {rows} rows");
        got.push_str(&format!("{d}  {name} ({rows} rows)\n"));
    }
    let path = common::repo().join("tests/fixtures/rows.sha256");
    if std::env::var_os("DNSQ_WRITE_DIGEST").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        got, want,
        "the rows changed; if on purpose, DNSQ_WRITE_DIGEST=1 and say why in the commit"
    );
}
