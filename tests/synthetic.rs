//! The synthetic generator knows the truth of what it wrote (queries, answers,
//! rcodes, unanswered, retransmissions): ingest must find exactly that, the
//! same on 1 and 2 threads and with small chunks.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;

#[test]
fn ingest_finds_exactly_what_the_generator_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("synth.pcap");
    let o = run(dnsq()
        .arg("synth")
        .arg(&cap)
        .args(["--packets", "60000", "--seed", "42"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let truth: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = |k: &str| truth[k].as_i64().unwrap_or(0);
    assert!(
        t("queries") > 25_000
            && t("unanswered") > 0
            && t("retransmissions") > 0
            && t("upstream") > 0,
        "{truth}"
    );

    let q = "select count(*) filter (where status = 'answered'), count(*) filter (where status = 'unanswered'), \
             count(*) filter (where status = 'response_only'), sum(query_count) - count(*), \
             count(*) filter (where rcode = 'NOERROR'), count(*) filter (where rcode = 'NXDOMAIN'), \
             count(*) filter (where rcode = 'SERVFAIL'), count(*) filter (where transport = 'tcp'), \
             count(*) filter (where ip_version = 6), count(*) filter (where ecs is not null), \
             count(*) filter (where client_ip in ('10.0.0.53', '2001:db8::53')), \
             count(*) filter (where qname is not null and reg_domain is null) from transactions";
    let mut first: Option<Vec<Vec<String>>> = None;
    for extra in [
        &["--threads", "2"][..],
        &["--threads", "1", "--chunk-bytes", "100000"],
        // pairing in 3 shards, each writing a file every 10,000 rows
        &["--threads", "2", "--shards", "3", "--spool-rows", "30000"],
    ] {
        let ds = tmp.path().join(format!("ds{}", extra.len()));
        ingest(&ds, &[&cap], extra);
        if extra.contains(&"--shards") {
            // every shard wrote several sorted files of at most 10,000 rows
            let files = walk_files(&ds.join("transactions"));
            assert!(
                files >= 3 * (t("queries") as usize / 3 / 10_000),
                "{files} files"
            );
        }
        let r = sql(&ds, q);
        let n: Vec<i64> = r[1].iter().map(|x| x.parse().unwrap()).collect();
        assert_eq!(n[0], t("answered"));
        assert_eq!(n[1], t("unanswered"));
        assert_eq!(n[2], 0);
        assert_eq!(n[3], t("retransmissions"));
        assert_eq!(
            (n[4], n[5], n[6]),
            (t("noerror"), t("nxdomain"), t("servfail"))
        );
        // the mix the generator promises: some TCP, some IPv6, some client subnet
        assert!(n[7] > 0 && n[8] > 0 && n[9] > 0, "{n:?}");
        // the resolver's own queries (the upstream leg), some for a TLD itself
        assert_eq!(n[10], t("upstream"));
        assert!(n[11] > 0, "{n:?}");
        let rows = sql(
            &ds,
            "select * from transactions order by ts, query_frame, response_frame",
        );
        match &first {
            None => first = Some(rows),
            Some(f) => assert!(
                f == &rows,
                "the rows differ between thread and chunk settings"
            ),
        }
    }
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}
