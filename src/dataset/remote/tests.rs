//! What needs no store: which datasets are on an object store (`url_of`)
//! and which listed files are abandoned (`orphans`). Nothing here opens a
//! connection; tests/object_store.rs runs against moto's S3 server.

use std::collections::HashSet;

use super::*;

const ME: &str = "11111111111111111111111111111111";
const DEAD: &str = "dddddddddddddddddddddddddddddddd";
const DONE: &str = "cccccccccccccccccccccccccccccccc";

fn url(s: &str) -> Option<String> {
    url_of(Path::new(s)).map(|u| u.to_string())
}

#[test]
fn object_store_urls_get_a_trailing_slash() {
    assert_eq!(url("s3://bucket/dns").as_deref(), Some("s3://bucket/dns/"));
    assert_eq!(url("s3://bucket/dns/").as_deref(), Some("s3://bucket/dns/"));
    assert_eq!(url("s3://bucket").as_deref(), Some("s3://bucket/"));
    // schemes are case-insensitive; the URL has the lower-case one
    assert_eq!(url("S3://bucket/dns").as_deref(), Some("s3://bucket/dns/"));
    assert_eq!(url("Gs://b/p").as_deref(), Some("gs://b/p/"));
    for scheme in ["s3a", "gs", "az", "azure", "abfs", "abfss"] {
        assert_eq!(
            url(&format!("{scheme}://c/p")),
            Some(format!("{scheme}://c/p/")),
            "{scheme}"
        );
    }
    assert_eq!(
        url("abfss://data@account.dfs.core.windows.net/dns").as_deref(),
        Some("abfss://data@account.dfs.core.windows.net/dns/")
    );
}

#[test]
fn local_paths_and_other_schemes_are_not_object_stores() {
    for s in [
        "/data/dns",
        "dns",
        "./s3://bucket",
        "file:///data/dns",
        "http://bucket/dns",
        "hdfs://nn/dns",
        "s3:/bucket/dns",
        "s3//bucket",
        "",
    ] {
        assert_eq!(url(s), None, "{s:?}");
    }
}

fn ago(rel: &str, secs: u64) -> (String, Duration) {
    (rel.to_string(), Duration::from_secs(secs))
}

/// Other writers' files the log does not know, once old enough; never this
/// writer's, a committed one, the log, or a file that is not a writer's.
#[test]
fn orphans_are_old_uncommitted_files_of_other_writers() {
    let age = Duration::from_secs(3600);
    let committed_file = format!("part-{DONE}-0-0.parquet");
    let data = vec![
        ago(
            &format!("transactions/date=2026-11-28/part-{DEAD}-0-0.parquet"),
            3600,
        ),
        ago(
            &format!("transactions/date=2026-11-28/.part-{DEAD}-0-1.parquet.tmp"),
            7200,
        ),
        ago(
            &format!("transactions/date=2026-11-29/part-{DEAD}-1-0.parquet"),
            3599,
        ),
        ago(
            &format!("transactions/date=2026-11-28/{committed_file}"),
            9000,
        ),
        ago(
            &format!("transactions/date=2026-11-28/part-{ME}-0-0.parquet"),
            9000,
        ),
        ago("transactions/_delta_log/00000000000000000001.json", 9000),
        ago(
            &format!("transactions/_delta_log/part-{DEAD}-0-0.parquet"),
            9000,
        ),
        ago("transactions/date=2026-11-28/notes.txt", 9000),
    ];
    let caps = vec![
        ago(&format!("captures/part-{DEAD}.parquet"), 3600),
        ago(&format!("captures/part-{DONE}.parquet"), 9000),
        ago(&format!("captures/part-{ME}.parquet"), 9000),
        ago(&format!("captures/.part-{DEAD}.parquet.tmp"), 10),
        ago("captures/README", 9000),
    ];
    let got = orphans(
        data,
        caps,
        ME,
        &HashSet::from([committed_file]),
        &HashSet::from([DONE.to_string()]),
        age,
    );
    assert_eq!(
        got,
        [
            format!("transactions/date=2026-11-28/part-{DEAD}-0-0.parquet"),
            format!("transactions/date=2026-11-28/.part-{DEAD}-0-1.parquet.tmp"),
            format!("captures/part-{DEAD}.parquet"),
        ]
    );
}

/// `dnsq vacuum --older-than 0s`: every other writer's uncommitted file.
#[test]
fn an_age_of_zero_takes_every_uncommitted_file() {
    let data = vec![ago(
        &format!("transactions/date=2026-11-28/part-{DEAD}-0-0.parquet"),
        0,
    )];
    let caps = vec![ago(&format!("captures/part-{DEAD}.parquet"), 0)];
    let none = HashSet::new();
    assert_eq!(
        orphans(data, caps, ME, &none, &none, Duration::ZERO).len(),
        2
    );
}
