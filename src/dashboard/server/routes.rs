//! The dashboard's routes: each handler reads the page's view from its
//! query string and answers from the server's snapshot ([`Server`]).

use super::*;

type Pairs = Query<Vec<(String, String)>>;

/// The view in a request's query string.
fn view_of(pairs: &[(String, String)]) -> Result<View, ApiError> {
    View::parse(pairs).map_err(bad)
}

async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(crate::dashboard::page(None)),
    )
}

/// The vendored ECharts: the same bytes for as long as this binary runs,
/// and the page links to it by its digest, so the browser may keep it.
async fn echarts() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        crate::dashboard::ECHARTS,
    )
}

async fn meta(State(server): State<Shared>) -> Result<Response, ApiError> {
    server
        .clone()
        .cached("meta".into(), "meta".into(), |snap| async move {
            let s = &snap.session;
            s.legs.ensure(&s.ctx, RAW).await?;
            let span = s.span(None, None).await?;
            let iso = |us: i64| {
                chrono::DateTime::from_timestamp_micros(us)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            };
            Ok(json!({
                "dataset": server.config.dir.display().to_string(),
                "version": env!("CARGO_PKG_VERSION"),
                "resolvers": s.legs.get().map(|r| r.describe()),
                "first": span.and_then(|s| iso(s.first)),
                "last": span.and_then(|s| iso(s.last)),
                "panels": PANELS.iter().map(|p| json!({
                    "id": p.id, "title": p.title, "query": p.query, "kind": p.kind,
                    "bucketed": p.bucketed(),
                })).collect::<Vec<_>>(),
                "filters": FILTERS.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                "allow_sql": server.config.allow_sql,
            }))
        })
        .await
}

async fn summary(State(server): State<Shared>, Query(q): Pairs) -> Result<Response, ApiError> {
    let view = view_of(&q)?;
    let key = view.summary_key();
    server
        .clone()
        .cached(
            "summary".into(),
            format!("summary {key}"),
            |snap| async move {
                let (s, guard) = server
                    .session(&snap, &view.summary_filters(), range_of(&view))
                    .await?;
                let mut notes = Vec::new();
                Ok(run_summary(&s, &guard, &view, &mut notes).await?)
            },
        )
        .await
}

fn no_panel(id: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!(
            "no panel `{id}`; the panels are {}",
            PANELS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
        ),
    )
}

async fn panel(
    State(server): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = find(&id).ok_or_else(|| no_panel(&id))?;
    let view = view_of(&q)?;
    let snap = server.snapshot().await?;
    let answer = server.panel(snap, p, view).await?;
    Ok(no_store(&answer))
}

/// The panels `ids=ID,ID,...` of one view in one answer: a line of JSON per
/// panel as soon as its query is done, `{"id", "answer"}`, `{"id", "same"}`
/// (the answer whose tag the page sent in `have`) or `{"id", "status",
/// "error"}`, in the order they finish. Their queries run at once.
/// The page asks for every panel this way: a browser sends at most 6 requests
/// to one server at a time, and a seventh panel would wait for a connection
/// while the server had its answer half done. When the browser goes away the
/// answer is dropped, and with it every query still running.
async fn panels(State(server): State<Shared>, Query(q): Pairs) -> Result<Response, ApiError> {
    use axum::body::{Body, Bytes};
    let ids = q
        .iter()
        .find(|(k, _)| k == "ids")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // `have=ID:TAG,...`: the answers the page has drawn; one of them is
    // answered `same`, not sent again (a change of bucket leaves the panels
    // that read none as they were, and one of them is megabytes)
    let have: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| k == "have")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|pair| pair.split_once(':'))
        .map(|(id, tag)| (id.to_string(), tag.to_string()))
        .collect();
    let rest: Vec<_> = q
        .into_iter()
        .filter(|(k, _)| k != "ids" && k != "have")
        .collect();
    let view = view_of(&rest)?;
    let mut wanted: Vec<&'static Panel> = Vec::new();
    for id in ids.split(',').filter(|id| !id.is_empty()) {
        let p = find(id).ok_or_else(|| no_panel(id))?;
        if !wanted.iter().any(|w| w.id == p.id) {
            wanted.push(p);
        }
    }
    if wanted.is_empty() {
        return Err(bad("say which panels: ids=ID,ID,..."));
    }
    // one snapshot for all, so that one answer never mixes two commits; a
    // task each, so that they run on every core; dropping the set (the
    // answer dropped) aborts the tasks still running
    let snap = server.snapshot().await?;
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = HashMap::new();
    for p in wanted {
        let task = tasks.spawn(server.clone().panel(snap.clone(), p, view.clone()));
        names.insert(task.id(), p.id);
    }
    // the answer as it is kept, not a copy of it
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        id: &'a str,
        answer: &'a serde_json::Value,
    }
    let state = (tasks, names, have);
    let lines = futures::stream::unfold(state, |(mut tasks, names, have)| async move {
        let line = match tasks.join_next_with_id().await? {
            Ok((task, Ok(answer))) => {
                let id = names[&task];
                match (have.get(id), answer["tag"].as_str()) {
                    (Some(had), Some(tag)) if had == tag => {
                        serde_json::to_vec(&json!({ "id": id, "same": tag }))
                    }
                    _ => serde_json::to_vec(&Answer {
                        id,
                        answer: &answer,
                    }),
                }
            }
            Ok((task, Err(ApiError(status, why)))) => serde_json::to_vec(
                &json!({ "id": names[&task], "status": status.as_u16(), "error": why }),
            ),
            Err(e) => serde_json::to_vec(&json!({
                "id": names.get(&e.id()).copied().unwrap_or_default(),
                "status": 500,
                "error": format!("the panel's query failed: {e}"),
            })),
        };
        let mut bytes = line.unwrap_or_default();
        bytes.push(b'\n');
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(bytes)),
            (tasks, names, have),
        ))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The registered domains that start with `q`, busiest first: the domain
/// picker's type-ahead.
async fn domains(State(server): State<Shared>, Query(q): Pairs) -> Result<Response, ApiError> {
    use datafusion::functions::expr_fn::starts_with;
    use datafusion::functions_aggregate::expr_fn::count;
    let prefix = q
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default();
    let rest: Vec<_> = q.iter().filter(|(k, _)| k != "q").cloned().collect();
    let view = view_of(&rest)?;
    // what the type-ahead reads: the filters, over the whole time
    let mut key = view.filters.clone();
    key.sort();
    server
        .clone()
        .cached(
            "domains".into(),
            format!("domains {prefix:?} {key:?}"),
            |snap| async move {
                let (s, _) = server.session(&snap, &view.filters, (None, None)).await?;
                let df = s
                    .ctx
                    .table("transactions")
                    .await
                    .map_err(Error::from)?
                    .filter(starts_with(col("reg_domain"), lit(prefix)))
                    .and_then(|d| {
                        d.aggregate(
                            vec![col("reg_domain")],
                            vec![count(lit(1)).alias("transactions")],
                        )
                    })
                    .and_then(|d| d.sort(vec![col("transactions").sort(false, false)]))
                    .and_then(|d| d.limit(0, Some(20)))
                    .map_err(Error::from)?;
                let stream = df.execute_stream().await.map_err(Error::from)?;
                let (_, buf) =
                    write_stream(stream, Format::Json, usize::MAX, None, Vec::new()).await?;
                serde_json::from_slice(&buf)
                    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            },
        )
        .await
}

/// `--allow-sql`: one statement from the page, read-only, over the view's
/// filters, at most [`SQL_ROWS`] rows.
async fn sql(
    State(server): State<Shared>,
    Query(q): Pairs,
    body: String,
) -> Result<Response, ApiError> {
    if !server.config.allow_sql {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "SQL from the page is off: start dnsq serve with --allow-sql".into(),
        ));
    }
    let view = view_of(&q)?;
    let snap = server.snapshot().await?;
    // every column: the Parquet-backed session, not the panels' columns
    let s = snap.session.fork().await?;
    s.filter(&view.filters).await?;
    let guard = Guard::new(&s.ctx, &server.config.dir, false).await?;
    let mut running = Running {
        what: "sql".into(),
        done: false,
    };
    let mut notes = Vec::new();
    let (columns, rows, hidden) =
        rows_at_most(&s, &guard, &body, &view.given(), &mut notes, SQL_ROWS).await?;
    running.done = true;
    Ok(
        Json(json!({ "columns": columns, "rows": rows, "hidden": hidden, "notes": notes }))
            .into_response(),
    )
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page".into())
}

pub(super) fn router(server: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(crate::dashboard::ECHARTS_PATH, get(echarts))
        .route("/api/meta", get(meta))
        .route("/api/summary", get(summary))
        .route("/api/panel/{id}", get(panel))
        .route("/api/panels", get(panels))
        .route("/api/domains", get(domains))
        .route("/api/sql", post(sql))
        .fallback(not_found)
        .with_state(server)
}
