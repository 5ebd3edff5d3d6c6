//! Results → table, CSV, JSON, NDJSON or Parquet, through arrow's writers.
//!
//! In: a statement's batches, one at a time (`write_stream` takes the
//! engine's stream). Out: bytes on any `Write`, written as each batch
//! arrives, so memory does not grow with the result. The table format is the
//! exception that cannot stream (every column's width depends on every row):
//! it renders a preview of the first `max_rows` rows as soon as it has them,
//! then only counts the rest; `Written` says how many were not shown.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use clap::ValueEnum;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::Result;
use crate::query::table;
use crate::query::StatementResult;

/// Rows the table format shows by default.
pub const TABLE_ROWS: usize = 1000;

/// Row groups of `--format parquet` close at this size, which bounds what the
/// writer holds in memory (its default, 1 Mi rows, held about 1 GiB of
/// `select *`).
const PARQUET_ROW_GROUP_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

/// CSV has no lists or structs: such columns become their JSON text
/// (`[{"name":"a.example","type":"A","ttl":300,"data":"192.0.2.1"}]`), which parses back.
fn flatten_nested(b: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{ArrayRef, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    if !b
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(b.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, col) in b.schema().fields().iter().zip(b.columns()) {
        if f.data_type().is_nested() {
            let one = RecordBatch::try_new(
                std::sync::Arc::new(Schema::new(vec![Field::new(
                    "v",
                    f.data_type().clone(),
                    true,
                )])),
                vec![col.clone()],
            )?;
            let mut buf = Vec::new();
            {
                let mut jw = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
                jw.write(&one)?;
                jw.finish()?;
            }
            let mut s = StringBuilder::with_capacity(col.len(), buf.len());
            for line in buf.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
                    arrow::error::ArrowError::JsonError(format!("re-reading a nested cell: {e}"))
                })?;
                match &v["v"] {
                    serde_json::Value::Null => s.append_null(),
                    x => s.append_value(x.to_string()),
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

/// What one statement wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows in the result.
    pub rows: u64,
    /// Rows written out; fewer than `rows` only for a table preview.
    pub shown: u64,
}

impl Written {
    /// Rows counted but not shown (table format).
    pub fn hidden(&self) -> u64 {
        self.rows - self.shown
    }
}

enum Encoder<W: Write + Send> {
    Table {
        w: W,
        max_rows: usize,
        preview: Vec<RecordBatch>,
        printed: bool,
    },
    Csv(Box<arrow::csv::Writer<W>>),
    Json(arrow::json::Writer<W, arrow::json::writer::JsonArray>),
    Ndjson(arrow::json::Writer<W, arrow::json::writer::LineDelimited>),
    Parquet(Box<ArrowWriter<W>>),
}

/// Writes one statement's result batch by batch.
pub struct BatchWriter<W: Write + Send> {
    encoder: Encoder<W>,
    schema: SchemaRef,
    rows: u64,
    shown: u64,
    /// Columns the table format fits into (`None`: no limit).
    width: Option<usize>,
    /// Columns whose cells the table cut to fit.
    cut: Vec<String>,
}

impl<W: Write + Send> BatchWriter<W> {
    /// A writer of `format` for results of `schema`; `max_rows` bounds the
    /// table format's preview.
    pub fn new(format: Format, schema: SchemaRef, max_rows: usize, w: W) -> Result<Self> {
        let encoder = match format {
            Format::Table => Encoder::Table {
                w,
                max_rows,
                preview: Vec::new(),
                printed: false,
            },
            Format::Csv => Encoder::Csv(Box::new(
                arrow::csv::WriterBuilder::new().with_header(true).build(w),
            )),
            // null values keep their keys: every row has every column
            Format::Json => Encoder::Json(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(w),
            ),
            Format::Ndjson => Encoder::Ndjson(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(w),
            ),
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .set_max_row_group_bytes(Some(PARQUET_ROW_GROUP_BYTES))
                    .build();
                Encoder::Parquet(Box::new(ArrowWriter::try_new(
                    w,
                    schema.clone(),
                    Some(props),
                )?))
            }
        };
        Ok(BatchWriter {
            encoder,
            schema,
            rows: 0,
            shown: 0,
            width: None,
            cut: Vec::new(),
        })
    }

    /// Fits the table format into `width` columns.
    pub fn with_width(mut self, width: Option<usize>) -> Self {
        self.width = width;
        self
    }

    /// Writes (or, past the table preview, counts) one batch.
    pub fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let n = b.num_rows() as u64;
        self.rows += n;
        match &mut self.encoder {
            Encoder::Table {
                w,
                max_rows,
                preview,
                printed,
            } => {
                let room = (*max_rows as u64).saturating_sub(self.shown);
                if room > 0 && n > 0 {
                    let take = n.min(room);
                    preview.push(b.slice(0, take as usize));
                    self.shown += take;
                }
                if !*printed && self.shown == *max_rows as u64 && self.rows > 0 {
                    // the preview is full: show it now, count the rest
                    let cut = table::render(w, &self.schema, preview, self.width)?;
                    self.cut = cut;
                    w.flush().map_err(arrow::error::ArrowError::from)?;
                    preview.clear();
                    *printed = true;
                }
                return Ok(());
            }
            Encoder::Csv(cw) => cw.write(&flatten_nested(b)?)?,
            Encoder::Json(jw) => jw.write(b)?,
            Encoder::Ndjson(jw) => jw.write(b)?,
            Encoder::Parquet(pw) => pw.write(b)?,
        }
        self.shown += n;
        Ok(())
    }

    /// Ends the output (a table not yet shown, the JSON array's `]`, the
    /// Parquet footer), flushes it and hands back the writer.
    pub fn finish(mut self) -> Result<(Written, W)> {
        if self.rows == 0 {
            // an empty result still has a header (table, CSV) or `[]` (JSON)
            let empty = RecordBatch::new_empty(self.schema.clone());
            self.write(&empty)?;
        }
        let written = Written {
            rows: self.rows,
            shown: self.shown,
        };
        let mut w = match self.encoder {
            Encoder::Table {
                mut w,
                preview,
                printed,
                ..
            } => {
                if !printed {
                    self.cut = table::render(&mut w, &self.schema, &preview, self.width)?;
                }
                table::footer(&mut w, written, &self.cut)?;
                w
            }
            Encoder::Csv(cw) => (*cw).into_inner(),
            Encoder::Json(mut jw) => {
                jw.finish()?;
                let mut w = jw.into_inner();
                writeln!(w).map_err(arrow::error::ArrowError::from)?;
                w
            }
            Encoder::Ndjson(mut jw) => {
                jw.finish()?;
                jw.into_inner()
            }
            // writes the footer
            Encoder::Parquet(pw) => pw.into_inner()?,
        };
        w.flush().map_err(arrow::error::ArrowError::from)?;
        Ok((written, w))
    }
}

/// Writes a statement's stream to `w` as its batches arrive.
pub async fn write_stream<W: Write + Send>(
    mut stream: SendableRecordBatchStream,
    format: Format,
    max_rows: usize,
    width: Option<usize>,
    w: W,
) -> Result<(Written, W)> {
    let mut out = BatchWriter::new(format, stream.schema(), max_rows, w)?.with_width(width);
    while let Some(batch) = stream.next().await {
        out.write(&batch?)?;
    }
    out.finish()
}

/// Writes one collected statement result to `w` (small results: `dnsq info`).
pub fn write_result(r: &StatementResult, format: Format, w: &mut dyn Write) -> Result<()> {
    let mut buf = Vec::new();
    let mut out = BatchWriter::new(format, r.schema.clone(), usize::MAX, &mut buf)?;
    for b in &r.batches {
        out.write(b)?;
    }
    out.finish()?;
    w.write_all(&buf).map_err(arrow::error::ArrowError::from)?;
    Ok(())
}
