//! A resolver's two legs: what its clients asked it (downstream) and what it
//! asked authorities itself (upstream).
//!
//! A capture taken on a resolver holds both legs, and a query that mixes them
//! counts a cache miss twice, shows SERVFAILs an authority gave the resolver
//! as SERVFAILs clients saw, and counts the resolver as its own client. The
//! `transactions` view carries a `leg` column computed at query time:
//!
//! - `downstream`: the query went to a resolver endpoint (address *and*
//!   port), or did not come from a resolver at all (a capture taken at a
//!   client sees only this leg);
//! - `upstream`: the query came from a resolver's address and went to
//!   another endpoint (another address, or another port of the same one: a
//!   resolver and an authority on one host are told apart by port).
//!
//! The resolver endpoints are named (`--resolver ADDR[:PORT]`, repeatable,
//! or `DNSQ_RESOLVER`, comma-separated; port 53 unless given) or found in the
//! data: an endpoint that set RA (recursion available) in most of its
//! responses and whose address also sent queries to another endpoint.
//! Finding them reads the dataset once, so it happens only when a statement
//! uses `leg`, and once per session.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, AsArray, StringViewArray, UInt32Array};
use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::query::functions::strings;

/// The name of the function behind the `leg` column.
pub const LEG_FN: &str = "dnsq_leg";

/// Resolver endpoints: `(address in presentation form, port)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolvers {
    pub endpoints: Vec<(String, u16)>,
    /// Found in the data rather than named.
    pub found: bool,
}

impl Resolvers {
    fn ips(&self) -> HashSet<&str> {
        self.endpoints.iter().map(|(ip, _)| ip.as_str()).collect()
    }

    /// `127.0.0.10:53, [::1]:53`
    pub fn describe(&self) -> String {
        if self.endpoints.is_empty() {
            return "none".into();
        }
        self.endpoints
            .iter()
            .map(|(ip, port)| endpoint(ip, *port))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn endpoint(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:5353`.
pub fn parse_endpoint(s: &str) -> std::result::Result<(String, u16), String> {
    let t = s.trim();
    let bad = || format!("--resolver {s}: expected ADDR or ADDR:PORT (IPv6 as [ADDR]:PORT)");
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok((ip.to_string(), 53));
    }
    let (addr, port) = match t.strip_prefix('[') {
        Some(rest) => {
            let (a, p) = rest.split_once("]:").ok_or_else(bad)?;
            (a, p)
        }
        None => t.rsplit_once(':').ok_or_else(bad)?,
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((ip.to_string(), port))
}

/// Which leg each transaction is on; shared by the `leg` column's function
/// and the session, which fills it in before the first statement that needs it.
#[derive(Debug, Default)]
pub struct Legs {
    resolvers: OnceLock<Resolvers>,
    /// Resolvers the ingest found and kept (`summary`) are announced once,
    /// by the first statement that uses `leg`, as found ones are.
    announced: std::sync::atomic::AtomicBool,
}

impl Legs {
    /// Legs with the resolvers already known (`--resolver`).
    pub fn named(endpoints: Vec<(String, u16)>) -> Legs {
        let legs = Legs::default();
        if !endpoints.is_empty() {
            let _ = legs.resolvers.set(Resolvers {
                endpoints,
                found: false,
            });
        }
        legs
    }

    /// Legs over resolvers found in the data before (by the ingest that made
    /// the dataset's latest version, `summary`); unless named already.
    pub fn keep_found(&self, endpoints: Vec<(String, u16)>) {
        let _ = self.resolvers.set(Resolvers {
            endpoints,
            found: true,
        });
    }

    pub fn get(&self) -> Option<&Resolvers> {
        self.resolvers.get()
    }

    /// Finds the resolvers in `table` (the stored transactions) unless they
    /// are known already; `Some` when this call found them.
    pub async fn ensure(&self, ctx: &SessionContext, table: &str) -> Result<Option<&Resolvers>> {
        use std::sync::atomic::Ordering;
        if let Some(r) = self.resolvers.get() {
            let first = r.found && !self.announced.swap(true, Ordering::Relaxed);
            return Ok(first.then_some(r));
        }
        let found = find(ctx, table).await?;
        let _ = self.resolvers.set(found);
        self.announced.store(true, Ordering::Relaxed);
        Ok(self.resolvers.get())
    }
}

/// Endpoints that set RA in most responses, whose address also asked another endpoint.
pub(crate) async fn find(ctx: &SessionContext, table: &str) -> Result<Resolvers> {
    use futures::TryStreamExt;
    let candidates_sql = format!(
        "SELECT server_ip, server_port FROM {table} \
         GROUP BY 1, 2 HAVING 2 * count(*) FILTER (WHERE ra) > count(ra)"
    );
    let batches: Vec<_> = ctx
        .sql(&candidates_sql)
        .await?
        .execute_stream()
        .await?
        .try_collect()
        .await?;
    let mut candidates: Vec<(String, u16)> = Vec::new();
    for b in &batches {
        let ips = strings(b.column(0))?;
        let ports = arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let ports = ports.as_primitive::<arrow::datatypes::Int64Type>();
        for i in 0..b.num_rows() {
            if ips.is_valid(i) && ports.is_valid(i) {
                let port = u16::try_from(ports.value(i)).unwrap_or(0);
                candidates.push((ips.value(i).to_string(), port));
            }
        }
    }
    if candidates.is_empty() {
        return Ok(Resolvers {
            endpoints: vec![],
            found: true,
        });
    }
    // whether each candidate's address asked another endpoint: one row is
    // enough, so each search stops at its first match (a resolver asks
    // others all the time: 0.03 s on 10 M rows, where collecting every
    // endpoint the candidates asked took 0.41 s)
    use datafusion::prelude::{col, lit};
    let mut endpoints = Vec::new();
    for (ip, port) in candidates {
        let other = col("server_ip")
            .not_eq(lit(ip.clone()))
            .or(col("server_port").not_eq(lit(i32::from(port))));
        let df = ctx
            .table(table)
            .await?
            .filter(col("client_ip").eq(lit(ip.clone())).and(other))?
            .select_columns(&["client_ip"])?
            .limit(0, Some(1))?;
        let batches: Vec<_> = df.execute_stream().await?.try_collect().await?;
        if batches.iter().any(|b| b.num_rows() > 0) {
            endpoints.push((ip, port));
        }
    }
    endpoints.sort();
    Ok(Resolvers {
        endpoints,
        found: true,
    })
}

/// Whether `plan` (optimized: unused columns pruned) computes the `leg` column.
pub fn uses_leg(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if f.name() == LEG_FN {
                        found = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// `dnsq_leg(client_ip, server_ip, server_port)`: the `leg` column.
#[derive(Debug)]
pub struct LegFn {
    legs: Arc<Legs>,
    signature: Signature,
}

impl LegFn {
    pub fn new(legs: Arc<Legs>) -> LegFn {
        LegFn {
            legs,
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl PartialEq for LegFn {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.legs, &other.legs)
    }
}

impl Eq for LegFn {}

impl std::hash::Hash for LegFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        LEG_FN.hash(state);
    }
}

impl ScalarUDFImpl for LegFn {
    fn name(&self) -> &str {
        LEG_FN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// A string view: both legs fit in a view's 12 inline bytes, so no
    /// string is copied and `leg = 'downstream'` compares inline.
    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(resolvers) = self.legs.get() else {
            return Err(datafusion::error::DataFusionError::Internal(
                "the leg column was read before its resolvers were found".into(),
            ));
        };
        // a handful of endpoints: comparing each (port first) beats hashing
        // every row's address (0.35 s of a 10 M-row query, hashed)
        let ends: Vec<(&str, i32)> = resolvers
            .endpoints
            .iter()
            .map(|(ip, p)| (ip.as_str(), i32::from(*p)))
            .collect();
        let ips: Vec<&str> = resolvers.ips().into_iter().collect();
        let (c, s) = (strings(&arrays[0])?, strings(&arrays[1])?);
        let p = arrow::compute::cast(&arrays[2], &DataType::Int32)?;
        let p = p.as_primitive::<arrow::datatypes::Int32Type>().values();
        // each row takes one of the two names' views (both inline, so no
        // string is copied): building each row's view through a builder
        // took a tenth of a `leg`-filtered group-by
        let names = StringViewArray::from_iter_values(["downstream", "upstream"]);
        // upstream (1): from a resolver's address, to no resolver endpoint
        let legs: UInt32Array = (0..c.len())
            .map(|i| {
                let (server, port) = (s.value(i), p[i]);
                let to_resolver = ends.iter().any(|&(ip, ep)| ep == port && ip == server);
                u32::from(!to_resolver && ips.contains(&c.value(i)))
            })
            .collect::<Vec<u32>>()
            .into();
        let out = arrow::compute::take(&names, &legs, None)?;
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(parse_endpoint("192.0.2.1"), Ok(("192.0.2.1".into(), 53)));
        assert_eq!(
            parse_endpoint("192.0.2.1:5353"),
            Ok(("192.0.2.1".into(), 5353))
        );
        assert_eq!(
            parse_endpoint("2001:DB8:0::1"),
            Ok(("2001:db8::1".into(), 53))
        );
        assert_eq!(
            parse_endpoint("[2001:db8::1]:5300"),
            Ok(("2001:db8::1".into(), 5300))
        );
        assert_eq!(
            parse_endpoint("[2001:db8::53]"),
            Ok(("2001:db8::53".into(), 53))
        );
        assert!(parse_endpoint("[192.0.2.1").is_err());
        assert!(parse_endpoint("[resolver.example]").is_err());
        assert!(parse_endpoint("resolver.example").is_err());
        assert!(parse_endpoint("192.0.2.1:99999").is_err());
    }

    /// Addresses of every length, and ones that share a resolver's length
    /// and first bytes, are told apart.
    #[test]
    fn legs_by_view() {
        use arrow::array::{ArrayRef, Int32Array, StringArray};
        use datafusion::arrow::datatypes::Field;
        let long = "2001:db8:aaaa::53";
        let legs = Arc::new(Legs::named(vec![
            ("10.0.0.53".into(), 53),
            (long.into(), 53),
        ]));
        let f = LegFn::new(legs);
        let rows: [(&str, &str, i32, &str); 8] = [
            ("192.0.2.1", "10.0.0.53", 53, "downstream"),
            ("10.0.0.53", "192.0.2.9", 53, "upstream"),
            ("10.0.0.53", "10.0.0.53", 5353, "upstream"),
            ("10.0.0.53", "10.0.0.53", 53, "downstream"),
            (long, "2001:db8:aaaa::99", 53, "upstream"),
            // the same length and first 4 bytes as the resolver's
            ("2001:db8:aaaa::54", "2001:db8:aaaa::99", 53, "downstream"),
            ("2001:db8:aaaa::54", long, 53, "downstream"),
            (long, long, 53, "downstream"),
        ];
        let col = |k: usize| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| {
                if k == 0 {
                    r.0
                } else {
                    r.1
                }
            })))
        };
        let ports: ArrayRef = Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.2)));
        let fields = ["c", "s", "p"].map(|n| Arc::new(Field::new(n, DataType::Utf8, false)));
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Array(col(0)),
                ColumnarValue::Array(col(1)),
                ColumnarValue::Array(ports),
            ],
            arg_fields: fields.to_vec(),
            number_rows: rows.len(),
            return_field: Arc::new(Field::new("leg", DataType::Utf8View, false)),
            config_options: Arc::new(Default::default()),
        };
        let ColumnarValue::Array(out) = f.invoke_with_args(args).unwrap() else {
            panic!("an array")
        };
        let out = out.as_string_view();
        let got: Vec<&str> = (0..out.len()).map(|i| out.value(i)).collect();
        let want: Vec<&str> = rows.iter().map(|r| r.3).collect();
        assert_eq!(got, want);
    }
}
