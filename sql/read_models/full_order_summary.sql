-- The full-refresh design for order_summary, kept for measurement: recompute every
-- row and write those that differ (what REFRESH ... CONCURRENTLY does).
-- Enabled by PGCQRS_FULL_REFRESH; the benchmark compares it with the batches.
-- $1 is unused but keeps the signature of the batch.
WITH changed AS (
    -- every order: the full-refresh design, for comparison
    SELECT o.id FROM write.orders o
),
upserted AS (
    INSERT INTO read.order_summary AS t
    SELECT p.*
      FROM write.order_summary_projection p
     WHERE p.order_id IN (SELECT id FROM changed)
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
    WHERE (t.*) IS DISTINCT FROM (EXCLUDED.*)
    RETURNING 1
),
-- rows whose order no longer exists (orders are not deleted by the service,
-- but the table must follow any writer)
removed AS (
    DELETE FROM read.order_summary t
     WHERE t.order_id IN (SELECT id FROM changed)
       AND NOT EXISTS (SELECT 1 FROM write.orders o WHERE o.id = t.order_id)
    RETURNING 1
)
SELECT pg_current_snapshot()::text AS snapshot,
       $1::text IS NOT NULL        AS full_refresh,
       statement_timestamp()       AS taken_at,
       (SELECT count(*) FROM changed) AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows
