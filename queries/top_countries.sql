-- purpose: queries per client country (ingested with --geoip) plus one `other` row; `unknown` is no database, or a private, loopback or documentation address
-- leg: downstream by default (the resolver is not its own client)
-- param: top (int, default 10): rows before `other`
-- param: leg (text, default downstream): downstream, upstream or all
-- columns: continent, country, queries, clients, share_pct
WITH counts AS (
    SELECT
        coalesce(client_country, 'unknown') AS country,
        coalesce(max(client_continent), 'unknown') AS continent,
        count(*) AS n,
        count(DISTINCT client_ip) AS clients
    FROM transactions
    WHERE status <> 'response_only'
        AND ts >= $since AND ts < $until
        AND ($leg = 'all' OR leg = $leg)
    GROUP BY 1
), ranked AS (
    SELECT country, continent, n, clients,
        row_number() OVER (ORDER BY n DESC, country) AS rank,
        sum(n) OVER () AS total
    FROM counts
)
SELECT
    CASE WHEN rank <= $top THEN continent ELSE 'other' END AS continent,
    CASE WHEN rank <= $top THEN country ELSE 'other' END AS country,
    sum(n) AS queries,
    sum(clients) AS clients,
    100.0 * sum(n) / max(total) AS share_pct
FROM ranked
GROUP BY 1, 2
ORDER BY min(rank) > $top, queries DESC, country;
