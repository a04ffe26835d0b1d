-- The full-refresh design for order_lines, kept for measurement: recompute every
-- row and write those that differ (what REFRESH ... CONCURRENTLY does).
-- Enabled by PGCQRS_FULL_REFRESH; the benchmark compares it with the batches.
-- $1 is unused but keeps the signature of the batch.
WITH changed AS (
    -- every order: the full-refresh design, for comparison
    SELECT o.id FROM write.orders o
),
upserted AS (
    INSERT INTO read.order_lines AS t
    SELECT p.*
      FROM write.order_lines_projection p
     WHERE p.order_id IN (SELECT id FROM changed)
    ON CONFLICT (order_id, line_no) DO UPDATE
       SET product_id   = EXCLUDED.product_id,
           product_name = EXCLUDED.product_name,
           quantity     = EXCLUDED.quantity,
           unit_price   = EXCLUDED.unit_price,
           subtotal     = EXCLUDED.subtotal
    WHERE (t.*) IS DISTINCT FROM (EXCLUDED.*)
    RETURNING 1
),
removed AS (
    DELETE FROM read.order_lines t
     WHERE t.order_id IN (SELECT id FROM changed)
       AND NOT EXISTS (SELECT 1 FROM write.order_items i
                        WHERE i.order_id = t.order_id AND i.line_no = t.line_no)
    RETURNING 1
)
SELECT pg_current_snapshot()::text AS snapshot,
       $1::text IS NOT NULL        AS full_refresh,
       statement_timestamp()       AS taken_at,
       (SELECT count(*) FROM changed) AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows
