//! The writer's side of the commit protocol, on real files: data/sample.pcap
//! ingested once gives a transactions file (1,300 rows, one day) and a
//! captures row that the tests copy under a writer's id, so that each test
//! drives `Writer` itself: what a commit adds, two writers racing for one
//! version, what a killed writer left, and a log that cannot be written.
//! (tests/durability.rs checks the same protocol through the binary.)

use super::*;

/// The sample's content hash, as the captures table records it.
const SAMPLE_SHA: &str = "e88a9b6203ea463c6ea3bc8f32050e4ff7e161181e3b4edc6127bc23a025cb4e";
const DAY: &str = "2026-11-28";
const ROWS: u64 = 1300;
/// A writer that is not running: nobody holds a lock of this id.
const DEAD: &str = "dddddddddddddddddddddddddddddddd";

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.pcap")
}

/// data/sample.pcap ingested into `dir` (version 1 of a new dataset).
fn ingest(dir: &Path) -> crate::ingest::IngestReport {
    crate::ingest::run(&crate::ingest::IngestConfig::new(
        vec![sample()],
        dir.to_path_buf(),
    ))
    .expect("the sample ingests")
}

/// Files and captures rows of one ingest of the sample, to be given to
/// writers of other datasets.
struct Source {
    _tmp: tempfile::TempDir,
    parquet: PathBuf,
    captures: RecordBatch,
}

fn source() -> Source {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    let report = ingest(&dir);
    assert_eq!(report.files_written.len(), 1);
    let mut caps = read_dir(&dir.join(CAPTURES_DIR)).unwrap();
    assert_eq!(caps.len(), 1);
    let batches = table::read_parquet(&caps.remove(0)).unwrap();
    Source {
        parquet: report.files_written[0].clone(),
        captures: arrow::compute::concat_batches(&CAPTURES, &batches).unwrap(),
        _tmp: tmp,
    }
}

/// Places the sample's transactions file under `w`'s id (as `Staged::place`
/// would) and writes its captures rows; returns the file to commit.
fn stage(w: &Writer, src: &Source, n: usize) -> DataFile {
    let dir = w.root().join(TRANSACTIONS_DIR).join(format!("date={DAY}"));
    fs::create_dir_all(&dir).unwrap();
    let name = format!("{}-0-{n}.parquet", w.file_prefix());
    fs::copy(&src.parquet, dir.join(&name)).unwrap();
    w.write_captures(&src.captures).unwrap();
    let (rows, ts_range) = parquet_rows(&dir.join(&name)).unwrap();
    DataFile {
        rel: format!("date={DAY}/{name}"),
        day: DAY.to_string(),
        size: fs::metadata(dir.join(&name)).unwrap().len(),
        rows,
        ts_range,
    }
}

/// The actions of one commit file, one JSON value per line.
fn log(dir: &Path, version: u64) -> Vec<serde_json::Value> {
    let path = dir
        .join(TRANSACTIONS_DIR)
        .join(LOG_DIR)
        .join(format!("{version:020}.json"));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The commit files of the log, by version.
fn versions(dir: &Path) -> Vec<String> {
    read_dir(&dir.join(TRANSACTIONS_DIR).join(LOG_DIR))
        .unwrap()
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|n| n.ends_with(".json"))
        .collect()
}

/// Files under `dir` (recursively, relative, sorted), the log left out.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, at: &Path, out: &mut Vec<String>) {
        for p in read_dir(at).unwrap() {
            if p.file_name().is_some_and(|n| n == LOG_DIR) {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The data files the table at `dir` has committed, relative to
/// `transactions/`, as a new reader of the log sees them.
fn committed(dir: &Path) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let table = rt.block_on(open_table(dir)).unwrap().unwrap();
    let mut names: Vec<String> = table
        .get_file_uris()
        .unwrap()
        .map(|u| u.split("/transactions/").nth(1).unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Makes `dir` unwritable, even for root (`chattr +i`), until dropped;
/// `None` where neither works here.
struct ReadOnly {
    dir: PathBuf,
    immutable: bool,
}

impl ReadOnly {
    fn new(dir: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        let probe = dir.join("probe");
        let writable = || match File::create(&probe) {
            Ok(_) => {
                fs::remove_file(&probe).unwrap();
                true
            }
            Err(_) => false,
        };
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).unwrap();
        let mut guard = ReadOnly {
            dir: dir.to_path_buf(),
            immutable: false,
        };
        if !writable() {
            return Some(guard);
        }
        // root: mode bits do not stop it
        guard.immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        (!writable()).then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.dir)
                .status();
        }
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn a_new_dataset_is_version_0_with_the_writers_lock_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let mut w = Writer::open(&dir).unwrap();
    assert_eq!(w.id.len(), 32);
    assert_eq!(
        writer_of(&format!("{}.parquet", w.file_prefix())),
        Some(w.id.as_str())
    );
    assert_eq!(w.table.version(), Some(0));
    assert_eq!((w.removed, w.notes.len()), (0, 0));
    assert_eq!(versions(&dir), ["00000000000000000000.json"]);
    assert_eq!(files(&dir), [format!("{WRITERS_DIR}/{}.lock", w.id)]);
    assert!(committed(&dir).is_empty());
    w.release();
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
}

#[test]
fn a_commit_adds_the_files_and_records_the_ingest_and_its_captures() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let mut w = Writer::open(&dir).unwrap();
    let file = stage(&w, &src, 0);
    assert_eq!(
        (file.rows, file.ts_range),
        (ROWS, Some((1_795_859_396_273_670, 1_795_859_409_724_381)))
    );
    assert!(!w.holds(SAMPLE_SHA).unwrap());

    let done = w
        .commit(std::slice::from_ref(&file), &[SAMPLE_SHA.to_string()])
        .unwrap();
    assert!(matches!(done, Committed::Version(1)), "{done:?}");
    assert_eq!(versions(&dir).len(), 2);
    let actions = log(&dir, 1);
    let adds: Vec<&serde_json::Value> = actions.iter().filter_map(|a| a.get("add")).collect();
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0]["path"], file.rel.as_str());
    assert_eq!(adds[0]["partitionValues"]["date"], DAY);
    assert_eq!(adds[0]["size"], file.size);
    let stats: serde_json::Value =
        serde_json::from_str(adds[0]["stats"].as_str().unwrap()).unwrap();
    assert_eq!(stats["numRecords"], ROWS);
    // milliseconds, rounded outwards from 09:49:56.273670 and 09:50:09.724381
    assert_eq!(stats["minValues"]["ts"], "2026-11-28T09:49:56.273Z");
    assert_eq!(stats["maxValues"]["ts"], "2026-11-28T09:50:09.725Z");
    let mut txns: Vec<&str> = actions
        .iter()
        .filter_map(|a| a["txn"]["appId"].as_str())
        .collect();
    txns.sort();
    assert_eq!(
        txns,
        [
            format!("dnsq-capture-{SAMPLE_SHA}"),
            format!("dnsq-ingest-{}", w.id)
        ]
    );
    let info = actions.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["dnsq.ingest"], w.id.as_str());
    assert_eq!(info["operation"], "WRITE");

    // another writer sees the commit: the files, the ingest, the capture
    let r = Writer::open(&dir).unwrap();
    assert_eq!(r.removed, 0);
    assert!(r.holds(SAMPLE_SHA).unwrap());
    assert!(r.ingest_committed(&w.id).unwrap());
    assert!(!r.holds(&"0".repeat(64)).unwrap());
    assert_eq!(committed(&dir), std::slice::from_ref(&file.rel));
    drop(r);
    w.release();
    let id = w.id.clone();
    drop(w);
    assert_eq!(
        files(&dir),
        [
            format!("{CAPTURES_DIR}/part-{id}.parquet"),
            format!("{TRANSACTIONS_DIR}/{}", file.rel),
        ]
    );

    // a reader of the table sees the rows and the captures row
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let table = rt.block_on(open_table(&dir)).unwrap().unwrap();
    assert_eq!(table.version(), Some(1));
    let caps = rt.block_on(committed_captures(&dir, &table)).unwrap();
    let sha: Vec<&str> = caps
        .iter()
        .flat_map(|b| {
            b.column_by_name("sha256")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .flatten()
        })
        .collect();
    assert_eq!(sha, [SAMPLE_SHA]);
}

#[test]
fn write_captures_replaces_its_temporary_name() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let w = Writer::open(tmp.path()).unwrap();
    w.write_captures(&src.captures).unwrap();
    let path = tmp
        .path()
        .join(CAPTURES_DIR)
        .join(format!("part-{}.parquet", w.id));
    assert_eq!(
        read_dir(&tmp.path().join(CAPTURES_DIR)).unwrap(),
        std::slice::from_ref(&path)
    );
    let back = table::read_parquet(&path).unwrap();
    assert_eq!(back.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(back[0].schema(), CAPTURES.clone());
    assert_eq!(
        back[0]
            .column_by_name("sha256")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        SAMPLE_SHA
    );
}

/// Two writers opened at version 0 with different captures: the second
/// loses the race for version 1, reloads and commits version 2.
#[test]
fn the_writer_that_loses_the_race_commits_the_next_version() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut a = Writer::open(dir).unwrap();
    let mut b = Writer::open(dir).unwrap();
    assert_eq!(b.removed, 0, "a's lock is held: nothing of it is removed");
    let fa = stage(&a, &src, 0);
    let fb = stage(&b, &src, 0);
    let other_sha = "ab".repeat(32);
    assert!(matches!(
        a.commit(std::slice::from_ref(&fa), &[SAMPLE_SHA.to_string()]),
        Ok(Committed::Version(1))
    ));
    assert_eq!(b.table.version(), Some(0), "b has not seen a's commit");
    let done = b.commit(std::slice::from_ref(&fb), std::slice::from_ref(&other_sha));
    assert!(matches!(done, Ok(Committed::Version(2))), "{done:?}");
    let mut both = [fa.rel.clone(), fb.rel.clone()];
    both.sort();
    assert_eq!(committed(dir), both);
    drop((a, b));
    let r = Writer::open(dir).unwrap();
    assert!(r.holds(SAMPLE_SHA).unwrap() && r.holds(&other_sha).unwrap());
    let adds: Vec<String> = log(dir, 2)
        .iter()
        .filter_map(|a| a["add"]["path"].as_str().map(str::to_string))
        .collect();
    assert_eq!(adds, [fb.rel]);
}

/// Two writers of the same capture: the one that loses the race finds it
/// committed and adds nothing; its files go when it is abandoned.
#[test]
fn a_capture_committed_by_the_race_winner_is_not_added_again() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut a = Writer::open(dir).unwrap();
    let mut b = Writer::open(dir).unwrap();
    let fa = stage(&a, &src, 0);
    let fb = stage(&b, &src, 0);
    let sha = [SAMPLE_SHA.to_string()];
    assert!(matches!(
        a.commit(std::slice::from_ref(&fa), &sha),
        Ok(Committed::Version(1))
    ));
    a.release();
    let done = b.commit(&[fb], &sha);
    match done {
        Ok(Committed::AlreadyThere(there)) => assert_eq!(there, sha),
        other => panic!("{other:?}"),
    }
    assert_eq!(versions(dir).len(), 2, "no version 2");
    assert_eq!(committed(dir), std::slice::from_ref(&fa.rel));
    let a_id = a.id.clone();
    b.abandon();
    assert_eq!(
        files(dir),
        [
            format!("{CAPTURES_DIR}/part-{a_id}.parquet"),
            format!("{TRANSACTIONS_DIR}/{}", fa.rel),
        ]
    );
}

/// `ingest a b` racing `ingest a`: the loser's files mix both captures, so
/// it commits nothing and says to run it again.
#[test]
fn a_race_lost_for_some_captures_commits_nothing() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut a = Writer::open(dir).unwrap();
    let mut b = Writer::open(dir).unwrap();
    let fa = stage(&a, &src, 0);
    let fb = stage(&b, &src, 0);
    assert!(matches!(
        a.commit(&[fa], &[SAMPLE_SHA.to_string()]),
        Ok(Committed::Version(1))
    ));
    let err = b
        .commit(&[fb], &[SAMPLE_SHA.to_string(), "cd".repeat(32)])
        .unwrap_err();
    let Error::Io { path, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, dir);
    assert_eq!(
        source.to_string(),
        format!(
            "another dnsq committed 1 of this ingest's captures while it ran (sha256 \
             {SAMPLE_SHA}); nothing of this ingest was committed: run it again to add the others"
        )
    );
    assert_eq!(versions(dir).len(), 2);
    assert!(!b.holds(&"cd".repeat(32)).unwrap());
}

/// A capture already in the dataset when the writer opens: no commit at all,
/// and an ingest of it through the pipeline reports it as already there.
#[test]
fn a_capture_already_committed_is_not_committed_again() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = ingest(dir);
    assert_eq!(first.version, Some(1));
    let mut w = Writer::open(dir).unwrap();
    assert!(w.holds(SAMPLE_SHA).unwrap());
    let f = stage(&w, &src, 0);
    match w.commit(&[f], &[SAMPLE_SHA.to_string()]) {
        Ok(Committed::AlreadyThere(there)) => assert_eq!(there, [SAMPLE_SHA]),
        other => panic!("{other:?}"),
    }
    w.abandon();
    let again = ingest(dir);
    assert_eq!(again.version, None);
    assert_eq!(again.already_ingested, [sample()]);
    assert!(again.captures.is_empty() && again.files_written.is_empty());
    assert_eq!(versions(dir).len(), 2);
    let on_disk: Vec<String> = files(dir)
        .into_iter()
        .filter(|f| f.starts_with(TRANSACTIONS_DIR))
        .collect();
    assert_eq!(on_disk.len(), 1, "{on_disk:?}");
}

/// The log cannot be written (a read-only `_delta_log`): the commit fails
/// with an error that names the dataset, is not taken for a race, and
/// commits nothing.
#[test]
fn a_log_that_cannot_be_written_fails_the_commit() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Writer::open(dir).unwrap();
    let f = stage(&w, &src, 0);
    let log_dir = dir.join(TRANSACTIONS_DIR).join(LOG_DIR);
    // never skipped: a machine where neither mode bits nor chattr make a
    // directory read-only fails here, not silently
    let guard =
        ReadOnly::new(&log_dir).expect("a read-only _delta_log (mode 555, or chattr +i for root)");
    let err = w.commit(&[f], &[SAMPLE_SHA.to_string()]).unwrap_err();
    drop(guard);
    let Error::Io { path, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, dir);
    let msg = source.to_string();
    assert!(msg.starts_with("Delta log: "), "{msg}");
    // it names the commit file it could not create
    assert!(msg.contains("00000000000000000001.json"), "{msg}");
    assert!(
        msg.contains("ermission denied") || msg.contains("not permitted"),
        "{msg}"
    );
    assert_eq!(versions(dir), ["00000000000000000000.json"]);
    w.abandon();
    assert!(files(dir).is_empty(), "{:?}", files(dir));
}

/// A log whose next commit file is taken for good (a directory of that
/// name) is a race lost again and again: the commit gives up after 100
/// attempts instead of looping.
#[test]
fn a_version_that_never_frees_ends_the_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Writer::open(dir).unwrap();
    let next = dir
        .join(TRANSACTIONS_DIR)
        .join(LOG_DIR)
        .join(format!("{:020}.json", 1));
    fs::create_dir(&next).unwrap();
    let err = w.commit(&[], &["ef".repeat(32)]).unwrap_err();
    let Error::Io { path, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path, dir);
    assert!(
        source
            .to_string()
            .starts_with("the log's next version was taken before this ingest's commit 100 times in a row; nothing of this ingest was committed: run it again"),
        "{source}"
    );
    // nothing was written: version 0, and the directory in the way
    assert_eq!(
        versions(dir),
        ["00000000000000000000.json", "00000000000000000001.json"]
    );
    assert!(next.is_dir() && read_dir(&next).unwrap().is_empty());
}

/// The anonymisation is checked again after a lost race: rows as captured
/// committed meanwhile refuse a pseudonymised commit.
#[test]
fn a_race_lost_to_other_addresses_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Writer::open(dir).unwrap();
    let method = "truncate 24,48 on clients, ECS".to_string();
    w.require_anonymization(Some(method.clone())).unwrap();
    ingest(dir);
    let err = w.commit(&[], &["ef".repeat(32)]).unwrap_err();
    let Error::Refused(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(
        msg.starts_with(
            "the dataset holds addresses as captured (not anonymized), and this ingest's would \
             be pseudonymised (truncate 24,48 on clients, ECS): one dataset never mixes them."
        ),
        "{msg}"
    );
    assert_eq!(versions(dir).len(), 2);
    // checked on its own too; the same method as the dataset's passes
    assert!(matches!(
        w.require_anonymization(Some(method)),
        Err(Error::Refused(_))
    ));
    w.require_anonymization(None).unwrap();
}

#[test]
fn races_are_version_conflicts_only() {
    assert!(is_race(&DeltaTableError::VersionAlreadyExists(3)));
    assert!(is_race(&DeltaTableError::Transaction {
        source: TransactionError::VersionAlreadyExists(3)
    }));
    assert!(is_race(&DeltaTableError::Transaction {
        source: TransactionError::MaxCommitAttempts(0)
    }));
    assert!(!is_race(&DeltaTableError::Transaction {
        source: TransactionError::DeltaTableAppendOnly
    }));
    assert!(!is_race(&DeltaTableError::Generic("disk full".into())));
}

// what a killed writer leaves, and whose files are whose
mod clean_up;
