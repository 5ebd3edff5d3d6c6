-- purpose: one registered domain's queries per time bucket, with their outcome
-- leg: downstream by default (what clients asked and got)
-- param: domain (text, default none): the registered domain to follow; none follows the busiest one
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: time, domain, transactions, answered, noerror, nxdomain, servfail, unanswered, p50_ms
-- Both steps read reg_domain alone, never qname: a name that is itself a public
-- suffix (`com`, `co.uk`) has no registered domain and is not followed here
-- (top_domains counts such names under their own name).
WITH scope AS (
    SELECT * FROM transactions
    WHERE ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
), target AS (
    SELECT coalesce($domain, (
        SELECT reg_domain
        FROM scope
        WHERE reg_domain IS NOT NULL
        GROUP BY 1
        ORDER BY count(*) DESC, 1
        LIMIT 1
    )) AS domain
)
SELECT
    date_bin($bucket, ts) AS time,
    t.domain,
    count(*) AS transactions,
    count(*) FILTER (WHERE status = 'answered') AS answered,
    count(*) FILTER (WHERE rcode = 'NOERROR') AS noerror,
    count(*) FILTER (WHERE rcode = 'NXDOMAIN') AS nxdomain,
    count(*) FILTER (WHERE rcode = 'SERVFAIL') AS servfail,
    count(*) FILTER (WHERE status = 'unanswered') AS unanswered,
    median(response_time_ms) AS p50_ms
FROM scope
JOIN target t ON scope.reg_domain = t.domain
GROUP BY 1, 2
ORDER BY 1;
