//! `rewrite` on the sample: what it maps and leaves, what it records, and the
//! datasets it refuses (tests/privacy.rs runs `dnsq anonymize` itself).

use std::path::PathBuf;

use super::*;
use crate::dataset::{TRANSACTIONS_DIR, WRITERS_DIR};

const SAMPLE_SHA: &str = "e88a9b6203ea463c6ea3bc8f32050e4ff7e161181e3b4edc6127bc23a025cb4e";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap")
}

fn ingest(dir: &Path) {
    crate::ingest::run(&crate::ingest::IngestConfig::new(
        vec![sample()],
        dir.to_path_buf(),
    ))
    .expect("the sample ingests");
}

/// Clients and ECS cut to /16 (v4) and /32 (v6); servers too when asked.
fn truncate(servers: bool) -> Anonymizer {
    Anonymizer::parse("truncate:16,32", servers).unwrap()
}

/// The committed transactions rows of `dir` (one file for the sample) and
/// its captures rows.
fn read(dir: &Path) -> (RecordBatch, RecordBatch) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let table = rt.block_on(open_table(dir)).unwrap().unwrap();
    let paths = committed_paths(dir, &table).unwrap();
    assert_eq!(paths.len(), 1, "{paths:?}");
    let rows = crate::dataset::table::read_parquet(&paths[0]).unwrap();
    let rows = arrow::compute::concat_batches(&rows[0].schema(), &rows).unwrap();
    let caps = rt.block_on(committed_captures(dir, &table)).unwrap();
    let caps = arrow::compute::concat_batches(&CAPTURES, &caps).unwrap();
    (rows, caps)
}

fn strings(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    b.column_by_name(name)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn mapped(anon: &Anonymizer, values: &[Option<String>]) -> Vec<Option<String>> {
    values
        .iter()
        .map(|v| v.as_ref().map(|a| anon.map(a.parse().unwrap()).to_string()))
        .collect()
}

#[test]
fn rewrite_maps_clients_and_records_the_method() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    ingest(&src);
    let anon = truncate(false);
    let done = rewrite(&src, &dst, &anon).unwrap();
    assert_eq!(
        (done.captures, done.rows, done.files, done.version),
        (1, 1300, 1, Some(1))
    );
    assert!(done.notes.is_empty(), "{:?}", done.notes);
    let (before, _) = read(&src);
    let (after, caps) = read(&dst);
    assert_eq!(after.num_rows(), 1300);
    let clients = strings(&before, CLIENT_IP);
    assert_eq!(strings(&after, CLIENT_IP), mapped(&anon, &clients));
    assert_ne!(
        strings(&after, CLIENT_IP),
        clients,
        "the sample's clients change"
    );
    assert_eq!(strings(&after, SERVER_IP), strings(&before, SERVER_IP));
    assert_eq!(strings(&after, "qname"), strings(&before, "qname"));
    assert_eq!(strings(&caps, "sha256"), [Some(SAMPLE_SHA.to_string())]);
    assert_eq!(
        strings(&caps, "anonymization"),
        [Some("truncate 16,32 on clients, ECS".to_string())]
    );
    // the source is only read
    assert_eq!(strings(&read(&src).1, "anonymization"), [None]);
}

#[test]
fn rewrite_maps_servers_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    ingest(&src);
    let anon = truncate(true);
    rewrite(&src, &dst, &anon).unwrap();
    let (before, _) = read(&src);
    let (after, caps) = read(&dst);
    assert_eq!(
        strings(&after, SERVER_IP),
        mapped(&anon, &strings(&before, SERVER_IP))
    );
    assert_eq!(
        strings(&caps, "anonymization"),
        [Some("truncate 16,32 on clients, ECS, servers".to_string())]
    );
}

/// A second rewrite into the same destination finds its captures there and
/// adds nothing, leaving no file behind.
#[test]
fn rewriting_again_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    ingest(&src);
    let anon = truncate(false);
    rewrite(&src, &dst, &anon).unwrap();
    let files_before = tree(&dst);
    let again = rewrite(&src, &dst, &anon).unwrap();
    assert_eq!((again.rows, again.files, again.version), (0, 0, None));
    assert_eq!(tree(&dst), files_before);
}

/// Every file under `dir`, relative, the log's included.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_destination_cannot_be_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    ingest(&src);
    let same = src.join(".");
    match rewrite(&src, &same, &truncate(false)) {
        Err(Error::Usage(msg)) => assert_eq!(
            msg,
            format!(
                "{}: the destination is the source; give a new directory",
                same.display()
            )
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pseudonymised_source_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    ingest(&src);
    rewrite(&src, &dst, &truncate(false)).unwrap();
    let again = tmp.path().join("again");
    match rewrite(&dst, &again, &truncate(false)) {
        Err(Error::Refused(msg)) => assert_eq!(
            msg,
            format!(
                "{}: its addresses are already pseudonymised (truncate 16,32 on clients, ECS); \
                 rewrite the original dataset instead",
                dst.display()
            )
        ),
        other => panic!("{other:?}"),
    }
    assert!(!again.exists());
}

/// A destination that holds addresses as captured is not mixed with
/// pseudonymised ones; the refused rewrite leaves no file there.
#[test]
fn a_destination_with_other_addresses_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    ingest(&src);
    ingest(&dst);
    let before = tree(&dst);
    match rewrite(&src, &dst, &truncate(false)) {
        Err(Error::Refused(msg)) => assert!(
            msg.starts_with("the dataset holds addresses as captured (not anonymized)"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(tree(&dst), before);
    assert!(!before.iter().any(|f| f.starts_with(WRITERS_DIR)));
}

#[test]
fn a_source_without_a_log_is_no_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join(TRANSACTIONS_DIR)).unwrap();
    match rewrite(&src, &tmp.path().join("dst"), &truncate(false)) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, src);
            assert_eq!(
                source.to_string(),
                "no dnsq dataset here (a Delta log under transactions/)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!tmp.path().join("dst").exists());
}

/// The memo maps each address once; text that is no address is not written.
#[test]
fn the_mapper_maps_addresses_and_subnets() {
    let anon = truncate(false);
    let mut m = Mapper {
        anon: &anon,
        seen: HashMap::new(),
    };
    assert_eq!(m.address("192.0.2.77").as_deref(), Some("192.0.0.0"));
    assert_eq!(m.address("2001:db8:1:2::5").as_deref(), Some("2001:db8::"));
    assert_eq!(m.address("not an address"), None);
    assert_eq!(m.seen.len(), 3);
    let col: ArrayRef = Arc::new(StringArray::from(vec![
        Some("198.51.100.0/24"),
        None,
        Some("nonsense"),
    ]));
    let out = m.column(&col, true).unwrap();
    let out: Vec<Option<&str>> = out.as_string::<i32>().iter().collect();
    assert_eq!(out, [Some("198.51.0.0/24"), None, None]);
}
