//! What an ingest finds out about the dataset it commits, kept in its Delta
//! commit (`commitInfo`, key [`KEY`]) so that a query need not scan for it:
//! the resolvers behind the `leg` column, and each leg's busiest registered
//! domain (what `domain_timeline` follows when no domain is named).
//!
//! A summary describes exactly one version: the ingest computes it over the
//! version its commit builds on and the files it adds, and attaches it only
//! when the commit lands on top of that version (a commit that lost a race
//! and was tried again goes without). A reader takes it from the commit of
//! the version it reads, and only from that one: any later commit, by dnsq or
//! by any other Delta writer, leaves the next version without a summary, and
//! queries then find the same answers by scanning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::FunctionRegistry;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{col, lit, SessionContext};
use deltalake::DeltaTable;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::query::functions::strings;
use crate::query::legs::{self, LegFn, Legs, LEG_FN};
use crate::query::params::{self, FIRST, LAST};

/// The key of the summary in a commit's `commitInfo`.
pub const KEY: &str = crate::dataset::SUMMARY_KEY;

/// The legs a summary names a busiest domain for (`$leg`'s values).
const LEGS: [&str; 3] = ["downstream", "upstream", "all"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The resolver endpoints found in the data (`legs::find`), sorted.
    pub resolvers: Vec<(String, u16)>,
    /// Per leg (`downstream`, `upstream`, `all`): the registered domain with
    /// the most transactions in all the data, ties to the first by name;
    /// `None` when no transaction of that leg has one.
    pub busiest: Vec<(String, Option<String>)>,
}

impl Summary {
    /// The busiest registered domain of `leg`, if the summary names one.
    pub fn busiest(&self, leg: &str) -> Option<&str> {
        self.busiest
            .iter()
            .find(|(l, _)| l == leg)
            .and_then(|(_, d)| d.as_deref())
    }

    pub fn to_json(&self) -> Value {
        let busiest: serde_json::Map<String, Value> = self
            .busiest
            .iter()
            .map(|(leg, d)| (leg.clone(), json!(d)))
            .collect();
        json!({
            "resolvers": self.resolvers.iter().map(|(ip, port)| json!([ip, port])).collect::<Vec<_>>(),
            "busiest": busiest,
        })
    }

    /// The summary in `v`, or `None` if anything in it is not as written
    /// (an address that does not parse, a leg missing): a query then scans.
    pub fn from_json(v: &Value) -> Option<Summary> {
        let mut resolvers = Vec::new();
        for r in v.get("resolvers")?.as_array()? {
            let ip: IpAddr = r.get(0)?.as_str()?.parse().ok()?;
            let port = u16::try_from(r.get(1)?.as_u64()?).ok()?;
            resolvers.push((ip.to_string(), port));
        }
        let b = v.get("busiest")?.as_object()?;
        let mut busiest = Vec::new();
        for leg in LEGS {
            let d = match b.get(leg)? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return None,
            };
            busiest.push((leg.to_string(), d));
        }
        Some(Summary { resolvers, busiest })
    }
}

/// Computes the summary of the rows in `table` (a table or view of `ctx`
/// with the transactions' columns).
pub async fn compute(ctx: &SessionContext, table: &str) -> Result<Summary> {
    use futures::TryStreamExt;
    let found = legs::find(ctx, table).await?;
    let legs = Arc::new(Legs::default());
    legs.keep_found(found.endpoints.clone());
    ctx.register_udf(ScalarUDF::new_from_impl(LegFn::new(legs)));
    let leg = ctx
        .udf(LEG_FN)?
        .call(vec![col("client_ip"), col("server_ip"), col("server_port")]);
    // the scope `domain_timeline` has when no time range is given
    let bound = |t: &str| -> Result<_> {
        let us = params::parse_time(t, None).map_err(Error::Usage)?;
        Ok(lit(params::timestamp(us)))
    };
    let batches: Vec<_> = ctx
        .table(table)
        .await?
        .filter(
            col("reg_domain")
                .is_not_null()
                .and(col("ts").gt_eq(bound(FIRST)?))
                .and(col("ts").lt(bound(LAST)?)),
        )?
        .aggregate(
            vec![col("reg_domain"), leg.alias("leg")],
            vec![count(lit(1)).alias("n")],
        )?
        .execute_stream()
        .await?
        .try_collect()
        .await?;
    // each (domain, leg) is one row of the answer: a leg's busiest is the
    // best of its rows; `all` adds a domain's legs up first
    let columns = batches
        .iter()
        .map(|b| -> Result<_> {
            let n = b.column(2).as_primitive::<Int64Type>();
            Ok((strings(b.column(0))?, strings(b.column(1))?, n))
        })
        .collect::<Result<Vec<_>>>()?;
    // `ORDER BY count(*) DESC, reg_domain LIMIT 1`, as the saved query has it
    fn better(n: i64, d: &str, best: Option<(i64, &str)>) -> bool {
        best.is_none_or(|(bn, bd)| n > bn || (n == bn && d < bd))
    }
    let mut best: HashMap<&str, (i64, &str)> = HashMap::new();
    let mut all: foldhash::HashMap<&str, i64> = Default::default();
    for (domains, legs, n) in &columns {
        for i in 0..domains.len() {
            let (d, l, n) = (domains.value(i), legs.value(i), n.value(i));
            if better(n, d, best.get(l).copied()) {
                best.insert(l, (n, d));
            }
            *all.entry(d).or_default() += n;
        }
    }
    for (&d, &n) in &all {
        if better(n, d, best.get("all").copied()) {
            best.insert("all", (n, d));
        }
    }
    let busiest = LEGS
        .iter()
        .map(|&l| (l.to_string(), best.get(l).map(|(_, d)| d.to_string())))
        .collect();
    Ok(Summary {
        resolvers: found.endpoints,
        busiest,
    })
}

/// The committed rows a commit's summary rescans at most, per row it adds:
/// past this, the commit goes without one (queries scan, as before), so
/// that adding a small capture to a large dataset does not cost a scan of
/// it. The scan took 0.11-0.13 s of the 2 M-packet capture's ingest (1 M
/// rows, 2 threads, about 3.3 s in all) and about 1 s of the 20 M one's.
const RESCAN_PER_ROW: u64 = 4;

/// The summary of the version an ingest's commit builds on (`committed`, the
/// table as its writer loaded it) with the files it adds (paths of Parquet
/// files on the local disk, `added` rows): `(that version, summary as
/// JSON)`, the version `None` for a table with no commit yet; `None` when
/// the committed rows are more than [`RESCAN_PER_ROW`] times the added ones.
pub async fn at_commit(
    root: &Path,
    committed: &DeltaTable,
    files: &[PathBuf],
    added: u64,
    threads: usize,
) -> Result<Option<(Option<u64>, Value)>> {
    use futures::TryStreamExt;
    let version = committed.version();
    let ctx = crate::query::engine::context(&Default::default())?;
    ctx.sql(&format!(
        "SET datafusion.execution.target_partitions = {}",
        threads.max(1)
    ))
    .await?
    .collect()
    .await?;
    let delta = |e: &dyn std::fmt::Display| Error::io(root, std::io::Error::other(e.to_string()));
    const COLUMNS: &str = "client_ip, server_ip, server_port, ra, reg_domain, ts";
    let mut parts = Vec::new();
    if version.is_some() {
        committed
            .update_datafusion_session(&ctx.state())
            .map_err(|e| delta(&e))?;
        let provider = committed.table_provider().await.map_err(|e| delta(&e))?;
        ctx.register_table("committed", provider)?;
        // from the log's row counts, not a scan
        let counted: Vec<_> = ctx
            .sql("SELECT count(*) FROM committed")
            .await?
            .execute_stream()
            .await?
            .try_collect()
            .await?;
        let rows = counted
            .first()
            .filter(|b| b.num_rows() > 0)
            .map_or(0, |b| b.column(0).as_primitive::<Int64Type>().value(0));
        if u64::try_from(rows).unwrap_or(0) > RESCAN_PER_ROW.saturating_mul(added) {
            return Ok(None);
        }
        parts.push(format!("SELECT {COLUMNS} FROM committed"));
    }
    if !files.is_empty() {
        let urls = files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let listing =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(listing)
            .infer_schema(&ctx.state())
            .await?;
        ctx.register_table("added", Arc::new(ListingTable::try_new(config)?))?;
        parts.push(format!("SELECT {COLUMNS} FROM added"));
    }
    let summary = if parts.is_empty() {
        Summary {
            resolvers: Vec::new(),
            busiest: LEGS.iter().map(|l| (l.to_string(), None)).collect(),
        }
    } else {
        ctx.sql(&format!(
            "CREATE VIEW rows AS {}",
            parts.join(" UNION ALL ")
        ))
        .await?;
        compute(&ctx, "rows").await?
    };
    Ok(Some((version, summary.to_json())))
}

/// The summary kept in the commit of the version `table` has loaded, if
/// that commit holds one.
pub async fn of_version(table: &DeltaTable) -> Option<Summary> {
    let version = table.version()?;
    let bytes = table
        .log_store()
        .read_commit_entry(version)
        .await
        .ok()
        .flatten()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("commitInfo")?.get(KEY).cloned())
        .and_then(|v| Summary::from_json(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_lies() {
        let s = Summary {
            resolvers: vec![("10.0.0.53".into(), 53), ("2001:db8::53".into(), 5353)],
            busiest: vec![
                ("downstream".into(), Some("example.com".into())),
                ("upstream".into(), None),
                ("all".into(), Some("example.com".into())),
            ],
        };
        assert_eq!(Summary::from_json(&s.to_json()), Some(s.clone()));
        assert_eq!(s.busiest("downstream"), Some("example.com"));
        assert_eq!(s.busiest("upstream"), None);
        assert_eq!(s.busiest("sideways"), None);
        let mut v = s.to_json();
        v["resolvers"][0][0] = json!("resolver.example");
        assert_eq!(
            Summary::from_json(&v),
            None,
            "an address that does not parse"
        );
        let mut v = s.to_json();
        v["resolvers"][1][1] = json!(65536);
        assert_eq!(Summary::from_json(&v), None, "a port out of range");
        let mut v = s.to_json();
        v["busiest"].as_object_mut().map(|b| b.remove("all"));
        assert_eq!(Summary::from_json(&v), None, "a leg missing");
        let mut v = s.to_json();
        v["busiest"]["upstream"] = json!(7);
        assert_eq!(Summary::from_json(&v), None, "a domain that is not text");
    }
}
