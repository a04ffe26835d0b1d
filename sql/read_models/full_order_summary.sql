-- The full-refresh design of order_summary, kept for measurement
-- (PGCQRS_FULL_REFRESH): recompute every row, then write only the rows that
-- differ and delete the rows that are gone — what REFRESH ... CONCURRENTLY
-- does, with hash joins over the whole table. $1 keeps the batch's signature.
WITH fresh AS MATERIALIZED (
    SELECT o.id::text AS order_id, o.customer_id, c.name AS customer_name, c.email AS customer_email,
           coalesce(i.item_count, 0)::integer AS item_count, o.total::numeric(14, 2) AS total, o.status,
           CASE o.status
               WHEN 'pending'   THEN 'Pending'
               WHEN 'confirmed' THEN 'Confirmed'
               WHEN 'shipped'   THEN 'Shipped'
               WHEN 'delivered' THEN 'Delivered'
               WHEN 'cancelled' THEN 'Cancelled'
           END AS status_display,
           o.cancel_reason, o.version, o.created_at, o.updated_at
    FROM write.orders o
    JOIN write.customers c ON c.id = o.customer_id
    LEFT JOIN (SELECT order_id, count(*) AS item_count FROM write.order_items GROUP BY order_id) i
           ON i.order_id = o.id
),
diff AS (
    SELECT f.*
    FROM fresh f
    LEFT JOIN read.order_summary t ON t.order_id = f.order_id
    WHERE t.order_id IS NULL OR (t.*) IS DISTINCT FROM (f.*)
),
upserted AS (
    INSERT INTO read.order_summary AS t
    SELECT * FROM diff
    ON CONFLICT (order_id) DO UPDATE
       SET customer_id    = EXCLUDED.customer_id,
           customer_name  = EXCLUDED.customer_name,
           customer_email = EXCLUDED.customer_email,
           item_count     = EXCLUDED.item_count,
           total          = EXCLUDED.total,
           status         = EXCLUDED.status,
           status_display = EXCLUDED.status_display,
           cancel_reason  = EXCLUDED.cancel_reason,
           version        = EXCLUDED.version,
           created_at     = EXCLUDED.created_at,
           updated_at     = EXCLUDED.updated_at
    RETURNING 1
),
removed AS (
    DELETE FROM read.order_summary t
    WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.order_id = t.order_id)
    RETURNING 1
)
SELECT pg_current_snapshot()::text AS snapshot,
       $1::text IS NOT NULL        AS full_refresh,
       statement_timestamp()       AS taken_at,
       (SELECT count(*) FROM fresh) AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows
