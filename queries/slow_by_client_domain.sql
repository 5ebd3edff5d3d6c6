-- purpose: responses slower than 5 s, by client address, then by registered domain
-- columns: client_ip, domain, slow, client_slow, max_ms
SELECT
    client_ip,
    coalesce(reg_domain, qname, '(none)') AS domain,
    count(*) AS slow,
    sum(count(*)) OVER (PARTITION BY client_ip) AS client_slow,
    max(response_time_ms) AS max_ms
FROM transactions
WHERE status = 'answered' AND response_time_ms > 5000
GROUP BY 1, 2
ORDER BY client_slow DESC, client_ip, slow DESC, domain;
