//! The ingest's Parquet writer (`write::FileWriter`, its columns encoded in
//! parallel) writes the bytes arrow-rs's ArrowWriter writes with the same
//! settings: the sample's transactions, repeated past one row group, written
//! both ways.
#![allow(clippy::unwrap_used)]

mod common;

use arrow::array::RecordBatch;
use dnsq::ingest::write;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

#[test]
fn the_parallel_writer_writes_arrow_writers_bytes() {
    let (tmp, dir) = common::sample_dataset();
    let mut one = Vec::new();
    for day in std::fs::read_dir(dir.join("transactions")).unwrap() {
        let day = day.unwrap().path();
        if !day.is_dir() || day.ends_with("_delta_log") {
            continue;
        }
        for f in std::fs::read_dir(day).unwrap() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(f.unwrap().path()).unwrap(),
            )
            .unwrap()
            .with_batch_size(1000)
            .build()
            .unwrap();
            one.extend(reader.map(Result::unwrap));
        }
    }
    let rows: usize = one.iter().map(RecordBatch::num_rows).sum();
    assert!(rows > 1000);
    // past the 256 Ki rows of a row group, cut inside a batch
    let copies = (1 << 18) / rows + 2;
    let batches: Vec<&RecordBatch> = (0..copies).flat_map(|_| one.iter()).collect();

    let theirs = tmp.path().join("arrow.parquet");
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&theirs).unwrap(),
        one[0].schema(),
        Some(write::properties()),
    )
    .unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();

    let ours = tmp.path().join("dnsq.parquet");
    let mut w = write::FileWriter::new(std::fs::File::create(&ours).unwrap()).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();

    let (a, b) = (
        std::fs::read(&theirs).unwrap(),
        std::fs::read(&ours).unwrap(),
    );
    let groups = parquet::file::reader::FileReader::metadata(
        &parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&ours).unwrap(),
        )
        .unwrap(),
    )
    .num_row_groups();
    assert_eq!(groups, 2);
    assert!(a == b, "{} bytes against {}", b.len(), a.len());
}
