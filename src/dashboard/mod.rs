//! The dashboard: the panels of the old Kibana board, each a saved query run
//! with bound parameters, drawn by Apache ECharts.
//!
//! One page ([`page`]) serves both ways: `dnsq serve` sends it with no data
//! and it fetches each panel from the server as the filters change;
//! `dnsq report` writes it with every panel's rows inline. A [`View`] is
//! what the page asks for (time range, bucket, leg, filters, the domain the
//! timeline follows); it becomes bound parameters and DataFrame filters,
//! never SQL text.

pub mod server;

use anyhow::Context;

use crate::query::output::{write_stream, Format};
use crate::query::params::{Binder, Given, Header, LEGS};
use crate::query::policy::Guard;
use crate::query::{parse_filter, saved, Session};

/// The vendored ECharts: inline in a report, served by `dnsq serve`.
pub(crate) const ECHARTS: &str = include_str!("../../assets/echarts/echarts.min.js");
const TEMPLATE: &str = include_str!("page.html");

/// One panel of the dashboard.
pub struct Panel {
    pub id: &'static str,
    pub title: &'static str,
    /// The saved query behind it.
    pub query: &'static str,
    /// Parameters it always has (a fixed leg, a longer top list).
    pub params: &'static [(&'static str, &'static str)],
    /// How the page draws it.
    pub kind: &'static str,
}

const fn panel(
    id: &'static str,
    title: &'static str,
    query: &'static str,
    params: &'static [(&'static str, &'static str)],
    kind: &'static str,
) -> Panel {
    Panel {
        id,
        title,
        query,
        params,
        kind,
    }
}

pub const PANELS: &[Panel] = &[
    panel(
        "latency_down",
        "Response time, downstream: what clients waited (ms, log scale)",
        "latency_percentiles",
        &[("leg", "downstream")],
        "latency",
    ),
    panel(
        "latency_up",
        "Response time, upstream: what the resolver waited for authorities (ms, log scale)",
        "latency_percentiles",
        &[("leg", "upstream")],
        "latency",
    ),
    panel(
        "rcodes",
        "Responses by rcode",
        "rcodes_over_time",
        &[],
        "stacked",
    ),
    panel(
        "slow",
        "Slow responses (over 5 s): client inside, registered domain outside",
        "slow_by_client_domain",
        &[],
        "sunburst",
    ),
    panel(
        "domains",
        "TLD, then registered domain (top 50 and other)",
        "top_domains",
        &[("top", "50")],
        "treemap",
    ),
    panel(
        "domain",
        "One domain's queries and outcomes",
        "domain_timeline",
        &[],
        "timeline",
    ),
    panel(
        "clients",
        "Distinct client addresses",
        "distinct_clients",
        &[],
        "clients",
    ),
    panel("qtypes", "Query types", "qtypes_over_time", &[], "stacked"),
    panel(
        "unanswered",
        "Unanswered queries per server",
        "unanswered",
        &[],
        "unanswered",
    ),
    panel("top_clients", "Top clients", "top_clients", &[], "table"),
    panel("top_servers", "Top servers", "top_servers", &[], "table"),
    panel(
        "top_domains",
        "Top registered domains",
        "top_domains",
        &[],
        "table",
    ),
    panel(
        "top_countries",
        "Client countries and continents (ingest with --geoip)",
        "top_countries",
        &[],
        "table",
    ),
    panel(
        "top_networks",
        "Client networks, autonomous systems (ingest with --asn)",
        "top_networks",
        &[],
        "table",
    ),
];

impl Panel {
    /// Whether its query reads the time bucket: a change of bucket alone
    /// leaves the answers of the others as they were.
    pub fn bucketed(&self) -> bool {
        saved::find(self.query)
            .map(Header::parse)
            .is_some_and(|h| h.declared("bucket").is_some())
    }
}

pub fn find(id: &str) -> Option<&'static Panel> {
    PANELS.iter().find(|p| p.id == id)
}

/// The header's figures.
pub const SUMMARY: &str = "\
SELECT t.*, d.p[1] AS p50_ms, d.p[2] AS p99_ms, c.packets, c.malformed
FROM (
    SELECT
        min(ts) AS first,
        max(ts) AS last,
        count(*) AS transactions,
        100.0 * count(*) FILTER (WHERE status = 'answered') / count(*) AS answered_pct
    FROM transactions
    WHERE ts >= $since AND ts < $until
) t
CROSS JOIN (
    SELECT percentiles(response_time_ms, 0.5, 0.99) AS p FROM transactions
    WHERE status = 'answered' AND leg = 'downstream' AND ts >= $since AND ts < $until
) d
CROSS JOIN (SELECT sum(packets) AS packets, sum(malformed) AS malformed FROM captures) c";

/// What the page shows: the time range, the bucket, the leg, the filters and
/// the domain the timeline follows. In a URL: `?since=..&until=..&bucket=..
/// &leg=..&pick=..&domain=..&rcode=..` (a filter key may repeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub since: Option<String>,
    pub until: Option<String>,
    pub bucket: Option<String>,
    /// The leg every panel that is not pinned to one shows.
    pub leg: Option<String>,
    /// The registered domain the timeline panel follows.
    pub pick: Option<String>,
    /// `--filter` pairs other than `leg`.
    pub filters: Vec<(String, String)>,
}

impl View {
    /// A view from a URL's query pairs; an unknown key or a bad value is an
    /// error the page can show.
    pub fn parse(pairs: &[(String, String)]) -> Result<View, String> {
        let mut v = View::default();
        for (k, val) in pairs {
            let val = val.trim();
            if val.is_empty() {
                continue;
            }
            match k.as_str() {
                "since" => v.since = Some(val.into()),
                "until" => v.until = Some(val.into()),
                "bucket" => v.bucket = Some(val.into()),
                "pick" => v.pick = Some(val.trim_end_matches('.').to_ascii_lowercase()),
                "leg" => {
                    if !LEGS.contains(&val) {
                        return Err(format!("leg={val}: use one of {}", LEGS.join(", ")));
                    }
                    v.leg = Some(val.into());
                }
                _ => v.filters.push(parse_filter(&format!("{k}={val}"))?),
            }
        }
        Ok(v)
    }

    /// The view `dnsq report`'s flags give.
    pub fn of_scope(scope: &crate::cli::Scope) -> Result<View, String> {
        let mut pairs = Vec::new();
        for (k, v) in [
            ("since", &scope.since),
            ("until", &scope.until),
            ("bucket", &scope.bucket),
        ] {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.clone()));
            }
        }
        pairs.extend(scope.filters.iter().cloned());
        View::parse(&pairs)
    }

    /// The parameters `p`'s query gets: the time range and bucket, the
    /// panel's own, the view's leg unless the panel is pinned to one, and
    /// the picked domain for the timeline.
    pub fn given_for(&self, p: &Panel) -> Given {
        let mut g = self.given();
        for (k, v) in p.params {
            g.set(k, *v);
        }
        if let Some(leg) = &self.leg {
            if !p.params.iter().any(|(k, _)| *k == "leg") {
                g.set("leg", leg.clone());
            }
        }
        if let (Some(d), true) = (&self.pick, p.query == "domain_timeline") {
            g.set("domain", d.clone());
        }
        // only what the query reads: a top table's answer does not name a bucket
        let header = saved::find(p.query).map(Header::parse).unwrap_or_default();
        g.values
            .retain(|k, _| k == "since" || k == "until" || header.declared(k).is_some());
        g
    }

    /// What `p`'s answer depends on: its parameters (those its query
    /// declares, and the time range) and the filters, in one order. Two views
    /// that differ only in what `p` does not read (the bucket, for a top
    /// table) get the same answer.
    pub fn key_for(&self, p: &Panel) -> String {
        let given = self.given_for(p).values;
        let mut filters = self.filters.clone();
        filters.sort();
        format!("{given:?} {filters:?}")
    }

    /// The time range and bucket as parameters.
    pub fn given(&self) -> Given {
        let mut g = Given::default();
        for (k, v) in [
            ("since", &self.since),
            ("until", &self.until),
            ("bucket", &self.bucket),
        ] {
            if let Some(v) = v {
                g.set(k, v.clone());
            }
        }
        g
    }

    /// What the header's answer depends on: its time range and filters
    /// (not the bucket, nor the timeline's domain).
    pub fn summary_key(&self) -> String {
        let mut filters = self.summary_filters();
        filters.sort();
        format!("{:?} {:?} {filters:?}", self.since, self.until)
    }

    /// The filters the header's figures take: the leg is one of them there.
    pub fn summary_filters(&self) -> Vec<(String, String)> {
        let mut f = self.filters.clone();
        if let Some(leg) = &self.leg {
            f.push(("leg".into(), leg.clone()));
        }
        f
    }

    /// The filters as the page shows them (`key=value`).
    pub fn describe(&self) -> Vec<String> {
        self.summary_filters()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// A statement's rows as JSON objects (nulls kept), as `dnsq sql --format
/// json` writes them.
pub async fn rows(
    session: &Session,
    guard: &Guard,
    sql: &str,
    given: &Given,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<String>, serde_json::Value)> {
    let (columns, rows, _) = rows_at_most(session, guard, sql, given, notes, usize::MAX).await?;
    Ok((columns, rows))
}

/// [`rows`], at most `limit` of them, and how many more there were. `sql`
/// is one statement.
pub async fn rows_at_most(
    session: &Session,
    guard: &Guard,
    sql: &str,
    given: &Given,
    notes: &mut Vec<String>,
    limit: usize,
) -> anyhow::Result<(Vec<String>, serde_json::Value, u64)> {
    let header = Header::parse(sql);
    let binder = Binder {
        header: &header,
        given,
    };
    let mut statements = Session::statements(sql)?;
    let st = match (statements.pop(), statements.is_empty()) {
        (Some(st), true) => st,
        _ => return Err(crate::error::Error::Usage("send one SQL statement".into()).into()),
    };
    let stream = session.execute_with(st, guard, &binder, notes).await?;
    let columns = stream
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let (written, buf) = write_stream(stream, Format::Json, limit, None, Vec::new()).await?;
    let value = serde_json::from_slice(&buf)?;
    Ok((columns, value, written.hidden()))
}

/// One panel's rows and what the page says about them. `session` already
/// has the view's filters.
pub async fn run_panel(
    session: &Session,
    guard: &Guard,
    p: &Panel,
    view: &View,
    notes: &mut Vec<String>,
) -> anyhow::Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let sql = saved::find(p.query).context("a saved query")?;
    let g = view.given_for(p);
    let (columns, data) = rows(session, guard, sql, &g, notes).await?;
    let ms = started.elapsed().as_millis() as u64;
    let leg = g
        .values
        .get("leg")
        .cloned()
        .or_else(|| {
            Header::parse(sql)
                .declared("leg")
                .map(|d| d.default.clone())
        })
        .unwrap_or_else(|| "all".into());
    Ok(serde_json::json!({
        "id": p.id, "title": p.title, "query": p.query, "kind": p.kind, "leg": leg,
        "pinned": p.params.iter().any(|(k, _)| *k == "leg"),
        "params": g.values, "filters": view.filters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "sql": sql, "columns": columns, "rows": data, "ms": ms,
    }))
}

/// The header's row. `session` has the view's filters, the leg included.
pub async fn run_summary(
    session: &Session,
    guard: &Guard,
    view: &View,
    notes: &mut Vec<String>,
) -> anyhow::Result<serde_json::Value> {
    let (_, summary) = rows(session, guard, SUMMARY, &view.given(), notes).await?;
    Ok(summary.get(0).cloned().unwrap_or_default())
}

/// The page: live (no data: it fetches from `dnsq serve`) or a report with
/// every panel's data inline.
pub fn page(data: Option<&serde_json::Value>) -> String {
    // `</script>` inside the data would end the script element
    let (template, json) = match data {
        None => (TEMPLATE.to_string(), "null".to_string()),
        // a report asks nothing of any server: the code that would is left out
        Some(d) => {
            let (head, rest) = TEMPLATE.split_once("/*LIVE*/").unwrap_or((TEMPLATE, ""));
            let tail = rest.split_once("/*END LIVE*/").map_or("", |(_, t)| t);
            (format!("{head}{tail}"), d.to_string().replace("</", "<\\/"))
        }
    };
    let charts = match data {
        // the server's page names the library by its digest: the browser
        // keeps it (and its compiled code) from one page load to the next
        None => format!(
            "<script src=\"{ECHARTS_PATH}?sha256={}\"></script>",
            echarts_digest()
        ),
        // a report is one file
        Some(_) => format!(
            "<script>{}</script>",
            ECHARTS.replace("</script", "<\\/script")
        ),
    };
    template
        .replacen("<script>/*ECHARTS*/</script>", &charts, 1)
        .replacen("/*DATA*/null", &json, 1)
}

/// Where `dnsq serve` serves the vendored ECharts.
pub const ECHARTS_PATH: &str = "/assets/echarts.min.js";

/// The first 16 hex digits of ECharts' SHA-256: the page's link to it
/// changes when the library does.
pub fn echarts_digest() -> &'static str {
    use sha2::{Digest, Sha256};
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let d = Sha256::digest(ECHARTS.as_bytes());
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_view_takes_the_url_keys_and_refuses_others() {
        let v = View::parse(&pairs(&[
            ("since", "2026-11-28T09:50:00Z"),
            ("domain", "Example.COM."),
            ("rcode", "servfail"),
            ("leg", "upstream"),
            ("pick", "Example.org"),
            ("until", ""),
        ]))
        .unwrap();
        assert_eq!(v.since.as_deref(), Some("2026-11-28T09:50:00Z"));
        assert_eq!(v.until, None);
        assert_eq!(v.pick.as_deref(), Some("example.org"));
        assert_eq!(
            v.filters,
            pairs(&[("domain", "Example.COM."), ("rcode", "servfail")])
        );
        assert_eq!(
            v.describe(),
            ["domain=Example.COM.", "rcode=servfail", "leg=upstream"]
        );
        let e = View::parse(&pairs(&[("colour", "red")])).unwrap_err();
        assert!(e.contains("no filter `colour`"), "{e}");
        let e = View::parse(&pairs(&[("leg", "sideways")])).unwrap_err();
        assert!(e.contains("downstream, upstream, all"), "{e}");
    }

    #[test]
    fn the_leg_goes_to_every_panel_not_pinned_to_one() {
        let v = View {
            leg: Some("upstream".into()),
            pick: Some("example.org".into()),
            ..View::default()
        };
        let down = find("latency_down").unwrap();
        assert_eq!(v.given_for(down).values["leg"], "downstream");
        let rcodes = find("rcodes").unwrap();
        assert_eq!(v.given_for(rcodes).values["leg"], "upstream");
        assert!(!v.given_for(rcodes).values.contains_key("domain"));
        let timeline = find("domain").unwrap();
        assert_eq!(v.given_for(timeline).values["domain"], "example.org");
        // without a leg in the view, each query's own default holds
        assert!(!View::default().given_for(rcodes).values.contains_key("leg"));
    }

    #[test]
    fn a_panel_answer_is_keyed_by_what_its_query_reads() {
        let pairs = |b: &str| View::parse(&pairs(&[("bucket", b), ("rcode", "NXDOMAIN")])).unwrap();
        let (a, b) = (pairs("1m"), pairs("10s"));
        let top = find("top_domains").unwrap();
        let rcodes = find("rcodes").unwrap();
        assert_eq!(a.key_for(top), b.key_for(top));
        assert_ne!(a.key_for(rcodes), b.key_for(rcodes));
        // the filters and the range always count
        let c = View::parse(&[("bucket".to_string(), "1m".to_string())]).unwrap();
        assert_ne!(a.key_for(top), c.key_for(top));
        let d = View {
            since: Some("2026-11-28".into()),
            ..a.clone()
        };
        assert_ne!(a.key_for(top), d.key_for(top));
    }

    #[test]
    fn every_panel_runs_a_saved_query_and_ids_are_unique() {
        let mut ids = std::collections::HashSet::new();
        for p in PANELS {
            assert!(saved::find(p.query).is_some(), "{}", p.query);
            assert!(ids.insert(p.id), "{}", p.id);
        }
    }

    #[test]
    fn the_page_carries_its_data_and_no_early_script_end() {
        let data = serde_json::json!({"x": "</script><b>"});
        let html = page(Some(&data));
        assert!(html.contains(r#"{"x":"<\/script><b>"}"#));
        assert!(!html.contains("fetch(") && !html.contains("/*LIVE*/"));
        let live = page(None);
        assert!(live.contains("const DATA = null;") && live.contains("fetch("));
    }
}
