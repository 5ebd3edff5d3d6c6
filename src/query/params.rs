//! Query parameters: `$name` placeholders bound to typed values, never
//! pasted into SQL text.
//!
//! In: a saved query's header (`-- param: NAME (TYPE, default D): WHAT`)
//! and the command line (`--param k=v`, `--since`, `--until`, `--bucket`,
//! `--leg`, `--top`). Out: one `ScalarValue` per placeholder a statement
//! uses, handed to DataFusion's `LogicalPlan::with_param_values`.
//!
//! `$since` and `$until` exist for every query (default: all the data);
//! `--since -1h` counts back from the end of the data, not from now, so a
//! capture from last week reads the same as one from this morning. `--bucket
//! auto` picks the smallest round width that gives at most about 100 buckets
//! over the data the query's time range selects.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::scalar::ScalarValue;

use crate::error::{Error, Result};

/// Parameters every query may use, whatever its header says.
pub const GLOBALS: &[(&str, &str, &str)] = &[
    (
        "since",
        "start",
        "first instant of the time range (RFC 3339, a date, or -1h: back from the data's end)",
    ),
    (
        "until",
        "end",
        "instant the time range ends before (same forms as since)",
    ),
];

/// Earliest and latest instant dnsq stores (ingest clamps timestamps to these).
pub(crate) const FIRST: &str = "1900-01-01T00:00:00Z";
pub(crate) const LAST: &str = "2200-01-01T00:00:00Z";

/// One `-- param:` line of a saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub ty: String,
    pub default: String,
    pub doc: String,
}

/// What a saved query's comment header says about it.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub purpose: String,
    pub leg: String,
    pub columns: String,
    pub params: Vec<Declared>,
}

impl Header {
    /// Reads the leading `--` comment lines of `sql`.
    pub fn parse(sql: &str) -> Header {
        let mut h = Header::default();
        for line in sql.lines().take_while(|l| l.trim_start().starts_with("--")) {
            let l = line.trim_start().trim_start_matches("--").trim();
            if let Some(v) = l.strip_prefix("purpose:") {
                h.purpose = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("leg:") {
                h.leg = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("columns:") {
                h.columns = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("param:") {
                if let Some(d) = parse_declared(v) {
                    h.params.push(d);
                }
            }
        }
        h
    }

    pub fn declared(&self, name: &str) -> Option<&Declared> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// `bucket (interval, default auto): width of a time bucket`
fn parse_declared(s: &str) -> Option<Declared> {
    let (head, doc) = s.split_once("):")?;
    let (name, inner) = head.split_once('(')?;
    let (ty, default) = inner.split_once(',')?;
    let default = default.trim().strip_prefix("default")?.trim();
    Some(Declared {
        name: name.trim().to_string(),
        ty: ty.trim().to_string(),
        default: default.to_string(),
        doc: doc.trim().to_string(),
    })
}

/// Values given on the command line (or in the shell with `\set`).
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// `name → text`, from `--param` and the named flags.
    pub values: BTreeMap<String, String>,
}

impl Given {
    /// `k=v`, as `--param` takes it.
    pub fn set_pair(&mut self, pair: &str) -> std::result::Result<(), String> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--param {pair}: expected NAME=VALUE"))?;
        let k = k.trim().trim_start_matches('$');
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "--param {pair}: `{k}` is not a parameter name (letters, digits, _)"
            ));
        }
        self.values.insert(k.to_string(), v.to_string());
        Ok(())
    }

    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        self.values.insert(k.to_string(), v.into());
    }

    /// Whether `name` was given as a time back from the data's end (`-1h`).
    pub fn is_relative(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| v.trim_start().starts_with('-'))
    }
}

/// What the data looks like, for relative times and `--bucket auto`.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Microseconds since the epoch of the first and last `ts`.
    pub first: i64,
    pub last: i64,
}

/// A time given as RFC 3339 (`2026-11-28T10:00:00Z`), a date (`2026-11-28`,
/// midnight UTC), a UTC date and time without zone (`2026-11-28 10:00`), or
/// relative to the data's end (`-1h`, `-90s`, `-2d`). Microseconds since the epoch.
pub fn parse_time(s: &str, span: Option<Span>) -> std::result::Result<i64, String> {
    let t = s.trim();
    if let Some(rel) = t.strip_prefix('-') {
        let d = parse_duration(rel).map_err(|e| format!("`{s}`: {e}"))?;
        let end = span
            .ok_or_else(|| {
                format!("`{s}`: relative to the data's end, but the dataset holds no rows")
            })?
            .last;
        return Ok(end.saturating_sub(d.as_micros().min(i64::MAX as u128) as i64));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc).timestamp_micros());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_micros());
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-28T10:00:00Z), a date (2026-11-28), \
         or a time back from the data's end (-1h, -30m, -2d)"
    ))
}

/// The seconds a duration such as `10s`, `500ms`, `2m`, `1h`, `1d` or `1w`
/// gives (plain seconds without a unit): finite, not negative. Every
/// duration dnsq takes (`--bucket`, `--match-timeout`, `--older-than`, `-1h`)
/// is read here.
pub fn duration_secs(s: &str) -> std::result::Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 10s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        "w" => n * 7.0 * 86400.0,
        u => {
            return Err(format!(
                "`{s}`: unknown unit `{u}` (use ms, s, m, h, d or w)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(secs)
}

/// A bucket width or a time back: a duration above zero and under a century.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let secs = duration_secs(s)?;
    if secs <= 0.0 || secs > 100.0 * 365.0 * 86400.0 {
        return Err(format!("`{}` is not a usable duration", s.trim()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Bucket widths `--bucket auto` picks from.
const ROUND: &[u64] = &[
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    30 * 86400,
];

/// The smallest round width that cuts `span_us` into at most about 100 buckets.
pub fn auto_bucket(span_us: i64) -> Duration {
    let want = (span_us.max(0) as f64 / 1e6) / 100.0;
    let secs = ROUND
        .iter()
        .copied()
        .find(|&s| s as f64 >= want)
        .unwrap_or(*ROUND.last().expect("not empty"));
    Duration::from_secs(secs)
}

/// `90s` → `1m30s`, for messages.
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= n {
            out.push_str(&format!("{}{unit}", s / n));
            s %= n;
        }
    }
    out
}

fn interval(d: Duration) -> ScalarValue {
    ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano {
        months: 0,
        days: 0,
        nanoseconds: d.as_nanos().min(i64::MAX as u128) as i64,
    }))
}

pub(crate) fn timestamp(us: i64) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into()))
}

/// The leg values a query can select.
pub const LEGS: &[&str] = &["downstream", "upstream", "all"];

/// Binds every placeholder of a statement.
pub struct Binder<'a> {
    pub header: &'a Header,
    pub given: &'a Given,
}

impl Binder<'_> {
    /// Whether `$bucket` is `auto` (given so, or by default), which needs the data's span.
    pub fn bucket_is_auto(&self) -> bool {
        let v = self
            .given
            .values
            .get("bucket")
            .map(String::as_str)
            .or(self.header.declared("bucket").map(|d| d.default.as_str()))
            .unwrap_or("auto");
        v.trim() == "auto"
    }

    /// The value of `$name`, given its type as DataFusion inferred it from the
    /// statement (`None` when the statement does not say). `span` is the
    /// data's span within the time range, needed for `auto` and relative times.
    pub fn value(
        &self,
        name: &str,
        inferred: Option<&DataType>,
        span: Option<Span>,
        notes: &mut Vec<String>,
    ) -> Result<ScalarValue> {
        let declared = self.header.declared(name);
        let text = self
            .given
            .values
            .get(name)
            .cloned()
            .or_else(|| declared.map(|d| d.default.clone()));
        let bad = |msg: String| Error::Usage(format!("parameter ${name}: {msg}"));
        match name {
            "since" | "until" => {
                let us = match &text {
                    None => {
                        parse_time(if name == "since" { FIRST } else { LAST }, None).map_err(bad)?
                    }
                    Some(t) => parse_time(t, span).map_err(bad)?,
                };
                return Ok(timestamp(us));
            }
            "bucket" => {
                let t = text.unwrap_or_else(|| "auto".into());
                let d = if t.trim() == "auto" {
                    let d = auto_bucket(span.map(|s| s.last - s.first).unwrap_or(0));
                    notes.push(format!("--bucket auto: {}", format_duration(d)));
                    d
                } else {
                    parse_duration(&t).map_err(bad)?
                };
                return Ok(interval(d));
            }
            "leg" => {
                let t = text.unwrap_or_else(|| "all".into());
                if !LEGS.contains(&t.as_str()) {
                    return Err(bad(format!("`{t}`: expected downstream, upstream or all")));
                }
                return Ok(ScalarValue::Utf8(Some(t)));
            }
            _ => {}
        }
        let Some(text) = text else {
            return Err(Error::Usage(format!(
                "the query uses ${name}; give it a value with --param {name}=VALUE"
            )));
        };
        let ty = match (declared.map(|d| d.ty.as_str()), inferred) {
            (Some("int"), _) => DataType::Int64,
            (Some("float"), _) => DataType::Float64,
            (Some("text"), _) => DataType::Utf8,
            (Some("timestamp"), _) => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            (_, Some(t)) if !matches!(t, DataType::Null) => t.clone(),
            _ => DataType::Utf8,
        };
        if text == "none" || text.eq_ignore_ascii_case("null") {
            return Ok(ScalarValue::try_from(&ty)?);
        }
        if let DataType::Timestamp(..) = ty {
            return Ok(timestamp(parse_time(&text, span).map_err(bad)?));
        }
        ScalarValue::try_from_string(text.clone(), &ty)
            .map_err(|_| bad(format!("`{text}` is not a {ty}")))
    }
}

/// The named placeholders (`$name`, without the `$`) a plan uses, with the
/// type DataFusion inferred for each, if any. A placeholder compared both
/// with a string literal and with a column held another way (`$leg = 'all'
/// OR leg = $leg`, `leg` a dictionary or a string view) is a string: its
/// value is a Utf8 literal, which DataFusion then coerces to each side.
pub fn placeholders(
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Result<HashMap<String, Option<DataType>>> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{expr::Placeholder, Expr};
    let mut found: HashMap<String, Option<DataType>> = HashMap::new();
    let mut conflict = None;
    plan.apply_with_subqueries(|p| {
        p.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::Placeholder(Placeholder { id, field }) = e {
                    if let Some(name) = id.strip_prefix('$') {
                        let ty = field.as_ref().map(|f| f.data_type().clone());
                        let slot = found.entry(name.to_string()).or_insert(None);
                        match (slot.take(), ty) {
                            (Some(a), Some(b)) if a == b => *slot = Some(a),
                            (Some(a), Some(b)) if stringy(&a) && stringy(&b) => {
                                *slot = Some(DataType::Utf8)
                            }
                            (Some(a), Some(b)) => {
                                conflict = Some(format!("${name} is used as {a} and as {b}"));
                                *slot = Some(a);
                            }
                            (a, b) => *slot = a.or(b),
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    match conflict {
        Some(c) => Err(Error::Usage(c)),
        None => Ok(found),
    }
}

/// A string, however held.
fn stringy(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => true,
        DataType::Dictionary(_, v) => stringy(v),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = Header::parse(
            "-- purpose: p\n-- leg: downstream\n-- param: top (int, default 10): rows before `other`\n\
             -- param: domain (text, default none): the domain: one\n-- columns: a, b\nSELECT 1",
        );
        assert_eq!(h.purpose, "p");
        assert_eq!(h.columns, "a, b");
        assert_eq!(
            h.params,
            vec![
                Declared {
                    name: "top".into(),
                    ty: "int".into(),
                    default: "10".into(),
                    doc: "rows before `other`".into()
                },
                Declared {
                    name: "domain".into(),
                    ty: "text".into(),
                    default: "none".into(),
                    doc: "the domain: one".into()
                }
            ]
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z", None), Ok(1_000_000));
        assert_eq!(parse_time("1970-01-02", None), Ok(86_400_000_000));
        assert_eq!(parse_time("1970-01-01 00:01", None), Ok(60_000_000));
        assert_eq!(
            parse_time("1970-01-01T01:00:00+01:00", None),
            Ok(0),
            "offsets are honoured"
        );
        let span = Some(Span {
            first: 0,
            last: 7_200_000_000,
        });
        assert_eq!(parse_time("-1h", span), Ok(3_600_000_000));
        assert!(parse_time("-1h", None).is_err());
        assert!(parse_time("yesterday", None).is_err());
    }

    #[test]
    fn buckets() {
        assert_eq!(auto_bucket(20_000_000), Duration::from_secs(1));
        assert_eq!(auto_bucket(3_600_000_000), Duration::from_secs(60));
        assert_eq!(
            auto_bucket(30 * 86_400_000_000),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(auto_bucket(0), Duration::from_secs(1));
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
