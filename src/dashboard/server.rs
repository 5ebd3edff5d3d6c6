//! `dnsq serve`: the dashboard over HTTP (axum on the tokio runtime dnsq
//! already has).
//!
//! Routes: `/` the page; `/api/meta` what the dataset holds and which
//! panels there are; `/api/summary` the header's figures; `/api/panel/{id}`
//! one panel's rows; `/api/panels?ids=` several panels' rows in one
//! streamed answer, each as soon as it is ready (`have=` names those the
//! page has); `/api/domains?q=` the domain picker's type-ahead;
//! `/api/sql` (only with `--allow-sql`) read-only SQL from the page.
//! Every route takes the page's view as its query string (see [`View`]).
//!
//! Each request queries a session of its own ([`Session::fork`]) over one
//! shared snapshot of the dataset: the Delta commit read when the snapshot
//! was opened. A new commit (an ingest into the dataset while it is served)
//! opens a new snapshot at the next request, so a reload shows the new data
//! and never a half-written file. Answers are kept per snapshot and view:
//! the same panel for the same view is not computed twice. A request the
//! browser gives up on (a filter changed, the tab closed) is dropped, and
//! with it its query's tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use datafusion::prelude::{col, lit};
use serde_json::json;

use super::{find, rows, rows_at_most, run_panel, run_summary, Panel, View, PANELS};

mod errors;
mod routes;

use crate::error::Error;
use crate::query::engine::EngineOptions;
use crate::query::output::{write_stream, Format};
use crate::query::policy::Guard;
use crate::query::{Session, FILTERS, RAW};
use errors::{bad, ApiError};
use routes::router;

/// The columns the panels read (their saved queries, the header and every
/// filter), held in memory per snapshot when they fit.
const HOT: &[&str] = &[
    "ts",
    "response_time_ms",
    "status",
    "client_ip",
    "server_ip",
    "server_port",
    "transport",
    "qname",
    "qtype",
    "tld",
    "reg_domain",
    "rcode",
    "client_continent",
    "client_country",
    "client_asn",
    "client_as_org",
    "leg",
];
/// What a transaction's HOT columns take in memory, at most: 3,863 MiB for
/// the 10,226,208 rows of the synthetic 20 M-packet capture as read (396 bytes a
/// row, measured). The budget check's estimate, made before anything is read.
const HOT_ROW_BYTES: u64 = 400;

/// Filtered views whose rows are kept per snapshot.
const SUBSETS: usize = 4;

/// Answers kept per snapshot before the oldest are dropped.
const CACHED: usize = 512;
/// Rows `/api/sql` returns at most.
const SQL_ROWS: usize = 10_000;

pub struct Config {
    pub dir: PathBuf,
    pub options: EngineOptions,
    /// Bytes the panels' columns may take in memory (`None`: half the
    /// engine's memory limit).
    pub panel_memory: Option<usize>,
    pub allow_sql: bool,
    /// Print each request's time on stderr.
    pub timings: bool,
}

/// One commit of the dataset, opened once and shared by every request that
/// reads it.
struct Snapshot {
    /// What the dataset's commit log looked like when it was opened; `None`
    /// for a dataset on an object store (opened anew for every request).
    key: Option<String>,
    session: Session,
    /// The panels' columns in memory, when they fit half the engine's memory
    /// limit (itself half the machine's by default): panels, the header and
    /// the picker query this; SQL from the page queries `session`.
    hot: Option<Session>,
    /// The rows of a filtered view, read once from `hot` for every panel of
    /// it: at most [`SUBSETS`], each at most a quarter of `hot`'s size
    /// (`None` when larger: those panels filter `hot` each time).
    subsets: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<Session>>>>>,
    answers: Mutex<HashMap<String, Arc<serde_json::Value>>>,
}

impl Snapshot {
    /// The answer kept for `key`, if any.
    fn kept(&self, key: &str) -> Option<Arc<serde_json::Value>> {
        self.answers.lock().ok()?.get(key).cloned()
    }

    /// Keeps `answer` for `key`; past [`CACHED`] answers, the older go.
    fn keep(&self, key: String, answer: Arc<serde_json::Value>) {
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= CACHED {
                answers.clear();
            }
            answers.insert(key, answer);
        }
    }
}

struct Server {
    config: Config,
    current: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    /// The runtime the panels' queries run on (see [`Queries`]).
    queries: tokio::runtime::Handle,
    /// At most [`AT_ONCE`] queries run at a time; an answer kept is not one.
    running: Arc<tokio::sync::Semaphore>,
    /// A computed panel answer's tag is `{boot}-{count}`: random per
    /// process, so no tag of an earlier server's matches, and counted within.
    boot: String,
    answers: std::sync::atomic::AtomicU64,
}

/// Queries the server runs at once: a view's time series (7) all at once,
/// since they are asked for together (`/api/panels`) after a change of
/// bucket; beyond that, more at once (several browsers, a first load) finish
/// no sooner on a few cores while each holds its memory (groups, a bucket's
/// values).
const AT_ONCE: usize = 8;

/// A runtime of their own for the queries: DataFusion's work holds a worker
/// thread for as long as a batch takes, and on the runtime that serves HTTP
/// the answers already done (kept ones, a panel finished first) would wait
/// for a free worker before they are written. Shut down without waiting when
/// the server stops (a runtime must not be dropped inside another).
struct Queries(Option<tokio::runtime::Runtime>);

impl Queries {
    fn new() -> anyhow::Result<Queries> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("dnsq-query")
            .enable_all()
            .build()?;
        Ok(Queries(Some(rt)))
    }
}

impl Drop for Queries {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Test-only: `DNSQ_TEST_PANEL_DELAY_MS=N` makes every panel's query wait N
/// ms before it runs (and say so when the wait is over), so a test can leave
/// while the panels are running on a dataset where they would take no time.
fn test_delay() -> Option<std::time::Duration> {
    let ms = std::env::var("DNSQ_TEST_PANEL_DELAY_MS").ok()?;
    ms.parse().ok().map(std::time::Duration::from_millis)
}

/// Aborts a task when the request that waits for it is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What changes when anything is committed: the names, sizes and times of
/// the commit log's files and of the captures table's.
fn fingerprint(dir: &Path) -> Option<String> {
    if crate::dataset::remote::url_of(dir).is_some() {
        return None;
    }
    let mut out = String::new();
    let tx = dir.join(crate::dataset::TRANSACTIONS_DIR);
    let log = tx.join(crate::dataset::LOG_DIR);
    for d in [
        if log.is_dir() { log } else { tx },
        dir.join(crate::dataset::CAPTURES_DIR),
    ] {
        let mut entries: Vec<String> = std::fs::read_dir(&d)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| {
                let m = e.metadata().ok();
                let len = m.as_ref().map_or(0, |m| m.len());
                let t = m
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |t| t.as_nanos());
                format!("{}:{len}:{t}", e.file_name().to_string_lossy())
            })
            .collect();
        entries.sort();
        out.push_str(&entries.join("/"));
        out.push('|');
    }
    Some(out)
}

/// Says on stderr when a request was dropped before it answered: the
/// browser went away, and the query with it.
struct Running {
    what: String,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            eprintln!("dnsq: {}: cancelled, the browser went away", self.what);
        }
    }
}

impl Server {
    /// The snapshot of the dataset's newest commit.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, ApiError> {
        let key = fingerprint(&self.config.dir);
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref() {
            if key.is_some() && s.key == key {
                return Ok(s.clone());
            }
        }
        // loading frees Parquet's buffers, and replacing a snapshot frees the
        // old one's rows: those go back to the kernel (see `heap`)
        crate::heap::release_freed();
        let session = Session::open_with(&self.config.dir, &self.config.options).await?;
        let rows = session
            .ctx
            .table(RAW)
            .await
            .map_err(Error::from)?
            .count()
            .await
            .map_err(Error::from)? as u64;
        let budget = self
            .config
            .panel_memory
            .unwrap_or(self.config.options.memory_limit() / 2) as u64;
        let hot = if budget > 0 && rows.saturating_mul(HOT_ROW_BYTES) <= budget {
            let started = Instant::now();
            let hot = session.in_memory(HOT).await?;
            eprintln!(
                "dnsq: {rows} transactions' panel columns held in memory ({} MiB, {} ms)",
                hot.held_bytes() >> 20,
                started.elapsed().as_millis()
            );
            Some(hot)
        } else {
            eprintln!(
                "dnsq: {rows} transactions: the panels' columns (about {} MiB) do not fit \
                 --panel-memory ({} MiB); panels read the Parquet files",
                rows.saturating_mul(HOT_ROW_BYTES) >> 20,
                budget >> 20
            );
            None
        };
        let s = Arc::new(Snapshot {
            key,
            session,
            hot,
            subsets: Mutex::new(HashMap::new()),
            answers: Mutex::new(HashMap::new()),
        });
        *current = Some(s.clone());
        crate::heap::keep_freed();
        Ok(s)
    }

    /// A session of its own with `filters`, and its read-only guard.
    /// `range` is the view's time range, when both ends are absolute times:
    /// the subset then holds only its rows.
    async fn session(
        &self,
        snap: &Snapshot,
        filters: &[(String, String)],
        range: (Option<i64>, Option<i64>),
    ) -> Result<(Session, Guard), ApiError> {
        let narrow = !filters.is_empty() || range.0.is_some() || range.1.is_some();
        if let (Some(hot), true) = (&snap.hot, narrow) {
            let mut sorted = filters.to_vec();
            sorted.sort();
            let key = format!("{sorted:?} {range:?}");
            let cell = match snap.subsets.lock() {
                Ok(mut m) => {
                    if m.len() >= SUBSETS && !m.contains_key(&key) {
                        m.clear();
                    }
                    Some(m.entry(key).or_default().clone())
                }
                Err(_) => None,
            };
            if let Some(cell) = cell {
                let sub = cell
                    .get_or_try_init(|| async {
                        let (sub, bytes) = hot.narrowed(filters, range).await?;
                        Ok::<_, ApiError>((bytes <= hot.held_bytes() / 4).then_some(sub))
                    })
                    .await?;
                if let Some(sub) = sub {
                    let s = sub.fork().await?;
                    let guard = Guard::new(&s.ctx, &self.config.dir, false).await?;
                    return Ok((s, guard));
                }
            }
        }
        let s = snap.hot.as_ref().unwrap_or(&snap.session).fork().await?;
        s.filter(filters).await?;
        let guard = Guard::new(&s.ctx, &self.config.dir, false).await?;
        Ok((s, guard))
    }

    /// `compute`'s answer for `key` in the newest snapshot, computed once.
    async fn cached<F, Fut>(
        &self,
        what: String,
        key: String,
        compute: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(Arc<Snapshot>) -> Fut,
        Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>> + Send + 'static,
    {
        let snap = self.snapshot().await?;
        let answer = self.kept_in(snap, what, key, compute).await?;
        Ok(no_store(&answer))
    }

    /// The answer kept for `key` in `snap`, or `compute`'s, then kept. The
    /// query runs on the queries' runtime and is aborted when this is dropped.
    async fn kept_in<F, Fut>(
        &self,
        snap: Arc<Snapshot>,
        what: String,
        key: String,
        compute: F,
    ) -> Result<Arc<serde_json::Value>, ApiError>
    where
        F: FnOnce(Arc<Snapshot>) -> Fut,
        Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>> + Send + 'static,
    {
        let started = Instant::now();
        let answer =
            match snap.kept(&key) {
                Some(a) => a,
                None => {
                    let mut running = Running {
                        what: what.clone(),
                        done: false,
                    };
                    let permit =
                        self.running.clone().acquire_owned().await.map_err(|e| {
                            ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                        })?;
                    let work = compute(snap.clone());
                    let task = self.queries.spawn(async move {
                        let answer = work.await;
                        drop(permit);
                        answer
                    });
                    let _abort = AbortOnDrop(task.abort_handle());
                    let a = task.await.unwrap_or_else(|e| {
                        Err(ApiError(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("{what}: the query's task failed: {e}"),
                        ))
                    });
                    running.done = true;
                    let a = Arc::new(a?);
                    snap.keep(key, a.clone());
                    a
                }
            };
        if self.config.timings {
            eprintln!("dnsq: {what}: {} ms", started.elapsed().as_millis());
        }
        Ok(answer)
    }

    /// Panel `p`'s answer for `view` in `snap`, kept per snapshot and the
    /// view's parts the panel reads.
    async fn panel(
        self: Arc<Self>,
        snap: Arc<Snapshot>,
        p: &'static Panel,
        view: View,
    ) -> Result<Arc<serde_json::Value>, ApiError> {
        let key = view.key_for(p);
        let server = self.clone();
        self.kept_in(
            snap,
            format!("panel {}", p.id),
            format!("panel {} {key}", p.id),
            |snap| async move {
                if let Some(delay) = test_delay() {
                    tokio::time::sleep(delay).await;
                    eprintln!("dnsq: panel {}: DNSQ_TEST_PANEL_DELAY_MS over", p.id);
                }
                let range = range_of(&view);
                let (s, guard) = server.session(&snap, &view.filters, range).await?;
                let mut notes = Vec::new();
                let mut view = view;
                let busiest = p.query == "domain_timeline" && view.pick.is_none();
                if busiest {
                    view.pick = server.busiest(&snap, &s, &guard, &view, p).await?;
                }
                let mut answer = run_panel(&s, &guard, p, &view, &mut notes).await?;
                answer["busiest"] = json!(busiest);
                answer["tag"] = json!(server.tag());
                Ok(answer)
            },
        )
        .await
    }

    /// A new answer's tag: the page sends back the tags of the answers it
    /// drew, and gets `same` instead of an answer it already has.
    fn tag(&self) -> String {
        let n = self
            .answers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.boot)
    }

    /// The domain the timeline follows when none is picked: the busiest
    /// registered domain of the view, by the rule of the saved query's own
    /// default (its `target`), found once per time range, leg and filters
    /// rather than again for every bucket width. Bound as `$domain`, it
    /// gives the rows the query gives without it (tested).
    async fn busiest(
        &self,
        snap: &Snapshot,
        s: &Session,
        guard: &Guard,
        view: &View,
        p: &Panel,
    ) -> Result<Option<String>, ApiError> {
        const BUSIEST: &str = "\
SELECT reg_domain AS domain
FROM transactions
WHERE reg_domain IS NOT NULL
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1
ORDER BY count(*) DESC, 1
LIMIT 1";
        let mut given = view.given_for(p);
        given.values.remove("bucket");
        let mut filters = view.filters.clone();
        filters.sort();
        let key = format!("busiest {:?} {filters:?}", given.values);
        let found = match snap.kept(&key) {
            Some(v) => v,
            None => {
                // the saved query's header: its parameters' defaults (the leg)
                let saved = crate::query::saved::find(p.query).unwrap_or_default();
                // the whole data's, as the ingest kept it: no scan
                let header = crate::query::params::Header::parse(saved);
                let v = match s.busiest_kept(&header, &given, !filters.is_empty()) {
                    Some(d) => serde_json::Value::String(d),
                    None => {
                        let comments: Vec<&str> =
                            saved.lines().take_while(|l| l.starts_with("--")).collect();
                        let sql = format!("{}\n{BUSIEST}", comments.join("\n"));
                        let (_, rows) = rows(s, guard, &sql, &given, &mut Vec::new()).await?;
                        rows[0]["domain"].clone()
                    }
                };
                let v = Arc::new(v);
                snap.keep(key, v.clone());
                v
            }
        };
        Ok(found.as_str().map(String::from))
    }
}

type Shared = Arc<Server>;

/// The view's time range in microseconds, when both given ends are absolute
/// (a relative one, `-1h`, needs the data's span: no subset then).
fn range_of(view: &View) -> (Option<i64>, Option<i64>) {
    use crate::query::params::parse_time;
    let end = |t: &Option<String>| t.as_deref().map(|t| parse_time(t, None));
    match (end(&view.since), end(&view.until)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => (None, None),
        (s, u) => (s.and_then(Result::ok), u.and_then(Result::ok)),
    }
}
/// A kept answer as JSON that the browser does not cache (a new commit
/// changes it).
fn no_store(answer: &serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::to_vec(answer).unwrap_or_default(),
    )
        .into_response()
}

/// Serves until Ctrl-C.
pub async fn serve(config: Config, addr: SocketAddr) -> anyhow::Result<()> {
    let dir = config.dir.clone();
    // a missing dataset is an error now, not at the first page load
    Session::open_with(&dir, &config.options).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        eprintln!(
            "dnsq: WARNING: serving on {local}, which other machines can reach: anyone who \
             can connect reads this dataset. Bind 127.0.0.1 (the default) to keep it local."
        );
    }
    let url = format!("http://{local}/");
    eprintln!("dnsq: serving {} at {url} (Ctrl-C stops)", dir.display());
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
    }
    let queries = Queries::new()?;
    let server = Arc::new(Server {
        config,
        current: tokio::sync::Mutex::new(None),
        queries: queries.0.as_ref().expect("built").handle().clone(),
        running: Arc::new(tokio::sync::Semaphore::new(AT_ONCE)),
        boot: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        answers: std::sync::atomic::AtomicU64::new(0),
    });
    // the panels' columns are read now, while the operator opens the page,
    // rather than on its first request (a request meanwhile waits for them)
    let warm = server.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.snapshot().await {
            eprintln!("dnsq: reading the dataset: {}", e.1);
        }
    });
    axum::serve(listener, router(server))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
