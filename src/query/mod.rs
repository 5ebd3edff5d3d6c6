//! The read side: dataset directory → DataFusion session → results.
//!
//! `Session::open` registers `transactions` (Hive partitions `date=` become a
//! column and prune files) and `captures`; `Session::run` executes one or
//! more `;`-separated statements and returns each one's batches.

pub mod output;
pub mod saved;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;

use crate::dataset::{self, CAPTURES_DIR, TRANSACTIONS_DIR};
use crate::error::{Error, Result};
use crate::ingest::schema::{CAPTURES, DATE, TRANSACTIONS};

pub struct Session {
    pub ctx: SessionContext,
    pub dir: PathBuf,
}

/// The result of one statement.
pub struct StatementResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// A dataset written before the Delta log, read as plain Parquet files
/// (`dnsq ingest` upgrades it in place).
async fn register_plain(ctx: &SessionContext, dir: &Path) -> Result<()> {
    let tx_dir = dir.join(TRANSACTIONS_DIR);
    let any_file = std::fs::read_dir(&tx_dir)
        .map_err(|e| Error::io(&tx_dir, e))?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("date="));
    if !any_file {
        // an empty dataset: the tables exist, with no rows
        let mut fields: Vec<_> = TRANSACTIONS.fields().iter().cloned().collect();
        fields.push(Arc::new(arrow::datatypes::Field::new(
            DATE,
            DataType::Utf8,
            true,
        )));
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        ctx.register_table(
            "transactions",
            Arc::new(MemTable::try_new(schema, vec![vec![]])?),
        )?;
        ctx.register_table(
            "captures",
            Arc::new(MemTable::try_new(CAPTURES.clone(), vec![vec![]])?),
        )?;
        return Ok(());
    }
    let url = |p: &Path| -> Result<String> {
        let abs = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
        Ok(format!("{}/", abs.display()))
    };
    ctx.register_parquet(
        "transactions",
        url(&dir.join(TRANSACTIONS_DIR))?,
        ParquetReadOptions::default()
            .table_partition_cols(vec![(DATE.to_string(), DataType::Utf8)]),
    )
    .await?;
    let cap_dir = dir.join(CAPTURES_DIR);
    if cap_dir.is_dir() {
        ctx.register_parquet("captures", url(&cap_dir)?, ParquetReadOptions::default())
            .await?;
    }
    Ok(())
}

/// A query failed: when a committed file of the dataset is damaged, the
/// error names it (DataFusion's own message often does not).
pub async fn name_damage(dir: &Path, err: Error) -> Error {
    for full in [false, true] {
        if let Ok((_, damaged)) = dataset::check(dir, full).await {
            if let Some(d) = damaged.first() {
                return Error::io(
                    &d.path,
                    std::io::Error::other(format!(
                        "damaged file ({}); {} damaged in all (`dnsq info --check` lists them); \
                         the query failed with: {err}",
                        d.what,
                        damaged.len()
                    )),
                );
            }
        }
    }
    err
}

impl Session {
    pub async fn open(dir: &Path) -> Result<Session> {
        let tx_dir = dir.join(TRANSACTIONS_DIR);
        let remote = dataset::remote::url_of(dir).is_some();
        if !remote && !tx_dir.is_dir() {
            return Err(Error::io(
                &tx_dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no dnsq dataset here (run `dnsq ingest` first, or pass -d DIR)",
                ),
            ));
        }
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        match dataset::open_table(dir).await? {
            Some(table) => {
                table
                    .update_datafusion_session(&ctx.state())
                    .map_err(|e| Error::io(&tx_dir, std::io::Error::other(e.to_string())))?;
                let provider = table
                    .table_provider()
                    .await
                    .map_err(|e| Error::io(&tx_dir, std::io::Error::other(e.to_string())))?;
                ctx.register_table("transactions", provider)?;
                let captures = dataset::committed_captures(dir, &table).await?;
                let mem = MemTable::try_new(CAPTURES.clone(), vec![captures])?;
                ctx.register_table("captures", Arc::new(mem))?;
            }
            None => register_plain(&ctx, dir).await?,
        }
        Ok(Session {
            ctx,
            dir: dir.to_path_buf(),
        })
    }

    /// Runs every statement of `sql` in order.
    pub async fn run(&self, sql: &str) -> Result<Vec<StatementResult>> {
        let statements = DFParser::parse_sql(sql)?;
        let state = self.ctx.state();
        let mut out = Vec::new();
        for st in statements {
            let plan = state.statement_to_plan(st).await?;
            let df = self.ctx.execute_logical_plan(plan).await?;
            let schema: SchemaRef = df.schema().inner().clone();
            let batches = df.collect().await?;
            out.push(StatementResult { schema, batches });
        }
        Ok(out)
    }
}
