//! What an ingest is asked to do (`IngestConfig`), what it reports, and the
//! sizes that bound its memory.

use super::*;

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    pub match_timeout: Duration,
    /// Ports that carry DNS (either side), 53 included.
    pub ports: Vec<u16>,
    pub chunk_bytes: usize,
    /// Pairing shards; 0 chooses by input size (see `SHARD_INPUT_BYTES`).
    pub shards: usize,
    /// Rows held in memory, in all shards, before they are written as files.
    pub spool_rows: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// GeoIP and ASN databases (`--geoip`, `--asn`).
    pub enrich: Option<Arc<crate::enrich::Enricher>>,
    /// Pseudonymisation of addresses (`--anonymize`).
    pub anonymize: Option<Arc<crate::anonymize::Anonymizer>>,
}

/// The longest `--match-timeout`: one day. Longer ones are refused on the
/// command line and cut to this here, so that timeouts in nanoseconds never
/// overflow.
pub const MAX_MATCH_TIMEOUT: Duration = Duration::from_secs(86_400);

impl IngestConfig {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        IngestConfig {
            inputs,
            out,
            threads: 0,
            match_timeout: Duration::from_secs(10),
            ports: vec![53],
            chunk_bytes: capture::CHUNK_BYTES,
            shards: 0,
            spool_rows: SPOOL_ROWS,
            progress: false,
            enrich: None,
            anonymize: None,
        }
    }
}

/// What one capture held and what became of it.
#[derive(Debug, Clone, Default)]
pub struct CaptureReport {
    pub path: String,
    pub sha256: String,
    pub format: String,
    pub file_size: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub packets: u64,
    pub dns_messages: u64,
    pub malformed: u64,
    /// Malformed messages by reason (`dns::Malformed`).
    pub malformed_by: dns::MalformedCounts,
    pub not_decoded: u64,
    pub answered: u64,
    pub unanswered: u64,
    pub response_only: u64,
    pub problem: Option<Problem>,
}

#[derive(Debug, Default)]
pub struct IngestReport {
    /// Captures ingested by this run.
    pub captures: Vec<CaptureReport>,
    /// What was read but not as the capture gave it (times out of range).
    pub warnings: Vec<String>,
    /// Captures skipped because the dataset already holds their content.
    pub already_ingested: Vec<PathBuf>,
    /// Files in an input directory that are not captures.
    pub not_captures: Vec<String>,
    pub files_written: Vec<PathBuf>,
    /// The Delta table version that holds this ingest (none when nothing was new).
    pub version: Option<i64>,
    /// What the dataset said on opening (an upgrade, an interrupted ingest's files removed).
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

impl IngestReport {
    pub fn total(&self, f: impl Fn(&CaptureReport) -> u64) -> u64 {
        self.captures.iter().map(f).sum()
    }
}

/// Captures of at least this many bytes in all are paired in `SHARDS` shards
/// (and written as that many files per day); smaller ingests in one. The
/// count depends on the input only, so rows and file names do not depend on
/// the thread count.
pub(super) const SHARD_INPUT_BYTES: u64 = 64 << 20;
pub(super) const SHARDS: usize = 4;
/// Rows spooled in memory, in all shards, before they are written out: a
/// row takes about 350 bytes in Arrow form. With 384 Ki rows a 20 M-packet
/// ingest peaked at 879 and 914 MiB in two runs (512 Ki: 998 and 1041 MiB),
/// for 0.05% more output.
pub const SPOOL_ROWS: usize = 384 << 10;

/// The directory a dataset lives in: `-o`/`-d`, else `$DNSQ_DATA`, else `./dnsq-data`.
pub fn dataset_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DNSQ_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("dnsq-data"))
}

#[cfg(test)]
mod tests;
