//! The saved queries of `queries/`, compiled in so they run by name from any directory.

/// `(name, sql)` of every saved query.
pub const SAVED: &[(&str, &str)] = &[
    (
        "latency_percentiles",
        include_str!("../../queries/latency_percentiles.sql"),
    ),
    (
        "slow_by_client_domain",
        include_str!("../../queries/slow_by_client_domain.sql"),
    ),
    ("top_domains", include_str!("../../queries/top_domains.sql")),
    ("top_tlds", include_str!("../../queries/top_tlds.sql")),
    (
        "rcodes_over_time",
        include_str!("../../queries/rcodes_over_time.sql"),
    ),
    (
        "domain_timeline",
        include_str!("../../queries/domain_timeline.sql"),
    ),
    (
        "distinct_clients",
        include_str!("../../queries/distinct_clients.sql"),
    ),
    (
        "qtypes_over_time",
        include_str!("../../queries/qtypes_over_time.sql"),
    ),
    ("unanswered", include_str!("../../queries/unanswered.sql")),
    ("top_clients", include_str!("../../queries/top_clients.sql")),
    ("top_servers", include_str!("../../queries/top_servers.sql")),
    (
        "top_countries",
        include_str!("../../queries/top_countries.sql"),
    ),
    (
        "top_networks",
        include_str!("../../queries/top_networks.sql"),
    ),
];

/// A saved query by name (`top_domains`, `top_domains.sql` or `queries/top_domains.sql`).
pub fn find(name: &str) -> Option<&'static str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_suffix(".sql").unwrap_or(base);
    SAVED.iter().find(|(n, _)| *n == base).map(|(_, sql)| *sql)
}
