//! A dataset opened for writing by one ingest: its lock, its files and its
//! one Delta commit (the protocol in the module above).

use super::*;

mod files;
pub(super) use files::*;

/// The object store side of a writer whose dataset is not on a local disk.
pub(super) struct Remote {
    url: Url,
    store: Arc<dyn ObjectStore>,
    /// Objects this writer uploaded (removed if it does not commit).
    uploaded: Vec<String>,
}

/// A dataset opened for writing by one ingest.
pub struct Writer {
    /// Where the files are written: the dataset, or for a dataset on an
    /// object store a local staging directory.
    root: PathBuf,
    remote: Option<Remote>,
    pub id: String,
    table: DeltaTable,
    rt: tokio::runtime::Runtime,
    lock: Option<(PathBuf, File)>,
    /// Messages for the user (an upgrade).
    pub notes: Vec<String>,
    /// Files of killed ingests removed on opening.
    pub removed: usize,
    /// How this ingest pseudonymises addresses (`None` inside: not at all),
    /// once `require_anonymization` has checked it against the dataset.
    anonymization: Option<Option<String>>,
}

impl Writer {
    /// Opens (creating, or upgrading a dataset written before the Delta log)
    /// the dataset at `root`, takes a writer id and its lock, and removes what
    /// killed ingests left.
    pub fn open(root: &Path) -> Result<Writer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(root, e))?;
        if let Some(url) = remote::url_of(root) {
            return Writer::open_remote(url, rt, remote::ORPHAN_AGE);
        }
        let tx_dir = root.join(TRANSACTIONS_DIR);
        fs::create_dir_all(&tx_dir).map_err(|e| Error::io(&tx_dir, e))?;
        let writers = root.join(WRITERS_DIR);
        fs::create_dir_all(&writers).map_err(|e| Error::io(&writers, e))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (lock_path, lock) = publish_lock(&writers, &id)?;
        let mut notes = Vec::new();
        let url = table_url(&tx_dir)?;
        let table = rt.block_on(open_or_create(url, Some(root), &mut notes))?;
        let mut w = Writer {
            root: root.to_path_buf(),
            remote: None,
            id,
            table,
            rt,
            lock: Some((lock_path, lock)),
            notes,
            removed: 0,
            anonymization: None,
        };
        w.removed = w.clean_up()?;
        Ok(w)
    }

    /// A writer for the dataset at `url` on an object store; removes other
    /// writers' uncommitted files older than `age`.
    pub(super) fn open_remote(
        url: Url,
        rt: tokio::runtime::Runtime,
        age: Duration,
    ) -> Result<Writer> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let staging = std::env::temp_dir().join(format!("dnsq-staging-{id}"));
        let tx_dir = staging.join(TRANSACTIONS_DIR);
        fs::create_dir_all(&tx_dir).map_err(|e| Error::io(&tx_dir, e))?;
        let mut notes = Vec::new();
        let tx_url = url
            .join(&format!("{TRANSACTIONS_DIR}/"))
            .map_err(|e| Error::io(url.as_str(), other(e)))?;
        let table = rt.block_on(open_or_create(tx_url, None, &mut notes))?;
        let store = remote::store(&url)?;
        let mut w = Writer {
            root: staging,
            remote: Some(Remote {
                url,
                store,
                uploaded: Vec::new(),
            }),
            id,
            table,
            rt,
            lock: None,
            notes,
            removed: 0,
            anonymization: None,
        };
        w.removed = w.clean_up_remote(age)?;
        Ok(w)
    }

    /// The table as this writer loaded it: what its commit builds on.
    pub fn table(&self) -> &DeltaTable {
        &self.table
    }

    /// Whether the dataset is on an object store (the files are staged here).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The local directory this writer writes its files to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The dataset as the user named it: a directory or an object store URL.
    fn dataset(&self) -> PathBuf {
        match &self.remote {
            Some(r) => PathBuf::from(r.url.as_str()),
            None => self.root.clone(),
        }
    }

    /// Refuses to add rows whose addresses are pseudonymised otherwise than
    /// the rows the dataset holds (`method` as `Anonymizer::describe` gives
    /// it, `None` for addresses as captured): one dataset never mixes real
    /// and pseudonymised addresses, or two keys. Checked again before a
    /// commit that follows another writer's.
    pub fn require_anonymization(&mut self, method: Option<String>) -> Result<()> {
        self.anonymization = Some(method);
        self.check_anonymization()
    }

    /// The `anonymization` values of the committed captures (null before the
    /// column existed: `committed_captures` conforms old files to the schema).
    fn anonymizations(&self) -> Result<HashSet<Option<String>>> {
        let dir = self.dataset();
        let batches = self.rt.block_on(committed_captures(&dir, &self.table))?;
        Ok(batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("anonymization")
                    .expect("conformed to the captures schema")
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    fn check_anonymization(&self) -> Result<()> {
        let Some(want) = &self.anonymization else {
            return Ok(());
        };
        let describe = |m: &Option<String>| match m {
            Some(m) => format!("pseudonymised ({m})"),
            None => "as captured (not anonymized)".to_string(),
        };
        let held = self.anonymizations()?;
        if let Some(other) = held.iter().find(|h| *h != want) {
            return Err(Error::Refused(format!(
                "the dataset holds addresses {}, and this ingest's would be {}: one dataset \
                 never mixes them. Write to another dataset (-o), or rewrite this one with \
                 `dnsq anonymize`",
                describe(other),
                describe(want)
            )));
        }
        Ok(())
    }

    fn committed_names(&self) -> Result<HashSet<String>> {
        Ok(self
            .table
            .get_file_uris()
            .map_err(|e| delta_err(&self.root, e))?
            .map(|u| u.rsplit('/').next().unwrap_or_default().to_string())
            .collect())
    }

    fn clean_up_remote(&mut self, age: Duration) -> Result<usize> {
        let Some(r) = &self.remote else {
            return Ok(0);
        };
        let (url, store) = (r.url.clone(), r.store.clone());
        // the listing first, the log second: a file old enough is committed
        // before the log is read, or abandoned
        let data = self
            .rt
            .block_on(remote::list(store.as_ref(), &url, TRANSACTIONS_DIR))?;
        let caps = self
            .rt
            .block_on(remote::list(store.as_ref(), &url, CAPTURES_DIR))?;
        self.rt
            .block_on(self.table.update_incremental(None))
            .map_err(|e| delta_err(Path::new(url.as_str()), e))?;
        let committed = self.committed_names()?;
        let mut done = HashSet::new();
        for (rel, _) in &caps {
            if let Some(owner) = writer_of(rel.rsplit('/').next().unwrap_or_default()) {
                if self.ingest_committed(owner)? {
                    done.insert(owner.to_string());
                }
            }
        }
        let orphans = remote::orphans(data, caps, &self.id, &committed, &done, age);
        for rel in &orphans {
            self.rt
                .block_on(remote::delete(store.as_ref(), &url, rel))?;
        }
        Ok(orphans.len())
    }

    /// Uploads the staged files of a writer on an object store (once).
    fn upload(&mut self, files: &[DataFile]) -> Result<()> {
        let Some(r) = &mut self.remote else {
            return Ok(());
        };
        if !r.uploaded.is_empty() {
            return Ok(());
        }
        let mut rels: Vec<String> = files
            .iter()
            .map(|f| format!("{TRANSACTIONS_DIR}/{}", f.rel))
            .collect();
        rels.push(format!("{CAPTURES_DIR}/part-{}.parquet", self.id));
        for rel in rels {
            r.uploaded.push(rel.clone());
            self.rt
                .block_on(remote::upload(r.store.as_ref(), &r.url, &self.root, &rel))?;
        }
        crash_point("after-upload");
        Ok(())
    }

    /// Is this capture (by content hash) committed in the dataset?
    pub fn holds(&self, sha256: &str) -> Result<bool> {
        self.has_app(app_id_capture(sha256))
    }

    fn ingest_committed(&self, id: &str) -> Result<bool> {
        self.has_app(app_id_ingest(id))
    }

    /// Does the log record the application transaction `app_id`?
    fn has_app(&self, app_id: String) -> Result<bool> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(|e| delta_err(&self.root, e))?;
        let v = self
            .rt
            .block_on(snapshot.transaction_version(self.table.log_store().as_ref(), app_id))
            .map_err(|e| delta_err(&self.root, e))?;
        Ok(v.is_some())
    }

    /// Where this writer's files go: names carry the writer id.
    pub fn file_prefix(&self) -> String {
        format!("part-{}", self.id)
    }

    /// Writes the captures rows of this ingest (before the commit, which makes
    /// them count).
    pub fn write_captures(&self, batch: &RecordBatch) -> Result<()> {
        let dir = self.root.join(CAPTURES_DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let dest = dir.join(format!("part-{}.parquet", self.id));
        let tmp = dir.join(format!(".part-{}.parquet.tmp", self.id));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let written = parquet::arrow::ArrowWriter::try_new(
            file,
            CAPTURES.clone(),
            Some(crate::ingest::write::properties()),
        )
        .and_then(|mut w| {
            w.write(batch)?;
            w.into_inner()
        });
        let file = written.map_err(|e| Error::parquet_at(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(())
    }

    /// Commits `files` and the captures `sha256s` as one Delta version.
    /// Captures another writer committed meanwhile are not added again: when
    /// all of them are there, nothing is committed; when only some are, the
    /// ingest fails without committing (its files mix their rows).
    pub fn commit(&mut self, files: &[DataFile], sha256s: &[String]) -> Result<Committed> {
        self.commit_with(files, sha256s, None)
    }

    /// [`Writer::commit`], with the summary (`query::summary`) of the version
    /// the commit builds on plus `files`: `(that version, summary)`. The
    /// summary goes into the commit only when it lands on that version.
    pub fn commit_with(
        &mut self,
        files: &[DataFile],
        sha256s: &[String],
        summary: Option<(Option<u64>, serde_json::Value)>,
    ) -> Result<Committed> {
        self.upload(files)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let there: Vec<String> = sha256s
                .iter()
                .filter_map(|h| match self.holds(h) {
                    Ok(true) => Some(Ok(h.clone())),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_>>()?;
            if !there.is_empty() {
                if there.len() == sha256s.len() {
                    return Ok(Committed::AlreadyThere(there));
                }
                return Err(Error::io(
                    &self.root,
                    other(format!(
                        "another dnsq committed {} of this ingest's captures while it ran \
                         (sha256 {}); nothing of this ingest was committed: run it again to \
                         add the others",
                        there.len(),
                        there[0]
                    )),
                ));
            }
            let mut actions: Vec<Action> = files.iter().map(|f| Action::Add(f.add())).collect();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut txns = vec![AppTransaction {
                app_id: app_id_ingest(&self.id),
                version: 0,
                last_updated: Some(now),
            }];
            txns.extend(sha256s.iter().map(|h| AppTransaction {
                app_id: app_id_capture(h),
                version: 0,
                last_updated: Some(now),
            }));
            actions.extend(txns.into_iter().map(Action::Txn));
            let operation = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: Some(vec![DATE.to_string()]),
                predicate: None,
            };
            let mut metadata = HashMap::from([
                ("dnsq.version".to_string(), env!("CARGO_PKG_VERSION").into()),
                ("dnsq.ingest".to_string(), self.id.clone().into()),
            ]);
            match &summary {
                Some((base, s)) if self.table.version() == *base => {
                    metadata.insert(super::SUMMARY_KEY.to_string(), s.clone());
                }
                _ => {}
            }
            let props = CommitProperties::default()
                .with_metadata(metadata)
                .with_max_retries(0);
            let snapshot = self
                .table
                .snapshot()
                .map_err(|e| delta_err(&self.root, e))?;
            let log_store = self.table.log_store();
            let result = self.rt.block_on(async {
                CommitBuilder::from(props)
                    .with_actions(actions)
                    .build(Some(snapshot), log_store, operation)
                    .await
            });
            match result {
                Ok(done) => {
                    crash_point("after-commit");
                    return Ok(Committed::Version(done.version() as i64));
                }
                Err(e) if is_race(&e) && attempts < 100 => {
                    // another writer took the version: see what it committed, try again
                    let root = self.root.clone();
                    self.rt
                        .block_on(self.table.update_incremental(None))
                        .map_err(|e| delta_err(&root, e))?;
                    self.check_anonymization()?;
                }
                Err(e) if is_race(&e) => {
                    return Err(Error::io(
                        &self.root,
                        other(format!(
                            "the log's next version was taken before this ingest's commit \
                             {attempts} times in a row; nothing of this ingest was committed: \
                             run it again ({e})"
                        )),
                    ))
                }
                Err(e) => return Err(delta_err(&self.root, e)),
            }
        }
    }

    /// Removes the files of dead writers that the log does not know; returns
    /// how many. Live writers (their lock held) are left alone.
    pub fn clean_up(&mut self) -> Result<usize> {
        if self.remote.is_some() {
            return self.clean_up_remote(remote::ORPHAN_AGE);
        }
        let root = self.root.clone();
        // liveness first, the log second: a writer found dead has committed
        // before the log is read, or never will. A writer whose lock was not
        // there yet started after this scan; it publishes its lock before it
        // writes a file, so its files are younger than LOCKLESS_AGE: the
        // files of a writer without a lock are removed only when older.
        let Writers { live, dead } = writers(&self.root, &self.id)?;
        let abandoned = |owner: &str, path: &Path| {
            !live.contains(owner) && (dead.contains(owner) || older_than(path, LOCKLESS_AGE))
        };
        self.rt
            .block_on(self.table.update_incremental(None))
            .map_err(|e| delta_err(&root, e))?;
        let committed: HashSet<String> = self
            .table
            .get_file_uris()
            .map_err(|e| delta_err(&root, e))?
            .map(|u| u.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        let mut removed = 0;
        let tx_dir = self.root.join(TRANSACTIONS_DIR);
        let mut candidates = Vec::new();
        for day in read_dir(&tx_dir)? {
            if day
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('_'))
            {
                continue;
            }
            if day.is_dir() {
                candidates.extend(read_dir(&day)?);
            }
        }
        for path in candidates {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
                continue;
            };
            let Some(owner) = writer_of(&name) else {
                continue;
            };
            if owner == self.id || committed.contains(&name) || !abandoned(owner, &path) {
                continue;
            }
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
        let cap_dir = self.root.join(CAPTURES_DIR);
        for path in read_dir(&cap_dir)? {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
                continue;
            };
            let Some(owner) = writer_of(&name) else {
                continue;
            };
            if owner == self.id || !abandoned(owner, &path) {
                continue;
            }
            let done = name.ends_with(".parquet") && self.ingest_committed(owner)?;
            if !done {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed += 1;
            }
        }
        // locks of dead writers, whose files are gone: a lock this process can
        // take is nobody's (a writer started since the scan holds its own; one
        // caught between creating its lock and locking it makes another)
        for path in read_dir(&self.root.join(WRITERS_DIR))? {
            let mine = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(self.id.as_str()));
            if mine {
                continue;
            }
            if let Ok(f) = File::open(&path) {
                if f.try_lock().is_ok() {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(removed)
    }

    /// Removes this writer's files (an ingest that failed or was interrupted)
    /// and its lock.
    pub fn abandon(mut self) {
        if let Some(r) = &self.remote {
            for rel in &r.uploaded {
                let _ = self
                    .rt
                    .block_on(remote::delete(r.store.as_ref(), &r.url, rel));
            }
        }
        let _ = self.remove_own_files();
        self.release();
    }

    fn remove_own_files(&self) -> Result<()> {
        let tx_dir = self.root.join(TRANSACTIONS_DIR);
        for day in read_dir(&tx_dir)? {
            if day.is_dir() {
                for path in read_dir(&day)? {
                    if path
                        .file_name()
                        .and_then(|n| writer_of(&n.to_string_lossy()).map(|w| w == self.id))
                        == Some(true)
                    {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        for path in read_dir(&self.root.join(CAPTURES_DIR))? {
            if path
                .file_name()
                .and_then(|n| writer_of(&n.to_string_lossy()).map(|w| w == self.id))
                == Some(true)
            {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Ends the ingest: drops the lock (its files are committed or removed).
    pub fn release(&mut self) {
        if let Some((path, file)) = self.lock.take() {
            let _ = fs::remove_file(&path);
            drop(file);
        }
        if self.remote.is_some() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.release();
    }
}

/// Was the commit refused because another writer took the version first?
pub(super) fn is_race(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
            }
    )
}

#[cfg(test)]
mod tests;
