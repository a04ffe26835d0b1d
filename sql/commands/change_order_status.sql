-- The guard trigger checks the transition again and bumps the version; the
-- order_status_event trigger appends OrderStatusChanged or OrderCancelled.
UPDATE write.orders
SET status = $2::text, cancel_reason = $3::text
WHERE id = $1::text
RETURNING status, version, updated_at, pg_current_xact_id()::text AS token
