-- Newest first. Absent filters are NULL; the read pool plans each execution
-- with its values (plan_cache_mode = force_custom_plan), so the planner drops
-- the NULL branches and uses the matching index.
SELECT order_id, customer_id, customer_name, customer_email, item_count, total,
       status, status_display, cancel_reason, version, created_at, updated_at
FROM read.order_summary
WHERE ($1::text IS NULL OR customer_id = $1::text)
  AND ($2::text IS NULL OR status = $2::text)
  AND ($3::timestamptz IS NULL OR created_at >= $3::timestamptz)
  AND ($4::timestamptz IS NULL OR created_at < $4::timestamptz)
ORDER BY created_at DESC, order_id DESC
LIMIT $5::bigint OFFSET $6::bigint
