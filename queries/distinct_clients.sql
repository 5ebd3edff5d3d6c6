-- purpose: distinct source addresses of queries per minute
-- columns: minute, clients, queries
SELECT
    date_trunc('minute', ts) AS minute,
    count(DISTINCT client_ip) AS clients,
    count(*) AS queries
FROM transactions
WHERE status <> 'response_only'
GROUP BY 1
ORDER BY 1;
