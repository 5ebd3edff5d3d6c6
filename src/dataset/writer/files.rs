//! Whose a file is, which writers are alive, and listing a directory:
//! what the clean-up and the checks read from the dataset's files.

use super::*;

/// The writer id in a file name `part-<id>-….parquet`, `.part-<id>….tmp` or
/// `part-<id>.parquet`: 32 hex digits.
pub(in crate::dataset) fn writer_of(name: &str) -> Option<&str> {
    let rest = name
        .strip_prefix('.')
        .unwrap_or(name)
        .strip_prefix("part-")?;
    let id = rest.get(..32)?;
    let tail = &rest[32..];
    (id.bytes().all(|b| b.is_ascii_hexdigit()) && (tail.starts_with('-') || tail.starts_with('.')))
        .then_some(id)
}

/// The writer id of a lock file `<id>.lock` (not of one being created).
pub(in crate::dataset) fn lock_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(".lock")?;
    (!id.starts_with('.')).then(|| id.to_string())
}

/// How old the files of a writer without a published lock must be before a
/// clean-up removes them: a starting writer publishes its lock within
/// moments, before it writes a file.
pub(super) const LOCKLESS_AGE: Duration = Duration::from_secs(3600);

/// The writers whose lock is published: held by a running ingest (`live`)
/// or left by one that is gone (`dead`).
pub(in crate::dataset) struct Writers {
    pub(in crate::dataset) live: HashSet<String>,
    pub(in crate::dataset) dead: HashSet<String>,
}

pub(in crate::dataset) fn writers(root: &Path, me: &str) -> Result<Writers> {
    let (mut live, mut dead) = (HashSet::new(), HashSet::new());
    for path in read_dir(&root.join(WRITERS_DIR))? {
        let Some(id) = lock_id(&path) else {
            continue;
        };
        if id == me {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        match f.try_lock() {
            // nobody holds it: that writer is gone
            Ok(()) => dead.insert(id),
            Err(_) => live.insert(id),
        };
    }
    Ok(Writers { live, dead })
}

/// Whether the file at `path` was last modified more than `age` ago (false
/// when that cannot be told).
pub(super) fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}

pub(in crate::dataset) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut out = Vec::new();
            for e in entries {
                out.push(e.map_err(|e| Error::io(dir, e))?.path());
            }
            out.sort();
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Takes writer `id`'s lock: created and locked under a hidden name, then
/// renamed, so that a visible lock is always held. A clean-up that found the
/// hidden file between its creation and its lock may have removed it (the
/// rename then finds nothing); that takes a new one.
pub(super) fn publish_lock(writers: &Path, id: &str) -> Result<(PathBuf, File)> {
    let lock_path = writers.join(format!("{id}.lock"));
    let hidden = writers.join(format!(".{id}.lock.tmp"));
    let mut tries = 0;
    loop {
        tries += 1;
        let lock = File::create(&hidden).map_err(|e| Error::io(&hidden, e))?;
        lock.lock().map_err(|e| Error::io(&hidden, e))?;
        match fs::rename(&hidden, &lock_path) {
            Ok(()) => return Ok((lock_path, lock)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 10 => continue,
            Err(e) => return Err(Error::io(&lock_path, e)),
        }
    }
}
