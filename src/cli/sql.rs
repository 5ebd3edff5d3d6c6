//! `dnsq sql` and `dnsq schema`.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::cli::{runtime, thousands, write_stdout, SqlArgs};
use crate::ingest::{self, schema};
use crate::query::engine::{format_size, EngineOptions};
use crate::query::output::{write_stream, Format};
use crate::query::policy::{resolve, Guard};
use crate::query::{saved, Session};

pub fn run(a: SqlArgs) -> anyhow::Result<ExitCode> {
    if a.list {
        let mut s = String::new();
        for (name, sql) in saved::SAVED {
            s.push_str(&format!("{name:24} {}\n", saved::purpose(sql)));
        }
        write_stdout(s.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let sql = match (&a.file, &a.query) {
        (Some(f), _) => match std::fs::read_to_string(f) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => saved::find(f)
                .with_context(|| {
                    format!(
                        "{f}: no such file and no saved query of that name (see `dnsq sql --list`)"
                    )
                })?
                .to_string(),
            Err(e) => return Err(e).with_context(|| format!("reading {f}")),
        },
        (None, Some(q)) => q.clone(),
        (None, None) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading SQL from standard input")?;
            s
        }
    };
    if a.format == Format::Parquet && a.output.is_none() {
        anyhow::bail!("--format parquet needs -o FILE");
    }
    let dir = ingest::dataset_dir(a.data.as_deref());
    let statements = Session::statements(&sql)?;
    let mut sink = match &a.output {
        Some(path) => match OutputFile::create(path, &dir, a.force)? {
            Ok(f) => Sink::File(BufWriter::new(f)),
            Err(refusal) => {
                eprintln!("dnsq: {refusal}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Sink::Stdout(BufWriter::with_capacity(1 << 16, std::io::stdout())),
    };
    let options = EngineOptions {
        memory_limit: a.memory_limit,
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let session = Session::open_with(&dir, &options).await?;
        let guard = Guard::new(&session.ctx, &dir, a.allow_write).await?;
        for st in statements {
            let stream = session.execute(st, &guard).await?;
            if stream.schema().fields().is_empty() {
                continue; // DDL such as CREATE VIEW
            }
            let (written, s) = write_stream(stream, a.format, a.max_rows, sink).await?;
            sink = s;
            if written.hidden() > 0 {
                eprintln!(
                    "dnsq: … {} more rows not shown (the table shows the first {}); \
                     use --format csv, --max-rows N or LIMIT",
                    thousands(written.hidden()),
                    thousands(written.shown)
                );
            }
        }
        Ok::<_, crate::error::Error>(sink)
    });
    match result {
        Ok(sink) => {
            if let Sink::File(f) = sink {
                let file = f.into_inner().map_err(|e| e.into_error())?;
                file.commit()?;
            }
            Ok(ExitCode::SUCCESS)
        }
        // `| head`: the reader went away; what it wanted was written
        Err(_) if BROKEN_PIPE.load(Ordering::Relaxed) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let e = rt.block_on(crate::query::name_damage(&dir, e));
            Err(explain(e, &options))
        }
    }
}

/// A query that ran out of its memory pool: say which flag raises it.
fn explain(e: crate::error::Error, options: &EngineOptions) -> anyhow::Error {
    use datafusion::error::DataFusionError;
    if let crate::error::Error::DataFusion(df) = &e {
        if let DataFusionError::ResourcesExhausted(msg) = df.find_root() {
            return anyhow::anyhow!(
                "the query needs more memory than --memory-limit {} allows ({}); \
                 raise --memory-limit, or narrow the query (LIMIT, fewer columns, a time range)",
                format_size(options.memory_limit()),
                msg.trim()
            );
        }
    }
    e.into()
}

/// Where results go: buffered stdout or the -o file. A closed pipe on stdout
/// is remembered, so that the error it causes ends the program quietly.
enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File(BufWriter<OutputFile>),
}

/// Set when stdout's reader has gone away.
static BROKEN_PIPE: AtomicBool = AtomicBool::new(false);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(w) => note_broken_pipe(w.write(buf)),
            Sink::File(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(w) => note_broken_pipe(w.flush()),
            Sink::File(w) => w.flush(),
        }
    }
}

fn note_broken_pipe<T>(r: std::io::Result<T>) -> std::io::Result<T> {
    if let Err(e) = &r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            BROKEN_PIPE.store(true, Ordering::Relaxed);
        }
    }
    r
}

/// The -o file: written under a temporary name beside it and moved into
/// place only when every statement succeeded, so a failed query leaves an
/// existing file (with --force) as it was and no partial file behind.
struct OutputFile {
    file: Option<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    force: bool,
}

impl OutputFile {
    /// The outer `Err` is an I/O failure; the inner one a refusal (the file
    /// exists and there is no --force, or it lies inside the dataset).
    fn create(
        path: &Path,
        dataset: &Path,
        force: bool,
    ) -> anyhow::Result<Result<OutputFile, String>> {
        if let Ok(data) = std::fs::canonicalize(dataset) {
            if resolve(path).starts_with(&data) {
                return Ok(Err(format!(
                    "-o {}: inside the dataset directory {}; dnsq sql never writes there",
                    path.display(),
                    data.display()
                )));
            }
        }
        if !force && std::fs::symlink_metadata(path).is_ok() {
            return Ok(Err(format!(
                "-o {}: the file exists; pass --force to overwrite it",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .with_context(|| format!("-o {}: not a file name", path.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".dnsq-{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Ok(OutputFile {
            file: Some(file),
            tmp,
            path: path.to_path_buf(),
            force,
        }))
    }

    /// Moves the finished file into place (without --force, never over a
    /// file that appeared meanwhile).
    fn commit(mut self) -> anyhow::Result<()> {
        let file = self.file.take().expect("committed once");
        file.sync_all()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        drop(file);
        let placed = if self.force {
            std::fs::rename(&self.tmp, &self.path)
        } else {
            // a hard link fails if the name is taken; rename would replace it
            std::fs::hard_link(&self.tmp, &self.path).and_then(|_| std::fs::remove_file(&self.tmp))
        };
        placed.with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("open until committed").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until committed").flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // not committed (a statement failed), or committed without --force:
        // the temporary name goes either way
        let _ = std::fs::remove_file(&self.tmp);
    }
}

pub fn print_schema() -> anyhow::Result<()> {
    let mut s = String::new();
    for (table, cols) in [
        ("transactions", schema::transaction_columns()),
        ("captures", schema::capture_columns()),
    ] {
        s.push_str(&format!("table {table}\n"));
        for (name, ty, nullable, doc) in cols {
            let ty = type_name(&ty);
            let null = if nullable { "" } else { " not null" };
            s.push_str(&format!("  {name:18} {:28} {doc}\n", format!("{ty}{null}")));
        }
        if table == "transactions" {
            s.push_str(&format!(
                "  {:18} {:28} {}\n",
                schema::DATE,
                "string (partition)",
                "UTC day of ts, the Hive partition directory date=YYYY-MM-DD"
            ));
        }
        s.push('\n');
    }
    write_stdout(s.as_bytes())?;
    Ok(())
}

fn type_name(t: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::DataType as D;
    match t {
        D::Utf8 => "string".into(),
        D::Int32 => "int".into(),
        D::Int64 => "bigint".into(),
        D::Float64 => "double".into(),
        D::Boolean => "boolean".into(),
        D::Timestamp(_, _) => "timestamp(us, UTC)".into(),
        D::List(f) => format!("list<{}>", type_name(f.data_type())),
        D::Struct(fs) => {
            let inner: Vec<String> = fs
                .iter()
                .map(|f| format!("{} {}", f.name(), type_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(", "))
        }
        other => other.to_string(),
    }
}
