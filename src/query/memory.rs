//! Transactions held in memory for `dnsq serve`: the columns its panels
//! read, laid out so that the scans a page load repeats are cheap.
//!
//! Two choices, both measured on 10 M rows (docs/BENCHMARKS.md, "Dashboard"):
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

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};

use crate::dataset::schema::TS;
use crate::error::Result;

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

/// Batches of transactions in memory, each sorted by `ts`.
pub struct Held {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// What the arrays take.
    pub bytes: usize,
}

impl Held {
    /// Holds `batches` (of `schema`): [`FEW`]'s string columns become
    /// dictionaries, and a batch not sorted by `ts` is sorted.
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
        let mut out = Vec::with_capacity(batches.len());
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
            out.push(b);
        }
        let bytes = out.iter().map(|b| b.get_array_memory_size()).sum();
        Ok(Held {
            schema: held,
            batches: out,
            bytes,
        })
    }

    /// The rows with `since <= ts < until` (microseconds; an open end is
    /// unbounded), as slices of the held batches.
    pub fn range(&self, since: Option<i64>, until: Option<i64>) -> Vec<RecordBatch> {
        let Ok(i) = self.schema.index_of(TS) else {
            return self.batches.clone();
        };
        // nulls sort first and fall outside any bounded range
        let bounded = since.is_some() || until.is_some();
        self.batches
            .iter()
            .filter_map(|b| {
                let ts = b.column(i).as_primitive::<TimestampMicrosecondType>();
                let values = ts.values();
                let from = since.map_or(if bounded { ts.null_count() } else { 0 }, |s| {
                    first_at_least(ts, s)
                });
                let to = until.map_or(values.len(), |u| first_at_least(ts, u));
                (to > from).then(|| b.slice(from, to - from))
            })
            .collect()
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
mod tests {
    use super::*;
    use arrow::array::{StringViewArray, TimestampMicrosecondArray};

    fn batch(ts: Vec<Option<i64>>, status: Vec<&str>) -> (Schema, RecordBatch) {
        let schema = Schema::new(vec![
            Field::new(
                TS,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("status", DataType::Utf8View, false),
            Field::new("client_ip", DataType::Utf8View, false),
        ]);
        let n = ts.len();
        let b = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                Arc::new(StringViewArray::from(status)),
                Arc::new(StringViewArray::from(vec!["192.0.2.1"; n])),
            ],
        )
        .unwrap();
        (schema, b)
    }

    fn times(batches: &[RecordBatch]) -> Vec<Option<i64>> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn few_valued_strings_become_dictionaries_and_others_stay() {
        let (schema, b) = batch(vec![Some(1), Some(2)], vec!["answered", "unanswered"]);
        let held = Held::new(&schema, vec![b]).unwrap();
        assert_eq!(held.schema.field(1).data_type(), &dictionary());
        assert_eq!(held.schema.field(2).data_type(), &DataType::Utf8View);
        let status = cast(held.batches[0].column(1), &DataType::Utf8).unwrap();
        let status: Vec<_> = status.as_string::<i32>().iter().flatten().collect();
        assert_eq!(status, ["answered", "unanswered"]);
    }

    #[test]
    fn an_unsorted_batch_is_sorted_with_its_rows() {
        let (schema, b) = batch(
            vec![Some(5), None, Some(1), Some(3)],
            vec!["e", "n", "a", "c"],
        );
        let held = Held::new(&schema, vec![b]).unwrap();
        assert_eq!(times(&held.batches), [None, Some(1), Some(3), Some(5)]);
        let status = cast(held.batches[0].column(1), &DataType::Utf8).unwrap();
        let status: Vec<_> = status.as_string::<i32>().iter().flatten().collect();
        assert_eq!(status, ["n", "a", "c", "e"]);
    }

    #[test]
    fn a_range_is_the_rows_a_filter_would_keep() {
        let (schema, a) = batch(vec![Some(1), Some(4), Some(4), Some(9)], vec!["x"; 4]);
        let (_, b) = batch(vec![None, Some(2), Some(7)], vec!["x"; 3]);
        let held = Held::new(&schema, vec![a, b]).unwrap();
        let all = times(&held.batches);
        for since in [None, Some(0), Some(2), Some(4), Some(5), Some(10)] {
            for until in [None, Some(0), Some(4), Some(7), Some(8), Some(20)] {
                let want: Vec<_> = all
                    .iter()
                    .copied()
                    .filter(|t| match t {
                        None => since.is_none() && until.is_none(),
                        Some(t) => since.is_none_or(|s| *t >= s) && until.is_none_or(|u| *t < u),
                    })
                    .collect();
                let got = times(&held.range(since, until));
                assert_eq!(got, want, "since {since:?} until {until:?}");
            }
        }
    }
}
