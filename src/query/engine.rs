//! The DataFusion engine behind a `Session`: configuration, memory pool, spill files.
//!
//! In: `EngineOptions` (a memory limit, or none for the default). Out: a
//! `SessionContext` with no tables yet, whose sorts, aggregations and joins
//! draw from a `FairSpillPool` of that size and spill to the OS temp directory
//! when it runs short. An operator that cannot spill (a hash join's build
//! side, for one) fails with `ResourcesExhausted`, which `dnsq sql` reports
//! with the flag that raises the limit.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;
use crate::query::legs::LEG_FN;

/// When neither `--memory-limit` nor /proc/meminfo says otherwise.
const FALLBACK_MEMORY_LIMIT: usize = 4 << 30;

/// How the engine may use the machine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Bytes the memory pool hands out; `None`: [`default_memory_limit`].
    pub memory_limit: Option<usize>,
    /// Resolver endpoints named with `--resolver`; empty: found in the data.
    pub resolvers: Vec<(String, u16)>,
}

impl EngineOptions {
    /// The pool size these options give.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit.unwrap_or_else(default_memory_limit)
    }
}

/// A `SessionContext` with dnsq's configuration and a bounded memory pool.
pub fn context(options: &EngineOptions) -> Result<SessionContext> {
    let config = SessionConfig::new().with_information_schema(true);
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(options.memory_limit()),
        NonZeroUsize::new(5).expect("5 is not zero"),
    );
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
        )
        .build_arc()?;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(OnceEach))
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// Each condition of a Parquet scan's predicate once. The Delta table's scan
/// builds its predicate from the query's filters, and DataFusion then pushes
/// the same filters into that scan again and joins them to it: every
/// condition was evaluated on every row twice, `leg`'s (three string columns
/// a row) among them. The conditions that compute `leg` go last
/// ([`reads_leg`]). The conditions and their meaning are unchanged.
#[derive(Debug)]
struct OnceEach;

impl PhysicalOptimizerRule for OnceEach {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(new) = once_each(&node) else {
                return Ok(Transformed::no(node));
            };
            Ok(Transformed::yes(new as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "dnsq_once_each"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with its Parquet predicate's repeated conditions dropped, if it is
/// such a scan and has any.
fn once_each(node: &Arc<dyn ExecutionPlan>) -> Option<Arc<DataSourceExec>> {
    let exec = node.downcast_ref::<DataSourceExec>()?;
    let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
    let parquet = config.file_source().downcast_ref::<ParquetSource>()?;
    let predicate = config.file_source().filter()?;
    let all = split_conjunction(&predicate);
    let mut once: Vec<Arc<dyn PhysicalExpr>> = Vec::with_capacity(all.len());
    for c in &all {
        if !once.iter().any(|o| o.as_ref() == c.as_ref()) {
            once.push(Arc::clone(c));
        }
    }
    // stable: the other conditions keep their order, `leg`'s follow them
    once.sort_by_key(reads_leg);
    let reordered = once.iter().zip(&all).any(|(o, a)| !Arc::ptr_eq(o, a));
    if once.len() == all.len() && !reordered {
        return None;
    }
    let source = parquet.with_predicate(conjunction(once));
    let config = FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(source))
        .build();
    Some(DataSourceExec::from_data_source(config))
}

/// Whether `condition` computes the `leg` column, the dearest condition a
/// scan evaluates: three columns a row. Evaluated last, it reads only the
/// rows the others kept: with a domain's filter before it, domain_timeline's
/// second scan computes `leg` for 0.4 M rows of 10 M instead of all of them.
fn reads_leg(condition: &Arc<dyn PhysicalExpr>) -> bool {
    condition
        .exists(|e| {
            Ok(e.downcast_ref::<ScalarFunctionExpr>()
                .is_some_and(|f| f.name() == LEG_FN))
        })
        .unwrap_or(false)
}

/// Half of the memory this process may use: the smaller of the machine's
/// MemTotal and the cgroup's (container's) `memory.max`. Half, because the
/// pool does not see everything (Parquet decoding, output buffers), and the
/// machine has other work.
pub fn default_memory_limit() -> usize {
    let total = meminfo_total().unwrap_or(2 * FALLBACK_MEMORY_LIMIT as u64);
    let total = match cgroup_limit() {
        Some(c) => total.min(c),
        None => total,
    };
    usize::try_from(total / 2).unwrap_or(usize::MAX)
}

/// `MemTotal` from /proc/meminfo, in bytes.
fn meminfo_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// cgroup v2 `memory.max` of this process (`max` means none).
fn cgroup_limit() -> Option<u64> {
    std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `2G`, `512M`, `1.5GiB`, `64k`, or plain bytes; binary multiples (1K = 1024).
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (try 2G, 512M)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("`{s}`: unknown unit (use K, M, G or T)")),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > usize::MAX as f64 {
        return Err(format!("`{s}` is not a usable size"));
    }
    Ok(bytes as usize)
}

/// `2147483648` → `2.0 GiB`, for messages.
pub fn format_size(bytes: usize) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2X").is_err());
        assert_eq!(format_size(2 << 30), "2.0 GiB");
        assert_eq!(format_size(100), "100 B");
    }

    #[test]
    fn default_limit_is_a_share_of_this_machine() {
        let limit = default_memory_limit();
        assert!(limit > 0);
        if let Some(total) = meminfo_total() {
            assert!(limit as u64 <= total / 2);
        }
    }
}
