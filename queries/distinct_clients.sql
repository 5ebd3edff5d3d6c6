-- purpose: distinct client addresses and their queries per time bucket
-- leg: downstream by default (the resolver is not its own client)
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: time, clients, queries
SELECT
    date_bin($bucket, ts) AS time,
    count(DISTINCT client_ip) AS clients,
    count(*) AS queries
FROM transactions
WHERE status <> 'response_only'
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1
ORDER BY 1;
