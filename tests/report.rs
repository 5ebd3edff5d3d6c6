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
    let o = run(dnsq()
        .args(["report", "--timings", "-d"])
        .arg(&dir)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    // --timings: a line per panel on stderr, and each panel's time in the page
    let stderr = String::from_utf8_lossy(&o.stderr);
    for p in data_of(&html)["panels"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        assert!(
            stderr.contains(&format!("dnsq: panel {id} (")),
            "{id}: {stderr}"
        );
        assert!(p["ms"].is_u64(), "{id}");
    }
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

/// Chromium (headless, Debian's, installed by `.ci/run`), or the one `DNSQ_CHROMIUM` names.
fn chromium() -> String {
    std::env::var("DNSQ_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

#[test]
fn a_browser_draws_every_panel_of_the_report() {
    // a real browser runs the page's scripts: every panel with rows is a chart
    // (a canvas ECharts drew) or a table with those rows, every panel without
    // rows says so, and the console logs no error
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let public = public_sample(tmp.path());
    let geoip = format!("--geoip={}", mmdb("GeoIP2-City-Test.mmdb").display());
    let asn = format!("--asn={}", mmdb("GeoLite2-ASN-Test.mmdb").display());
    ingest(&dir, &[&public], &[&geoip, &asn]);
    let out = tmp.path().join("report.html");
    let o = run(dnsq().args(["report", "-d"]).arg(&dir).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = data_of(&std::fs::read_to_string(&out).unwrap());
    let browser = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", out.display()))
        .env("HOME", tmp.path())
        .output()
        .expect("chromium runs (.ci/run installs Debian's chromium)");
    assert!(browser.status.success());
    let dom = String::from_utf8_lossy(&browser.stdout).into_owned();
    let console = String::from_utf8_lossy(&browser.stderr).into_owned();
    for line in console.lines().filter(|l| l.contains("CONSOLE")) {
        assert!(
            !line.contains("Uncaught") && !line.to_lowercase().contains("error"),
            "{line}"
        );
    }
    let panels = data["panels"].as_array().unwrap();
    let mut drawn = 0;
    for p in panels {
        let id = p["id"].as_str().unwrap();
        let at = dom
            .find(&format!("id=\"chart-{id}\""))
            .unwrap_or_else(|| panic!("panel {id} is not on the page"));
        let open = dom[..at].rfind('<').unwrap();
        let next = dom[at + 1..]
            .find("id=\"chart-")
            .map_or(dom.len(), |n| at + 1 + n);
        let body = &dom[open..next];
        let rows = p["rows"].as_array().unwrap().len();
        if rows == 0 {
            assert!(body.contains("no rows in this range"), "{id}: {body:.300}");
        } else if p["kind"] == "table" {
            // a header row and one row per result row
            assert_eq!(body.matches("<tr").count(), rows + 1, "{id}");
            drawn += 1;
        } else {
            assert!(
                body.contains("<canvas"),
                "{id} has rows but no chart: {body:.300}"
            );
            drawn += 1;
        }
    }
    assert!(drawn >= 12, "{drawn} panels drawn");
    // the countries panel shows the enriched rows, not only `unknown`
    assert!(
        dom.contains(">SE<") && dom.contains(">US<"),
        "countries missing"
    );
}
