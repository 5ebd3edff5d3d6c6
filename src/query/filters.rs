//! `--filter KEY=VALUE`: a session's `transactions` narrowed to the rows
//! every filter admits, for `dnsq sql`, the shell and the dashboard.

use crate::error::{Error, Result};
use crate::query::{legs, Session};

impl Session {
    /// Narrows `transactions` to the rows every filter admits, for the rest of
    /// the session (`--filter client=192.0.2.0/24 --filter rcode=SERVFAIL`).
    /// The values become literals of a plan built with DataFrame calls, never
    /// SQL text; the legs are still found over all the rows.
    pub async fn filter(&self, filters: &[(String, String)]) -> Result<()> {
        use datafusion::execution::FunctionRegistry;
        use datafusion::prelude::{col, lit};
        if filters.is_empty() {
            return Ok(());
        }
        let mut df = self.ctx.table("transactions").await?;
        for (key, value) in filters {
            let column = filter_column(key).ok_or_else(|| {
                Error::Usage(format!(
                    "--filter {key}={value}: no such filter; use one of {}",
                    filter_keys()
                ))
            })?;
            let is_address = column == "client_ip" || column == "server_ip";
            let e = if column == "leg" {
                // `all` is both legs: no filter (the dashboard's leg menu offers it)
                match value.to_ascii_lowercase().as_str() {
                    "all" => continue,
                    leg @ ("downstream" | "upstream") => col(column).eq(lit(leg.to_string())),
                    _ => {
                        return Err(Error::Usage(format!(
                            "--filter {key}={value}: expected downstream, upstream or all"
                        )))
                    }
                }
            } else if is_address && value.contains('/') {
                let f = self.ctx.udf("ip_in")?;
                f.call(vec![col(column), lit(value.clone())]).is_true()
            } else if column == "server_ip"
                && (value.starts_with('[') || value.matches(':').count() == 1)
            {
                // `192.0.2.1:53`, `[2001:db8::1]:53`: an address and its port
                let (ip, port) = legs::parse_endpoint(value).map_err(Error::Usage)?;
                col("server_ip")
                    .eq(lit(ip))
                    .and(col("server_port").eq(lit(i32::from(port))))
            } else if is_address {
                let ip: std::net::IpAddr = value.parse().map_err(|_| {
                    Error::Usage(format!(
                        "--filter {key}={value}: not an address or a network"
                    ))
                })?;
                col(column).eq(lit(ip.to_string()))
            } else if column == "qname" || column == "reg_domain" || column == "tld" {
                col(column).eq(lit(value.trim_end_matches('.').to_ascii_lowercase()))
            } else if column == "rcode" || column == "qtype" {
                col(column).eq(lit(value.to_ascii_uppercase()))
            } else {
                col(column).eq(lit(value.clone()))
            };
            df = df.filter(e)?;
        }
        let view = df.into_view();
        self.ctx.deregister_table("transactions")?;
        self.ctx.register_table("transactions", view)?;
        Ok(())
    }
}

/// `--filter` keys and the column each one narrows.
pub const FILTERS: &[(&str, &str)] = &[
    ("domain", "reg_domain"),
    ("tld", "tld"),
    ("qname", "qname"),
    ("client", "client_ip"),
    ("server", "server_ip"),
    ("rcode", "rcode"),
    ("qtype", "qtype"),
    ("leg", "leg"),
    ("status", "status"),
    ("transport", "transport"),
];

/// The `--filter` keys, for a message: `domain, tld, ...`.
fn filter_keys() -> String {
    FILTERS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

fn filter_column(key: &str) -> Option<&'static str> {
    FILTERS.iter().find(|(k, _)| *k == key).map(|(_, c)| *c)
}

/// `key=value`, as `--filter` takes it.
pub fn parse_filter(s: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        format!("--filter {s}: expected KEY=VALUE (for example client=192.0.2.0/24)")
    })?;
    if filter_column(k.trim()).is_none() {
        return Err(format!(
            "--filter {s}: no filter `{k}`; use one of {}",
            filter_keys()
        ));
    }
    Ok((k.trim().to_string(), v.trim().to_string()))
}
