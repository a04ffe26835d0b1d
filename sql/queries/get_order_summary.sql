SELECT order_id, customer_id, customer_name, customer_email, item_count, total,
       status, status_display, cancel_reason, version, created_at, updated_at
FROM read.order_summary
WHERE order_id = $1::text
