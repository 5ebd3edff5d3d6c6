//! `percentiles(x, p1, p2, ...)`: several exact percentiles of one group from
//! one copy of its values, as a list (`p[1]` is the first).
//!
//! DataFusion's `percentile_cont` keeps every value of a group per call: the
//! saved `latency_percentiles` query (p50, p90 and p99) held three copies of
//! 10 M response times, and spent more time in the kernel, getting and
//! zeroing that memory, than computing. Each percentile here is
//! `percentile_cont`'s, to the bit: the same index `p * (n - 1)`, the same
//! interpolation weight rounded down to 10⁻⁶, the same minimum and maximum at
//! 0 and 1 (`percentile_cont_agrees` holds it to DataFusion's).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray, RecordBatch};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator, Signature, Volatility,
};

/// Steps of the interpolation weight, as `percentile_cont` rounds it.
const INTERPOLATION_PRECISION: f64 = 1_000_000.0;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Percentiles {
    signature: Signature,
}

impl Default for Percentiles {
    fn default() -> Self {
        Percentiles {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn list_of_f64() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

/// The percentiles asked for: every argument after the first, each a
/// literal number from 0 to 1.
fn fractions(args: &AccumulatorArgs) -> Result<Vec<f64>> {
    let nothing = RecordBatch::new_empty(Arc::new(Schema::empty()));
    args.exprs[1..]
        .iter()
        .map(|e| {
            // a literal evaluates without any row; a column does not
            let value = match e.evaluate(&nothing) {
                Ok(ColumnarValue::Scalar(v)) => v,
                _ => return plan_err!("percentiles: each percentile must be a number literal"),
            };
            let p = match value.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(p))) => p,
                _ => return plan_err!("percentiles: {value} is not a number"),
            };
            if !(0.0..=1.0).contains(&p) {
                return plan_err!("percentiles: {p} is not between 0 and 1");
            }
            Ok(p)
        })
        .collect()
}

impl AggregateUDFImpl for Percentiles {
    fn name(&self) -> &str {
        "percentiles"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 2 {
            return plan_err!(
                "percentiles(x, p1, p2, ...) takes a value and at least one percentile"
            );
        }
        if !args[0].is_numeric() && !args[0].is_null() {
            return plan_err!("percentiles: {} is not a number", args[0]);
        }
        Ok(list_of_f64())
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        Ok(vec![DataType::Float64; args.len()])
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            list_of_f64(),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One {
            values: Vec::new(),
            ps: fractions(&args)?,
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups {
            values: Vec::new(),
            ps: fractions(&args)?,
        }))
    }
}

/// The order statistics of `values`, found in rising rank: `values[..start]`
/// are each no greater than any of `values[start..]`, so the next rank is
/// looked for only among the rest. Three percentiles of a bucket cost about
/// what two selections over all its values cost, not six.
struct Ranks<'a> {
    values: &'a mut [f64],
    start: usize,
    known: Vec<(usize, f64)>,
}

impl Ranks<'_> {
    /// The `k`-th smallest value (from 0); `k` is one found before or at
    /// least `start`.
    fn get(&mut self, k: usize) -> f64 {
        let cmp = |a: &f64, b: &f64| a.total_cmp(b);
        if let Some(&(_, v)) = self.known.iter().find(|(i, _)| *i == k) {
            return v;
        }
        debug_assert!(k >= self.start, "rank {k} asked after {}", self.start);
        let rest = &mut self.values[self.start..];
        let v = if k == self.start {
            // the next rank: the smallest of the rest, moved to the front
            let (at, _) = rest
                .iter()
                .enumerate()
                .min_by(|a, b| cmp(a.1, b.1))
                .expect("k < len");
            rest.swap(0, at);
            rest[0]
        } else {
            *rest.select_nth_unstable_by(k - self.start, cmp).1
        };
        self.start = k + 1;
        self.known.push((k, v));
        v
    }

    /// `percentile_cont`'s value at `p`; `p` no smaller than the last asked.
    fn percentile(&mut self, p: f64) -> f64 {
        let n = self.values.len();
        let index = p * ((n - 1) as f64);
        let (lower, upper) = (index.floor() as usize, index.ceil() as usize);
        let low = self.get(lower);
        if lower == upper {
            return low;
        }
        let high = self.get(upper);
        let scaled = ((index - lower as f64) * INTERPOLATION_PRECISION) as usize;
        let weight = scaled as f64 / INTERPOLATION_PRECISION;
        low + (high - low) * weight
    }
}

/// The list of `ps` percentiles of `values` (reordered in place), as
/// `percentile_cont` gives each; null without values.
fn list(values: &mut [f64], ps: &[f64]) -> Option<Vec<Option<f64>>> {
    if values.is_empty() {
        return None;
    }
    let mut rising: Vec<usize> = (0..ps.len()).collect();
    rising.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut ranks = Ranks {
        values,
        start: 0,
        known: Vec::new(),
    };
    let mut out = vec![None; ps.len()];
    for i in rising {
        out[i] = Some(ranks.percentile(ps[i]));
    }
    Some(out)
}

/// Lists of values, one a group, as the state one partition hands another.
fn state_of(groups: Vec<Vec<f64>>) -> ArrayRef {
    let mut offsets = Vec::with_capacity(groups.len() + 1);
    offsets.push(0i32);
    for g in &groups {
        offsets.push(offsets[offsets.len() - 1] + g.len() as i32);
    }
    let flat: Vec<f64> = groups.into_iter().flatten().collect();
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(Float64Array::from(flat)),
        None,
    ))
}

fn lists(rows: impl Iterator<Item = Option<Vec<Option<f64>>>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(rows))
}

/// The accumulator of one group (DataFusion's fallback).
#[derive(Debug)]
struct One {
    values: Vec<f64>,
    ps: Vec<f64>,
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = values[0].as_primitive::<Float64Type>();
        self.values.extend(v.iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for l in states[0].as_list::<i32>().iter().flatten() {
            self.values
                .extend(l.as_primitive::<Float64Type>().iter().flatten());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let state = state_of(vec![std::mem::take(&mut self.values)]);
        Ok(vec![ScalarValue::try_from_array(&state, 0)?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let out = lists(std::iter::once(list(&mut self.values, &self.ps)));
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8 + self.ps.capacity() * 8
    }
}

/// The accumulator of every group of an aggregation: one vector of values
/// a group, whatever the number of percentiles.
#[derive(Debug)]
struct Groups {
    values: Vec<Vec<f64>>,
    ps: Vec<f64>,
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.values.resize_with(total_num_groups, Vec::new);
        let v = values[0].as_primitive::<Float64Type>();
        for (row, &g) in group_indices.iter().enumerate() {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if kept && v.is_valid(row) {
                self.values[g].push(v.value(row));
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.values.resize_with(total_num_groups, Vec::new);
        let states = values[0].as_list::<i32>();
        for (row, &g) in group_indices.iter().enumerate() {
            if states.is_valid(row) {
                let l = states.value(row);
                self.values[g].extend(l.as_primitive::<Float64Type>().iter().flatten());
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let mut groups = emit_to.take_needed(&mut self.values);
        Ok(lists(groups.iter_mut().map(|v| list(v, &self.ps))))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![state_of(emit_to.take_needed(&mut self.values))])
    }

    /// Each row as a group of its own (when the partial aggregation finds
    /// too few rows a group to be worth it).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let v = values[0].as_primitive::<Float64Type>();
        let rows = (0..v.len()).map(|row| {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            // a row without a value is an empty list, as a group without one
            Some(if kept && v.is_valid(row) {
                vec![Some(v.value(row))]
            } else {
                vec![]
            })
        });
        Ok(vec![lists(rows)])
    }

    fn size(&self) -> usize {
        self.values.iter().map(|v| v.capacity() * 8).sum::<usize>()
            + self.values.capacity() * std::mem::size_of::<Vec<f64>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::prelude::SessionContext;

    /// In one call, in any order, repeated, at the ends: each percentile is
    /// what interpolating in the sorted values gives.
    #[test]
    fn ranks_in_any_order_agree_with_sorting() {
        let mut seed = 7u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..500 {
            let n = 1 + (next() % 60) as usize;
            let values: Vec<f64> = (0..n).map(|_| (next() % 50) as f64 / 4.0).collect();
            let mut ps: Vec<f64> = (0..1 + round % 5)
                .map(|_| [0.0, 1.0, 0.5, 0.9, 0.99, 0.25][(next() % 6) as usize])
                .collect();
            ps.push((next() % 1000) as f64 / 1000.0);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let want: Vec<Option<f64>> = ps
                .iter()
                .map(|&p| {
                    let index = p * ((n - 1) as f64);
                    let (lo, hi) = (index.floor() as usize, index.ceil() as usize);
                    let scaled = ((index - lo as f64) * INTERPOLATION_PRECISION) as usize;
                    let w = scaled as f64 / INTERPOLATION_PRECISION;
                    Some(if lo == hi {
                        sorted[lo]
                    } else {
                        sorted[lo] + (sorted[hi] - sorted[lo]) * w
                    })
                })
                .collect();
            let mut v = values.clone();
            assert_eq!(list(&mut v, &ps), Some(want), "{values:?} {ps:?}");
        }
        assert_eq!(list(&mut [], &[0.5]), None);
    }

    /// Over odd sets of values (ties, a lone value, negatives, nulls, an
    /// empty group), each percentile equals `percentile_cont`'s own.
    #[tokio::test]
    async fn percentile_cont_agrees() {
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::new_from_impl(Percentiles::default()));
        ctx.sql(
            "CREATE TABLE t (g INT, x DOUBLE) AS VALUES \
             (1, 0.426), (1, 1.11), (1, 3.97), (1, 4.73), (1, 0.093), (1, 0.093), (1, 7.0), \
             (2, 5.5), (3, -1.0), (3, 2.0), (3, NULL), (3, 10.25), (4, NULL), \
             (5, 1.0), (5, 2.0), (5, 3.0), (5, 4.0), (5, 5.0), (5, 6.0), (5, 7.0), (5, 8.0), (5, 9.0), (5, 1e-3)",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let ps = [0.0, 0.1, 0.333, 0.5, 0.9, 0.99, 1.0];
        let ours: Vec<String> = ps
            .iter()
            .enumerate()
            .map(|(i, _)| format!("p[{}]", i + 1))
            .collect();
        let theirs: Vec<String> = ps
            .iter()
            .map(|p| format!("percentile_cont({p}) WITHIN GROUP (ORDER BY x)"))
            .collect();
        let list: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
        let sql =
            format!(
            "SELECT a.g, {}, {} FROM (SELECT g, percentiles(x, {}) AS p FROM t GROUP BY g) AS a \
             JOIN (SELECT g, {} FROM t GROUP BY g) AS b ON a.g = b.g ORDER BY a.g",
            ours.join(", "),
            (0..ps.len()).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", "),
            list.join(", "),
            theirs
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{e} AS c{i}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(b.num_rows(), 5);
        let n = ps.len();
        for row in 0..b.num_rows() {
            for (i, p) in ps.iter().enumerate() {
                let (ours, theirs) = (b.column(1 + i), b.column(1 + n + i));
                let ours = ours.as_primitive::<Float64Type>();
                let theirs = theirs.as_primitive::<Float64Type>();
                assert_eq!(ours.is_null(row), theirs.is_null(row), "row {row} p{i}");
                if !theirs.is_null(row) {
                    assert_eq!(
                        ours.value(row).to_bits(),
                        theirs.value(row).to_bits(),
                        "row {row}: percentile {p} is {} here, {} in percentile_cont",
                        ours.value(row),
                        theirs.value(row)
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn percentiles_are_number_literals_from_0_to_1() {
        let ctx = SessionContext::new();
        ctx.register_udaf(AggregateUDF::new_from_impl(Percentiles::default()));
        for bad in ["percentiles(x, 1.5)", "percentiles(x, x)", "percentiles(x)"] {
            let r = async {
                ctx.sql(&format!("SELECT {bad} FROM (VALUES (1.0)) AS t(x)"))
                    .await?
                    .collect()
                    .await
            }
            .await;
            assert!(r.is_err(), "{bad} was accepted");
        }
    }
}
