//! `dnsq sql` and `dnsq schema`.

use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::cli::{runtime, write_stdout, SqlArgs};
use crate::dataset::schema;
use crate::ingest;
use crate::query::engine::{format_size, EngineOptions};
use crate::query::output::{write_stream, Format};
use crate::query::params::{Binder, Given, Header};
use crate::query::policy::{resolve, Guard};
use crate::query::{saved, Session};

pub fn run(a: SqlArgs) -> anyhow::Result<ExitCode> {
    crate::cli::without_huge_pages();
    if a.list {
        let mut s = String::new();
        for (name, sql) in saved::SAVED {
            let h = Header::parse(sql);
            s.push_str(&format!("{name:24} {}\n", h.purpose));
        }
        s.push_str("\n`dnsq sql --show NAME` prints one with its parameters; `dnsq sql -f NAME` runs it.\n");
        write_stdout(s.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.functions {
        write_stdout(functions_text().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &a.show {
        let sql = saved::find(name).with_context(|| {
            format!("{name}: no saved query of that name (see `dnsq sql --list`)")
        })?;
        write_stdout(show_text(name, sql).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let given = given(&a)?;
    let dir = ingest::dataset_dir(a.data.as_deref());
    let options = a.scope.engine_options();
    if a.file.is_none() && a.query.is_none() && std::io::stdin().is_terminal() {
        return crate::cli::shell::run(&dir, options, given, a.allow_write, a.max_rows);
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
    let format = match output_format(a.format, a.output.as_deref()) {
        Ok(f) => f,
        Err(refusal) => {
            eprintln!("dnsq: {refusal}");
            return Ok(ExitCode::from(2));
        }
    };
    if format == Format::Parquet && a.output.is_none() {
        anyhow::bail!("--format parquet needs -o FILE");
    }
    let header = Header::parse(&sql);
    for k in given.values.keys() {
        if !sql.contains(&format!("${k}")) {
            eprintln!("dnsq: the query has no ${k}; the value given for it is not used");
        }
    }
    let statements = Session::statements(&sql)?;
    let returning = statements.iter().filter(|s| returns_rows(s)).count();
    if returning > 1 && format != Format::Table {
        eprintln!(
            "dnsq: {returning} statements return rows; one {} stream holds one result \
             (two would mean two headers or invalid JSON). Run them one at a time, \
             or use the table format",
            format!("{format:?}").to_lowercase()
        );
        return Ok(ExitCode::from(2));
    }
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
    let width = if a.output.is_none() {
        terminal_width()
    } else {
        None
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let session = Session::open_with(&dir, &options).await?;
        let guard = Guard::new(&session.ctx, &dir, a.allow_write).await?;
        session.filter(&a.scope.filters).await?;
        // the busiest domain the ingest found, instead of a scan for it
        let given = session.with_kept_domain(&sql, &header, &given, !a.scope.filters.is_empty());
        let binder = Binder {
            header: &header,
            given: &given,
        };
        let mut notes = Vec::new();
        for st in statements {
            let stream = session.execute_with(st, &guard, &binder, &mut notes).await;
            for n in notes.drain(..) {
                eprintln!("dnsq: {n}");
            }
            let stream = stream?;
            if stream.schema().fields().is_empty() {
                continue; // DDL such as CREATE VIEW
            }
            let (_, s) = write_stream(stream, format, a.max_rows, width, sink).await?;
            sink = s;
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
        Err(crate::error::Error::Usage(msg)) => {
            eprintln!("dnsq: {msg}");
            Ok(ExitCode::from(2))
        }
        Err(e) => {
            let e = rt.block_on(crate::query::name_damage(&dir, e));
            Err(explain(e, &options))
        }
    }
}

/// The parameter values of the command line.
pub fn given(a: &SqlArgs) -> anyhow::Result<Given> {
    let mut g = Given::default();
    for p in &a.params {
        g.set_pair(p).map_err(anyhow::Error::msg)?;
    }
    // the named flags win over --param of the same name
    g.values.extend(a.scope.given().values);
    for (k, v) in [
        ("leg", a.leg.clone()),
        ("top", a.top.map(|n| n.to_string())),
    ] {
        if let Some(v) = v {
            g.set(k, v);
        }
    }
    Ok(g)
}

/// The format `--format` names, or the one the -o file's extension says; a
/// mismatch between the two, or an -o name with no known extension and no
/// --format, is refused.
pub fn output_format(flag: Option<Format>, output: Option<&Path>) -> Result<Format, String> {
    let Some(path) = output else {
        return Ok(flag.unwrap_or(Format::Table));
    };
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("parquet") => Some(Format::Parquet),
        Some("csv") => Some(Format::Csv),
        Some("json") => Some(Format::Json),
        Some("ndjson") | Some("jsonl") => Some(Format::Ndjson),
        Some("txt") => Some(Format::Table),
        _ => None,
    };
    match (flag, by_ext) {
        (Some(f), Some(e)) if f != e => Err(format!(
            "-o {}: the name says {} but --format says {}; make them agree",
            path.display(),
            format!("{e:?}").to_lowercase(),
            format!("{f:?}").to_lowercase()
        )),
        (Some(f), _) => Ok(f),
        (None, Some(e)) => Ok(e),
        (None, None) => Err(format!(
            "-o {}: cannot tell the format from the name; end it in .parquet, .csv, .json, \
             .ndjson or .txt, or pass --format",
            path.display()
        )),
    }
}

/// Whether a statement gives rows (a query, EXPLAIN, SHOW), as opposed to DDL or SET.
pub fn returns_rows(s: &datafusion::sql::parser::Statement) -> bool {
    use datafusion::sql::parser::Statement as D;
    use datafusion::sql::sqlparser::ast::Statement as S;
    match s {
        D::Statement(st) => matches!(
            **st,
            S::Query(_) | S::Explain { .. } | S::ShowTables { .. } | S::ShowColumns { .. }
        ),
        D::Explain(_) => true,
        _ => false,
    }
}

/// Columns of the terminal standard output is, or $COLUMNS; `None` when neither says.
pub fn terminal_width() -> Option<usize> {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
        return Some(usize::from(w));
    }
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}

/// `dnsq sql --functions`.
pub fn functions_text() -> String {
    let mut s = String::from(
        "DNS functions of dnsq sql (besides DataFusion's own: \\df in the shell lists all)\n\n",
    );
    for (_, sig, what, example, result) in crate::query::functions::FUNCTIONS {
        s.push_str(&format!(
            "{sig}\n    {what}\n    {example}  →  {result}\n\n"
        ));
    }
    s.push_str(
        "leg (a column of transactions, not a function)\n    downstream or upstream: \
         which side of a resolver the transaction is on (--resolver, or found in the data)\n",
    );
    s
}

/// `dnsq sql --show NAME`: the query's parameters, then its text.
pub fn show_text(name: &str, sql: &str) -> String {
    let h = Header::parse(sql);
    let mut s = format!("{name}: {}\n", h.purpose);
    if !h.leg.is_empty() {
        s.push_str(&format!("leg: {}\n", h.leg));
    }
    s.push_str("\nparameters (--param NAME=VALUE, or the flag of the same name):\n");
    for (n, default, doc) in crate::query::params::GLOBALS {
        s.push_str(&format!("  ${n:14} default {default:10} {doc}\n"));
    }
    for p in &h.params {
        s.push_str(&format!(
            "  ${:14} default {:10} {} ({})\n",
            p.name, p.default, p.doc, p.ty
        ));
    }
    s.push_str(&format!("\n{}", sql.trim_end()));
    s.push('\n');
    s
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
pub(crate) struct OutputFile {
    file: Option<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    force: bool,
}

impl OutputFile {
    /// The outer `Err` is an I/O failure; the inner one a refusal (the file
    /// exists and there is no --force, or it lies inside the dataset).
    pub(crate) fn create(
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
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
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
                "date (partition)",
                "UTC day of ts, the Hive partition directory date=YYYY-MM-DD"
            ));
            s.push_str(&format!(
                "  {:18} {:28} {}\n",
                "leg",
                "string (computed)",
                "downstream | upstream: which side of a resolver (see --resolver); computed by dnsq sql, not stored"
            ));
        }
        s.push('\n');
    }
    s.push_str(
        "The date partition in other engines: DuckDB (read_parquet(..., hive_partitioning = true)), \
Polars (scan_parquet(..., hive_partitioning=True)) and Spark (spark.read.parquet) read it as a DATE, \
as dnsq does. pyarrow/pandas read it as a string unless given the partitioning schema: \
ds.dataset(DIR, partitioning=ds.partitioning(pa.schema([(\"date\", pa.date32())]), flavor=\"hive\")). \
The Delta log (Python deltalake) declares it a string.\n\
Nullable integers and booleans in pandas: to_pandas(types_mapper=pd.ArrowDtype) keeps them \
(without it, an int column with a NULL becomes float64 and a boolean one object).\n",
    );
    write_stdout(s.as_bytes())?;
    Ok(())
}

pub fn type_name(t: &arrow::datatypes::DataType) -> String {
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
