-- purpose: responses per time bucket by rcode (SERVFAIL, NXDOMAIN and every other), with each rcode's share of the bucket
-- leg: downstream by default (the rcodes clients saw, not those authorities gave the resolver)
-- param: bucket (interval, default auto): width of a time bucket
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: time, rcode, responses, share_pct
SELECT
    date_bin($bucket, ts) AS time,
    rcode,
    count(*) AS responses,
    100.0 * count(*) / sum(count(*)) OVER (PARTITION BY date_bin($bucket, ts)) AS share_pct
FROM transactions
WHERE rcode IS NOT NULL
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1, 2
ORDER BY 1, responses DESC, 2;
