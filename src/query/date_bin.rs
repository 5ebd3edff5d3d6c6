//! `date_bin` over timestamp arrays in whole-unit buckets (every saved
//! query's time axis): one comparison a row on rows in time order, one
//! division where the bin changes. DataFusion's own bins each value
//! through a function pointer with checked arithmetic and builds a null mask
//! row by row, which took 11% of `dnsq serve`'s time on a change of bucket
//! width (perf, 10 M rows). Every other call (a month stride, a scalar,
//! values near the ends of the range) goes to DataFusion's, so the answers
//! are DataFusion's.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowTimestampType, DataType, Field, FieldRef, IntervalMonthDayNanoType, TimeUnit,
    TimestampMicrosecondType, TimestampNanosecondType,
};
use datafusion::error::Result;
use datafusion::functions::datetime::date_bin::DateBinFunc;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::scalar::ScalarValue;

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// `date_bin`, as DataFusion defines it, with the fast path above, and a
/// timestamp binned in its own unit.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateBin {
    inner: DateBinFunc,
    signature: Signature,
}

impl Default for DateBin {
    fn default() -> Self {
        DateBin {
            inner: DateBinFunc::new(),
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DateBin {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// DataFusion's coercion, except that a timestamp keeps its unit.
    /// DataFusion's signature takes every unit, but its coercion picks the
    /// first type an argument casts to, nanoseconds: every microsecond `ts`
    /// was cast before binning, 12% of a time-series panel's CPU (perf).
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let fields: Vec<FieldRef> = arg_types
            .iter()
            .map(|t| Arc::new(Field::new("arg", t.clone(), true)))
            .collect();
        let inner = ScalarUDF::new_from_impl(DateBinFunc::new());
        let mut types: Vec<DataType> = fields_with_udf(&fields, &inner)?
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if let (Some(t @ DataType::Timestamp(..)), Some(c)) = (arg_types.get(1), types.get_mut(1)) {
            *c = t.clone();
        }
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match fast(&args.args) {
            Some(v) => Ok(v),
            None => self.inner.invoke_with_args(args),
        }
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// The bins of a nanosecond or microsecond timestamp array (`ts` is
/// microseconds, and stays so: see `coerce_types`), when
/// the stride and origin are whole units and every value is far from
/// overflow: then DataFusion's checked arithmetic gives no NULL, and
/// flooring in the array's unit gives the same bins.
fn fast(args: &[ColumnarValue]) -> Option<ColumnarValue> {
    let stride = match args.first()? {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(v))) => {
            let (months, days, nanos) = IntervalMonthDayNanoType::to_parts(*v);
            if months != 0 {
                return None;
            }
            (days as i64)
                .checked_mul(NANOS_PER_DAY)?
                .checked_add(nanos)?
        }
        _ => return None,
    };
    let origin = match args.get(2) {
        None => 0,
        Some(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(Some(o), _))) => *o,
        Some(_) => return None,
    };
    let ColumnarValue::Array(array) = args.get(1)? else {
        return None;
    };
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            bins::<TimestampNanosecondType>(array, stride, origin, 1, tz)
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            bins::<TimestampMicrosecondType>(array, stride, origin, NANOS_PER_MICRO, tz)
        }
        _ => None,
    }
}

/// `array`'s bins, its values being `unit` nanoseconds each.
fn bins<T: ArrowTimestampType>(
    array: &ArrayRef,
    stride: i64,
    origin: i64,
    unit: i64,
    tz: &Option<Arc<str>>,
) -> Option<ColumnarValue> {
    if stride <= 0 || stride % unit != 0 || origin % unit != 0 {
        return None;
    }
    let (stride, origin) = (stride / unit, origin / unit);
    // a quarter of what the unit's nanoseconds hold in i64, either side
    let limit = i64::MAX / unit / 4;
    if origin.abs() > limit {
        return None;
    }
    let ts = array.as_primitive::<T>();
    // The rows come in time order (held rows and dataset files are sorted by
    // time), so a row usually falls in the previous row's bin: one comparison
    // instead of a division, and the overflow check only when the bin changes
    // (a bin is [lo, hi); it starts empty).
    let (mut lo, mut hi) = (0, 0);
    let mut out = Vec::with_capacity(ts.len());
    for &v in ts.values().iter() {
        if v < lo || v >= hi {
            if v.unsigned_abs() > limit.unsigned_abs() {
                return None;
            }
            let d = v - origin;
            lo = origin + d - d.rem_euclid(stride);
            hi = lo.saturating_add(stride);
        }
        out.push(lo);
    }
    let binned =
        PrimitiveArray::<T>::new(out.into(), ts.nulls().cloned()).with_timezone_opt(tz.clone());
    Some(ColumnarValue::Array(Arc::new(binned)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field, IntervalMonthDayNano};
    use datafusion::config::ConfigOptions;

    fn call(f: &dyn ScalarUDFImpl, args: Vec<ColumnarValue>) -> ArrayRef {
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect::<Vec<_>>();
        let types: Vec<DataType> = args.iter().map(|a| a.data_type()).collect();
        let out = f
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields,
                number_rows: 0,
                return_field: Arc::new(Field::new("r", f.return_type(&types).unwrap(), true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .unwrap();
        match out {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(s) => s.to_array().unwrap(),
        }
    }

    /// The fast path gives DataFusion's bins, value for value, for strides
    /// and origins it takes and for those it hands on.
    #[test]
    fn bins_as_datafusion_does() {
        let values: Vec<Option<i64>> = vec![
            Some(1_699_999_999_999_999),
            Some(1_700_000_000_000_000),
            Some(1_700_000_000_123_457),
            None,
            Some(0),
            Some(-1),
            Some(-1_000_001),
            Some(86_399_999_999),
            Some(i64::MAX / 1000 / 4),
            Some(i64::MAX / 1000 + 1),
        ];
        let interval = |days: i32, nanos: i64| {
            ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(0, days, nanos),
            )))
        };
        let strides = [
            interval(0, 1_000),
            interval(0, 1_000_000_000),
            interval(0, 60_000_000_000),
            interval(0, 7_000_000_000),
            interval(1, 0),
            interval(0, 1_500),
            interval(0, 999),
        ];
        let origins = [None, Some(0), Some(1_000), Some(-7_000_000_000), Some(123)];
        let ours = DateBin::default();
        let theirs = DateBinFunc::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for safe in [true, false] {
            let values: Vec<Option<i64>> = if safe {
                values[..values.len() - 1].to_vec()
            } else {
                values.clone()
            };
            let nanos: Vec<Option<i64>> = values
                .iter()
                .map(|v| v.map(|v| v.saturating_mul(1000).saturating_add(v.rem_euclid(7))))
                .collect();
            arrays.push(Arc::new(
                TimestampMicrosecondArray::from(values).with_timezone("UTC"),
            ));
            arrays.push(Arc::new(TimestampNanosecondArray::from(nanos)));
        }
        // in time order, as the held rows come: runs within a bin, then the next
        let sorted: Vec<i64> = (0..5_000)
            .map(|i| 1_700_000_000_000_000 - 2_000_000 + i * 997 + (i % 3))
            .collect();
        arrays.push(Arc::new(
            TimestampMicrosecondArray::from(sorted.clone()).with_timezone("UTC"),
        ));
        arrays.push(Arc::new(TimestampNanosecondArray::from(
            sorted.iter().map(|v| v * 1000 + 7).collect::<Vec<_>>(),
        )));
        for array in arrays {
            let array = ColumnarValue::Array(array);
            for stride in &strides {
                for origin in &origins {
                    let mut args = vec![stride.clone(), array.clone()];
                    if let Some(o) = origin {
                        args.push(ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
                            Some(*o),
                            Some("UTC".into()),
                        )));
                    }
                    let want = call(&theirs, args.clone());
                    let got = call(&ours, args.clone());
                    assert_eq!(&got, &want, "stride {stride:?} origin {origin:?}");
                }
            }
        }
    }

    /// In SQL, a microsecond `ts` is binned as it is, with no cast of every
    /// row to nanoseconds, into the bins DataFusion's own `date_bin` gives;
    /// other arguments are coerced as DataFusion coerces them.
    #[tokio::test]
    async fn a_timestamp_keeps_its_unit_and_bins_as_datafusion_does() {
        use arrow::compute::cast;
        use datafusion::datasource::MemTable;
        use datafusion::prelude::SessionContext;
        let ts = TimestampMicrosecondArray::from(vec![
            Some(1_699_999_999_999_999),
            None,
            Some(1_700_000_000_123_457),
            Some(-1_000_001),
        ])
        .with_timezone("UTC");
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![Field::new(
            "ts",
            ts.data_type().clone(),
            true,
        )]));
        let batch =
            arrow::record_batch::RecordBatch::try_new(schema.clone(), vec![Arc::new(ts)]).unwrap();
        let (ours, theirs) = (SessionContext::new(), SessionContext::new());
        ours.register_udf(ScalarUDF::new_from_impl(DateBin::default()));
        for ctx in [&ours, &theirs] {
            let t = MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
        }
        for (call, unit) in [
            (
                "date_bin(INTERVAL '1 minute', ts)",
                Some(TimeUnit::Microsecond),
            ),
            (
                "date_bin(INTERVAL '7 seconds', ts, TIMESTAMP '2001-01-01T00:00:03Z')",
                Some(TimeUnit::Microsecond),
            ),
            (
                "date_bin(INTERVAL '1 month', ts)",
                Some(TimeUnit::Microsecond),
            ),
            ("date_bin(INTERVAL '1 hour', '2024-01-01T10:20:00Z')", None),
        ] {
            let sql = format!("SELECT {call} AS b FROM t");
            let got = ours.sql(&sql).await.unwrap();
            let plan = format!("{:?}", got.clone().create_physical_plan().await.unwrap());
            assert!(!plan.contains("CAST(ts"), "{call}: {plan}");
            let got = got.collect().await.unwrap();
            let want = theirs.sql(&sql).await.unwrap().collect().await.unwrap();
            let (got, want) = (got[0].column(0), want[0].column(0));
            if let Some(unit) = unit {
                assert_eq!(
                    got.data_type(),
                    &DataType::Timestamp(unit, Some("UTC".into())),
                    "{call}"
                );
            } else {
                assert_eq!(got.data_type(), want.data_type(), "{call}");
            }
            assert_eq!(&cast(want, got.data_type()).unwrap(), got, "{call}");
        }
    }

    #[test]
    fn takes_whole_units_only() {
        let array = ColumnarValue::Array(Arc::new(TimestampMicrosecondArray::from(vec![5])));
        let stride = |nanos| {
            ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(0, 0, nanos),
            )))
        };
        assert!(fast(&[stride(1_000), array.clone()]).is_some());
        assert!(fast(&[stride(1_500), array.clone()]).is_none());
        assert!(fast(&[stride(-1_000), array.clone()]).is_none());
        let months = ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano::new(1, 0, 0),
        )));
        assert!(fast(&[months, array]).is_none());
        // nanoseconds, as the planner casts `ts` for DataFusion's signature
        let ns = ColumnarValue::Array(Arc::new(TimestampNanosecondArray::from(vec![5])));
        assert!(fast(&[stride(1), ns.clone()]).is_some());
        assert!(fast(&[stride(0), ns]).is_none());
    }
}
