-- purpose: the busiest top-level domains plus one `other` row; the shares add up to 100%
-- leg: downstream by default (a cache miss would otherwise count twice)
-- param: top (int, default 10): rows before `other`
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: tld, transactions, share_pct
WITH counts AS (
    SELECT coalesce(tld, '.') AS tld, count(*) AS n
    FROM transactions
    WHERE qname IS NOT NULL
        AND ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1
), ranked AS (
    SELECT tld, n,
        row_number() OVER (ORDER BY n DESC, tld) AS rank,
        sum(n) OVER () AS total
    FROM counts
)
SELECT
    CASE WHEN rank <= $top THEN tld ELSE 'other' END AS tld,
    sum(n) AS transactions,
    100.0 * sum(n) / max(total) AS share_pct
FROM ranked
GROUP BY 1
ORDER BY min(rank) > $top, transactions DESC, tld;
