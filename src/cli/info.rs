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

/// How the addresses of the captures were enriched and pseudonymised.
const PRIVACY: &str = "select coalesce(anonymization, 'as captured') as addresses, \
 coalesce(geoip_db, '') as geoip, coalesce(asn_db, '') as asn, count(*) as captures \
 from captures group by all order by captures desc";

pub fn run(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let dir = ingest::dataset_dir(a.data.as_deref());
    let rt = runtime()?;
    if a.check {
        let (files, damaged) = rt.block_on(crate::dataset::check(&dir, true))?;
        for d in &damaged {
            eprintln!("dnsq: damaged: {}: {}", d.path.display(), d.what);
        }
        eprintln!(
            "dnsq: {}: {files} committed files read whole, {} damaged",
            dir.display(),
            damaged.len()
        );
        return Ok(if damaged.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let results = rt.block_on(async {
        let s = Session::open(&dir).await?;
        let run = async {
            let mut r = s.run(SUMMARY).await?;
            if s.ctx.table_exist("captures")? {
                r.extend(s.run(CAPTURES).await?);
                r.extend(s.run(PRIVACY).await?);
            }
            Ok::<_, crate::error::Error>(r)
        };
        match run.await {
            Ok(r) => Ok(r),
            Err(e) => Err(crate::query::name_damage(&dir, e).await),
        }
    })?;
    let mut buf = format!("dataset {}\n", dir.display()).into_bytes();
    for r in &results {
        write_result(r, Format::Table, &mut buf)?;
    }
    write_stdout(&buf)?;
    Ok(ExitCode::SUCCESS)
}
