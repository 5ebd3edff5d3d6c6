//! `dnsq serve`: the dashboard in a real browser (Debian's Chromium, driven
//! by Playwright from tests/py/dashboard.py), every panel held against what
//! `dnsq sql` gives for the same saved query, parameters and filters; and
//! the server's answers to bad requests, new commits and browsers that go
//! away, over plain HTTP.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A running `dnsq serve`, killed when dropped; its stderr goes to a file.
struct Served {
    child: Child,
    addr: String,
    stderr: std::path::PathBuf,
}

impl Served {
    fn start(dir: &Path, extra: &[&str]) -> Served {
        Served::start_at(dir, "127.0.0.1:0", extra)
    }

    fn start_at(dir: &Path, addr: &str, extra: &[&str]) -> Served {
        Served::start_with(dir, addr, extra, &[])
    }

    fn start_with(dir: &Path, addr: &str, extra: &[&str], env: &[(&str, &str)]) -> Served {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = dir.with_extension(format!("serve-{}-{n}.log", std::process::id()));
        let mut child = dnsq()
            .args(["serve", "--addr", addr, "-d"])
            .arg(dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the URL first: {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Served {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// `(status, body)` of one request.
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.http("GET", path, "");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// `dnsq sql -f QUERY --param ... --filter ...` as JSON rows.
fn saved_rows(dir: &Path, query: &str, params: &Value, filters: &[String]) -> Value {
    let mut c = dnsq();
    c.args(["sql", "--format", "json", "-f", query, "-d"])
        .arg(dir);
    for (k, v) in params.as_object().unwrap() {
        c.arg("--param").arg(format!("{k}={}", v.as_str().unwrap()));
    }
    for f in filters {
        c.arg("--filter").arg(f);
    }
    let o = run(&mut c);
    assert!(
        o.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `v` with every number as a float: the browser's JSON writes 20.0 as 20.
fn norm(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), norm(v))).collect()),
        other => other.clone(),
    }
}

/// Every panel of a page's state holds what `dnsq sql` gives for it, and is
/// drawn: a chart, a table with a row per result row, or "no rows".
fn check_panels(dir: &Path, page: &Value, filters: &[String], what: &str) {
    let panels = page["panels"].as_object().unwrap();
    assert!(panels.len() >= 14, "{what}: {} panels", panels.len());
    for (id, p) in panels {
        // a timeline following the busiest domain: the server found it and
        // bound it; the saved query finds it itself
        let mut params = p["params"].clone();
        if p["busiest"] == true {
            params.as_object_mut().unwrap().remove("domain");
        }
        let want = saved_rows(dir, p["query"].as_str().unwrap(), &params, filters);
        assert_eq!(
            norm(&p["rows"]),
            norm(&want),
            "{what}: panel {id} = dnsq sql -f {}",
            p["query"]
        );
        assert!(["downstream", "upstream", "all"].contains(&p["leg"].as_str().unwrap()));
    }
    for s in page["sections"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        assert_eq!(s["state"], "ready", "{what}: {id}");
        let rows = panels[id]["rows"].as_array().unwrap().len();
        let drawn = if rows == 0 {
            s["empty"].as_bool().unwrap()
        } else if panels[id]["kind"] == "table" {
            s["table_rows"].as_u64().unwrap() == rows as u64 + 1
        } else {
            s["canvas"].as_bool().unwrap()
        };
        assert!(drawn, "{what}: panel {id} not drawn: {s}");
        // every panel says which leg it shows
        assert!(s["about"].as_str().unwrap().starts_with("leg: "), "{s}");
    }
}

#[test]
fn the_dashboard_in_a_browser_shows_what_dnsq_sql_gives_and_refilters_on_a_click() {
    let (tmp, dir) = sample_dataset();
    let report = tmp.path().join("report.html");
    let o = run(dnsq()
        .args(["report", "-d"])
        .arg(&dir)
        .arg("-o")
        .arg(&report));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let served = Served::start(&dir, &[]);
    let out = tmp.path().join("pages.json");
    let mut c = std::process::Command::new(python());
    c.arg(repo().join("tests/py/dashboard.py"))
        .arg(served.url())
        .arg(&report)
        .arg(&out)
        .env("HOME", tmp.path());
    if let Ok(shots) = std::env::var("DNSQ_SCREENSHOTS") {
        c.arg(shots);
    }
    let o = c
        .output()
        .expect("python runs (.ci/run makes the virtual environment with Playwright)");
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        served.log()
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["console"], serde_json::json!([]), "console errors");

    // the first view: every panel is its saved query's rows
    let first = &r["first"];
    assert_eq!(first["search"], "");
    check_panels(&dir, first, &[], "first view");
    let total = sql(&dir, "select count(*) from transactions")[1][0].clone();
    assert_eq!(first["summary"]["transactions"].to_string(), total);
    let latency: Vec<&str> = ["latency_down", "latency_up"]
        .iter()
        .map(|id| first["panels"][id]["leg"].as_str().unwrap())
        .collect();
    assert_eq!(latency, ["downstream", "upstream"]);

    // a click on a domain: a chip, the URL, and every panel refiltered
    let domain = r["clicked"].as_str().unwrap();
    let filter = format!("domain={domain}");
    let filtered = &r["filtered"];
    assert_eq!(filtered["search"], format!("?{filter}"));
    assert_eq!(filtered["chips"], serde_json::json!([["domain", domain]]));
    check_panels(
        &dir,
        filtered,
        std::slice::from_ref(&filter),
        "after the click",
    );
    let only = sql(
        &dir,
        &format!("select count(*) from transactions where reg_domain = '{domain}'"),
    )[1][0]
        .clone();
    assert_eq!(filtered["summary"]["transactions"].to_string(), only);
    assert_ne!(only, total, "the filter narrows");
    for p in filtered["panels"].as_object().unwrap().values() {
        assert_eq!(p["filters"], serde_json::json!([filter]), "{}", p["id"]);
    }

    // a drag across a time chart: the range is the view's, for every panel
    let brushed = &r["brushed"];
    let since = brushed["state"]["since"].as_str().unwrap();
    let until = brushed["state"]["until"].as_str().unwrap();
    assert!(since < until, "{since} {until}");
    assert!(brushed["search"].as_str().unwrap().contains("since="));
    for p in brushed["panels"].as_object().unwrap().values() {
        assert_eq!(p["params"]["since"], since, "{}", p["id"]);
        assert_eq!(p["params"]["until"], until, "{}", p["id"]);
    }
    let first_ts = brushed["summary"]["first"].as_str().unwrap();
    assert!(
        *first_ts.replace(' ', "T") >= since[..19],
        "{first_ts} {since}"
    );
    check_panels(
        &dir,
        brushed,
        std::slice::from_ref(&filter),
        "after the drag",
    );

    // back: the views before, panel for panel
    assert_eq!(r["back1"]["search"], filtered["search"]);
    assert_eq!(r["back1"]["panels"], filtered["panels"]);
    assert_eq!(r["back2"]["search"], "");
    assert_eq!(r["back2"]["panels"], first["panels"]);
    // a link reopens the view
    assert_eq!(r["reopened"]["panels"], brushed["panels"]);
    // removing the chip drops the filter and keeps the range
    let unchipped = &r["unchipped"];
    assert!(!unchipped["search"].as_str().unwrap().contains("domain="));
    assert!(unchipped["search"].as_str().unwrap().contains("since="));

    // another bucket from the menu: the time series answered anew, each
    // panel that reads no bucket kept as drawn (the same answer, by its tag)
    let rebucketed = &r["rebucketed"];
    assert!(rebucketed["search"]
        .as_str()
        .unwrap()
        .contains("bucket=10s"));
    check_panels(
        &dir,
        rebucketed,
        &[],
        "after 10-second buckets from the menu",
    );
    let mut kept = Vec::new();
    for (id, p) in rebucketed["panels"].as_object().unwrap() {
        let before = &unchipped["panels"][id];
        let reads_bucket = p["params"].get("bucket").is_some();
        assert_eq!(
            p["tag"] == before["tag"],
            !reads_bucket,
            "{id}: {p} / {before}"
        );
        if !reads_bucket {
            kept.push(Value::from(id.as_str()));
        }
    }
    assert!(kept.len() >= 7, "{kept:?} kept");
    let mut unchanged = rebucketed["unchanged"].as_array().unwrap().clone();
    unchanged.sort_by_key(|v| v.to_string());
    assert_eq!(unchanged, kept, "answered `same`");

    // a click on a bar of the unanswered panel: that server, on that leg
    let legclick = &r["legclick"];
    let leg = legclick["state"]["leg"].as_str().unwrap();
    assert!(["downstream", "upstream"].contains(&leg), "{legclick}");
    let server: Vec<String> = legclick["state"]["filters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f[0] == "server")
        .map(|f| format!("server={}", f[1].as_str().unwrap()))
        .collect();
    assert_eq!(server.len(), 1, "{legclick}");
    assert_eq!(legclick["panels"]["rcodes"]["params"]["leg"], leg);
    check_panels(&dir, legclick, &server, "after a click on a server's bar");

    // the report from a file, offline: the same panels, nothing requested
    assert_eq!(r["requests_after_offline"], serde_json::json!([]));
    let rep = &r["report"];
    for (id, p) in first["panels"].as_object().unwrap() {
        assert_eq!(
            norm(&rep["panels"][id]["rows"]),
            norm(&p["rows"]),
            "report panel {id}"
        );
    }
    check_panels(&dir, rep, &[], "the report");
}

#[test]
fn bad_requests_get_a_reason_and_the_page_runs_no_sql_of_its_own() {
    let (tmp, dir) = sample_dataset();
    let served = Served::start(&dir, &[]);
    for (path, status, reason) in [
        ("/api/panel/nope", 404, "no panel `nope`"),
        ("/api/panel/rcodes?colour=red", 400, "no filter `colour`"),
        ("/api/panel/rcodes?leg=sideways", 400, "leg=sideways"),
        ("/api/panel/rcodes?since=soonish", 400, "soonish"),
        ("/api/panel/rcodes?bucket=-5s", 400, "bucket"),
        (
            "/api/panel/top_clients?client=not-an-address",
            400,
            "not an address",
        ),
        ("/api/summary?rcode=x&until=never", 400, "never"),
        ("/api/panels", 400, "ids="),
        ("/api/panels?ids=,", 400, "ids="),
        ("/api/panels?ids=rcodes,nope", 404, "no panel `nope`"),
        ("/api/panels?ids=rcodes&leg=sideways", 400, "leg=sideways"),
        ("/etc/passwd", 404, "no such page"),
    ] {
        let (got, body) = served.http("GET", path, "");
        assert_eq!(got, status, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(reason),
            "{path}: {body}"
        );
    }
    // the page links the vendored ECharts by its digest, served as vendored
    let (status, page) = served.http("GET", "/", "");
    assert_eq!(status, 200);
    let link = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no script link in the page"));
    assert!(link.starts_with("/assets/echarts.min.js?sha256="), "{link}");
    let (status, js) = served.http("GET", link, "");
    assert_eq!(status, 200);
    let vendored = std::fs::read_to_string(repo().join("assets/echarts/echarts.min.js")).unwrap();
    assert!(
        js == vendored,
        "the served ECharts is not the vendored file"
    );
    // a filter value is a bound value, not SQL: a quote finds nothing
    let v = served.json("/api/summary?domain=x'%20OR%20'1'='1");
    assert_eq!(v["transactions"], 0);
    let (got, body) = served.http("POST", "/api/sql", "select 1");
    assert_eq!(got, 403, "{body}");
    assert!(body.contains("--allow-sql"), "{body}");
    // still serving
    let meta = served.json("/api/meta");
    let panels = meta["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 14);
    // a panel reads the bucket when its saved query declares one (the page
    // asks for the others first: after a change of bucket they are kept)
    for p in panels {
        let query = p["query"].as_str().unwrap();
        let sql = std::fs::read_to_string(format!("queries/{query}.sql")).unwrap();
        let declared = sql.lines().any(|l| l.starts_with("-- param: bucket "));
        assert_eq!(p["bucketed"], declared, "{p}");
    }
    assert!(panels.iter().any(|p| p["bucketed"] == true));
    assert!(panels.iter().any(|p| p["bucketed"] == false));

    // --allow-sql: read-only SQL, with the view's filters and parameters
    let served = Served::start(&dir, &["--allow-sql"]);
    let (got, body) = served.http(
        "POST",
        "/api/sql?rcode=NXDOMAIN",
        "select count(*) as n from transactions",
    );
    assert_eq!(got, 200, "{body}");
    let nx = sql(
        &dir,
        "select count(*) from transactions where rcode = 'NXDOMAIN'",
    )[1][0]
        .clone();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rows"][0]["n"].to_string(), nx);
    let copy_to = tmp.path().join("out.csv");
    for statement in [
        format!("COPY (select 1) TO '{}'", copy_to.display()),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "INSERT INTO transactions_raw SELECT * FROM transactions_raw".to_string(),
        "select 1; select 2".to_string(),
    ] {
        let (got, body) = served.http("POST", "/api/sql", &statement);
        assert!((400..500).contains(&got), "{statement}: {got} {body}");
        assert!(body.contains("\"error\""), "{body}");
        assert!(!body.contains("--allow-write"), "{body}");
    }
    assert!(!copy_to.exists());
    assert_eq!(
        sql(&dir, "select count(*) from transactions")[1][0],
        served.json("/api/summary")["transactions"].to_string()
    );

    // a query that needs more memory than the server may use: a 503 that
    // names the flag, and the server goes on
    let small = Served::start(&dir, &["--allow-sql", "--memory-limit", "16K"]);
    let (got, body) = small.http(
        "POST",
        "/api/sql",
        "select a.qname from transactions a join transactions b on a.qname = b.qname",
    );
    assert_eq!(got, 503, "{body}");
    assert!(body.contains("--memory-limit"), "{body}");
    let (got, body) = small.http("POST", "/api/sql", "select 1 as one");
    assert_eq!(got, 200, "{body}");
}

#[test]
fn only_loopback_by_default_and_other_addresses_are_said_loudly() {
    let o = run(dnsq().args(["serve", "--help"]));
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("[default: 127.0.0.1:8053]"), "{help}");
    let (tmp, dir) = sample_dataset();
    let served = Served::start(&dir, &[]);
    assert!(served.addr.starts_with("127.0.0.1:"));
    assert!(!served.log().contains("WARNING"));
    let open = Served::start_at(&dir, "0.0.0.0:0", &[]);
    assert!(open.addr.starts_with("0.0.0.0:"), "{}", open.addr);
    let err = open.log();
    assert!(
        err.contains("WARNING") && err.contains("other machines"),
        "{err}"
    );
    // no dataset: an error naming the directory, before anything listens
    let o = run(dnsq()
        .args(["serve", "--addr", "127.0.0.1:0", "-d"])
        .arg(tmp.path().join("none")));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("none"));
}

#[test]
fn an_ingest_while_served_shows_on_reload_and_a_browser_that_leaves_cancels() {
    let (_tmp, dir) = sample_dataset();
    let served = Served::start(&dir, &["--allow-sql"]);
    let before = served.json("/api/summary")["transactions"]
        .as_u64()
        .unwrap();
    let panel = served.json("/api/panel/top_clients");
    ingest(&dir, &[&repo().join("data/legs.pcap")], &[]);
    let after = served.json("/api/summary")["transactions"]
        .as_u64()
        .unwrap();
    let want: u64 = sql(&dir, "select count(*) from transactions")[1][0]
        .parse()
        .unwrap();
    assert!(after > before, "{before} {after}");
    assert_eq!(after, want);
    assert_ne!(served.json("/api/panel/top_clients")["rows"], panel["rows"]);

    // a query that would run for minutes, and a client that hangs up
    let slow = "select count(*) from transactions a, transactions b, transactions c \
                where a.response_time_ms + b.response_time_ms > c.response_time_ms";
    let mut s = TcpStream::connect(&served.addr).unwrap();
    write!(
        s,
        "POST /api/sql HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{slow}",
        slow.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(s);
    let started = Instant::now();
    while !served.log().contains("sql: cancelled") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not cancelled: {}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // and the server answers the next page at once
    let started = Instant::now();
    served.json("/api/panel/rcodes?bucket=1m");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A panel's answer without what differs between two computations of it:
/// the query's time and the answer's tag.
fn strip(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("ms");
        o.remove("tag");
    }
    v
}

/// `/api/panels` (the page's one request) answers each panel asked for once,
/// a line each, with what `/api/panel/{id}` answers for the same view.
#[test]
fn many_panels_in_one_streamed_answer_are_each_what_one_alone_gives() {
    let (_tmp, dir) = sample_dataset();
    let served = Served::start(&dir, &[]);
    // each panel alone from a server of its own: its answer computed again,
    // not the one the first server kept
    let other = Served::start(&dir, &[]);
    for view in [
        "",
        "&rcode=NXDOMAIN&bucket=1s",
        "&since=2026-11-28T09:50:01Z&leg=all",
    ] {
        let path = format!("/api/panels?ids=top_domains,rcodes,latency_down,rcodes,domain{view}");
        let (status, body) = served.http("GET", &path, "");
        assert_eq!(status, 200, "{path}: {body}");
        let mut seen = Vec::new();
        for line in body.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = v["id"].as_str().unwrap().to_string();
            assert!(v.get("error").is_none(), "{path}: {line}");
            let alone = other.json(&format!("/api/panel/{id}?{}", view.trim_start_matches('&')));
            assert_eq!(strip(v["answer"].clone()), strip(alone), "{path}: {id}");
            seen.push(id);
        }
        seen.sort();
        assert_eq!(
            seen,
            ["domain", "latency_down", "rcodes", "top_domains"],
            "{path}"
        );
    }
}

/// An answer the page says it has (`have=ID:TAG`, the tag it was sent with)
/// comes back as `same`, not again; any other tag, or an answer that
/// changed with the view, comes whole, with a tag of its own.
#[test]
fn an_answer_the_page_has_comes_back_as_same() {
    let (_tmp, dir) = sample_dataset();
    let served = Served::start(&dir, &[]);
    let ask = |query: &str| -> HashMap<String, Value> {
        let (status, body) = served.http("GET", &format!("/api/panels?{query}"), "");
        assert_eq!(status, 200, "{query}: {body}");
        body.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["id"].as_str().unwrap().to_string(), v))
            .collect()
    };
    let first = ask("ids=top_domains,rcodes&bucket=1m");
    let tag = |id: &str| first[id]["answer"]["tag"].as_str().unwrap().to_string();
    let (domains, rcodes) = (tag("top_domains"), tag("rcodes"));
    assert_ne!(domains, rcodes);
    // the same view: both the page has are `same`; a tag it never got is not
    let have = format!("have=top_domains:{domains},rcodes:{rcodes}x");
    let again = ask(&format!("ids=top_domains,rcodes&bucket=1m&{have}"));
    assert_eq!(again["top_domains"]["same"], domains.as_str(), "{again:?}");
    assert!(again["top_domains"].get("answer").is_none());
    assert_eq!(again["rcodes"]["answer"], first["rcodes"]["answer"]);
    // another bucket: the rcodes answer is another, top_domains reads none
    let have = format!("have=top_domains:{domains},rcodes:{rcodes}");
    let other = ask(&format!("ids=top_domains,rcodes&bucket=10s&{have}"));
    assert_eq!(other["top_domains"]["same"], domains.as_str());
    let tag10 = other["rcodes"]["answer"]["tag"].as_str().unwrap();
    assert_ne!(tag10, rcodes);
    assert_ne!(
        other["rcodes"]["answer"]["rows"],
        first["rcodes"]["answer"]["rows"]
    );
    // a new server's tags are its own, so a page kept open across a restart
    // is sent every answer again
    let restarted = Served::start(&dir, &[]);
    let (status, body) = restarted.http("GET", &format!("/api/panels?ids=top_domains&{have}"), "");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert!(v["answer"]["rows"].is_array(), "{v}");
}

/// A browser that leaves the page's one streamed answer cancels every panel
/// query still running: none of them goes on to run (each first waits, by a
/// test-only delay, so that they are still running when it leaves).
#[test]
fn a_browser_that_leaves_the_streamed_answer_cancels_every_panel() {
    let (_tmp, dir) = sample_dataset();
    let served = Served::start_with(
        &dir,
        "127.0.0.1:0",
        &[],
        &[("DNSQ_TEST_PANEL_DELAY_MS", "2000")],
    );
    served.json("/api/summary");
    let mut s = TcpStream::connect(&served.addr).unwrap();
    write!(
        s,
        "GET /api/panels?ids=rcodes,qtypes,top_domains HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(s);
    let started = Instant::now();
    let cancelled = |log: &str| {
        ["rcodes", "qtypes", "top_domains"]
            .iter()
            .all(|id| log.contains(&format!("panel {id}: cancelled")))
    };
    while !cancelled(&served.log()) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not cancelled: {}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // past the delay: no query went on after its answer was dropped
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!served.log().contains("DELAY_MS over"), "{}", served.log());
    // and the next answer comes, after its own delay
    let (status, body) = served.http("GET", "/api/panels?ids=rcodes", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""id":"rcodes""#), "{body}");
    assert!(served
        .log()
        .contains("panel rcodes: DNSQ_TEST_PANEL_DELAY_MS over"));
}

#[test]
fn panels_read_memory_when_it_fits_and_parquet_when_not_with_the_same_rows() {
    let (_tmp, dir) = sample_dataset();
    let hot = Served::start(&dir, &[]);
    let cold = Served::start(&dir, &["--panel-memory", "0"]);
    for path in [
        "/api/summary",
        "/api/panel/top_domains",
        // a narrow filter: its rows are read once into a subset of their own,
        // and bucket auto still follows the whole data's span
        "/api/panel/rcodes?rcode=NXDOMAIN",
        "/api/panel/latency_down?rcode=NXDOMAIN",
        "/api/panel/top_domains?rcode=NXDOMAIN",
        "/api/summary?rcode=NXDOMAIN",
        "/api/panel/unanswered?status=unanswered&leg=all",
        // a time range: its rows alone, the buckets those of the range
        "/api/panel/rcodes?since=2026-11-28T09:50:00Z&until=2026-11-28T09:50:03Z",
        "/api/summary?since=2026-11-28T09:50:02Z&rcode=NOERROR",
        "/api/panel/top_clients?since=-5s",
        "/api/panel/latency_up?bucket=1s",
        "/api/domains?q=ex",
    ] {
        let (a, b) = (hot.json(path), cold.json(path));
        assert_eq!(strip(a), strip(b), "{path}");
    }
    // the header of both legs counts every transaction; of one leg, its own
    for (leg, only) in [("all", ""), ("upstream", " where leg = 'upstream'")] {
        let want = sql(&dir, &format!("select count(*) from transactions{only}"))[1][0].clone();
        for s in [&hot, &cold] {
            let got = s.json(&format!("/api/summary?leg={leg}"))["transactions"].to_string();
            assert_eq!(got, want, "leg={leg}");
        }
    }
    assert!(hot.log().contains("held in memory"), "{}", hot.log());
    assert!(
        cold.log().contains("panels read the Parquet files"),
        "{}",
        cold.log()
    );
}
