//! `dnsq anonymize SRC DST`: a dataset rewritten with its addresses
//! pseudonymised, as `dnsq ingest --anonymize` would have written them. The
//! source is only read; the destination gets one Delta commit, like an ingest.

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{committed_captures, committed_paths, open_table, other, Committed, Writer};
use crate::anonymize::Anonymizer;
use crate::dataset::schema::{conform, CAPTURES, CLIENT_IP, SERVER_IP, TRANSACTIONS};
use crate::error::{Error, Result};
use crate::ingest::write::Staged;

/// What one rewrite did.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub captures: usize,
    pub rows: u64,
    pub files: usize,
    /// The destination's new Delta version; `None` when it held every capture already.
    pub version: Option<i64>,
    pub notes: Vec<String>,
}

/// Memo of mapped values: a dataset holds few distinct addresses.
struct Mapper<'a> {
    anon: &'a Anonymizer,
    seen: HashMap<String, Option<String>>,
}

impl Mapper<'_> {
    fn address(&mut self, text: &str) -> Option<String> {
        if let Some(v) = self.seen.get(text) {
            return v.clone();
        }
        let v = text
            .parse::<IpAddr>()
            .ok()
            .map(|ip| self.anon.map(ip).to_string());
        self.seen.insert(text.to_string(), v.clone());
        v
    }

    /// `col`: a string column of a batch conformed to the schema.
    fn column(&mut self, col: &ArrayRef, subnet: bool) -> Result<ArrayRef> {
        let s = col.as_string::<i32>();
        let out: StringArray = (0..s.len())
            .map(|i| {
                if s.is_null(i) {
                    None
                } else if subnet {
                    self.anon.map_subnet(s.value(i))
                } else {
                    self.address(s.value(i))
                }
            })
            .collect();
        Ok(Arc::new(out))
    }

    fn batch(&mut self, b: &RecordBatch) -> Result<RecordBatch> {
        let b = conform(b, &TRANSACTIONS)?;
        let mut columns = b.columns().to_vec();
        let schema = b.schema();
        let mut names = vec![(CLIENT_IP, false), ("ecs", true)];
        if self.anon.servers {
            names.push((SERVER_IP, false));
        }
        for (name, subnet) in names {
            let (i, _) = schema
                .column_with_name(name)
                .expect("the transactions schema has the address columns");
            columns[i] = self.column(&columns[i], subnet)?;
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// Rewrites the dataset `src` into `dst` with `anon`'s mapping applied to
/// client addresses and ECS (and servers when it says so). `dst` may be new,
/// or hold captures pseudonymised the same way; `src` must hold addresses as
/// captured.
pub fn rewrite(src: &Path, dst: &Path, anon: &Anonymizer) -> Result<Rewritten> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(src, e))?;
    let table = rt.block_on(open_table(src))?.ok_or_else(|| {
        Error::io(
            src,
            other("no dnsq dataset here (a Delta log under transactions/)"),
        )
    })?;
    let captures = rt.block_on(committed_captures(src, &table))?;
    let mut out = Rewritten::default();
    for b in &captures {
        let col = b
            .column_by_name("anonymization")
            .expect("committed captures are conformed to the captures schema")
            .as_string::<i32>();
        if let Some(m) = col.iter().flatten().next() {
            return Err(Error::Refused(format!(
                "{}: its addresses are already pseudonymised ({m}); rewrite the original \
                 dataset instead",
                src.display()
            )));
        }
    }
    let paths = committed_paths(src, &table)?;
    let same = matches!(
        (std::fs::canonicalize(dst), std::fs::canonicalize(src)),
        (Ok(a), Ok(b)) if a == b
    );
    if same {
        return Err(Error::Usage(format!(
            "{}: the destination is the source; give a new directory",
            dst.display()
        )));
    }

    let mut writer = Writer::open(dst)?;
    out.notes = std::mem::take(&mut writer.notes);
    let result = (|| -> Result<()> {
        writer.require_anonymization(Some(anon.describe()))?;
        let mut mapper = Mapper {
            anon,
            seen: HashMap::new(),
        };
        let mut staged = Staged::default();
        let root = writer.root().to_path_buf();
        for (n, path) in paths.iter().enumerate() {
            crate::dataset::check_interrupt()?;
            let day = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|d| d.to_str())
                .and_then(|d| d.strip_prefix("date="))
                .ok_or_else(|| Error::io(path, other("not in a date=YYYY-MM-DD directory")))?
                .to_string();
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(|e| Error::io(path, other(e)))?;
            let mut rows = 0;
            let batches = reader.map(|b| {
                let b = b.map_err(|e| Error::io(path, other(e)))?;
                rows += b.num_rows() as u64;
                mapper.batch(&b)
            });
            let name = format!("{}-{n}.parquet", writer.file_prefix());
            let written = staged.write(&root, &day, &name, batches);
            if let Err(e) = written {
                staged.abandon();
                return Err(e);
            }
            out.rows += rows;
            out.files += 1;
        }
        let described = anon.describe();
        let mut hashes = Vec::new();
        let mut rows = Vec::new();
        for b in &captures {
            let b = conform(b, &CAPTURES)?;
            let (i, _) = b
                .schema()
                .column_with_name("anonymization")
                .expect("the captures schema has anonymization");
            let mut columns = b.columns().to_vec();
            columns[i] = Arc::new(StringArray::from(vec![described.as_str(); b.num_rows()]));
            let sha = b
                .column_by_name("sha256")
                .expect("the captures schema has sha256")
                .as_string::<i32>();
            hashes.extend(sha.iter().flatten().map(str::to_string));
            rows.push(RecordBatch::try_new(b.schema(), columns)?);
        }
        out.captures = hashes.len();
        let batch = arrow::compute::concat_batches(&CAPTURES, &rows)?;
        writer.write_captures(&batch)?;
        let files = staged.place()?;
        match writer.commit(&files, &hashes)? {
            Committed::Version(v) => out.version = Some(v),
            Committed::AlreadyThere(_) => return Err(Error::AlreadyThere),
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            writer.release();
            Ok(out)
        }
        Err(Error::AlreadyThere) => {
            writer.abandon();
            out.rows = 0;
            out.files = 0;
            Ok(out)
        }
        Err(e) => {
            writer.abandon();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;
