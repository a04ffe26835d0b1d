-- One batch of order_lines. $1: the snapshot the table reflects now.
WITH changed AS (
    -- new orders: lines never change once written
    SELECT e.order_id AS id
      FROM write.order_events e
     WHERE e.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND NOT pg_visible_in_snapshot(e.txid, $1::text::pg_snapshot)
       AND e.event_type = 'OrderCreated'
    UNION
    -- orders with a line of a product that changed (its name)
    SELECT i.order_id
      FROM write.catalog_changes c
      JOIN write.order_items i ON i.product_id = c.key
     WHERE c.source = 'products'
       AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
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
       statement_timestamp()       AS taken_at,
       (SELECT count(*) FROM changed) AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows
