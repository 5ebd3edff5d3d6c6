-- purpose: queries that were never answered, per server per time bucket, beside all queries that server got
-- leg: all by default (a silent authority shows on the upstream leg, a silent resolver on the downstream one)
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default all): downstream, upstream or all
-- columns: time, server_ip, leg, unanswered, queries, unanswered_pct
SELECT
    date_bin($bucket, ts) AS time,
    server_ip,
    leg,
    count(*) FILTER (WHERE status = 'unanswered') AS unanswered,
    count(*) AS queries,
    100.0 * count(*) FILTER (WHERE status = 'unanswered') / count(*) AS unanswered_pct
FROM transactions
WHERE status <> 'response_only'
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1, 2, 3
HAVING count(*) FILTER (WHERE status = 'unanswered') > 0
ORDER BY 1, unanswered DESC, 2, 3;
