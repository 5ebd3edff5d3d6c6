//! `dnsq report`: the dashboard's panels as one self-contained HTML file.
//!
//! Each panel is a saved query run with bound parameters (the time range,
//! the leg, the bucket); its rows go into the page as JSON beside the
//! query's text, and Apache ECharts (vendored in `assets/echarts`, embedded
//! in the binary) draws them. Nothing is fetched when the file is opened:
//! scripts, styles and data are inline.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::sql::OutputFile;
use crate::cli::{runtime, ReportArgs};
use crate::ingest;
use crate::query::output::{write_stream, Format};
use crate::query::params::{Binder, Given, Header};
use crate::query::policy::Guard;
use crate::query::{saved, Session};

const ECHARTS: &str = include_str!("../../assets/echarts/echarts.min.js");
const TEMPLATE: &str = include_str!("report.html");

/// One panel: `(id, title, saved query, parameters, how it is drawn)`.
type Panel = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const PANELS: &[Panel] = &[
    (
        "latency_down",
        "Response time, downstream: what clients waited (ms, log scale)",
        "latency_percentiles",
        &[("leg", "downstream")],
        "latency",
    ),
    (
        "latency_up",
        "Response time, upstream: what the resolver waited for authorities (ms, log scale)",
        "latency_percentiles",
        &[("leg", "upstream")],
        "latency",
    ),
    (
        "rcodes",
        "Responses by rcode, downstream",
        "rcodes_over_time",
        &[],
        "stacked",
    ),
    (
        "slow",
        "Slow responses (over 5 s), downstream: client inside, registered domain outside",
        "slow_by_client_domain",
        &[],
        "sunburst",
    ),
    (
        "domains",
        "TLD, then registered domain, downstream (top 50 and other)",
        "top_domains",
        &[("top", "50")],
        "treemap",
    ),
    (
        "domain",
        "The busiest registered domain's queries and outcomes, downstream",
        "domain_timeline",
        &[],
        "timeline",
    ),
    (
        "clients",
        "Distinct client addresses, downstream",
        "distinct_clients",
        &[],
        "clients",
    ),
    (
        "qtypes",
        "Query types, downstream",
        "qtypes_over_time",
        &[],
        "stacked",
    ),
    (
        "unanswered",
        "Unanswered queries per server, both legs",
        "unanswered",
        &[],
        "unanswered",
    ),
    (
        "top_clients",
        "Top clients, downstream",
        "top_clients",
        &[],
        "table",
    ),
    (
        "top_servers",
        "Top servers, both legs",
        "top_servers",
        &[],
        "table",
    ),
    (
        "top_domains",
        "Top registered domains, downstream",
        "top_domains",
        &[],
        "table",
    ),
    (
        "top_countries",
        "Client countries and continents, downstream (ingest with --geoip)",
        "top_countries",
        &[],
        "table",
    ),
    (
        "top_networks",
        "Client networks (autonomous systems), downstream (ingest with --asn)",
        "top_networks",
        &[],
        "table",
    ),
];

/// The header's figures.
const SUMMARY: &str = "\
SELECT
    min(ts) AS first,
    max(ts) AS last,
    count(*) AS transactions,
    100.0 * count(*) FILTER (WHERE status = 'answered') / count(*) AS answered_pct,
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) FROM transactions
        WHERE status = 'answered' AND leg = 'downstream' AND ts >= $since AND ts < $until) AS p50_ms,
    (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms) FROM transactions
        WHERE status = 'answered' AND leg = 'downstream' AND ts >= $since AND ts < $until) AS p99_ms,
    (SELECT sum(packets) FROM captures) AS packets,
    (SELECT sum(malformed) FROM captures) AS malformed
FROM transactions
WHERE ts >= $since AND ts < $until";

/// A statement's rows as JSON objects (nulls kept).
async fn rows(
    session: &Session,
    guard: &Guard,
    sql: &str,
    given: &Given,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<String>, serde_json::Value)> {
    let header = Header::parse(sql);
    let binder = Binder {
        header: &header,
        given,
    };
    let mut statements = Session::statements(sql)?;
    let st = statements.pop().context("an empty query")?;
    let stream = session.execute_with(st, guard, &binder, notes).await?;
    let columns = stream
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    // the rows as `dnsq sql --format json` writes them
    let (_, buf) = write_stream(stream, Format::Json, usize::MAX, None, Vec::new()).await?;
    let value = serde_json::from_slice(&buf)?;
    Ok((columns, value))
}

pub fn run(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = ingest::dataset_dir(a.data.as_deref());
    let given = a.scope.given();
    let options = a.scope.engine_options();
    let mut file = match OutputFile::create(&a.output, &dir, a.force)? {
        Ok(f) => f,
        Err(refusal) => {
            eprintln!("dnsq: {refusal}");
            return Ok(ExitCode::from(2));
        }
    };
    let rt = runtime()?;
    let page = rt.block_on(async {
        let session = Session::open_with(&dir, &options).await?;
        let guard = Guard::new(&session.ctx, &dir, false).await?;
        session.filter(&a.scope.filters).await?;
        let mut notes = Vec::new();
        let started = std::time::Instant::now();
        let (_, summary) = rows(&session, &guard, SUMMARY, &given, &mut notes).await?;
        if a.timings {
            eprintln!("dnsq: summary: {} ms", started.elapsed().as_millis());
        }
        let mut panels = Vec::new();
        for (id, title, query, params, kind) in PANELS {
            let started = std::time::Instant::now();
            let sql = saved::find(query).context("a saved query")?;
            let mut g = given.clone();
            for (k, v) in *params {
                g.set(k, *v);
            }
            let (columns, data) = rows(&session, &guard, sql, &g, &mut notes).await?;
            let ms = started.elapsed().as_millis() as u64;
            if a.timings {
                eprintln!("dnsq: panel {id} ({query}): {ms} ms");
            }
            let h = Header::parse(sql);
            let leg = g
                .values
                .get("leg")
                .cloned()
                .or_else(|| h.declared("leg").map(|d| d.default.clone()))
                .unwrap_or_else(|| "all".into());
            panels.push(serde_json::json!({
                "id": id, "title": title, "query": query, "kind": kind, "leg": leg,
                "params": g.values, "sql": sql, "columns": columns, "rows": data, "ms": ms,
            }));
        }
        for n in notes.iter().collect::<std::collections::BTreeSet<_>>() {
            eprintln!("dnsq: {n}");
        }
        let data = serde_json::json!({
            "dataset": dir.display().to_string(),
            "generated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "version": env!("CARGO_PKG_VERSION"),
            "range": {"since": a.scope.since, "until": a.scope.until},
            "filters": a.scope.filters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "resolvers": session.legs.get().map(|r| r.describe()),
            "summary": summary.get(0).cloned().unwrap_or_default(),
            "panels": panels,
        });
        Ok::<_, anyhow::Error>(page(&data))
    })?;
    file.write_all(page.as_bytes())
        .with_context(|| format!("writing {}", a.output.display()))?;
    file.commit()?;
    eprintln!(
        "dnsq: wrote {} ({} KiB): open it in any browser; nothing in it is fetched from the network",
        a.output.display(),
        page.len() / 1024
    );
    Ok(ExitCode::SUCCESS)
}

/// The HTML page: the template with ECharts and the data inline.
fn page(data: &serde_json::Value) -> String {
    // `</script>` inside the data would end the script element
    let json = data.to_string().replace("</", "<\\/");
    TEMPLATE
        .replacen("/*ECHARTS*/", &ECHARTS.replace("</script", "<\\/script"), 1)
        .replacen("/*DATA*/null", &json, 1)
}
