-- purpose: queries for one registered domain per minute, with their outcome (the busiest registered domain unless you name one in `target`)
-- columns: minute, domain, transactions, answered, noerror, nxdomain, servfail, unanswered, p50_ms
-- To follow a given domain, replace the target query with: SELECT 'example.com' AS domain
-- Both steps read reg_domain alone, never qname: a name that is itself a public
-- suffix (`com`, `co.uk`) has no registered domain and is not followed here
-- (top_domains counts such names under their own name).
WITH target AS (
    SELECT reg_domain AS domain
    FROM transactions
    WHERE reg_domain IS NOT NULL
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
JOIN target t ON transactions.reg_domain = t.domain
GROUP BY 1, 2
ORDER BY 1;
