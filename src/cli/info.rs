//! `dnsq info`: what a dataset holds.

use std::process::ExitCode;

use crate::cli::{runtime, write_stdout, InfoArgs};
use crate::ingest;
use crate::query::output::{write_result, Format};
use crate::query::Session;

const SUMMARY: &str = "select count(*) as transactions, \
 count(*) filter (where status = 'answered') as answered, \
 count(*) filter (where status = 'unanswered') as unanswered, \
 count(*) filter (where status = 'response_only') as response_only, \
 min(ts) as first, max(ts) as last, count(distinct date) as days from transactions";
const CAPTURES: &str =
    "select path, format, packets, dns_messages, malformed, answered, unanswered, response_only, \
 first_ts, last_ts, problem from captures order by first_ts, path";

pub fn run(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let dir = ingest::dataset_dir(a.data.as_deref());
    let rt = runtime()?;
    let results = rt.block_on(async {
        let s = Session::open(&dir).await?;
        let mut r = s.run(SUMMARY).await?;
        if s.ctx.table_exist("captures")? {
            r.extend(s.run(CAPTURES).await?);
        }
        Ok::<_, crate::error::Error>(r)
    })?;
    let mut buf = format!("dataset {}\n", dir.display()).into_bytes();
    for r in &results {
        write_result(r, Format::Table, &mut buf)?;
    }
    write_stdout(&buf)?;
    Ok(ExitCode::SUCCESS)
}
