-- purpose: responses slower than a threshold, by client address, then by registered domain
-- leg: downstream by default (what clients waited for)
-- param: threshold_ms (float, default 5000): a response slower than this counts as slow
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: client_ip, domain, slow, client_slow, max_ms
SELECT
    client_ip,
    coalesce(reg_domain, qname, '(none)') AS domain,
    count(*) AS slow,
    sum(count(*)) OVER (PARTITION BY client_ip) AS client_slow,
    max(response_time_ms) AS max_ms
FROM transactions
WHERE status = 'answered' AND response_time_ms > $threshold_ms
    AND ts >= $since AND ts < $until
    AND ($leg = 'all' OR leg = $leg)
GROUP BY 1, 2
ORDER BY client_slow DESC, client_ip, slow DESC, domain;
