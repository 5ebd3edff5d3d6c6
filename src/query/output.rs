//! Results → table, CSV, JSON, NDJSON or Parquet, through arrow's writers.

use std::io::Write;

use arrow::record_batch::RecordBatch;
use clap::ValueEnum;

use crate::error::Result;
use crate::query::StatementResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

/// CSV has no lists or structs: such columns become their display text
/// (`[{name: a.example, type: A, ttl: 300, data: 192.0.2.1}]`), as in the table format.
fn flatten_nested(b: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{ArrayRef, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    if !b
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(b.clone());
    }
    let options = FormatOptions::default().with_null("");
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, col) in b.schema().fields().iter().zip(b.columns()) {
        if f.data_type().is_nested() {
            let fmt = ArrayFormatter::try_new(col.as_ref(), &options)?;
            let mut s = StringBuilder::with_capacity(col.len(), col.len() * 32);
            for i in 0..col.len() {
                if col.is_null(i) {
                    s.append_null();
                } else {
                    s.append_value(fmt.value(i).to_string());
                }
            }
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            columns.push(std::sync::Arc::new(s.finish()));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(col.clone());
        }
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Writes one statement's result to `w`.
pub fn write_result(r: &StatementResult, format: Format, w: &mut dyn Write) -> Result<()> {
    let batches: Vec<RecordBatch> = if r.batches.is_empty() {
        vec![RecordBatch::new_empty(r.schema.clone())]
    } else {
        r.batches.clone()
    };
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(&batches)?;
            writeln!(w, "{table}").map_err(arrow::error::ArrowError::from)?;
        }
        Format::Csv => {
            let mut cw = arrow::csv::WriterBuilder::new().with_header(true).build(w);
            for b in &batches {
                cw.write(&flatten_nested(b)?)?;
            }
        }
        Format::Json => {
            let mut jw = arrow::json::ArrayWriter::new(w);
            for b in &batches {
                jw.write(b)?;
            }
            jw.finish()?;
            let w = jw.into_inner();
            writeln!(w).map_err(arrow::error::ArrowError::from)?;
        }
        Format::Ndjson => {
            let mut jw = arrow::json::LineDelimitedWriter::new(w);
            for b in &batches {
                jw.write(b)?;
            }
            jw.finish()?;
        }
        Format::Parquet => {
            let mut buf = Vec::new();
            let mut pw = parquet::arrow::ArrowWriter::try_new(&mut buf, r.schema.clone(), None)?;
            for b in &batches {
                pw.write(b)?;
            }
            pw.close()?;
            w.write_all(&buf).map_err(arrow::error::ArrowError::from)?;
        }
    }
    Ok(())
}
