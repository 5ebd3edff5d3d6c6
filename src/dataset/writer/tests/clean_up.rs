//! Clean-up: the files of writers whose lock is free and that the log does
//! not know are removed, a running writer's and committed files are not;
//! and the names and locks that tell whose a file is.

use super::*;

/// Opening a writer removes the files of a writer whose lock is free and
/// that the log does not know, and leaves a running writer's files, the
/// committed files and files that are not a writer's.
#[test]
fn opening_removes_a_dead_writers_uncommitted_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ingest(dir);
    let kept_before = files(dir);
    // the committed ingest: its lock gone, its files in the log
    let done_id = kept_before
        .iter()
        .find_map(|f| writer_of(f.rsplit('/').next().unwrap()))
        .unwrap()
        .to_string();
    let live = Writer::open(dir).unwrap();
    let put = |rel: String| {
        let p = dir.join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"x").unwrap();
        rel
    };
    let age = |rel: String| {
        made_old(&dir.join(&rel));
        rel
    };
    let day = format!("{TRANSACTIONS_DIR}/date={DAY}");
    let dead = [
        put(format!("{day}/part-{DEAD}-0-0.parquet")),
        put(format!("{day}/.part-{DEAD}-0-1.parquet.tmp")),
        put(format!(
            "{TRANSACTIONS_DIR}/date=2026-11-29/part-{DEAD}-1-0.parquet"
        )),
        put(format!("{CAPTURES_DIR}/part-{DEAD}.parquet")),
        put(format!("{CAPTURES_DIR}/.part-{DEAD}.parquet.tmp")),
        // a temporary captures file of the committed ingest (its lock gone)
        // is no captures file, once it is old
        age(put(format!("{CAPTURES_DIR}/.part-{done_id}.parquet.tmp"))),
    ];
    put(format!("{WRITERS_DIR}/{DEAD}.lock"));
    let alive = [
        put(format!("{day}/part-{}-0-0.parquet", live.id)),
        put(format!("{day}/.part-{}-0-1.parquet.tmp", live.id)),
        put(format!("{CAPTURES_DIR}/part-{}.parquet", live.id)),
    ];
    let foreign = [
        put(format!("{day}/notes.txt")),
        put(format!("{CAPTURES_DIR}/README")),
        put(format!(
            "{TRANSACTIONS_DIR}/_spark_metadata/part-{DEAD}-0-0.parquet"
        )),
    ];

    let mut w = Writer::open(dir).unwrap();
    assert_eq!(w.removed, dead.len());
    let mut want: Vec<String> = kept_before
        .iter()
        .cloned()
        .chain(alive.iter().cloned())
        .chain(foreign.iter().cloned())
        .chain([
            format!("{WRITERS_DIR}/{}.lock", live.id),
            format!("{WRITERS_DIR}/{}.lock", w.id),
        ])
        .collect();
    want.sort();
    assert_eq!(files(dir), want);
    // nothing left to remove; the live writer's files stay while it runs
    assert_eq!(w.clean_up().unwrap(), 0);
    // a writer dropped without abandoning its files takes its lock with it:
    // its files look like those of a writer that is starting, until old
    drop(live);
    assert_eq!(w.clean_up().unwrap(), 0);
    for rel in &alive {
        made_old(&dir.join(rel));
    }
    assert_eq!(w.clean_up().unwrap(), alive.len());
}

#[test]
fn live_writers_are_those_whose_lock_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = Writer::open(dir).unwrap();
    let b = Writer::open(dir).unwrap();
    let locks = dir.join(WRITERS_DIR);
    fs::write(locks.join(format!("{DEAD}.lock")), b"").unwrap();
    fs::write(locks.join(format!(".{DEAD}.lock.tmp")), b"").unwrap();
    let live = writers(dir, &a.id).unwrap().live;
    assert_eq!(live, HashSet::from([b.id.clone()]));
    let live = writers(dir, "me").unwrap().live;
    assert_eq!(live, HashSet::from([a.id.clone(), b.id.clone()]));
    drop(b);
    assert_eq!(
        writers(dir, "me").unwrap().live,
        HashSet::from([a.id.clone()])
    );
    assert!(writers(&dir.join("none"), "me").unwrap().live.is_empty());
}

/// `abandon` removes this writer's files and lock, nothing of others'.
#[test]
fn abandon_removes_its_own_files_and_lock() {
    let src = source();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let other = Writer::open(dir).unwrap();
    let w = Writer::open(dir).unwrap();
    stage(&other, &src, 0);
    let f = stage(&w, &src, 0);
    let tmp_name = dir
        .join(TRANSACTIONS_DIR)
        .join(format!("date={DAY}/.{}-0-1.parquet.tmp", w.file_prefix()));
    fs::write(&tmp_name, b"x").unwrap();
    let before = files(dir);
    assert!(before.contains(&format!("{TRANSACTIONS_DIR}/{}", f.rel)));
    let id = w.id.clone();
    w.abandon();
    let after = files(dir);
    let gone: Vec<String> = before.into_iter().filter(|f| !after.contains(f)).collect();
    assert_eq!(
        gone,
        [
            format!("{WRITERS_DIR}/{id}.lock"),
            format!("{CAPTURES_DIR}/part-{id}.parquet"),
            format!("{TRANSACTIONS_DIR}/date={DAY}/.part-{id}-0-1.parquet.tmp"),
            format!("{TRANSACTIONS_DIR}/{}", f.rel),
        ]
    );
    assert!(after.iter().all(|f| !f.contains(&id)));
    assert!(after.iter().any(|f| f.contains(&other.id)));
}

#[test]
fn lock_ids_of_visible_locks_only() {
    assert_eq!(
        lock_id(Path::new(&format!("/d/_writers/{DEAD}.lock"))),
        Some(DEAD.to_string())
    );
    assert_eq!(
        lock_id(Path::new(&format!("/d/_writers/.{DEAD}.lock.tmp"))),
        None
    );
    assert_eq!(
        lock_id(Path::new(&format!("/d/_writers/.{DEAD}.lock"))),
        None
    );
    assert_eq!(lock_id(Path::new("/d/_writers/README")), None);
}

#[test]
fn writer_ids_need_32_hex_digits_and_a_separator() {
    let id = DEAD;
    assert_eq!(writer_of(&format!("part-{id}-3-0.parquet")), Some(id));
    assert_eq!(writer_of(&format!(".part-{id}.parquet.tmp")), Some(id));
    assert_eq!(writer_of(&format!("part-{id}")), None);
    assert_eq!(writer_of(&format!("part-{id}x.parquet")), None);
    assert_eq!(writer_of(&format!("part-{}g-0.parquet", &id[..31])), None);
    assert_eq!(writer_of(&format!("..part-{id}-0.parquet")), None);
    assert_eq!(writer_of(&format!("xpart-{id}-0.parquet")), None);
    // a multi-byte character where the id would end is no id (and no panic)
    assert_eq!(writer_of(&format!("part-{}é-0.parquet", &id[..31])), None);
}

#[test]
fn read_dir_sorts_and_a_missing_dir_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    for n in ["b", "a", "c"] {
        fs::write(tmp.path().join(n), b"").unwrap();
    }
    let names: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    assert_eq!(read_dir(tmp.path()).unwrap(), names);
    assert!(read_dir(&tmp.path().join("none")).unwrap().is_empty());
    let file = tmp.path().join("a");
    match read_dir(&file) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, file);
            assert_eq!(source.raw_os_error(), Some(20), "ENOTDIR: {source}");
        }
        other => panic!("{other:?}"),
    }
}

/// Backdates a file's modification time by two hours.
fn made_old(path: &Path) {
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
}

/// A writer that started after the clean-up read which writers are alive
/// (its lock not there yet) keeps its files: files of a writer without a
/// lock go only once they are older than any starting writer's. A lock not
/// yet published that nobody holds goes at once: a writer caught between
/// creating it and locking it takes another (`publish_lock`).
#[test]
fn a_writer_without_a_lock_keeps_its_young_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Writer::open(dir).unwrap();
    let young = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    let old = "ffffffffffffffffffffffffffffffff";
    let day = dir.join(TRANSACTIONS_DIR).join(format!("date={DAY}"));
    fs::create_dir_all(&day).unwrap();
    fs::create_dir_all(dir.join(CAPTURES_DIR)).unwrap();
    let file = |id: &str| day.join(format!("part-{id}-0-0.parquet"));
    let capture = |id: &str| dir.join(CAPTURES_DIR).join(format!("part-{id}.parquet"));
    let unpublished = dir.join(WRITERS_DIR).join(format!(".{young}.lock.tmp"));
    fs::write(&unpublished, b"").unwrap();
    for id in [young, old] {
        for p in [file(id), capture(id)] {
            fs::write(&p, b"x").unwrap();
        }
    }
    for p in [file(old), capture(old)] {
        made_old(&p);
    }
    assert_eq!(w.clean_up().unwrap(), 2);
    for p in [file(young), capture(young)] {
        assert!(p.exists(), "{} was removed", p.display());
    }
    for p in [file(old), capture(old), unpublished] {
        assert!(!p.exists(), "{} was kept", p.display());
    }
}

/// The lock a writer takes is published under its id and held.
#[test]
fn a_published_lock_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _lock) = publish_lock(tmp.path(), "abc").unwrap();
    assert_eq!(path, tmp.path().join("abc.lock"));
    assert!(File::open(&path).unwrap().try_lock().is_err());
    assert!(!tmp.path().join(".abc.lock.tmp").exists());
}
