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
                cw.write(b)?;
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
