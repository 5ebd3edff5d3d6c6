//! Sessions over rows held in memory: `dnsq serve` reads the panels'
//! columns once ([`Session::in_memory`]) and answers each view from a
//! narrowed copy ([`Session::narrowed`]), never decoding Parquet again.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::query::{memory, Session, RAW};

/// Rows per batch of what [`Session::in_memory`] holds.
const HELD_BATCH: usize = 65536;

impl Session {
    /// A session like [`Session::fork`]'s whose `transactions` (and the raw
    /// table under it) are `columns` of this one's, read once into memory
    /// with `leg` computed and laid out as [`memory::Held`] says: what
    /// `dnsq serve`'s panels query, each then scanning memory instead of
    /// decoding Parquet and finding legs again.
    pub async fn in_memory(&self, columns: &[&str]) -> Result<Session> {
        use futures::TryStreamExt;
        self.legs.ensure(&self.ctx, RAW).await?;
        // Fewer, larger batches: each panel's scan pays its per-batch costs
        // once per HELD_BATCH rows (and a batch is cut into its legs' runs).
        let mut state = self.ctx.state();
        state.config_mut().options_mut().execution.batch_size =
            datafusion::common::config::ConfigNonZeroUsize::try_new(HELD_BATCH)?;
        let df = SessionContext::new_with_state(state)
            .table("transactions")
            .await?
            .select_columns(columns)?;
        let schema = df.schema().as_arrow().clone();
        let batches: Vec<RecordBatch> = df.execute_stream().await?.try_collect().await?;
        let held = Arc::new(memory::Held::new(&schema, batches)?);
        let mem = self.held_table(held.clone(), (None, None));
        let captures = self.ctx.table_provider("captures").await?;
        let mut session = self.fork_with(vec![
            (RAW, mem.clone()),
            ("captures", captures),
            ("transactions", mem),
        ])?;
        session.held = Some(held);
        Ok(session)
    }

    /// The bytes of the rows [`Session::in_memory`] holds (0 for a session
    /// that reads files).
    pub fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.bytes)
    }

    /// `held`'s rows in `window` as a table, read in the engine's partitions.
    fn held_table(
        &self,
        held: Arc<memory::Held>,
        window: (Option<i64>, Option<i64>),
    ) -> Arc<dyn datafusion::catalog::TableProvider> {
        let n = self.ctx.state().config().target_partitions();
        Arc::new(memory::HeldTable::new(held, window, n))
    }

    /// A session whose `transactions` holds only the rows `filters` admit in
    /// `[since, until)` (microseconds; the queries still bound their own
    /// range) of the rows [`Session::in_memory`] holds, over the same raw
    /// table (so spans, and with them `bucket auto`, stay those of the whole
    /// data, as with [`Session::filter`]). The range is a slice of each held
    /// batch, no copy; only the rows the filters keep are copied. Also
    /// returns the bytes the copy takes.
    pub async fn narrowed(
        &self,
        filters: &[(String, String)],
        range: (Option<i64>, Option<i64>),
    ) -> Result<(Session, usize)> {
        use futures::TryStreamExt;
        let held = self
            .held
            .as_ref()
            .ok_or_else(|| Error::Usage("a narrowed view needs the rows held in memory".into()))?;
        let raw = self.ctx.table_provider(RAW).await?;
        let captures = self.ctx.table_provider("captures").await?;
        let slices = self.held_table(held.clone(), range);
        let s = self.fork_with(vec![
            (RAW, raw.clone()),
            ("captures", captures.clone()),
            ("transactions", slices),
        ])?;
        if filters.is_empty() {
            return Ok((s, 0));
        }
        s.filter(filters).await?;
        let df = s.ctx.table("transactions").await?;
        let schema = df.schema().as_arrow().clone();
        let batches: Vec<RecordBatch> = df.execute_stream().await?.try_collect().await?;
        let sub = Arc::new(memory::Held::new(&schema, batches)?);
        let bytes = sub.bytes;
        let sub = self.held_table(sub, (None, None));
        let session = self.fork_with(vec![
            (RAW, raw),
            ("captures", captures),
            ("transactions", sub),
        ])?;
        Ok((session, bytes))
    }
}
