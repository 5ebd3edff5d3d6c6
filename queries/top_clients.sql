-- purpose: the busiest client addresses plus one `other` row; the shares add up to 100%
-- leg: downstream by default (the resolver is not its own client)
-- param: top (int, default 10): rows before `other`
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: client_ip, queries, share_pct
WITH counts AS (
    SELECT client_ip, count(*) AS n
    FROM transactions
    WHERE status <> 'response_only'
        AND ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1
), ranked AS (
    SELECT client_ip, n,
        row_number() OVER (ORDER BY n DESC, client_ip) AS rank,
        sum(n) OVER () AS total
    FROM counts
)
SELECT
    CASE WHEN rank <= $top THEN client_ip ELSE 'other' END AS client_ip,
    sum(n) AS queries,
    100.0 * sum(n) / max(total) AS share_pct
FROM ranked
GROUP BY 1
ORDER BY min(rank) > $top, queries DESC, client_ip;
