-- Baseline: the statistics question asked of the write tables.
SELECT status, count(*) AS orders, sum(total) AS revenue
FROM write.orders
WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
GROUP BY status
