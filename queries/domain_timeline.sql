-- purpose: queries for one registered domain per minute, with their outcome (the busiest domain unless you name one in `target`)
-- columns: minute, domain, transactions, answered, noerror, nxdomain, servfail, unanswered, p50_ms
-- To follow a given domain, replace the target query with: SELECT 'example.com' AS domain
WITH target AS (
    SELECT coalesce(reg_domain, qname) AS domain
    FROM transactions
    WHERE qname IS NOT NULL
    GROUP BY 1
    ORDER BY count(*) DESC, 1
    LIMIT 1
)
SELECT
    date_trunc('minute', ts) AS minute,
    t.domain,
    count(*) AS transactions,
    count(*) FILTER (WHERE status = 'answered') AS answered,
    count(*) FILTER (WHERE rcode = 'NOERROR') AS noerror,
    count(*) FILTER (WHERE rcode = 'NXDOMAIN') AS nxdomain,
    count(*) FILTER (WHERE rcode = 'SERVFAIL') AS servfail,
    count(*) FILTER (WHERE status = 'unanswered') AS unanswered,
    median(response_time_ms) AS p50_ms
FROM transactions
JOIN target t ON coalesce(transactions.reg_domain, transactions.qname) = t.domain
GROUP BY 1, 2
ORDER BY 1;
