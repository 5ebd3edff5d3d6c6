-- purpose: responses per minute by rcode (SERVFAIL, NXDOMAIN and every other), with each rcode's share of the minute
-- columns: minute, rcode, responses, share_pct
SELECT
    date_trunc('minute', ts) AS minute,
    rcode,
    count(*) AS responses,
    100.0 * count(*) / sum(count(*)) OVER (PARTITION BY date_trunc('minute', ts)) AS share_pct
FROM transactions
WHERE rcode IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, responses DESC, 2;
