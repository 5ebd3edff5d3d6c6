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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn report(path: &str, base: u64, problem: Option<Problem>) -> CaptureReport {
        let mut by = dns::MalformedCounts::default();
        for (k, m) in dns::Malformed::ALL.into_iter().enumerate() {
            by[m] = base + k as u64;
        }
        CaptureReport {
            path: path.into(),
            sha256: format!("{base:064x}"),
            format: "pcap LE us linktype 1".into(),
            file_size: base * 1000,
            first_ts_ns: Some(1_795_859_396_273_670_123),
            last_ts_ns: None,
            packets: base + 100,
            dns_messages: base + 90,
            malformed: base + 7,
            malformed_by: by,
            not_decoded: base + 3,
            answered: base + 40,
            unanswered: base + 2,
            response_only: base + 1,
            problem,
        }
    }

    fn int(b: &RecordBatch, name: &str) -> Vec<i64> {
        let c = b.column_by_name(name).unwrap();
        let c = c.as_any().downcast_ref::<Int64Array>().unwrap();
        c.values().to_vec()
    }

    fn text(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let c = b.column_by_name(name).unwrap();
        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
        c.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn one_row_per_capture_in_the_captures_schema() {
        let caps = [
            report("a.pcap", 10, None),
            report("b.pcap", 20, Some(Problem::Truncated { offset: 4242 })),
            report("c.pcap", 30, None),
        ];
        let cfg = IngestConfig::new(Vec::new(), PathBuf::from("unused"));
        let b = captures_batch(&caps, &cfg).unwrap();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.schema(), *schema::CAPTURES);

        assert_eq!(
            text(&b, "path"),
            [Some("a.pcap"), Some("b.pcap"), Some("c.pcap")].map(|p| p.map(String::from))
        );
        assert_eq!(int(&b, "packets"), [110, 120, 130]);
        assert_eq!(int(&b, "dns_messages"), [100, 110, 120]);
        assert_eq!(int(&b, "malformed"), [17, 27, 37]);
        assert_eq!(int(&b, "not_decoded"), [13, 23, 33]);
        assert_eq!(int(&b, "file_size"), [10_000, 20_000, 30_000]);
        assert_eq!(
            (
                int(&b, "answered"),
                int(&b, "unanswered"),
                int(&b, "response_only")
            ),
            (vec![50, 60, 70], vec![12, 22, 32], vec![11, 21, 31])
        );
        // each reason in its own column
        for (k, m) in dns::Malformed::ALL.into_iter().enumerate() {
            let name = format!("malformed_{}", m.name());
            let want: Vec<i64> = caps.iter().map(|c| c.malformed_by[m] as i64).collect();
            assert_eq!(int(&b, &name), want, "{name}");
            assert_eq!(want[0], 10 + k as i64, "{name}");
        }
        assert_eq!(int(&b, "malformed_too_short"), [15, 25, 35]);
        assert_eq!(int(&b, "malformed_cut"), [16, 26, 36]);

        // no problem, no text
        let problem = text(&b, "problem");
        assert_eq!(problem[0], None);
        assert_eq!(problem[2], None);
        let p = problem[1].as_deref().unwrap();
        assert!(p.contains("4242"), "{p}");

        // times in microseconds, null when unknown
        let first = b.column_by_name("first_ts").unwrap();
        let first = first
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(first.value(0), 1_795_859_396_273_670);
        let last = b.column_by_name("last_ts").unwrap();
        assert_eq!(last.null_count(), 3);
        // without enrichment or anonymization those columns are null
        for name in ["geoip_db", "asn_db", "anonymization"] {
            assert_eq!(text(&b, name), [None, None, None], "{name}");
        }
    }

    #[test]
    fn no_captures_make_an_empty_batch() {
        let cfg = IngestConfig::new(Vec::new(), PathBuf::from("unused"));
        let b = captures_batch(&[], &cfg).unwrap();
        assert_eq!(b.num_rows(), 0);
        assert_eq!(b.schema(), *schema::CAPTURES);
    }
}
