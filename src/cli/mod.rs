//! Command line: `dnsq ingest | sql | schema | info`, with clap derive.

mod info;
mod ingest;
mod limits;
mod report;
mod serve;
mod shell;
mod sql;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::query::output::Format;
use crate::query::params::duration_secs;

#[derive(Debug, Parser)]
#[command(
    name = "dnsq",
    version,
    about = "DNS packet captures to paired transactions in Parquet, answered with SQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode captures, pair queries with responses, add them to the dataset.
    #[command(
        long_about = "Decode pcap/pcapng captures and dnstap logs (optionally gzip, zstd or xz \
compressed; recognised by content, not name), pair every query with its response and add the \
transactions to a Parquet dataset.\n\n\
Several captures given together are one stream in time order.\n\n\
Example: dnsq ingest -o dnsq-data data/sample.pcap data/dnstap.fstrm"
    )]
    Ingest(IngestArgs),
    /// Run SQL over the dataset (tables `transactions` and `captures`).
    #[command(
        long_about = "Run one or more `;`-separated SQL statements over the dataset with Apache \
DataFusion. Tables: `transactions` (one row per DNS transaction, partitioned by `date`) and \
`captures`. The query comes from the argument, from -f (a file, or the name of a saved query), \
or from standard input.\n\n\
Read-only unless --allow-write: queries, EXPLAIN, SET and CREATE/DROP VIEW run; COPY, INSERT, \
CREATE TABLE and CREATE EXTERNAL TABLE are refused. Nothing ever writes inside the dataset \
directory. Results stream to the output; the table format shows the first --max-rows rows and \
counts the rest.\n\n\
Example: dnsq sql -f top_domains"
    )]
    Sql(SqlArgs),
    /// Write the dashboard's panels as one self-contained HTML file.
    #[command(
        long_about = "Write the dashboard's panels (response times per leg, rcodes, slow responses, \
domains, clients, query types, unanswered queries, top tables) for a time range as one HTML file: \
scripts (Apache ECharts, embedded in dnsq), styles and data inline, nothing fetched from the \
network.\n\nExample: dnsq report -d dnsq-data -o report.html --since 2026-11-28T09:50:00Z"
    )]
    Report(ReportArgs),
    /// Serve the dashboard: every panel live, filtered by clicks, on a local web server.
    #[command(
        long_about = "Serve the dashboard on a local web server and print its URL: response \
times per leg, rcodes, slow responses, domains, clients, query types, unanswered queries and the \
top tables, each a saved query with bound parameters. Brush a time chart to zoom; click a domain, \
client, server, rcode, qtype or leg to filter every panel; the URL holds the whole view.\n\n\
Read-only: the page runs only the panels' saved queries (and, with --allow-sql, read-only SQL). \
Binds 127.0.0.1 unless --addr says otherwise.\n\n\
Example: dnsq serve -d dnsq-data"
    )]
    Serve(ServeArgs),
    /// Print every column of the `transactions` and `captures` tables with its type and meaning.
    Schema,
    /// Summarise a dataset: captures, transactions, time range.
    Info(InfoArgs),
    /// Remove the files that killed or failed ingests left uncommitted.
    #[command(
        long_about = "Remove the files that killed or failed ingests left in the dataset without \
committing them (every ingest does this first, too). Files of ingests still running are left \
alone, and committed files are never touched.\n\nExample: dnsq vacuum -d dnsq-data"
    )]
    Vacuum(VacuumArgs),
    /// Rewrite a dataset into a new one with its addresses pseudonymised.
    #[command(
        long_about = "Rewrite the dataset SRC into DST with client addresses and ECS subnets \
(and server addresses with --anonymize-servers) pseudonymised as `dnsq ingest --anonymize` \
would have written them. SRC is only read. DST gets one commit; it may be new or hold \
captures pseudonymised the same way (the same method, parameters and key).\n\n\
Example: dnsq anonymize dnsq-data shared-data --anonymize cryptopan:key.bin"
    )]
    Anonymize(AnonymizeArgs),
    /// Write a synthetic capture (deterministic, for scale tests and benchmarks).
    #[command(hide = true)]
    Synth(SynthArgs),
    /// Measure the ceilings of the ingest's stages, each alone on one core (benches/limits.sh).
    #[command(hide = true)]
    Limits(limits::LimitsArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output pcap file
    pub out: PathBuf,
    /// Packets to write (about)
    #[arg(long, default_value_t = 1_000_000)]
    pub packets: u64,
    /// Random seed: the same seed gives the same capture
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Addresses in public ranges (for GeoIP benchmarks), not private and documentation ones
    #[arg(long)]
    pub public: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Dataset directory [default: $DNSQ_DATA or ./dnsq-data]
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Worker threads [default: one per core]; more than the cores only with --force-threads
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Start --threads workers even beyond the machine's cores (at most 1024)
    #[arg(long)]
    pub force_threads: bool,
    /// How long a query waits for its response before it counts as unanswered (e.g. 10s, 500ms, 2m; at most 1 day)
    #[arg(long, default_value = "10s", value_parser = parse_match_timeout)]
    pub match_timeout: Duration,
    /// Extra ports that carry DNS, besides 53 (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// Bytes of capture per parallel work unit (tests use small ones to get many chunks)
    #[arg(long, hide = true, default_value_t = crate::ingest::capture::CHUNK_BYTES,
          value_parser = ranged(1, 1 << 30))]
    pub chunk_bytes: usize,
    /// Pairing shards (0: by input size); tests set it to check that rows do not depend on it
    #[arg(long, hide = true, default_value_t = 0, value_parser = ranged(0, 256))]
    pub shards: usize,
    /// Rows held in memory before they are written as files (tests use few to get many files)
    #[arg(long, hide = true, default_value_t = crate::ingest::SPOOL_ROWS,
          value_parser = ranged(1, 1 << 24))]
    pub spool_rows: usize,
    /// MaxMind DB file (GeoIP2/GeoLite2 City or Country, DB-IP, ip-location-db) that gives the
    /// continent and country of client, server and ECS addresses
    #[arg(long, value_name = "MMDB", env = "DNSQ_GEOIP")]
    pub geoip: Option<PathBuf>,
    /// MaxMind DB file of autonomous systems (GeoLite2-ASN, DB-IP ASN) that gives their AS
    /// number and organisation
    #[arg(long, value_name = "MMDB", env = "DNSQ_ASN")]
    pub asn: Option<PathBuf>,
    #[command(flatten)]
    pub privacy: Privacy,
    /// Capture files or dnstap logs, directories of them, or `-` for standard input
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
}

/// How addresses are pseudonymised before anything is written.
#[derive(Debug, Args)]
pub struct Privacy {
    /// Pseudonymise client addresses and ECS subnets before anything is written (after
    /// --geoip/--asn, so countries stay true): cryptopan:KEYFILE (prefix-preserving, 32-byte
    /// key), truncate[:V4BITS,V6BITS] (default 24,48) or hmac:KEYFILE
    #[arg(long, value_name = "METHOD")]
    pub anonymize: Option<String>,
    /// With --anonymize: server addresses too
    #[arg(long, requires = "anonymize")]
    pub anonymize_servers: bool,
}

impl Privacy {
    pub fn anonymizer(&self) -> anyhow::Result<Option<crate::anonymize::Anonymizer>> {
        Ok(match &self.anonymize {
            Some(m) => Some(crate::anonymize::Anonymizer::parse(
                m,
                self.anonymize_servers,
            )?),
            None => None,
        })
    }
}

#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// The dataset to read (left untouched)
    pub src: PathBuf,
    /// The dataset to write: a new directory, or one pseudonymised the same way
    pub dst: PathBuf,
    #[command(flatten)]
    pub privacy: Privacy,
}

/// What `dnsq sql` and `dnsq report` read: the time range, the resolvers,
/// the filters, and the engine's memory.
#[derive(Debug, Args)]
pub struct Scope {
    /// Start of the time range ($since): RFC 3339, a date, or back from the data's end (-1h)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// End of the time range, exclusive ($until): same forms as --since
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Width of a time bucket ($bucket): 10s, 1m, 1h, 1d, or auto (about 100 buckets)
    #[arg(long, value_name = "WIDTH")]
    pub bucket: Option<String>,
    /// A resolver's address and port (port 53 if not given; IPv6 as [ADDR]:PORT), repeatable;
    /// without it, resolvers are found in the data
    #[arg(long = "resolver", value_name = "ADDR[:PORT]", env = "DNSQ_RESOLVER", value_delimiter = ',',
          value_parser = crate::query::legs::parse_endpoint)]
    pub resolvers: Vec<(String, u16)>,
    /// Only transactions with this value (repeatable): domain, tld, qname, client, server
    /// (an address, ADDR:PORT or a CIDR), rcode, qtype, leg (downstream, upstream or all),
    /// status, transport
    #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = crate::query::parse_filter)]
    pub filters: Vec<(String, String)>,
    /// Memory for sorts, aggregations and joins before they spill to disk
    /// (e.g. 2G, 512M) [default: half of this machine's memory]
    #[arg(long, value_name = "SIZE", value_parser = crate::query::engine::parse_size)]
    pub memory_limit: Option<usize>,
}

impl Scope {
    /// The engine options these flags give.
    pub fn engine_options(&self) -> crate::query::engine::EngineOptions {
        crate::query::engine::EngineOptions {
            memory_limit: self.memory_limit,
            resolvers: self.resolvers.clone(),
        }
    }

    /// `--since`, `--until` and `--bucket` as parameter values.
    pub fn given(&self) -> crate::query::params::Given {
        crate::dashboard::View {
            since: self.since.clone(),
            until: self.until.clone(),
            bucket: self.bucket.clone(),
            ..Default::default()
        }
        .given()
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Dataset directory [default: $DNSQ_DATA or ./dnsq-data]
    #[arg(short = 'd', long = "data")]
    pub data: Option<PathBuf>,
    /// The HTML file to write
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[command(flatten)]
    pub scope: Scope,
    /// Overwrite the -o file if it exists
    #[arg(long)]
    pub force: bool,
    /// Print how long each panel's query took, on stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Dataset directory [default: $DNSQ_DATA or ./dnsq-data]
    #[arg(short = 'd', long = "data")]
    pub data: Option<PathBuf>,
    /// Address and port to listen on (port 0 picks a free one)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8053")]
    pub addr: std::net::SocketAddr,
    /// A resolver's address and port (port 53 if not given; IPv6 as [ADDR]:PORT), repeatable;
    /// without it, resolvers are found in the data
    #[arg(long = "resolver", value_name = "ADDR[:PORT]", env = "DNSQ_RESOLVER", value_delimiter = ',',
          value_parser = crate::query::legs::parse_endpoint)]
    pub resolvers: Vec<(String, u16)>,
    /// Memory for sorts, aggregations and joins before they spill to disk
    /// (e.g. 2G, 512M) [default: half of this machine's memory]
    #[arg(long, value_name = "SIZE", value_parser = crate::query::engine::parse_size)]
    pub memory_limit: Option<usize>,
    /// Memory for the panels' columns, held per dataset commit so panels scan
    /// memory, not Parquet (about 400 bytes a transaction); a dataset that needs
    /// more is read from its files [default: half of --memory-limit]; 0 never holds them
    #[arg(long, value_name = "SIZE", value_parser = panel_memory)]
    pub panel_memory: Option<usize>,
    /// Let the page run SQL of its own (read-only, like dnsq sql)
    #[arg(long)]
    pub allow_sql: bool,
    /// Print how long each request took, on stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Dataset directory [default: $DNSQ_DATA or ./dnsq-data]
    #[arg(short = 'd', long = "data")]
    pub data: Option<PathBuf>,
    /// Output format [default: from the -o file's extension, else table]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write results to this file instead of standard output (.csv, .json, .ndjson, .parquet)
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// SQL file, or the name of a saved query (see --list)
    #[arg(short = 'f', long = "file", conflicts_with = "query")]
    pub file: Option<String>,
    /// List the saved queries and exit
    #[arg(long)]
    pub list: bool,
    /// Print a saved query's SQL and parameters, and exit
    #[arg(long, value_name = "NAME")]
    pub show: Option<String>,
    /// List the DNS functions (reg_domain, ip_prefix, top, ...) with an example each, and exit
    #[arg(long)]
    pub functions: bool,
    /// A query parameter: `$NAME` in the SQL takes VALUE (bound, never pasted into the text)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub scope: Scope,
    /// Which leg ($leg): downstream (what clients saw), upstream (the resolver's own queries) or all
    #[arg(long, value_parser = ["downstream", "upstream", "all"])]
    pub leg: Option<String>,
    /// Rows before the `other` row ($top)
    #[arg(long, value_name = "N")]
    pub top: Option<u32>,
    /// Allow statements that write (COPY, INSERT, CREATE TABLE, CREATE EXTERNAL TABLE);
    /// never inside the dataset directory
    #[arg(long)]
    pub allow_write: bool,
    /// Overwrite the -o file if it exists
    #[arg(long)]
    pub force: bool,
    /// Rows the table format shows; the rest are counted
    #[arg(long, value_name = "N", default_value_t = crate::query::output::TABLE_ROWS)]
    pub max_rows: usize,
    /// SQL statements; without it (and -f) read from standard input, or on a terminal open the shell
    pub query: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Dataset directory [default: $DNSQ_DATA or ./dnsq-data]
    #[arg(short = 'd', long = "data")]
    pub data: Option<PathBuf>,
    /// Read every committed file whole and name each one that cannot be read
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Dataset directory or URL [default: $DNSQ_DATA or ./dnsq-data]
    #[arg(short = 'd', long = "data")]
    pub data: Option<PathBuf>,
    /// On an object store: remove uncommitted files older than this (default 6h; on a
    /// local disk running ingests are known by their lock and this is not needed)
    #[arg(long, value_parser = parse_duration)]
    pub older_than: Option<Duration>,
}

/// `10s`, `500ms`, `2m`, `1h`, `1d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    // try_from: a value past what a Duration holds is an error, not a panic
    Duration::try_from_secs_f64(duration_secs(s)?)
        .map_err(|_| format!("`{}` is longer than any duration dnsq takes", s.trim()))
}

/// Most worker threads `--force-threads` starts.
pub const MAX_THREADS: usize = 1024;

/// A clap parser for a count in `min..=max`.
fn ranged(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(min..=max)
}

/// `--match-timeout`: a duration of at most `MAX_MATCH_TIMEOUT`.
pub fn parse_match_timeout(s: &str) -> Result<Duration, String> {
    let secs = duration_secs(s)?;
    if secs > crate::ingest::MAX_MATCH_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "`{}` is longer than the longest match timeout, 1 day (24h)",
            s.trim()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--panel-memory`: a size, or 0.
fn panel_memory(s: &str) -> Result<usize, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    crate::query::engine::parse_size(s)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ingest(a) => ingest::run(a),
        Command::Sql(a) => sql::run(a),
        Command::Report(a) => report::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Schema => {
            sql::print_schema()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Info(a) => info::run(a),
        Command::Anonymize(a) => ingest::anonymize(a),
        Command::Vacuum(a) => {
            let dir = crate::ingest::dataset_dir(a.data.as_deref());
            let (removed, notes) = crate::dataset::vacuum(&dir, a.older_than)?;
            for n in &notes {
                eprintln!("dnsq: {n}");
            }
            eprintln!(
                "dnsq: {}: removed {removed} uncommitted file(s)",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Limits(a) => limits::run(a),
        Command::Synth(a) => {
            let truth = crate::synth::generate_with(&a.out, a.packets, a.seed, a.public)?;
            let body: Vec<String> = truth.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            write_stdout(format!("{{{}}}\n", body.join(",")).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Turns transparent huge pages off for this process (`dnsq sql`, the shell,
/// `dnsq report`). A query's memory is allocated, freed and allocated again
/// as its batches pass; with huge pages each fresh 2 MiB page is zeroed
/// whole, which was half of `dnsq sql -f latency_percentiles`'s CPU samples
/// over 10 M transactions (perf). Without them (MIMALLOC_ALLOW_THP=0, 5
/// runs each): median 0.78 s instead of 0.96 (the slowest 0.88 instead of
/// 1.47), 553 MB RSS instead of 629. Not for `dnsq ingest`: without them a
/// 20 M-packet ingest peaked at 444-448 MiB instead of 490-495, but the
/// 2 M-packet one on 2 threads took 5.74-7.30 s instead of 5.27-6.13 (3
/// rounds interleaved, 2026-12-07; it spent more user time than it saved of
/// kernel time, likely TLB misses on small pages, not measured). Nor `dnsq serve`,
/// whose held rows gain nothing (the same CPU over 6 bucket changes).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn without_huge_pages() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integers only and changes
    // nothing but how the kernel backs this process's future page faults.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn without_huge_pages() {}

/// Tokio runtime for DataFusion.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Writes to stdout; a closed pipe ends the program quietly with success.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub use crate::query::thousands;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("18446744073709551615s").is_err());
        assert_eq!(parse_match_timeout("24h"), Ok(Duration::from_secs(86_400)));
        let e = parse_match_timeout("9223372037s").unwrap_err();
        assert!(
            e.contains("longer than the longest match timeout, 1 day"),
            "{e}"
        );
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
