-- purpose: response-time percentiles per time bucket, each leg apart: what the resolver's clients waited (downstream) and what the resolver waited for authorities (upstream)
-- leg: both legs, one row each (--leg narrows to one)
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default all): downstream, upstream or all
-- columns: time, leg, answered, p50_ms, p90_ms, p99_ms, max_ms
SELECT
    date_bin($bucket, ts) AS time,
    leg,
    count(*) AS answered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS p50_ms,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY response_time_ms) AS p90_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms) AS p99_ms,
    max(response_time_ms) AS max_ms
FROM transactions
WHERE status = 'answered'
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1, 2
ORDER BY 1, 2;
