use super::*;
use arrow::array::Int32Array;
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;

#[test]
fn delta_columns_are_integer_columns_of_the_schema() {
    for name in DELTA_COLUMNS {
        let field = TRANSACTIONS
            .field_with_name(name)
            .unwrap_or_else(|_| panic!("{name} is not a transactions column"));
        assert!(
            matches!(
                field.data_type(),
                DataType::Int32 | DataType::Int64 | DataType::Timestamp(..)
            ),
            "{name} is {}",
            field.data_type()
        );
        let props = properties();
        let path = ColumnPath::from(name);
        assert_eq!(props.encoding(&path), Some(Encoding::DELTA_BINARY_PACKED));
        assert!(!props.dictionary_enabled(&path));
    }
}

/// A path that names no leaf would be ignored by the writer.
#[test]
fn deeper_compressed_columns_are_leaves_of_the_schema() {
    let parquet = parquet::arrow::ArrowSchemaConverter::new()
        .convert(&TRANSACTIONS)
        .unwrap();
    let leaves: Vec<ColumnPath> = parquet.columns().iter().map(|c| c.path().clone()).collect();
    let props = properties();
    for (path, level) in ZSTD_DEEP_COLUMNS {
        let path = column_path(path);
        assert!(leaves.contains(&path), "{path} is not a leaf column");
        assert_eq!(props.compression(&path), zstd(level));
    }
    assert_eq!(props.compression(&ColumnPath::from("ts")), zstd(ZSTD_LEVEL));
}

/// The sample's rows, as an ingest wrote them.
fn sample_rows() -> Vec<RecordBatch> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap");
    crate::ingest::run(&crate::ingest::IngestConfig::new(vec![sample], out.clone())).unwrap();
    let mut batches = Vec::new();
    for day in fs::read_dir(out.join(TRANSACTIONS_DIR)).unwrap() {
        let day = day.unwrap().path();
        if !day
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("date=")
        {
            continue;
        }
        for f in fs::read_dir(day).unwrap() {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                File::open(f.unwrap().path()).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
            batches.extend(reader.map(|b| b.unwrap()));
        }
    }
    assert!(batches.iter().map(|b| b.num_rows()).sum::<usize>() > 1000);
    batches
}

/// The writer encodes each column on its own task, and a spool's file a
/// gathered slice at a time; the bytes are still ArrowWriter's, row groups
/// included: the sample's rows, repeated past one row group, in batches of
/// uneven sizes.
#[test]
fn files_are_the_bytes_arrow_writer_writes() {
    let rows = arrow::compute::concat_batches(&TRANSACTIONS, &sample_rows()).unwrap();
    let n = rows.num_rows();
    let copies = ROW_GROUP_ROWS / n + 2;
    let sizes = [1, 5_000, BATCH_ROWS + 3, n];
    let mut batches = Vec::new();
    let (mut at, mut k) = (0, 0);
    for _ in 0..copies {
        while at < n {
            let len = sizes[k % sizes.len()].min(n - at);
            batches.push(rows.slice(at, len));
            (at, k) = (at + len, k + 1);
        }
        at = 0;
    }
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert!(total > ROW_GROUP_ROWS);

    let arrow_writer = |batches: &[RecordBatch]| {
        let mut bytes = Vec::new();
        let mut w =
            ArrowWriter::try_new(&mut bytes, TRANSACTIONS.clone(), Some(properties())).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        bytes
    };
    let expected = arrow_writer(&batches);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f.parquet");
    let mut w = FileWriter::new(File::create(&path).unwrap()).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    let got = fs::read(&path).unwrap();
    assert!(
        got == expected,
        "{} bytes against ArrowWriter's {}",
        got.len(),
        expected.len()
    );

    // a spool's file: the same rows gathered from spooled batches, in order,
    // as ArrowWriter writes them handed `BATCH_ROWS` at a time
    let all = arrow::compute::concat_batches(&TRANSACTIONS, &batches).unwrap();
    let by_batch_rows: Vec<RecordBatch> = (0..total)
        .step_by(BATCH_ROWS)
        .map(|at| all.slice(at, BATCH_ROWS.min(total - at)))
        .collect();
    let expected = arrow_writer(&by_batch_rows);
    let mut staged = Staged::default();
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    let order: Vec<(usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
        .collect();
    staged
        .write_spooled(tmp.path(), "2023-11-14", "s.parquet", &sources, &order, &[])
        .unwrap();
    let placed = staged.place().unwrap();
    assert_eq!(placed[0].rows, total as u64);
    let spooled = tmp
        .path()
        .join(TRANSACTIONS_DIR)
        .join("date=2023-11-14/s.parquet");
    assert!(fs::read(spooled).unwrap() == expected);
}

/// A device that is full (Linux's /dev/full refuses every write with
/// ENOSPC) stops the file with an error that names it and says why.
#[test]
fn a_full_disk_names_the_file() {
    let batches = sample_rows();
    let full = File::options().write(true).open("/dev/full").unwrap();
    let path = Path::new("/data/transactions/date=2023-01-01/.part-x.tmp");
    let mut info = DataFile {
        rel: String::new(),
        day: String::new(),
        size: 0,
        rows: 0,
        ts_range: None,
    };
    let e = write_file(full, batches.into_iter().map(Ok), &mut info)
        .map_err(|e| naming(path, e))
        .unwrap_err();
    match &e {
        Error::Io { path: p, source } => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{e}");
        }
        other => panic!("not an I/O error naming the file: {other}"),
    }
    assert!(
        e.to_string()
            .starts_with(&format!("{}: No space left on device", path.display())),
        "{e}"
    );
}

#[test]
fn gather_turns_keys_into_texts() {
    let schema = Arc::new(Schema::new(vec![Field::new("rcode", DataType::Utf8, true)]));
    let keys = Arc::new(Schema::new(vec![Field::new(
        "rcode",
        DataType::Int32,
        true,
    )]));
    let batch = |k: Vec<Option<i32>>| {
        RecordBatch::try_new(
            keys.clone(),
            vec![Arc::new(Int32Array::from(k)) as ArrayRef],
        )
        .unwrap()
    };
    let a = batch(vec![Some(0), None, Some(1)]);
    let b = batch(vec![Some(2), Some(0)]);
    let texts: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
        "NOERROR", "NXDOMAIN", "SERVFAIL",
    ]));
    let rows = [(1, 0), (0, 1), (0, 2), (1, 1), (0, 0)];
    let got = gather(&schema, &[&a, &b], &rows, &[Some(texts)]).unwrap();
    assert_eq!(got.schema(), schema);
    let got: Vec<Option<&str>> = got.column(0).as_string::<i32>().iter().collect();
    assert_eq!(
        got,
        [
            Some("SERVFAIL"),
            None,
            Some("NXDOMAIN"),
            Some("NOERROR"),
            Some("NOERROR")
        ]
    );
}

#[test]
fn gather_matches_arrow_interleave() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("flag", DataType::Boolean, true),
        Field::new("n", DataType::Int32, false),
    ]));
    let batch = |flags: Vec<Option<bool>>, n: Vec<i32>| {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(flags)),
            Arc::new(Int32Array::from(n)),
        ];
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    };
    let a = batch(vec![Some(true), None, Some(false)], vec![0, 1, 2]);
    let b = batch(vec![None, Some(true)], vec![3, 4]);
    let rows = [(1, 1), (0, 1), (0, 0), (1, 0), (0, 2), (0, 1)];
    let got = gather(&schema, &[&a, &b], &rows, &[]).unwrap();
    assert_eq!(got, interleave_record_batch(&[&a, &b], &rows).unwrap());
    let flags = got.column(0).as_boolean();
    let flags: Vec<Option<bool>> = flags.iter().collect();
    assert_eq!(
        flags,
        [Some(true), None, Some(true), None, Some(false), None]
    );
}
