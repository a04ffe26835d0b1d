-- A status's 20 newest orders from the read model, as the service asks
-- (the service fetches one more to know whether a next page exists).
SELECT order_id, customer_id, customer_name, customer_email, item_count, total,
       status, status_display, cancel_reason, version, created_at, updated_at
FROM read.order_summary
WHERE status = $1::text
ORDER BY created_at DESC, order_id DESC
LIMIT 21
