SELECT order_version AS version, event_type, status, reason, correlation_id, occurred_at
FROM read.order_history
WHERE order_id = $1::text
ORDER BY order_version
