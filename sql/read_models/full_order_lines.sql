-- The full-refresh design of order_lines, kept for measurement
-- (PGCQRS_FULL_REFRESH): recompute every row, then write only the rows that
-- differ and delete the rows that are gone — what REFRESH ... CONCURRENTLY
-- does. $1 keeps the batch's signature.
WITH fresh AS MATERIALIZED (
    SELECT * FROM write.order_lines_projection
),
diff AS (
    SELECT f.*
    FROM fresh f
    LEFT JOIN read.order_lines t ON t.order_id = f.order_id AND t.line_no = f.line_no
    WHERE t.order_id IS NULL OR (t.*) IS DISTINCT FROM (f.*)
),
upserted AS (
    INSERT INTO read.order_lines AS t
    SELECT * FROM diff
    ON CONFLICT (order_id, line_no) DO UPDATE
       SET product_id   = EXCLUDED.product_id,
           product_name = EXCLUDED.product_name,
           quantity     = EXCLUDED.quantity,
           unit_price   = EXCLUDED.unit_price,
           subtotal     = EXCLUDED.subtotal
    RETURNING 1
),
removed AS (
    DELETE FROM read.order_lines t
    WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.order_id = t.order_id AND f.line_no = t.line_no)
    RETURNING 1
)
SELECT pg_current_snapshot()::text AS snapshot,
       $1::text IS NOT NULL        AS full_refresh,
       statement_timestamp()       AS taken_at,
       (SELECT count(*) FROM fresh) AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows
