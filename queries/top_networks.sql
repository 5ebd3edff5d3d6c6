-- purpose: queries per client autonomous system (ingested with --asn) plus one `other` row; `unknown` is no database, or an address no AS announces
-- leg: downstream by default (the resolver is not its own client)
-- param: top (int, default 10): rows before `other`
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: network, organisation, queries, clients, share_pct
WITH counts AS (
    SELECT
        CASE WHEN client_asn IS NULL THEN 'unknown' ELSE concat('AS', client_asn) END AS network,
        coalesce(max(client_as_org), '') AS organisation,
        count(*) AS n,
        count(DISTINCT client_ip) AS clients
    FROM transactions
    WHERE status <> 'response_only'
        AND ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1
), ranked AS (
    SELECT network, organisation, n, clients,
        row_number() OVER (ORDER BY n DESC, network) AS rank,
        sum(n) OVER () AS total
    FROM counts
)
SELECT
    CASE WHEN rank <= $top THEN network ELSE 'other' END AS network,
    CASE WHEN rank <= $top THEN organisation ELSE '' END AS organisation,
    sum(n) AS queries,
    sum(clients) AS clients,
    100.0 * sum(n) / max(total) AS share_pct
FROM ranked
GROUP BY 1, 2
ORDER BY min(rank) > $top, queries DESC, network;
