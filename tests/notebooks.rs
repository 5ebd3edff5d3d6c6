//! Every notebook in notebooks/ runs top to bottom against the dnsq under test:
//! each makes its own dataset from data/sample.pcap with `$DNSQ_BIN`, and a
//! cell that fails fails the test (tests/py/run_notebooks.py, nbclient).
//!
//! Needs a Python with nbclient, ipykernel, duckdb, pyarrow, pandas, polars,
//! deltalake and matplotlib: `DNSQ_PYTHON` (set by `.ci/run`), else `python3`.
//! Refresh the committed outputs with
//! `DNSQ_BIN=... python tests/py/run_notebooks.py --save notebooks/*.ipynb`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;

use common::*;

#[test]
fn every_notebook_runs_without_a_failing_cell() {
    let mut notebooks: Vec<_> = std::fs::read_dir(repo().join("notebooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    notebooks.sort();
    assert!(!notebooks.is_empty(), "no notebooks in notebooks/");
    // the committed notebooks carry their outputs and plots
    for nb in &notebooks {
        let text = std::fs::read_to_string(nb).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let outputs: usize = v["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["outputs"].as_array())
            .map(Vec::len)
            .sum();
        assert!(outputs > 0, "{} is committed without outputs", nb.display());
        assert!(
            text.len() < 400_000,
            "{} is {} bytes: keep plots small",
            nb.display(),
            text.len()
        );
    }
    let python = std::env::var("DNSQ_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(repo().join("tests/py/run_notebooks.py"))
        .args(&notebooks)
        .env("DNSQ_BIN", env!("CARGO_BIN_EXE_dnsq"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "a notebook failed (run the suite with .ci/run, which installs nbclient and the rest):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
