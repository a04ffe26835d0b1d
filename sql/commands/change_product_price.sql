-- Existing orders keep the unit price they were placed at (order_items.unit_price).
UPDATE write.products
SET price = $2::numeric
WHERE id = $1::text
RETURNING version, pg_current_xact_id()::text AS token
