-- purpose: the busiest server addresses and ports plus one `other` row, with the share each answered
-- leg: all by default (the resolver and the authorities it asks)
-- param: top (int, default 10): rows before `other`
-- param: leg (text, default all): downstream, upstream or all
-- columns: server, queries, answered_pct, share_pct
WITH pairs AS (
    SELECT server_ip, server_port, count(*) AS n,
        count(*) FILTER (WHERE status = 'answered') AS answered
    FROM transactions
    WHERE status <> 'response_only'
        AND ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1, 2
), counts AS (
    -- named after counting: one string per server, not per row
    SELECT
        CASE WHEN server_ip LIKE '%:%' THEN '[' || server_ip || ']:' ELSE server_ip || ':' END
            || CAST(server_port AS VARCHAR) AS server,
        sum(n) AS n,
        sum(answered) AS answered
    FROM pairs
    GROUP BY 1
), ranked AS (
    SELECT server, n, answered,
        row_number() OVER (ORDER BY n DESC, server) AS rank,
        sum(n) OVER () AS total
    FROM counts
)
SELECT
    CASE WHEN rank <= $top THEN server ELSE 'other' END AS server,
    sum(n) AS queries,
    100.0 * sum(answered) / sum(n) AS answered_pct,
    100.0 * sum(n) / max(total) AS share_pct
FROM ranked
GROUP BY 1
ORDER BY min(rank) > $top, queries DESC, server;
