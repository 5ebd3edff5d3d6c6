-- purpose: response-time percentiles per time bucket, each leg apart: what the resolver's clients waited (downstream) and what the resolver waited for authorities (upstream)
-- leg: both legs, one row each (--leg narrows to one)
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default all): downstream, upstream or all
-- columns: time, leg, answered, p50_ms, p90_ms, p99_ms, max_ms
-- percentiles() gives percentile_cont's exact values, all three from one copy of a bucket's times
WITH buckets AS (
    SELECT
        date_bin($bucket, ts) AS time,
        leg,
        count(*) AS answered,
        percentiles(response_time_ms, 0.5, 0.9, 0.99) AS p,
        max(response_time_ms) AS max_ms
    FROM transactions
    WHERE status = 'answered'
        AND ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1, 2
)
SELECT time, leg, answered, p[1] AS p50_ms, p[2] AS p90_ms, p[3] AS p99_ms, max_ms
FROM buckets
ORDER BY 1, 2;
