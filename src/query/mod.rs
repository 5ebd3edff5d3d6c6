//! The read side: dataset directory → DataFusion session → results.
//!
//! `Session::open` registers `transactions` (Hive partitions `date=` become a
//! column and prune files) and `captures` in an engine with a bounded memory
//! pool (`engine`); `Session::execute` runs one statement, once `policy`
//! allows it, and streams its batches; `Session::run` collects them, for
//! small internal queries.

pub mod date_bin;
pub mod engine;
pub mod functions;
pub mod legs;
pub mod memory;
pub mod output;
pub mod params;
pub mod percentiles;
pub mod policy;
pub mod saved;
pub mod summary;
pub mod table;

mod filters;
mod held;

pub use filters::{parse_filter, FILTERS};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};

use crate::dataset::schema::{CAPTURES, DATE, TRANSACTIONS, TS};
use crate::dataset::{self, CAPTURES_DIR, TRANSACTIONS_DIR};
use crate::error::{Error, Result};
use arrow::array::{Array, AsArray};

/// `(since, until)` → the first and last `ts` in that range.
type Spans = std::collections::HashMap<(Option<i64>, Option<i64>), Option<params::Span>>;

pub struct Session {
    pub ctx: SessionContext,
    pub dir: PathBuf,
    /// The resolvers behind the `leg` column, found on first use.
    pub legs: Arc<legs::Legs>,
    /// First and last `ts` per time range, as [`Session::span`] found them:
    /// the stored rows do not change under a session (nor its forks).
    spans: Arc<std::sync::Mutex<Spans>>,
    /// The rows behind `transactions`, when [`Session::in_memory`] read them.
    held: Option<Arc<memory::Held>>,
    /// What the ingest of the version read found out (`summary`), if it kept it.
    pub summary: Option<Arc<summary::Summary>>,
    /// A statement created or dropped a view or table here: `transactions`
    /// may no longer be all the data the summary speaks of.
    altered: std::sync::atomic::AtomicBool,
}

/// The table as stored; `transactions` is a view of it with the computed
/// columns (`leg`) and `date` as a DATE.
pub const RAW: &str = "transactions_raw";

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
        ctx.register_table(RAW, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
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
        RAW,
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
        functions::register(&ctx);
        let legs = Arc::new(legs::Legs::named(options.resolvers.clone()));
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
            legs::LegFn::new(legs.clone()),
        ));
        let mut kept = None;
        match dataset::open_table(dir).await? {
            Some(table) => {
                kept = summary::of_version(&table).await.map(Arc::new);
                if let Some(s) = kept.as_ref().filter(|_| options.resolvers.is_empty()) {
                    legs.keep_found(s.resolvers.clone());
                }
                table
                    .update_datafusion_session(&ctx.state())
                    .map_err(|e| Error::io(&tx_dir, std::io::Error::other(e.to_string())))?;
                let provider = table
                    .table_provider()
                    .await
                    .map_err(|e| Error::io(&tx_dir, std::io::Error::other(e.to_string())))?;
                ctx.register_table(RAW, provider)?;
                let captures = dataset::committed_captures(dir, &table).await?;
                let mem = MemTable::try_new(CAPTURES.clone(), vec![captures])?;
                ctx.register_table("captures", Arc::new(mem))?;
            }
            None => register_plain(&ctx, dir).await?,
        }
        create_view(&ctx).await?;
        Ok(Session {
            ctx,
            dir: dir.to_path_buf(),
            legs,
            spans: Default::default(),
            held: None,
            summary: kept,
            altered: Default::default(),
        })
    }

    /// The registered domain `domain_timeline` follows when it is given
    /// none, if the dataset's summary answers that without a scan: the query
    /// covers all the data (no domain, time range or filter given, no view
    /// made in this session) and its legs are the summary's (no `--resolver`
    /// named). The leg is the given one, else the query's default (`header`).
    pub fn busiest_kept(
        &self,
        header: &params::Header,
        given: &params::Given,
        filtered: bool,
    ) -> Option<String> {
        let s = self.summary.as_ref()?;
        let whole = !filtered
            && !self.altered.load(std::sync::atomic::Ordering::Relaxed)
            && ["domain", "since", "until"]
                .iter()
                .all(|k| !given.values.contains_key(*k));
        let r = self.legs.get()?;
        let same_legs = r.found && r.endpoints == s.resolvers;
        let leg = match given.values.get("leg") {
            Some(l) => l.as_str(),
            None => header.declared("leg")?.default.as_str(),
        };
        (whole && same_legs)
            .then(|| s.busiest(leg).map(str::to_string))
            .flatten()
    }

    /// `given`, with `$domain` bound to the domain the summary kept when `sql`
    /// is the saved `domain_timeline` and [`Session::busiest_kept`] answers:
    /// the same rows, without a scan for the busiest domain.
    pub fn with_kept_domain(
        &self,
        sql: &str,
        header: &params::Header,
        given: &params::Given,
        filtered: bool,
    ) -> params::Given {
        let mut given = given.clone();
        if Some(sql) == saved::find("domain_timeline") {
            if let Some(d) = self.busiest_kept(header, &given, filtered) {
                given.values.insert("domain".into(), d);
            }
        }
        given
    }

    /// A session of its own over the same tables, engine and resolvers:
    /// what one request of `dnsq serve` filters and queries without touching
    /// the others'. The memory pool is shared, so concurrent queries stay
    /// within one limit; the Delta snapshot is shared, so every panel of a
    /// page load reads the same commit.
    pub async fn fork(&self) -> Result<Session> {
        let mut tables = Vec::new();
        for name in [RAW, "captures", "transactions"] {
            tables.push((name, self.ctx.table_provider(name).await?));
        }
        self.fork_with(tables)
    }

    fn fork_with(
        &self,
        tables: Vec<(&str, Arc<dyn datafusion::catalog::TableProvider>)>,
    ) -> Result<Session> {
        use datafusion::catalog::{
            CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
            MemorySchemaProvider,
        };
        use datafusion::execution::SessionStateBuilder;
        let state = self.ctx.state();
        let names = state.config().options().catalog.clone();
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema(&names.default_schema, Arc::new(MemorySchemaProvider::new()))?;
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(names.default_catalog.clone(), Arc::new(catalog));
        let state = SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(Arc::new(catalogs))
            .build();
        let ctx = SessionContext::new_with_state(state);
        for (name, table) in tables {
            ctx.register_table(name, table)?;
        }
        Ok(Session {
            ctx,
            dir: self.dir.clone(),
            legs: self.legs.clone(),
            spans: self.spans.clone(),
            held: None,
            summary: self.summary.clone(),
            altered: Default::default(),
        })
    }

    /// The first and last `ts` in `[since, until)` (microseconds), if any row is there.
    pub async fn span(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<params::Span>> {
        if let Some(known) = self
            .spans
            .lock()
            .ok()
            .and_then(|m| m.get(&(since, until)).copied())
        {
            return Ok(known);
        }
        let found = self.find_span(since, until).await?;
        if let Ok(mut m) = self.spans.lock() {
            m.insert((since, until), found);
        }
        Ok(found)
    }

    async fn find_span(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Option<params::Span>> {
        use datafusion::functions_aggregate::expr_fn::{max, min};
        use datafusion::prelude::{col, lit};
        use futures::TryStreamExt;
        let ts = |us: i64| {
            lit(datafusion::scalar::ScalarValue::TimestampMicrosecond(
                Some(us),
                Some("UTC".into()),
            ))
        };
        let mut df = self.ctx.table(RAW).await?;
        if let Some(s) = since {
            df = df.filter(col(TS).gt_eq(ts(s)))?;
        }
        if let Some(u) = until {
            df = df.filter(col(TS).lt(ts(u)))?;
        }
        let df = df.aggregate(vec![], vec![min(col(TS)), max(col(TS))])?;
        let batches: Vec<RecordBatch> = df.execute_stream().await?.try_collect().await?;
        let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(None);
        };
        let get = |i: usize| -> Option<i64> {
            let c = arrow::compute::cast(
                b.column(i),
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            )
            .ok()?;
            let c = c.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            c.is_valid(0).then(|| c.value(0))
        };
        Ok(match (get(0), get(1)) {
            (Some(first), Some(last)) => Some(params::Span { first, last }),
            _ => None,
        })
    }

    /// Binds the placeholders `plan` uses; notes (such as the bucket `auto`
    /// chose) go to `notes`.
    async fn bind(
        &self,
        plan: LogicalPlan,
        binder: &params::Binder<'_>,
        notes: &mut Vec<String>,
    ) -> Result<LogicalPlan> {
        let used = params::placeholders(&plan)?;
        if used.is_empty() {
            return Ok(plan);
        }
        // since and until are bound whenever anything is (the bucket's span
        // depends on them), so a relative value of theirs counts even unused
        let relative = used
            .keys()
            .map(String::as_str)
            .chain(["since", "until"])
            .any(|n| binder.given.is_relative(n));
        let auto_bucket = used.contains_key("bucket") && binder.bucket_is_auto();
        let whole = if relative || auto_bucket {
            self.span(None, None).await?
        } else {
            None
        };
        let mut values = std::collections::HashMap::new();
        for name in ["since", "until"] {
            let v = binder.value(name, None, whole, notes)?;
            values.insert(name.to_string(), v);
        }
        let us = |v: &datafusion::scalar::ScalarValue| match v {
            datafusion::scalar::ScalarValue::TimestampMicrosecond(Some(t), _) => Some(*t),
            _ => None,
        };
        let bucket_span = if auto_bucket {
            let (s, u) = (us(&values["since"]), us(&values["until"]));
            self.span(s, u).await?
        } else {
            whole
        };
        for (name, ty) in &used {
            if name == "since" || name == "until" {
                continue;
            }
            let span = if name == "bucket" { bucket_span } else { whole };
            let v = binder.value(name, ty.as_ref(), span, notes)?;
            values.insert(name.clone(), v);
        }
        Ok(plan.with_param_values(values)?)
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
        let header = params::Header::default();
        let given = params::Given::default();
        let binder = params::Binder {
            header: &header,
            given: &given,
        };
        self.execute_with(statement, guard, &binder, &mut Vec::new())
            .await
    }

    /// [`Session::execute`] with parameters: `$name` placeholders are bound
    /// by `binder`; what it chose (an `auto` bucket, the resolvers found for
    /// `leg`) is added to `notes`.
    pub async fn execute_with(
        &self,
        statement: Statement,
        guard: &policy::Guard,
        binder: &params::Binder<'_>,
        notes: &mut Vec<String>,
    ) -> Result<SendableRecordBatchStream> {
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        guard.check(&plan)?;
        guard.sql_options().verify_plan(&plan)?;
        let plan = views_are_temporary(plan);
        if matches!(plan, LogicalPlan::Ddl(_)) {
            self.altered
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let plan = self.bind(plan, binder, notes).await?;
        // what the statement reads: a CREATE TABLE ... AS reads its query now
        // (a view reads when it is queried, and is checked then)
        let reads = match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(t)) => Some(t.input.as_ref()),
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) => None,
            other => Some(other),
        };
        if let Some(reads) = reads {
            if let Ok(optimized) = self.ctx.state().optimize(reads) {
                if legs::uses_leg(&optimized) {
                    if let Some(r) = self.legs.ensure(&self.ctx, RAW).await? {
                        notes.push(if r.endpoints.is_empty() {
                            "legs: no resolver found (none answers with RA set and asks others \
                             itself); every transaction is downstream. Name one with --resolver ADDR[:PORT]"
                                .into()
                        } else {
                            format!(
                                "legs: resolver {} found in the data (answers with RA set, asks others \
                                 itself); --resolver names them instead",
                                r.describe()
                            )
                        });
                    }
                }
            }
        }
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

/// `transactions`: the stored columns, `date` as a DATE (as DuckDB, Spark and
/// Polars read the Hive partition), and `leg`.
async fn create_view(ctx: &SessionContext) -> Result<()> {
    let raw = ctx.table(RAW).await?;
    let mut cols: Vec<String> = Vec::new();
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    for f in raw.schema().fields() {
        let q = quote(f.name());
        if f.name() == DATE {
            cols.push(format!("CAST({q} AS DATE) AS {q}"));
        } else {
            cols.push(q);
        }
    }
    // a dataset written before a column existed (and not ingested into since,
    // which would add it to the table) reads it as null
    for f in TRANSACTIONS.fields() {
        if raw.schema().has_column_with_unqualified_name(f.name()) {
            continue;
        }
        if let Some(t) = sql_type(f.data_type()) {
            cols.push(format!("CAST(NULL AS {t}) AS {}", quote(f.name())));
        }
    }
    cols.push(format!(
        "{}(client_ip, server_ip, server_port) AS leg",
        legs::LEG_FN
    ));
    let sql = format!(
        "CREATE VIEW transactions AS SELECT {} FROM {RAW}",
        cols.join(", ")
    );
    ctx.sql(&sql).await?;
    Ok(())
}

/// The SQL type of a scalar column of the schema.
fn sql_type(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Utf8 => "VARCHAR",
        DataType::Int64 => "BIGINT",
        DataType::Int32 => "INT",
        DataType::Float64 => "DOUBLE",
        DataType::Boolean => "BOOLEAN",
        _ => return None,
    })
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

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::ScalarUDF;

    #[tokio::test]
    async fn columns_an_older_dataset_lacks_read_as_null() {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::new_from_impl(legs::LegFn::new(Arc::new(
            legs::Legs::named(Vec::new()),
        ))));
        // the raw table of a dataset written before enrichment and tunnels
        let old: Vec<Field> = TRANSACTIONS
            .fields()
            .iter()
            .take_while(|f| f.name() != "client_continent")
            .map(|f| f.as_ref().clone())
            .collect();
        let n = old.len();
        let schema = Arc::new(Schema::new(old));
        ctx.register_table(
            RAW,
            Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap()),
        )
        .unwrap();
        create_view(&ctx).await.unwrap();
        let df = ctx
            .sql("select client_country, server_asn, tunnel from transactions")
            .await
            .unwrap();
        let types: Vec<DataType> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        // strings as string views, as the Parquet files' own strings read
        assert_eq!(
            types,
            [DataType::Utf8View, DataType::Int64, DataType::Utf8View]
        );
        assert!(df
            .collect()
            .await
            .unwrap()
            .iter()
            .all(|b| b.num_rows() == 0));
        // every column of today's schema is there, once
        let view = ctx.table("transactions").await.unwrap();
        for f in TRANSACTIONS.fields() {
            assert!(
                view.schema().has_column_with_unqualified_name(f.name()),
                "{}",
                f.name()
            );
        }
        assert!(n < TRANSACTIONS.fields().len());
    }
}
