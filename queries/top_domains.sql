-- purpose: the busiest registered domains plus one `other` row; the shares add up to 100%
-- leg: downstream by default (a cache miss would otherwise count twice)
-- param: top (int, default 10): rows before `other`
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: domain, transactions, share_pct
-- A name that is itself a public suffix (or has no registered domain) counts under its own name.
WITH counts AS (
    SELECT coalesce(reg_domain, qname, '(none)') AS domain, count(*) AS n
    FROM transactions
    WHERE ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1
), ranked AS (
    SELECT domain, n,
        row_number() OVER (ORDER BY n DESC, domain) AS rank,
        sum(n) OVER () AS total
    FROM counts
)
SELECT
    CASE WHEN rank <= $top THEN domain ELSE 'other' END AS domain,
    sum(n) AS transactions,
    100.0 * sum(n) / max(total) AS share_pct
FROM ranked
GROUP BY 1
ORDER BY min(rank) > $top, transactions DESC, domain;
