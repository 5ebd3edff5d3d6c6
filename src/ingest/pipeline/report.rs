//! What an ingest tells of its captures: the captures table's rows, and the
//! warnings and problems as they are printed.

use super::*;

pub(super) fn captures_batch(caps: &[CaptureReport], cfg: &IngestConfig) -> Result<RecordBatch> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let s = |f: &dyn Fn(&CaptureReport) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(caps.iter().map(f)))
    };
    let i = |f: &dyn Fn(&CaptureReport) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            caps.iter().map(|c| f(c) as i64),
        ))
    };
    let t = |f: &dyn Fn(&CaptureReport) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                caps.iter().map(|c| f(c).map(|ns| ns.div_euclid(1000))),
            )
            .with_timezone("UTC"),
        )
    };
    // bound to the schema by name: the order here is free
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("path", s(&|c| c.path.clone())),
        ("sha256", s(&|c| c.sha256.clone())),
        ("format", s(&|c| c.format.clone())),
        ("file_size", i(&|c| c.file_size)),
        ("first_ts", t(&|c| c.first_ts_ns)),
        ("last_ts", t(&|c| c.last_ts_ns)),
        ("packets", i(&|c| c.packets)),
        ("dns_messages", i(&|c| c.dns_messages)),
        ("malformed", i(&|c| c.malformed)),
        ("not_decoded", i(&|c| c.not_decoded)),
        ("answered", i(&|c| c.answered)),
        ("unanswered", i(&|c| c.unanswered)),
        ("response_only", i(&|c| c.response_only)),
        (
            "problem",
            Arc::new(StringArray::from_iter(
                caps.iter()
                    .map(|c| c.problem.as_ref().map(describe_problem)),
            )),
        ),
        (
            "ingested_at",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(caps.iter().map(|_| now))
                    .with_timezone("UTC"),
            ),
        ),
    ];
    // one column per reason, named after it
    for m in dns::Malformed::ALL {
        let name = schema::column_name(&format!("malformed_{}", m.name()));
        columns.push((name, i(&|c| c.malformed_by[m])));
    }
    let same = |v: Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(caps.iter().map(|_| v.clone())))
    };
    let enrich = cfg.enrich.as_deref();
    columns.extend([
        (
            "geoip_db",
            same(enrich.and_then(|e| e.geoip.as_ref()).map(|d| d.describe())),
        ),
        (
            "asn_db",
            same(enrich.and_then(|e| e.asn.as_ref()).map(|d| d.describe())),
        ),
        (
            "anonymization",
            same(cfg.anonymize.as_deref().map(|a| a.describe())),
        ),
    ]);
    Ok(schema::bind(&schema::CAPTURES, columns)?)
}

/// `f.pcapng: frame 3: timestamp 16725225600 (seconds since 1970) is outside
/// 1900-2200, stored as 2200-01-01T00:00:00Z (2 frames in all)`.
pub(super) fn out_of_range_warning(name: &str, frame: u64, raw_ns: i128, frames: u64) -> String {
    let bound = if raw_ns < 0 {
        "1900-01-01T00:00:00Z"
    } else {
        "2200-01-01T00:00:00Z"
    };
    format!(
        "{name}: frame {frame}: timestamp {} (seconds since 1970) is outside 1900-2200, \
         stored as {bound} ({frames} frame{} in all)",
        raw_ns.div_euclid(1_000_000_000),
        if frames == 1 { "" } else { "s" }
    )
}

pub fn describe_problem(p: &Problem) -> String {
    match p {
        Problem::Truncated { offset } => format!("cut off mid-record at byte offset {offset}; packets before it were ingested"),
        Problem::Corrupt { offset, what } => format!("corrupt record header at byte offset {offset} ({what}); packets before it were ingested"),
        Problem::Damaged { offset, what, cut } => format!(
            "compressed data {} ({what}); packets before byte offset {offset} of the decompressed capture were ingested",
            if *cut { "cut off" } else { "damaged" }
        ),
    }
}
