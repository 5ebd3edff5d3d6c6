//! DNS functions for `dnsq sql`: names, addresses and top-N.
//!
//! Scalar functions take any string type (Parquet strings arrive as
//! `Utf8View`) and give NULL for NULL or for input they cannot read, never an
//! error: one odd qname must not end a query over a million rows. `top` is a
//! table function: `SELECT * FROM top('reg_domain', 10)`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, StringBuilder};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::ingest::batch;

/// `(name, signature, what it gives, example, the example's result)`, for
/// `dnsq sql --functions` and the shell's `\f`.
pub const FUNCTIONS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "reg_domain",
        "reg_domain(name)",
        "registered domain (public suffix + one label, by the Public Suffix List); NULL for a public suffix itself",
        "reg_domain('www.example.co.uk')",
        "example.co.uk",
    ),
    (
        "tld",
        "tld(name)",
        "last label, as the tld column",
        "tld('www.example.co.uk')",
        "uk",
    ),
    (
        "public_suffix",
        "public_suffix(name)",
        "public suffix by the Public Suffix List",
        "public_suffix('www.example.co.uk')",
        "co.uk",
    ),
    (
        "labels",
        "labels(name, n)",
        "the last n labels (the whole name if it has fewer)",
        "labels('a.b.example.com', 3)",
        "b.example.com",
    ),
    (
        "ip_prefix",
        "ip_prefix(ip, bits)",
        "the network of ip with a prefix of bits, IPv4 or IPv6",
        "ip_prefix('2001:db8:0:1::53', 48)",
        "2001:db8::/48",
    ),
    (
        "ip_in",
        "ip_in(ip, cidr)",
        "whether ip lies in cidr (an address alone is a /32 or /128)",
        "ip_in('192.0.2.77', '192.0.2.0/24')",
        "true",
    ),
    (
        "reverse_ip",
        "reverse_ip(name)",
        "the address (or network) an in-addr.arpa or ip6.arpa name stands for",
        "reverse_ip('1.2.0.192.in-addr.arpa')",
        "192.0.2.1",
    ),
    (
        "percentiles",
        "percentiles(x, p1, p2, ...)",
        "aggregate: the exact percentiles p1, p2, ... (0 to 1) of x, as a list (p[1] is p1), each equal to percentile_cont's; one copy of the values for all of them",
        "(SELECT percentiles(column1, 0.5, 0.9)[2] FROM (VALUES (1.0), (2.0), (4.0)))",
        "3.6",
    ),
    (
        "top",
        "top(expr, n [, filter])",
        "table: the n most frequent values of expr over transactions plus one `other` row, with count and share_pct (filter: a condition)",
        "SELECT * FROM top('qtype', 3, 'leg = ''downstream''')",
        "value | count | share_pct",
    ),
];

/// Registers every function in `ctx`.
pub fn register(ctx: &SessionContext) {
    for kind in [
        Kind::RegDomain,
        Kind::Tld,
        Kind::PublicSuffix,
        Kind::Labels,
        Kind::IpPrefix,
        Kind::IpIn,
        Kind::ReverseIp,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(DnsFn::new(kind)));
    }
    // replaces DataFusion's, answering as it does (super::date_bin)
    ctx.register_udf(ScalarUDF::new_from_impl(super::date_bin::DateBin::default()));
    ctx.register_udaf(datafusion::logical_expr::AggregateUDF::new_from_impl(
        super::percentiles::Percentiles::default(),
    ));
    ctx.register_udtf("top", Arc::new(TopFn { ctx: ctx.clone() }));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    RegDomain,
    Tld,
    PublicSuffix,
    Labels,
    IpPrefix,
    IpIn,
    ReverseIp,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DnsFn {
    kind: Kind,
    signature: Signature,
}

impl DnsFn {
    fn new(kind: Kind) -> DnsFn {
        let args = match kind {
            Kind::Labels | Kind::IpPrefix | Kind::IpIn => 2,
            _ => 1,
        };
        DnsFn {
            kind,
            signature: Signature::any(args, Volatility::Immutable),
        }
    }
}

/// A name as the functions read it: lower case, no trailing dot.
fn normal(name: &str) -> String {
    let n = name.strip_suffix('.').unwrap_or(name);
    n.to_ascii_lowercase()
}

/// The last `n` labels of `name` (escaped dots are not separators).
pub fn last_labels(name: &str, n: i64) -> Option<&str> {
    if n <= 0 || name.is_empty() || name == "." {
        return None;
    }
    let bytes = name.as_bytes();
    let mut seen = 0;
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        let escaped = i > 0 && bytes[i - 1] == b'\\' && !(i > 1 && bytes[i - 2] == b'\\');
        if bytes[i] == b'.' && !escaped {
            seen += 1;
            if seen == n {
                return Some(&name[i + 1..]);
            }
        }
    }
    Some(name)
}

/// `192.0.2.77`, 24 → `192.0.2.0/24`.
pub fn ip_prefix(ip: &str, bits: i64) -> Option<String> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    let (net, bits) = network(ip, bits)?;
    Some(format!("{net}/{bits}"))
}

fn network(ip: IpAddr, bits: i64) -> Option<(IpAddr, u32)> {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::try_from(bits).ok().filter(|b| *b <= 32)?;
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some((IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), bits))
        }
        IpAddr::V6(a) => {
            let bits = u32::try_from(bits).ok().filter(|b| *b <= 128)?;
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some((IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)), bits))
        }
    }
}

/// Whether `ip` lies in `cidr`; `None` when either cannot be read.
pub fn ip_in(ip: &str, cidr: &str) -> Option<bool> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    let cidr = cidr.trim();
    let (net, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<i64>().ok()?),
        None => {
            let a: IpAddr = cidr.parse().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    if ip.is_ipv4() != net.is_ipv4() {
        return Some(false);
    }
    let (want, _) = network(net, bits)?;
    let (have, _) = network(ip, bits)?;
    Some(want == have)
}

/// `1.2.0.192.in-addr.arpa` → `192.0.2.1`; a shorter name is a network
/// (`2.0.192.in-addr.arpa` → `192.0.2.0/24`); ip6.arpa nibbles likewise.
pub fn reverse_ip(name: &str) -> Option<String> {
    let n = normal(name);
    if let Some(rest) = n.strip_suffix(".in-addr.arpa") {
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (i, p) in parts.iter().rev().enumerate() {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                return None;
            }
            octets[i] = p.parse().ok()?;
        }
        let a = Ipv4Addr::from(octets);
        return Some(if parts.len() == 4 {
            a.to_string()
        } else {
            format!("{a}/{}", parts.len() * 8)
        });
    }
    if let Some(rest) = n.strip_suffix(".ip6.arpa") {
        let nibbles: Vec<&str> = rest.split('.').collect();
        if nibbles.is_empty() || nibbles.len() > 32 {
            return None;
        }
        let mut v: u128 = 0;
        for (i, p) in nibbles.iter().rev().enumerate() {
            if p.len() != 1 {
                return None;
            }
            let d = u128::from(p.chars().next()?.to_digit(16)?);
            v |= d << (124 - 4 * i);
        }
        let a = Ipv6Addr::from(v);
        return Some(if nibbles.len() == 32 {
            a.to_string()
        } else {
            format!("{a}/{}", nibbles.len() * 4)
        });
    }
    None
}

/// Any string array as a `StringViewArray`: Parquet's strings arrive as
/// views already (no copy); others are viewed without copying their bytes.
pub(crate) fn strings(a: &ArrayRef) -> DfResult<arrow::array::StringViewArray> {
    let v = arrow::compute::cast(a, &DataType::Utf8View)?;
    Ok(v.as_string_view().clone())
}

fn ints(a: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(arrow::compute::cast(a, &DataType::Int64)?)
}

impl ScalarUDFImpl for DnsFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::RegDomain => "reg_domain",
            Kind::Tld => "tld",
            Kind::PublicSuffix => "public_suffix",
            Kind::Labels => "labels",
            Kind::IpPrefix => "ip_prefix",
            Kind::IpIn => "ip_in",
            Kind::ReverseIp => "reverse_ip",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::IpIn => DataType::Boolean,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = strings(&arrays[0])?;
        let n = a.len();
        let out: ArrayRef = match self.kind {
            Kind::IpIn => {
                let b = strings(&arrays[1])?;
                let mut out = BooleanBuilder::with_capacity(n);
                for i in 0..n {
                    if a.is_null(i) || b.is_null(i) {
                        out.append_null();
                    } else {
                        out.append_option(ip_in(a.value(i), b.value(i)));
                    }
                }
                Arc::new(out.finish())
            }
            Kind::Labels | Kind::IpPrefix => {
                let k = ints(&arrays[1])?;
                let k = k.as_primitive::<Int64Type>();
                let mut out = StringBuilder::with_capacity(n, n * 16);
                for i in 0..n {
                    if a.is_null(i) || k.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    match self.kind {
                        Kind::Labels => {
                            let name = normal(a.value(i));
                            out.append_option(last_labels(&name, k.value(i)));
                        }
                        _ => out.append_option(ip_prefix(a.value(i), k.value(i))),
                    }
                }
                Arc::new(out.finish())
            }
            kind => {
                let mut out = StringBuilder::with_capacity(n, n * 16);
                for i in 0..n {
                    if a.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    let name = normal(a.value(i));
                    match kind {
                        Kind::RegDomain => out.append_option(batch::reg_domain(&name)),
                        Kind::Tld => out.append_option(batch::tld(&name)),
                        Kind::PublicSuffix => out.append_option(
                            (name != "." && !name.is_empty())
                                .then(|| psl::suffix_str(&name))
                                .flatten(),
                        ),
                        _ => out.append_option(reverse_ip(&name)),
                    }
                }
                Arc::new(out.finish())
            }
        };
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// `top(expr, n [, filter])` over `transactions`.
struct TopFn {
    ctx: SessionContext,
}

impl std::fmt::Debug for TopFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopFn")
    }
}

/// Parses `text` as one SQL expression, so that what goes into the query is
/// an expression and nothing else.
fn expression(what: &str, text: &str) -> DfResult<String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let mut p = Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .map_err(|e| DataFusionError::Plan(format!("top: {what} `{text}`: {e}")))?;
    let e = p
        .parse_expr()
        .map_err(|e| DataFusionError::Plan(format!("top: {what} `{text}`: {e}")))?;
    if p.peek_token().token != Token::EOF {
        return Err(DataFusionError::Plan(format!(
            "top: {what} `{text}` is more than one expression"
        )));
    }
    Ok(e.to_string())
}

fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(s)), _)
        | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _) => Some(s.clone()),
        _ => None,
    }
}

fn literal_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => v.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(Some(n)) => Some(n),
            _ => None,
        }),
        _ => None,
    }
}

impl TableFunctionImpl for TopFn {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let usage = || {
            DataFusionError::Plan(
                "top(expr, n [, filter]): expr and filter are SQL text in quotes, n a number; \
                 for example top('reg_domain', 10, 'leg = ''downstream''')"
                    .into(),
            )
        };
        if args.len() < 2 || args.len() > 3 {
            return Err(usage());
        }
        let of = expression("expr", &literal_text(&args[0]).ok_or_else(usage)?)?;
        let n = literal_int(&args[1]).ok_or_else(usage)?;
        if !(1..=1_000_000).contains(&n) {
            return Err(DataFusionError::Plan(format!(
                "top: n = {n}; give 1 to 1000000"
            )));
        }
        let filter = match args.get(2) {
            Some(f) => format!(
                "WHERE {}",
                expression("filter", &literal_text(f).ok_or_else(usage)?)?
            ),
            None => String::new(),
        };
        let sql = format!(
            "WITH counts AS (
                SELECT CAST(({of}) AS VARCHAR) AS value, count(*) AS n
                FROM transactions {filter} GROUP BY 1
            ), ranked AS (
                SELECT value, n, row_number() OVER (ORDER BY n DESC, value) AS rank,
                    sum(n) OVER () AS total
                FROM counts
            )
            SELECT CASE WHEN rank <= {n} THEN value ELSE 'other' END AS value,
                sum(n) AS count,
                100.0 * sum(n) / max(total) AS share_pct
            FROM ranked
            GROUP BY 1
            ORDER BY min(rank) > {n}, count DESC, value
            LIMIT {limit}",
            // at most n + 1 rows; the LIMIT keeps the order through `SELECT * FROM top(..)`
            limit = n + 1
        );
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(&sql, &dialect)?;
        let plan = futures::executor::block_on(state.statement_to_plan(statement))?;
        Ok(Arc::new(datafusion::datasource::ViewTable::new(
            plan,
            Some(sql),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(last_labels("a.b.example.com", 3), Some("b.example.com"));
        assert_eq!(last_labels("a.b.example.com", 1), Some("com"));
        assert_eq!(last_labels("example.com", 5), Some("example.com"));
        assert_eq!(last_labels("a\\.b.com", 2), Some("a\\.b.com"));
        assert_eq!(last_labels("example.com", 0), None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(ip_prefix("192.0.2.77", 24).as_deref(), Some("192.0.2.0/24"));
        assert_eq!(ip_prefix("192.0.2.77", 0).as_deref(), Some("0.0.0.0/0"));
        assert_eq!(
            ip_prefix("192.0.2.77", 32).as_deref(),
            Some("192.0.2.77/32")
        );
        assert_eq!(ip_prefix("192.0.2.77", 33), None);
        assert_eq!(
            ip_prefix("2001:db8:0:1::53", 48).as_deref(),
            Some("2001:db8::/48")
        );
        assert_eq!(
            ip_prefix("2001:0db8:0000:0001:0000:0000:0000:0053", 64).as_deref(),
            Some("2001:db8:0:1::/64")
        );
        assert_eq!(ip_prefix("not an address", 8), None);
        assert_eq!(ip_in("192.0.2.77", "192.0.2.0/24"), Some(true));
        assert_eq!(ip_in("192.0.3.1", "192.0.2.0/24"), Some(false));
        assert_eq!(ip_in("2001:db8::1", "2001:db8::/32"), Some(true));
        assert_eq!(ip_in("2001:db8::1", "192.0.2.0/24"), Some(false));
        assert_eq!(ip_in("::ffff:192.0.2.1", "::ffff:0:0/96"), Some(true));
        assert_eq!(ip_in("192.0.2.1", "192.0.2.1"), Some(true));
        assert_eq!(ip_in("192.0.2.1", "192.0.2.0/40"), None);
    }

    #[test]
    fn reverse() {
        assert_eq!(
            reverse_ip("1.2.0.192.in-addr.arpa").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            reverse_ip("2.0.192.IN-ADDR.ARPA.").as_deref(),
            Some("192.0.2.0/24")
        );
        let v6 = "3.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(reverse_ip(v6).as_deref(), Some("2001:db8:0:1::53"));
        assert_eq!(
            reverse_ip("8.b.d.0.1.0.0.2.ip6.arpa").as_deref(),
            Some("2001:db8::/32")
        );
        assert_eq!(reverse_ip("256.2.0.192.in-addr.arpa"), None);
        assert_eq!(reverse_ip("www.example.com"), None);
        assert_eq!(reverse_ip("x.b.d.0.1.0.0.2.ip6.arpa"), None);
    }
}
