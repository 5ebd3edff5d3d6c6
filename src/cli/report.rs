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
use crate::dashboard::{self, View, PANELS};
use crate::ingest;
use crate::query::policy::Guard;
use crate::query::Session;

pub fn run(a: ReportArgs) -> anyhow::Result<ExitCode> {
    crate::cli::without_huge_pages();
    let dir = ingest::dataset_dir(a.data.as_deref());
    let view = match View::of_scope(&a.scope) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("dnsq: {e}");
            return Ok(ExitCode::from(2));
        }
    };
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
        let base = Session::open_with(&dir, &options).await?;
        let mut notes = Vec::new();
        let started = std::time::Instant::now();
        // the header counts the leg as a filter; the panels take it as a parameter
        let summary = {
            let s = base.fork().await?;
            s.filter(&view.summary_filters()).await?;
            let guard = Guard::new(&s.ctx, &dir, false).await?;
            dashboard::run_summary(&s, &guard, &view, &mut notes).await?
        };
        if a.timings {
            eprintln!("dnsq: summary: {} ms", started.elapsed().as_millis());
        }
        let session = base.fork().await?;
        session.filter(&view.filters).await?;
        let guard = Guard::new(&session.ctx, &dir, false).await?;
        let mut panels = Vec::new();
        for p in PANELS {
            let panel = dashboard::run_panel(&session, &guard, p, &view, &mut notes).await?;
            if a.timings {
                eprintln!("dnsq: panel {} ({}): {} ms", p.id, p.query, panel["ms"]);
            }
            panels.push(panel);
        }
        for n in notes.iter().collect::<std::collections::BTreeSet<_>>() {
            eprintln!("dnsq: {n}");
        }
        let data = serde_json::json!({
            "dataset": dir.display().to_string(),
            "generated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "version": env!("CARGO_PKG_VERSION"),
            "range": {"since": view.since, "until": view.until},
            "filters": view.describe(),
            "resolvers": session.legs.get().map(|r| r.describe()),
            "summary": summary,
            "panels": panels,
        });
        Ok::<_, anyhow::Error>(dashboard::page(Some(&data)))
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
