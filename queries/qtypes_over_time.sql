-- purpose: queries per time bucket by query type, with each type's share of the bucket
-- leg: downstream by default (a cache miss would otherwise count twice)
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: time, qtype, queries, share_pct
SELECT
    date_bin($bucket, ts) AS time,
    qtype,
    count(*) AS queries,
    100.0 * count(*) / sum(count(*)) OVER (PARTITION BY date_bin($bucket, ts)) AS share_pct
FROM transactions
WHERE qtype IS NOT NULL
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1, 2
ORDER BY 1, queries DESC, 2;
