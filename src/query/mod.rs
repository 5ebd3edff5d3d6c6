//! The read side: dataset directory → DataFusion session → results.
//!
//! `Session::open` registers `transactions` (Hive partitions `date=` become a
//! column and prune files) and `captures` in an engine with a bounded memory
//! pool (`engine`); `Session::execute` runs one statement, once `policy`
//! allows it, and streams its batches; `Session::run` collects them, for
//! small internal queries.

pub mod engine;
pub mod output;
pub mod policy;
pub mod saved;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};

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
    use datafusion::error::DataFusionError as D;
    let reading = match &err {
        Error::DataFusion(df) => matches!(
            df.find_root(),
            D::ParquetError(_)
                | D::ArrowError(..)
                | D::IoError(_)
                | D::External(_)
                | D::ObjectStore(_)
        ),
        Error::Parquet(_) | Error::Arrow(_) | Error::Io { .. } => true,
        _ => false,
    };
    if !reading {
        return err;
    }
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
    /// Opens the dataset in `dir` with the default engine options.
    pub async fn open(dir: &Path) -> Result<Session> {
        Self::open_with(dir, &engine::EngineOptions::default()).await
    }

    /// Opens the dataset in `dir`; the engine's memory pool is sized by `options`.
    pub async fn open_with(dir: &Path, options: &engine::EngineOptions) -> Result<Session> {
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
        let ctx = engine::context(options)?;
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

    /// The `;`-separated statements of `sql`, parsed (nothing runs yet).
    pub fn statements(sql: &str) -> Result<Vec<Statement>> {
        Ok(DFParser::parse_sql(sql)?.into_iter().collect())
    }

    /// Plans `statement`, checks it with `guard`, runs it and returns its
    /// result as a stream. DDL such as CREATE VIEW takes effect here and
    /// yields a stream with no columns.
    pub async fn execute(
        &self,
        statement: Statement,
        guard: &policy::Guard,
    ) -> Result<SendableRecordBatchStream> {
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        guard.check(&plan)?;
        guard.sql_options().verify_plan(&plan)?;
        let plan = views_are_temporary(plan);
        let df = self.ctx.execute_logical_plan(plan).await?;
        Ok(df.execute_stream().await?)
    }

    /// Runs every statement of `sql` in order, read-only, and collects each
    /// one's batches: for small results such as `dnsq info`'s summaries.
    pub async fn run(&self, sql: &str) -> Result<Vec<StatementResult>> {
        use futures::TryStreamExt;
        let guard = policy::Guard::new(&self.ctx, &self.dir, false).await?;
        let mut out = Vec::new();
        for st in Self::statements(sql)? {
            let stream = self.execute(st, &guard).await?;
            let schema = stream.schema();
            let batches = stream.try_collect().await?;
            out.push(StatementResult { schema, batches });
        }
        Ok(out)
    }
}

/// DataFusion's views live only in the session, which is what `CREATE
/// TEMPORARY VIEW` (Spark, DuckDB) asks for; DataFusion refuses the keyword,
/// so it is dropped here.
fn views_are_temporary(plan: LogicalPlan) -> LogicalPlan {
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateView(mut v)) if v.temporary => {
            v.temporary = false;
            LogicalPlan::Ddl(DdlStatement::CreateView(v))
        }
        other => other,
    }
}
