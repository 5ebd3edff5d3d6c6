-- purpose: queries that were never answered, per server per minute, beside all queries that server got
-- columns: minute, server_ip, unanswered, queries, unanswered_pct
SELECT
    date_trunc('minute', ts) AS minute,
    server_ip,
    count(*) FILTER (WHERE status = 'unanswered') AS unanswered,
    count(*) AS queries,
    100.0 * count(*) FILTER (WHERE status = 'unanswered') / count(*) AS unanswered_pct
FROM transactions
WHERE status <> 'response_only'
GROUP BY 1, 2
HAVING count(*) FILTER (WHERE status = 'unanswered') > 0
ORDER BY 1, unanswered DESC, 2;
