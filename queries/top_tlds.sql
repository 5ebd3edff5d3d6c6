-- purpose: the 10 busiest top-level domains plus one `other` row; the shares add up to 100%
-- columns: tld, transactions, share_pct
WITH counts AS (
    SELECT coalesce(tld, '.') AS tld, count(*) AS n
    FROM transactions
    WHERE qname IS NOT NULL
    GROUP BY 1
), ranked AS (
    SELECT tld, n, row_number() OVER (ORDER BY n DESC, tld) AS rank
    FROM counts
)
SELECT
    CASE WHEN rank <= 10 THEN tld ELSE 'other' END AS tld,
    sum(n) AS transactions,
    100.0 * sum(n) / (SELECT sum(n) FROM counts) AS share_pct
FROM ranked
GROUP BY 1
ORDER BY min(rank) > 10, transactions DESC, tld;
