//! `dnsq report`: one HTML file, everything inline, each panel's data the
//! rows `dnsq sql` gives for the same saved query and parameters.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;

/// The JSON the page carries (`const DATA = ...;`).
fn data_of(html: &str) -> serde_json::Value {
    let start = html.find("const DATA = ").unwrap() + "const DATA = ".len();
    let end = start + html[start..].find(";\nconst dark").unwrap();
    serde_json::from_str(&html[start..end].replace("<\\/", "</")).unwrap()
}

#[test]
fn a_report_is_one_self_contained_file_with_the_saved_queries_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    ingest(&dir, &[&sample()], &[]);
    let out = tmp.path().join("report.html");
    let o = run(dnsq().args(["report", "-d"]).arg(&dir).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.len() < 2 << 20,
        "small enough to mail: {} bytes",
        html.len()
    );
    // nothing is fetched: no external script, style, image or font
    for needle in [
        "<script src",
        "<link",
        "@import",
        "url(http",
        "src=\"http",
        "src=\"//",
        "fetch(",
    ] {
        assert!(!html.contains(needle), "{needle}");
    }
    assert!(html.contains("Apache ECharts") || html.contains("echarts"));
    let data = data_of(&html);
    let panels = data["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for p in panels {
        let query = p["query"].as_str().unwrap();
        let mut args: Vec<String> = vec!["-f".into(), query.into()];
        for (k, v) in p["params"].as_object().unwrap() {
            args.push("--param".into());
            args.push(format!("{k}={}", v.as_str().unwrap()));
        }
        let mut c = dnsq();
        c.args(["sql", "--format", "json", "-d"])
            .arg(&dir)
            .args(&args);
        let o = run(&mut c);
        assert!(
            o.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let want: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(p["rows"], want, "panel {} = dnsq sql -f {query}", p["id"]);
        // every panel says which leg it shows
        assert!(["downstream", "upstream", "all"].contains(&p["leg"].as_str().unwrap()));
    }
    let latency: Vec<&str> = panels
        .iter()
        .filter(|p| p["query"] == "latency_percentiles")
        .map(|p| p["leg"].as_str().unwrap())
        .collect();
    assert_eq!(latency, ["downstream", "upstream"]);
    let total = sql(&dir, "select count(*) from transactions")[1][0].clone();
    assert_eq!(data["summary"]["transactions"].to_string(), total);
    // --filter narrows every panel and the header
    let o = run(dnsq()
        .args(["report", "--force", "--filter", "rcode=NXDOMAIN", "-d"])
        .arg(&dir)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = data_of(&std::fs::read_to_string(&out).unwrap());
    let nx = sql(
        &dir,
        "select count(*) from transactions where rcode = 'NXDOMAIN'",
    )[1][0]
        .clone();
    assert_eq!(data["summary"]["transactions"].to_string(), nx);
    let rcodes = data["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "rcodes")
        .unwrap();
    assert!(rcodes["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["rcode"] == "NXDOMAIN"));
    // an existing file is kept without --force
    let o = run(dnsq().args(["report", "-d"]).arg(&dir).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(2));
}
