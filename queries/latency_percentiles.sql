-- purpose: p50/p90/p99 response time per minute, the resolver's clients (downstream) and its own queries to authorities (upstream) apart
-- columns: minute, leg, answered, p50_ms, p90_ms, p99_ms, max_ms
-- A resolver is an address that both answers queries and sends its own;
-- transactions it sent to another address are the upstream leg, every other one
-- is downstream (a client on the resolver's own address, such as ::1, stays downstream).
-- The resolvers are a handful of addresses: one list, looked up per row, instead of a
-- join that would hash every transaction.
WITH resolvers AS (
    SELECT server_ip AS ip FROM transactions
    INTERSECT
    SELECT client_ip AS ip FROM transactions
)
SELECT
    date_trunc('minute', ts) AS minute,
    CASE WHEN array_has((SELECT array_agg(ip) FROM resolvers), client_ip) AND client_ip <> server_ip
        THEN 'upstream' ELSE 'downstream' END AS leg,
    count(*) AS answered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS p50_ms,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY response_time_ms) AS p90_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY response_time_ms) AS p99_ms,
    max(response_time_ms) AS max_ms
FROM transactions
WHERE status = 'answered'
GROUP BY 1, 2
ORDER BY 1, 2;
