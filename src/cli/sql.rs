//! `dnsq sql` and `dnsq schema`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{runtime, write_stdout, SqlArgs};
use crate::ingest::{self, schema};
use crate::query::output::{write_result, Format};
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
    let rt = runtime()?;
    let results = rt.block_on(async {
        let session = Session::open(&dir).await?;
        match session.run(&sql).await {
            Ok(r) => Ok(r),
            Err(e) => Err(crate::query::name_damage(&dir, e).await),
        }
    })?;
    let mut buf = Vec::new();
    for r in &results {
        if r.schema.fields().is_empty() {
            continue; // DDL such as CREATE VIEW
        }
        write_result(r, a.format, &mut buf)?;
    }
    match &a.output {
        Some(path) => {
            std::fs::write(path, &buf).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            write_stdout(&buf)?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
