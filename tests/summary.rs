//! The summary an ingest keeps in its commit (`query::summary`): the resolvers
//! behind `leg` and each leg's busiest registered domain, which
//! `domain_timeline` follows without scanning for it. Checked against tshark's
//! counts of data/legs.pcap (data/legs.expected.tsv) and against the same
//! queries on a copy of the dataset whose commits hold no summary.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const KEY: &str = "dnsq.summary";

fn commits(dir: &Path) -> Vec<PathBuf> {
    let log = dir.join("transactions/_delta_log");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

/// The summary in the commit of `version`, if it holds one.
fn summary(dir: &Path, version: usize) -> Option<Value> {
    let text = std::fs::read_to_string(&commits(dir)[version]).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find_map(|v| v.get("commitInfo")?.get(KEY).cloned())
}

/// Rewrites the commit of `version` with its summary changed by `f`
/// (removed when `f` gives `None`).
fn edit_summary(dir: &Path, version: usize, f: impl Fn(Value) -> Option<Value>) {
    let path = &commits(dir)[version];
    let lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(info) = v.get_mut("commitInfo").and_then(Value::as_object_mut) {
                let old = info.remove(KEY).expect("the commit holds a summary");
                if let Some(new) = f(old) {
                    info.insert(KEY.into(), new);
                }
            }
            v.to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// `domain_timeline` on `dir` with `args`: (CSV rows, stderr).
fn timeline(dir: &Path, args: &[&str]) -> (Vec<Vec<String>>, String) {
    let out = run(dnsq()
        .arg("sql")
        .arg("-d")
        .arg(dir)
        .args(["--format", "csv", "-f", "domain_timeline", "--bucket", "1m"])
        .args(args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "domain_timeline {args:?}: {stderr}");
    (parse_csv(&out.stdout), stderr)
}

/// The busiest registered domain of each leg by a scan, as the saved query
/// words it.
fn busiest_by_scan(dir: &Path, extra: &[&str]) -> BTreeMap<String, Option<String>> {
    ["downstream", "upstream", "all"]
        .iter()
        .map(|leg| {
            let q = "SELECT reg_domain FROM transactions WHERE reg_domain IS NOT NULL \
                     AND ($leg = 'all' OR leg = $leg) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1";
            let out = run(dnsq()
                .arg("sql")
                .arg("-d")
                .arg(dir)
                .args(["--format", "csv", "--leg", leg])
                .args(extra)
                .arg(q));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rows = parse_csv(&out.stdout);
            (leg.to_string(), rows.get(1).map(|r| r[0].clone()))
        })
        .collect()
}

fn kept_busiest(s: &Value) -> BTreeMap<String, Option<String>> {
    s["busiest"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
        .collect()
}

/// Every leg's timeline, and what dnsq said, on `a` and on `b` are the same.
fn same_timelines(a: &Path, b: &Path, extra: &[&str]) {
    for leg in ["downstream", "upstream", "all"] {
        let mut args = vec!["--leg", leg];
        args.extend_from_slice(extra);
        let (ra, ea) = timeline(a, &args);
        let (rb, eb) = timeline(b, &args);
        assert!(ra.len() > 1, "leg {leg}: a timeline with rows");
        assert_eq!(ra, rb, "leg {leg} {extra:?}");
        assert_eq!(ea, eb, "leg {leg} {extra:?}: the same notes");
    }
}

#[test]
fn the_kept_summary_agrees_with_tshark_and_with_a_scan() {
    let (tmp, dir) = legs_dataset();
    let s = summary(&dir, 1).expect("the ingest's commit keeps a summary");
    assert_eq!(s["resolvers"], serde_json::json!([["127.0.0.20", 53]]));

    // tshark's counts of each leg's names, by registered domain (the last
    // two labels: `.test` is not in the public suffix list)
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in std::fs::read_to_string(repo().join("data/legs.expected.tsv"))
        .unwrap()
        .lines()
    {
        let f: Vec<&str> = line.split('\t').collect();
        if let [kind, qname, n] = f[..] {
            if let Some(leg) = kind.strip_suffix("_qname") {
                let labels: Vec<&str> = qname.rsplitn(3, '.').collect();
                let reg = format!("{}.{}", labels[1], labels[0]);
                *counts.entry((leg.to_string(), reg)).or_default() += n.parse::<u64>().unwrap();
            }
        }
    }
    for leg in ["downstream", "upstream"] {
        let want = counts
            .iter()
            .filter(|((l, _), _)| l == leg)
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0 .1.cmp(&a.0 .1)))
            .map(|((_, d), _)| d.clone());
        assert!(want.is_some());
        assert_eq!(s["busiest"][leg].as_str(), want.as_deref(), "leg {leg}");
    }
    assert_eq!(kept_busiest(&s), busiest_by_scan(&dir, &[]));

    // the same answers, and notes, from a copy whose commit holds none
    let bare = tmp.path().join("bare");
    copy_dir(&dir, &bare);
    edit_summary(&bare, 1, |_| None);
    same_timelines(&dir, &bare, &[]);
    let (_, said) = timeline(&dir, &[]);
    assert!(
        said.contains("resolver 127.0.0.20:53 found in the data"),
        "the kept resolvers are announced as found ones: {said}"
    );
    // resolvers named on the command line make other legs: no summary then
    same_timelines(&dir, &bare, &["--resolver", "127.0.0.20"]);
}

#[test]
fn each_commit_keeps_the_summary_of_its_own_version() {
    let (tmp, dir) = legs_dataset();
    let first = summary(&dir, 1).unwrap();
    let synth = tmp.path().join("synth.pcap");
    common::synth(&synth, 20_000, 5);
    ingest(&dir, &[&synth], &[]);
    let second = summary(&dir, 2).expect("the second commit keeps its own");
    // the synthetic resolver's clients make another domain the busiest
    assert_ne!(first["busiest"], second["busiest"]);
    assert_eq!(kept_busiest(&second), busiest_by_scan(&dir, &[]));

    let bare = tmp.path().join("bare");
    copy_dir(&dir, &bare);
    edit_summary(&bare, 1, |_| None);
    edit_summary(&bare, 2, |_| None);
    same_timelines(&dir, &bare, &[]);

    // a version whose commit holds none is not answered from an older one's
    let older = tmp.path().join("older");
    copy_dir(&dir, &older);
    edit_summary(&older, 2, |_| None);
    same_timelines(&older, &bare, &[]);

    // a small capture added to a dataset more than 4 times its size: its
    // commit rescans nothing and keeps no summary; the answers stay
    ingest(&dir, &[&sample()], &[]);
    assert_eq!(summary(&dir, 3), None);
    let rows = |d: &Path| sql(d, "SELECT count(*) FROM transactions")[1][0].clone();
    assert!(rows(&dir).parse::<u64>().unwrap() > 5 * 1298);
    let bare = tmp.path().join("bare3");
    copy_dir(&dir, &bare);
    edit_summary(&bare, 1, |_| None);
    edit_summary(&bare, 2, |_| None);
    same_timelines(&dir, &bare, &[]);
}

#[test]
fn a_summary_that_does_not_parse_is_not_believed() {
    let (tmp, dir) = legs_dataset();
    let bare = tmp.path().join("bare");
    copy_dir(&dir, &bare);
    edit_summary(&bare, 1, |_| None);
    let lies: [fn(Value) -> Value; 3] = [
        |mut s| {
            s["resolvers"] = serde_json::json!([["resolver.example", 53]]);
            s["busiest"]["downstream"] = serde_json::json!("nosuch.example");
            s
        },
        |mut s| {
            s["busiest"] = serde_json::json!({"downstream": "nosuch.example"});
            s
        },
        |_| serde_json::json!("not a summary"),
    ];
    for lie in lies {
        let told = tmp.path().join("told");
        let _ = std::fs::remove_dir_all(&told);
        copy_dir(&dir, &told);
        edit_summary(&told, 1, |s| Some(lie(s)));
        same_timelines(&told, &bare, &[]);
    }
}

/// Three ingests at once: the one whose commit lands first keeps the
/// summary of its own capture alone (what it computed over the empty
/// dataset), the two that lost the race and committed on top keep none, and
/// the answers are a scan's.
#[test]
fn ingests_that_race_keep_only_summaries_of_their_own_version() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = tmp.path().join("synth.pcap");
    common::synth(&synth, 20_000, 5);
    let captures = [repo().join("data/legs.pcap"), sample(), synth];
    // each capture's summary, ingested alone
    let alone: Vec<Value> = captures
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let d = tmp.path().join(format!("alone{i}"));
            ingest(&d, &[c], &["--ports", "5300"]);
            summary(&d, 1).unwrap()
        })
        .collect();
    let dir = tmp.path().join("ds");
    let kids: Vec<_> = captures
        .iter()
        .map(|c| {
            ingest_cmd(&dir, &[c])
                .args(["--ports", "5300"])
                // every writer loads the empty table before the first commit
                .env("DNSQ_TEST_COMMIT_DELAY_MS", "3000")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // one creation of the table (delta-rs would retry a creation that lost
    // the race for version 0 at version 1), then the three commits of files
    let log: Vec<String> = commits(&dir)
        .iter()
        .map(|c| std::fs::read_to_string(c).unwrap())
        .collect();
    assert_eq!(log.len(), 4, "the table's creation and three commits");
    assert!(log[0].contains("CREATE TABLE"));
    assert!(log[1..].iter().all(|c| c.contains("\"add\"")));
    let first = summary(&dir, 1).expect("the first commit keeps its summary");
    assert!(alone.contains(&first), "{first} is one capture's alone");
    assert_eq!(
        summary(&dir, 2),
        None,
        "a commit that lost a race keeps none"
    );
    assert_eq!(
        summary(&dir, 3),
        None,
        "a commit that lost a race keeps none"
    );
    let bare = tmp.path().join("bare");
    copy_dir(&dir, &bare);
    edit_summary(&bare, 1, |_| None);
    same_timelines(&dir, &bare, &[]);
}
