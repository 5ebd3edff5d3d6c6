-- purpose: p50/p90/p99 response time per minute, the resolver's clients (downstream) and its own queries to authorities (upstream) apart
-- columns: minute, leg, answered, p50_ms, p90_ms, p99_ms, max_ms
-- A resolver is an address that both answers queries and sends its own;
-- transactions it sent to another address are the upstream leg, every other one
-- is downstream (a client on the resolver's own address, such as ::1, stays downstream).
WITH resolvers AS (
    SELECT server_ip AS ip FROM transactions
    INTERSECT
    SELECT client_ip AS ip FROM transactions
)
SELECT
    date_trunc('minute', t.ts) AS minute,
    CASE WHEN r.ip IS NOT NULL AND t.client_ip <> t.server_ip THEN 'upstream' ELSE 'downstream' END AS leg,
    count(*) AS answered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY t.response_time_ms) AS p50_ms,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY t.response_time_ms) AS p90_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY t.response_time_ms) AS p99_ms,
    max(t.response_time_ms) AS max_ms
FROM transactions t
LEFT JOIN resolvers r ON t.client_ip = r.ip
WHERE t.status = 'answered'
GROUP BY 1, 2
ORDER BY 1, 2;
