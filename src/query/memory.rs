//! Transactions held in memory for `dnsq serve`: the columns its panels
//! read, laid out so that the scans a page load repeats are cheap.
//!
//! The layout, measured on 10 M rows (docs/BENCHMARKS.md, "Dashboard"):
//! - Strings are string views, whose short values (`downstream`, `NOERROR`)
//!   compare and group inline; `leg` is computed as one (it was Utf8).
//!   Strings only ever compared with a constant (`status`, `transport`) or
//!   grouped by panels that keep their answers (`tld`, the country and
//!   network columns) are dictionaries: a comparison looks at the few values
//!   of each batch once, and each row keeps 4 bytes instead of 16. The
//!   grouped time series (`rcode`, `qtype`, `leg`) stay views, which
//!   DataFusion groups faster than dictionaries.
//! - Each batch is sorted by `ts` (the files already are, SPEC "Dataset
//!   layout"; a batch that is not gets sorted), so a time range is a slice
//!   of each batch found by binary search: no row is copied.
//! - Within a batch the rows of each leg lie together (a stable partition,
//!   so each leg's run stays in time order), and [`HeldTable`] answers a
//!   panel's `leg = '...'` and its time range by slicing: the rows of the
//!   other leg are never read, and no row is compared for either filter.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::dataset::schema::TS;
use crate::error::Result;

/// The computed column whose value splits each held batch into runs.
const LEG: &str = "leg";

/// The rows of a batch with one leg (`None`: no `leg` column, or a null leg).
type Run = (Option<String>, Range<usize>);

/// Columns with few distinct values, held as dictionaries.
const FEW: &[&str] = &[
    "status",
    "transport",
    "tld",
    "client_continent",
    "client_country",
    "client_as_org",
];

fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Batches of transactions in memory: within each, the rows of one leg lie
/// together, sorted by `ts`.
pub struct Held {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Per batch, its runs of one leg.
    runs: Vec<Vec<Run>>,
    /// What the arrays take.
    pub bytes: usize,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("batches", &self.batches.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Held {
    /// Holds `batches` (of `schema`): [`FEW`]'s string columns become
    /// dictionaries, a batch not sorted by `ts` is sorted, and then its rows
    /// are grouped by leg, each leg's in the order they had.
    pub fn new(schema: &Schema, batches: Vec<RecordBatch>) -> Result<Held> {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                match (is_string(f.data_type()), FEW.contains(&f.name().as_str())) {
                    (true, true) => f.with_data_type(dictionary()),
                    (true, false) => f.with_data_type(DataType::Utf8View),
                    _ => f,
                }
            })
            .collect();
        let held = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let ts = held.index_of(TS).ok();
        let leg = held.index_of(LEG).ok();
        let mut out = Vec::with_capacity(batches.len());
        let mut runs = Vec::with_capacity(batches.len());
        for b in batches {
            let columns = b
                .columns()
                .iter()
                .zip(held.fields())
                .map(|(a, f)| {
                    if a.data_type() == f.data_type() {
                        Ok(a.clone())
                    } else {
                        // Utf8View to dictionaries goes by Utf8.
                        let plain = match a.data_type() {
                            DataType::Utf8View => cast(a, &DataType::Utf8)?,
                            _ => a.clone(),
                        };
                        Ok(cast(&plain, f.data_type())?)
                    }
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            let mut b = RecordBatch::try_new(held.clone(), columns)?;
            if let Some(i) = ts {
                if !sorted(b.column(i)) {
                    let order = sort_to_indices(b.column(i), None, None)?;
                    b = take_record_batch(&b, &order)?;
                }
            }
            let (b, r) = match leg {
                Some(i) => by_leg(b, i)?,
                None => {
                    let n = b.num_rows();
                    (b, vec![(None, 0..n)])
                }
            };
            out.push(b);
            runs.push(r);
        }
        let bytes = out.iter().map(|b| b.get_array_memory_size()).sum();
        Ok(Held {
            schema: held,
            batches: out,
            runs,
            bytes,
        })
    }

    /// The rows of `leg` (any leg when `None`) with `since <= ts < until`
    /// (microseconds; an open end is unbounded), as slices of the held
    /// batches.
    pub fn select(
        &self,
        leg: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Vec<RecordBatch> {
        let ts = self.schema.index_of(TS).ok();
        // nulls sort first and fall outside any bounded range
        let bounded = since.is_some() || until.is_some();
        let mut out: Vec<(&RecordBatch, Range<usize>)> = Vec::new();
        for (b, runs) in self.batches.iter().zip(&self.runs) {
            for (value, run) in runs {
                if leg.is_some() && value.as_deref() != leg {
                    continue;
                }
                let (from, to) = match ts {
                    None => (run.start, run.end),
                    Some(i) => {
                        let ts = b.column(i).slice(run.start, run.len());
                        let ts = ts.as_primitive::<TimestampMicrosecondType>();
                        let from = since.map_or(if bounded { ts.null_count() } else { 0 }, |s| {
                            first_at_least(ts, s)
                        });
                        let to = until.map_or(ts.len(), |u| first_at_least(ts, u));
                        (run.start + from, run.start + to)
                    }
                };
                if to > from {
                    // runs kept whole next to each other stay one slice
                    match out.last_mut() {
                        Some((last, r)) if std::ptr::eq(*last, b) && r.end == from => r.end = to,
                        _ => out.push((b, from..to)),
                    }
                }
            }
        }
        out.into_iter()
            .map(|(b, r)| b.slice(r.start, r.len()))
            .collect()
    }
}

/// `b` with the rows of each leg together, each leg's in their order, and
/// those runs: downstream, upstream, any other value, then null.
fn by_leg(b: RecordBatch, i: usize) -> Result<(RecordBatch, Vec<Run>)> {
    // a string column of a held batch is a view or a dictionary (Held::new)
    let column = match b.column(i).data_type() {
        DataType::Utf8View => b.column(i).clone(),
        _ => cast(b.column(i), &DataType::Utf8View)?,
    };
    let legs = column.as_string_view();
    let mut groups: Vec<(Option<String>, Vec<u32>)> = Vec::new();
    for (row, v) in legs.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| g.as_deref() == v) {
            Some((_, rows)) => rows.push(row as u32),
            None => groups.push((v.map(String::from), vec![row as u32])),
        }
    }
    let rank = |v: &Option<String>| match v.as_deref() {
        Some("downstream") => 0,
        Some("upstream") => 1,
        Some(_) => 2,
        None => 3,
    };
    groups.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
    if groups.len() <= 1 {
        let n = b.num_rows();
        let leg = groups.pop().and_then(|g| g.0);
        return Ok((b, vec![(leg, 0..n)]));
    }
    let mut order = Vec::with_capacity(b.num_rows());
    let mut runs = Vec::with_capacity(groups.len());
    for (leg, rows) in groups {
        let start = order.len();
        order.extend(rows);
        runs.push((leg, start..order.len()));
    }
    let b = take_record_batch(&b, &UInt32Array::from(order))?;
    Ok((b, runs))
}

/// [`Held`] rows as a table. A leg (`leg = '...'`) and a time range (`ts`
/// against a timestamp) among a query's filters are applied exactly, by
/// slicing: DataFusion drops those filters, and the scan reads only the
/// matching runs of each batch.
#[derive(Debug)]
pub struct HeldTable {
    held: Arc<Held>,
    /// The rows outside `[since, until)` are not part of this table.
    window: (Option<i64>, Option<i64>),
    partitions: usize,
}

impl HeldTable {
    /// `held`'s rows in `window` (microseconds, open ends unbounded), read
    /// in `partitions` streams.
    pub fn new(held: Arc<Held>, window: (Option<i64>, Option<i64>), partitions: usize) -> Self {
        HeldTable {
            held,
            window,
            partitions: partitions.max(1),
        }
    }
}

/// A filter [`HeldTable`] applies itself.
enum Bound {
    Leg(String),
    Since(i64),
    Until(i64),
}

impl HeldTable {
    fn bound(&self, e: &Expr) -> Option<Bound> {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
            return None;
        };
        let (column, op, value) = match (column_name(left), literal(right)) {
            (Some(c), Some(v)) => (c, *op, v),
            _ => (column_name(right)?, op.swap()?, literal(left)?),
        };
        let schema = &self.held.schema;
        match (column, op, value) {
            (
                LEG,
                Operator::Eq,
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) if schema.index_of(LEG).is_ok() => Some(Bound::Leg(s.clone())),
            (TS, op, ScalarValue::TimestampMicrosecond(Some(v), _))
                if schema.index_of(TS).is_ok() =>
            {
                match op {
                    Operator::GtEq => Some(Bound::Since(*v)),
                    Operator::Gt => v.checked_add(1).map(Bound::Since),
                    Operator::Lt => Some(Bound::Until(*v)),
                    Operator::LtEq => v.checked_add(1).map(Bound::Until),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

#[async_trait::async_trait]
impl TableProvider for HeldTable {
    fn schema(&self) -> SchemaRef {
        self.held.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.bound(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let (mut since, mut until) = self.window;
        let mut leg: Option<String> = None;
        let mut nothing = false;
        for f in filters {
            match self.bound(f) {
                Some(Bound::Since(s)) => since = Some(since.map_or(s, |t| t.max(s))),
                Some(Bound::Until(u)) => until = Some(until.map_or(u, |t| t.min(u))),
                Some(Bound::Leg(l)) => match &leg {
                    Some(k) if *k != l => nothing = true,
                    _ => leg = Some(l),
                },
                None => {}
            }
        }
        let mut parts = vec![Vec::new(); self.partitions];
        if !nothing {
            for (i, b) in self
                .held
                .select(leg.as_deref(), since, until)
                .into_iter()
                .enumerate()
            {
                parts[i % self.partitions].push(b);
            }
        }
        Ok(MemorySourceConfig::try_new_exec(
            &parts,
            self.schema(),
            projection.cloned(),
        )?)
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// Whether `ts` is in ascending order, nulls first.
fn sorted(ts: &ArrayRef) -> bool {
    let Some(ts) = ts.as_primitive_opt::<TimestampMicrosecondType>() else {
        return true;
    };
    let mut last: Option<i64> = None;
    for v in ts.iter() {
        match (last, v) {
            (_, None) if last.is_some() => return false,
            (_, None) => {}
            (Some(l), Some(v)) if v < l => return false,
            (_, Some(v)) => last = Some(v),
        }
    }
    true
}

/// The index of the first row whose `ts` is at least `t` (nulls count as
/// below every time), in a sorted array.
fn first_at_least(ts: &arrow::array::TimestampMicrosecondArray, t: i64) -> usize {
    let nulls = ts.null_count();
    // Sorted with nulls first: the first `nulls` rows are the nulls.
    nulls + ts.values()[nulls..].partition_point(|&v| v < t)
}

#[cfg(test)]
mod tests;
