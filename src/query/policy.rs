//! What a `dnsq sql` statement may do: read-only unless `--allow-write`, and
//! never a write inside the dataset directory.
//!
//! In: a planned `LogicalPlan` (before it runs). Out: `Ok(())`, or
//! `Error::Refused` saying what the statement would have done and how to allow it.
//!
//! Read-only (the default) allows queries, `EXPLAIN`, `SET` (but not
//! `datafusion.runtime.*`), and `CREATE [TEMPORARY] VIEW` / `DROP VIEW`:
//! a view is a named query that lives only in this session's memory, so a
//! multi-statement script can name a sub-result without writing anything.
//! It refuses every other DDL (`CREATE EXTERNAL TABLE` reads any file the
//! user can read; `CREATE TABLE AS` materialises a result outside the memory
//! pool), DML (`INSERT`, `DELETE`, `UPDATE`) and `COPY`.
//!
//! `--allow-write` allows those, except a write whose target resolves inside
//! the dataset directory (symlinks and `..` resolved): `COPY ... TO` there, or
//! DML on one of the dataset's own tables or on a table whose files lie there.
//! A write to a table whose location cannot be told is refused too.
//! `SET datafusion.runtime.*` is always refused: it would replace the memory
//! pool sized by `--memory-limit` or move spill files.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::{source_as_provider, MemTable};
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{DdlStatement, DmlStatement, LogicalPlan, Statement};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// Why a statement was refused, and the flag that would allow it.
pub const READ_ONLY: &str = "dnsq sql is read-only; pass --allow-write to allow it \
(never inside the dataset directory)";

/// Checks statements against the session's write permission.
pub struct Guard {
    allow_write: bool,
    /// The dataset directory, canonical.
    dataset: PathBuf,
    /// Tables registered by `Session::open`: the dataset's own.
    dataset_tables: Vec<(String, Arc<dyn TableProvider>)>,
}

impl Guard {
    /// A guard for `ctx`, taken right after `Session::open` registered the
    /// dataset's tables in it: every table then in the default schema is the
    /// dataset's.
    pub async fn new(ctx: &SessionContext, dataset: &Path, allow_write: bool) -> Result<Guard> {
        // on an object store no local path lies inside the dataset
        let dataset = match crate::dataset::remote::url_of(dataset) {
            Some(_) => dataset.to_path_buf(),
            None => std::fs::canonicalize(dataset).map_err(|e| Error::io(dataset, e))?,
        };
        let state = ctx.state();
        let names = &state.config().options().catalog;
        let schema = ctx
            .catalog(&names.default_catalog)
            .and_then(|c| c.schema(&names.default_schema));
        let mut dataset_tables = Vec::new();
        if let Some(schema) = schema {
            for name in schema.table_names() {
                if let Some(t) = schema.table(&name).await? {
                    dataset_tables.push((name, t));
                }
            }
        }
        Ok(Guard {
            allow_write,
            dataset,
            dataset_tables,
        })
    }

    /// DataFusion's own check, kept behind [`Guard::check`]: in read-only
    /// mode no DML or COPY node passes even if `check` missed one.
    pub fn sql_options(&self) -> SQLOptions {
        SQLOptions::new().with_allow_dml(self.allow_write)
    }

    /// `Ok` if `plan` (with its subqueries) may run.
    pub fn check(&self, plan: &LogicalPlan) -> Result<()> {
        let mut refusal = None;
        plan.apply_with_subqueries(|node| {
            refusal = self.check_node(node);
            Ok(if refusal.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        match refusal {
            Some(msg) => Err(Error::Refused(msg)),
            None => Ok(()),
        }
    }

    fn check_node(&self, node: &LogicalPlan) -> Option<String> {
        match node {
            LogicalPlan::Ddl(DdlStatement::CreateView(_) | DdlStatement::DropView(_)) => None,
            LogicalPlan::Ddl(ddl) if !self.allow_write => Some(match ddl {
                DdlStatement::CreateExternalTable(t) => format!(
                    "CREATE EXTERNAL TABLE reads files outside the dataset ({}): {READ_ONLY}",
                    t.locations.join(", ")
                ),
                DdlStatement::CreateMemoryTable(_) => format!(
                    "CREATE TABLE materialises a result in memory: {READ_ONLY}; \
                     CREATE VIEW names a query without that"
                ),
                other => format!("{} changes the catalog: {READ_ONLY}", other.name()),
            }),
            LogicalPlan::Dml(dml) => self.check_dml(dml),
            LogicalPlan::Copy(copy) => {
                if !self.allow_write {
                    return Some(format!(
                        "COPY writes files ({}): {READ_ONLY}",
                        copy.output_url
                    ));
                }
                match ListingTableUrl::parse(&copy.output_url) {
                    Ok(url) => self.check_target(&url, "COPY"),
                    Err(e) => Some(format!("COPY to {}: {e}", copy.output_url)),
                }
            }
            LogicalPlan::Statement(Statement::SetVariable(s))
                if is_runtime_setting(&s.variable) =>
            {
                Some(runtime_refusal(&s.variable))
            }
            LogicalPlan::Statement(Statement::ResetVariable(s))
                if is_runtime_setting(&s.variable) =>
            {
                Some(runtime_refusal(&s.variable))
            }
            _ => None,
        }
    }

    fn check_dml(&self, dml: &DmlStatement) -> Option<String> {
        let what = format!("{} on {}", dml.op, dml.table_name);
        if !self.allow_write {
            return Some(format!("{what} writes data: {READ_ONLY}"));
        }
        let target = match source_as_provider(&dml.target) {
            Ok(t) => t,
            Err(e) => return Some(format!("{what}: {e}")),
        };
        if self
            .dataset_tables
            .iter()
            .any(|(name, t)| name == dml.table_name.table() || same_provider(t, &target))
        {
            return Some(format!(
                "{what}: the dataset's tables change only through `dnsq ingest`"
            ));
        }
        if target.as_ref().is::<MemTable>() {
            return None;
        }
        match target.as_ref().downcast_ref::<ListingTable>() {
            Some(listing) => listing
                .table_paths()
                .iter()
                .find_map(|url| self.check_target(url, &what)),
            None => Some(format!(
                "{what}: cannot tell where this table writes, so dnsq does not write to it"
            )),
        }
    }

    /// Refuses a local target inside the dataset directory.
    fn check_target(&self, url: &ListingTableUrl, what: &str) -> Option<String> {
        if url.scheme() != "file" {
            return None;
        }
        let path = url.get_url().to_file_path().ok()?;
        let resolved = resolve(&path);
        resolved.starts_with(&self.dataset).then(|| {
            format!(
                "{what}: {} is inside the dataset directory {}; dnsq sql never writes there",
                path.display(),
                self.dataset.display()
            )
        })
    }
}

fn same_provider(a: &Arc<dyn TableProvider>, b: &Arc<dyn TableProvider>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

fn is_runtime_setting(variable: &str) -> bool {
    variable
        .to_ascii_lowercase()
        .starts_with("datafusion.runtime.")
}

fn runtime_refusal(variable: &str) -> String {
    format!(
        "{variable}: runtime settings are fixed when dnsq starts (use --memory-limit for the \
         memory pool)"
    )
}

/// `path` made absolute with symlinks resolved, as far as it exists; the part
/// that does not exist yet is appended with `.` and `..` applied.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let comps: Vec<Component> = abs.components().collect();
    for k in (0..=comps.len()).rev() {
        let prefix: PathBuf = comps[..k].iter().collect();
        if let Ok(mut base) = std::fs::canonicalize(&prefix) {
            for c in &comps[k..] {
                match c {
                    Component::ParentDir => {
                        base.pop();
                    }
                    Component::Normal(n) => base.push(n),
                    _ => {}
                }
            }
            return base;
        }
    }
    abs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_symlinks_and_dotdot() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let data = root.join("data");
        std::fs::create_dir(&data).unwrap();
        assert_eq!(
            resolve(&root.join("x/../data/new.csv")),
            data.join("new.csv")
        );
        assert_eq!(resolve(&root.join("data/./a/b")), data.join("a/b"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&data, root.join("link")).unwrap();
            assert_eq!(
                resolve(&root.join("link/t.parquet")),
                data.join("t.parquet")
            );
        }
        assert!(!resolve(&root.join("data/../other.csv")).starts_with(&data));
    }
}
