//! The interactive shell, driven through a pseudo-terminal as a person
//! would: prompt, multi-line statements, completion, history, `\d`, `\f`,
//! `\timing`, `\format`, `\set`, `\q`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::*;
use rexpect::session::{spawn_command, PtySession};

fn shell(dir: &Path, history: &Path) -> PtySession {
    let mut c = dnsq();
    c.arg("sql")
        .arg("-d")
        .arg(dir)
        .env("DNSQ_HISTORY", history)
        .env("TERM", "xterm")
        .env("COLUMNS", "120");
    let mut p = spawn_command(c, Some(60_000)).unwrap();
    ready(&mut p);
    p
}

/// Waits for the fresh, empty prompt: rustyline reads a line at a time, and
/// keys typed before the prompt is drawn would be lost.
fn ready(p: &mut PtySession) {
    p.exp_string("dnsq> \r\x1b[6C").unwrap();
}

#[test]
fn a_session_in_the_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    ingest(&dir, &[&sample()], &[]);
    let total = sql(&dir, "select count(*) from transactions")[1][0].clone();
    let history = tmp.path().join("history");

    let mut p = shell(&dir, &history);
    // a statement over two lines runs when the second ends it with ;
    p.send_line("select count(*) as n").unwrap();
    p.exp_string("...> \r\x1b[").unwrap();
    p.send_line("from transactions;").unwrap();
    p.exp_string(&format!("| {total} |")).unwrap();
    p.exp_string("1 row").unwrap();

    // \d TABLE describes columns, with the computed leg
    ready(&mut p);
    p.send_line("\\d transactions").unwrap();
    p.exp_string("downstream or upstream").unwrap();
    ready(&mut p);
    p.send_line("\\d").unwrap();
    p.exp_string("one row per ingested capture file").unwrap();
    ready(&mut p);
    p.send_line("\\f").unwrap();
    p.exp_string("reverse_ip(name)").unwrap();
    p.exp_string("which side of a resolver").unwrap();

    // completion: `qna` + Tab becomes `qname`, `reg_dom` + Tab `reg_domain`
    ready(&mut p);
    p.send("select reg_dom").unwrap();
    p.send("\t").unwrap();
    p.send("(qna").unwrap();
    p.send("\t").unwrap();
    p.send_line(") as d from transactions where qname = 'www.example.test' limit 1;")
        .unwrap();
    p.exp_string("example.test").unwrap();
    p.exp_string("1 row").unwrap();

    // parameters, \timing and \format
    // (rustyline reads a line at a time: wait for each answer before typing on)
    ready(&mut p);
    p.send_line("\\set q www.example.test").unwrap();
    p.exp_string("$q = www.example.test").unwrap();
    ready(&mut p);
    p.send_line("\\timing").unwrap();
    p.exp_string("timing on").unwrap();
    ready(&mut p);
    p.send_line("\\format csv").unwrap();
    p.exp_string("format csv").unwrap();
    ready(&mut p);
    p.send_line("select count(*) > 0 as asked from transactions where qname = $q;")
        .unwrap();
    p.exp_string("asked").unwrap();
    p.exp_string("true").unwrap();
    p.exp_string("time: ").unwrap();

    // an error does not end the shell
    ready(&mut p);
    p.send_line("select nosuchcolumn from transactions;")
        .unwrap();
    p.exp_string("error:").unwrap();
    p.exp_string("time: ").unwrap();
    ready(&mut p);
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();

    // the history file keeps statements; Up recalls the last one
    let h = std::fs::read_to_string(&history).unwrap();
    assert!(h.contains("select count(*) > 0 as asked"), "{h}");
    let mut p = shell(&dir, &history);
    p.send_line("\\format csv").unwrap();
    p.exp_string("format csv").unwrap();
    ready(&mut p);
    p.send("\x1b[A").unwrap(); // Up: \format csv
    p.send("\x1b[A").unwrap(); // Up again: \q from the first session
    p.send_control('p').unwrap(); // the failed select
    p.send_control('p').unwrap(); // the $q select
    p.send_line("").unwrap(); // Enter runs it again
    p.exp_string("--param q=").unwrap();
    ready(&mut p);
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
