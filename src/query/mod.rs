//! The read side: dataset directory → DataFusion session → results.
//!
//! `Session::open` registers `transactions` (Hive partitions `date=` become a
//! column and prune files) and `captures`; `Session::run` executes one or
//! more `;`-separated statements and returns each one's batches.

pub mod output;
pub mod saved;

use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;

use crate::error::{Error, Result};
use crate::ingest::schema::DATE;
use crate::ingest::write::{CAPTURES_DIR, TRANSACTIONS_DIR};

pub struct Session {
    pub ctx: SessionContext,
    pub dir: PathBuf,
}

/// The result of one statement.
pub struct StatementResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Session {
    pub async fn open(dir: &Path) -> Result<Session> {
        let tx_dir = dir.join(TRANSACTIONS_DIR);
        if !tx_dir.is_dir() {
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
        let url = |p: &Path| -> Result<String> {
            let abs = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
            Ok(format!("{}/", abs.display()))
        };
        ctx.register_parquet(
            "transactions",
            url(&tx_dir)?,
            ParquetReadOptions::default()
                .table_partition_cols(vec![(DATE.to_string(), DataType::Utf8)]),
        )
        .await?;
        let cap_dir = dir.join(CAPTURES_DIR);
        if cap_dir.is_dir() {
            ctx.register_parquet("captures", url(&cap_dir)?, ParquetReadOptions::default())
                .await?;
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
