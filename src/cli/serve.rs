//! `dnsq serve`: the dashboard on a local web server (`dashboard::server`).

use std::process::ExitCode;

use crate::cli::{runtime, ServeArgs};
use crate::dashboard::server::{serve, Config};
use crate::ingest;
use crate::query::engine::EngineOptions;

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config {
        dir: ingest::dataset_dir(a.data.as_deref()),
        options: EngineOptions {
            memory_limit: a.memory_limit,
            resolvers: a.resolvers,
        },
        panel_memory: a.panel_memory,
        allow_sql: a.allow_sql,
        timings: a.timings,
    };
    runtime()?.block_on(serve(config, a.addr))?;
    Ok(ExitCode::SUCCESS)
}
