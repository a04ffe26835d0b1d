-- One batch of order_summary. $1: the snapshot the table reflects now.
-- Everything in this statement sees one snapshot, returned as `snapshot`:
-- after the batch the table reflects it.
WITH changed AS (
    -- orders with an event the table has not seen
    SELECT e.order_id AS id
      FROM write.order_events e
     WHERE e.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND NOT pg_visible_in_snapshot(e.txid, $1::text::pg_snapshot)
    UNION
    -- orders of customers whose name or e-mail changed
    SELECT o.id
      FROM write.catalog_changes c
      JOIN write.orders o ON o.customer_id = c.key
     WHERE c.source = 'customers'
       AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
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
       statement_timestamp()       AS taken_at,
       (SELECT count(*) FROM changed) AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows
