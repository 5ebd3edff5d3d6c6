//! The little logic beside the plain data: the defaults an ingest starts
//! from, report totals, and where the dataset is when `-o`/`-d` is given.

use super::*;

#[test]
fn a_new_config_has_the_documented_defaults() {
    let cfg = IngestConfig::new(vec![PathBuf::from("a.pcap")], PathBuf::from("out"));
    assert_eq!(cfg.inputs, [PathBuf::from("a.pcap")]);
    assert_eq!(cfg.out, PathBuf::from("out"));
    assert_eq!(cfg.threads, 0, "one per core");
    assert_eq!(cfg.match_timeout, Duration::from_secs(10));
    assert!(cfg.match_timeout <= MAX_MATCH_TIMEOUT);
    assert_eq!(cfg.ports, [53]);
    assert_eq!(cfg.chunk_bytes, capture::CHUNK_BYTES);
    assert_eq!((cfg.shards, cfg.spool_rows), (0, SPOOL_ROWS));
    assert!(!cfg.progress && cfg.enrich.is_none() && cfg.anonymize.is_none());
}

#[test]
fn totals_add_up_every_capture() {
    let report = IngestReport {
        captures: vec![
            CaptureReport {
                packets: 10,
                answered: 3,
                ..Default::default()
            },
            CaptureReport {
                packets: 5,
                unanswered: 2,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(report.total(|c| c.packets), 15);
    assert_eq!(report.total(|c| c.answered + c.unanswered), 5);
    assert_eq!(IngestReport::default().total(|c| c.packets), 0);
}

/// `-o`/`-d`, else `$DNSQ_DATA`, else `./dnsq-data`. The environment is
/// set only in processes of their own: this test binary, running this test
/// alone, with `$DNSQ_DATA` set and unset.
#[test]
fn the_flag_then_dnsq_data_then_the_default() {
    const WANT: &str = "DNSQ_TEST_WANT_DATASET";
    if let Some(want) = std::env::var_os(WANT) {
        assert_eq!(dataset_dir(None), PathBuf::from(want));
        assert_eq!(dataset_dir(Some(Path::new("x/ds"))), PathBuf::from("x/ds"));
        return;
    }
    for data in [Some("/srv/dns"), None] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args([
            "ingest::pipeline::config::tests::the_flag_then_dnsq_data_then_the_default",
            "--exact",
        ]);
        match data {
            Some(d) => child.env("DNSQ_DATA", d).env(WANT, d),
            None => child.env_remove("DNSQ_DATA").env(WANT, "dnsq-data"),
        };
        let out = child.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{data:?}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("1 passed"), "{said}");
    }
}
