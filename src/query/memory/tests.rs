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
            let got = times(&held.select(None, since, until));
            assert_eq!(got, want, "since {since:?} until {until:?}");
        }
    }
}

/// Rows of (ts, leg) in two batches, unsorted, with null times and legs.
fn legged() -> (Schema, Vec<RecordBatch>) {
    let schema = Schema::new(vec![
        Field::new(
            TS,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(LEG, DataType::Utf8View, true),
        Field::new("n", DataType::Int64, false),
    ]);
    let make = |rows: Vec<(Option<i64>, Option<&str>)>, first: i64| {
        let n = rows.len() as i64;
        RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                Arc::new(StringViewArray::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                Arc::new(arrow::array::Int64Array::from_iter_values(first..first + n)),
            ],
        )
        .unwrap()
    };
    let a = make(
        vec![
            (Some(5), Some("upstream")),
            (Some(1), Some("downstream")),
            (None, Some("downstream")),
            (Some(3), None),
            (Some(3), Some("upstream")),
            (Some(8), Some("downstream")),
            (Some(2), Some("other")),
        ],
        0,
    );
    let b = make(
        vec![
            (Some(4), Some("downstream")),
            (Some(6), Some("downstream")),
            (Some(9), Some("downstream")),
        ],
        100,
    );
    (schema, vec![a, b])
}

#[test]
fn each_batch_holds_its_legs_apart_each_in_time_order() {
    let (schema, batches) = legged();
    let held = Held::new(&schema, batches).unwrap();
    let legs: Vec<Vec<Option<&str>>> = held.runs[0]
        .iter()
        .map(|(_, r)| {
            let legs = held.batches[0].column(1).as_string_view();
            r.clone()
                .map(|i| legs.is_valid(i).then(|| legs.value(i)))
                .collect()
        })
        .collect();
    assert_eq!(
        legs,
        [
            vec![Some("downstream"); 3],
            vec![Some("upstream"); 2],
            vec![Some("other")],
            vec![None]
        ]
    );
    assert_eq!(
        times(&held.batches[..1]),
        [None, Some(1), Some(8), Some(3), Some(5), Some(2), Some(3)]
    );
    // a batch of one leg is one run, untouched
    assert_eq!(held.runs[1], [(Some("downstream".to_string()), 0..3)]);
}

/// Every filter on `leg` and `ts` gives over a [`HeldTable`] the rows
/// it gives over the same rows as a plain memory table, and those it
/// applies itself leave no filter in the plan.
#[tokio::test]
async fn a_held_table_answers_as_a_memory_table_does() {
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;
    let (schema, batches) = legged();
    let ctx = SessionContext::new();
    let plain = MemTable::try_new(Arc::new(schema.clone()), vec![batches.clone()]).unwrap();
    ctx.register_table("plain", Arc::new(plain)).unwrap();
    let held = Arc::new(Held::new(&schema, batches).unwrap());
    ctx.register_table(
        "held",
        Arc::new(HeldTable::new(held.clone(), (None, None), 2)),
    )
    .unwrap();
    // a window: only rows in [2, 9)
    ctx.register_table(
        "window",
        Arc::new(HeldTable::new(held, (Some(2), Some(9)), 3)),
    )
    .unwrap();
    let t = |us: i64| format!("'1970-01-01T00:00:00.{us:06}Z'");
    let filters = [
        "true".to_string(),
        "leg = 'downstream'".into(),
        "'upstream' = leg".into(),
        "leg = 'nowhere'".into(),
        "leg = 'downstream' AND leg = 'upstream'".into(),
        "leg IS NULL".into(),
        "leg <> 'downstream'".into(),
        format!("ts >= {}", t(3)),
        format!("ts > {}", t(3)),
        format!("ts < {}", t(5)),
        format!("ts <= {}", t(5)),
        format!("{} <= ts AND ts < {} AND leg = 'downstream'", t(4), t(9)),
        format!("ts = {}", t(3)),
        "ts IS NULL".into(),
        format!("leg = 'upstream' OR ts > {}", t(7)),
    ];
    let rows = |sql: String| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_primitive::<arrow::datatypes::Int64Type>()
                        .values()
                        .to_vec()
                })
                .collect::<Vec<i64>>()
        }
    };
    for f in &filters {
        let want = rows(format!("SELECT n FROM plain WHERE {f} ORDER BY n")).await;
        let got = rows(format!("SELECT n FROM held WHERE {f} ORDER BY n")).await;
        assert_eq!(got, want, "{f}");
        let want = rows(format!(
            "SELECT n FROM plain WHERE ({f}) AND ts >= {} AND ts < {} ORDER BY n",
            t(2),
            t(9)
        ))
        .await;
        let got = rows(format!("SELECT n FROM window WHERE {f} ORDER BY n")).await;
        assert_eq!(got, want, "window, {f}");
    }
    let plan = ctx
        .sql(&format!(
            "EXPLAIN SELECT n FROM held WHERE leg = 'downstream' AND ts >= {}",
            t(3)
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(!plan.contains("FilterExec"), "{plan}");
}
