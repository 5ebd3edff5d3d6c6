-- purpose: queries per minute by query type, with each type's share of the minute
-- columns: minute, qtype, queries, share_pct
SELECT
    date_trunc('minute', ts) AS minute,
    qtype,
    count(*) AS queries,
    100.0 * count(*) / sum(count(*)) OVER (PARTITION BY date_trunc('minute', ts)) AS share_pct
FROM transactions
WHERE qtype IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, queries DESC, 2;
