-- One batch of order_summary: re-project the orders changed since the
-- snapshot the table reflects, at most $5 of them, taken in transaction
-- order. A change is one order to re-project: an event, or one order of a
-- customer whose name or e-mail changed.
-- $1: the snapshot the table reflects; $2, $3, $4, $6: the position (txid,
-- source, sequence, order) the last batch stopped at inside a transaction
-- it applied in part, or NULLs; $5: the most changes to take.
-- Returns the snapshot the table reflects after the batch (every
-- transaction it applied in full) and where it stopped, if inside one.
WITH pending AS MATERIALIZED (
    -- orders with an event the table has not seen (txids past the present
    -- cannot be this cluster's: rows restored from another)
    SELECT e.txid, 0 AS src, e.event_id AS seq, e.order_id AS key
      FROM write.order_events e
     WHERE e.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND e.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(e.txid, $1::text::pg_snapshot)
    UNION ALL
    -- the orders of customers whose name or e-mail changed (other columns
    -- are not shown), one row each: a customer with many orders is applied
    -- over several batches like any other backlog
    SELECT c.txid, 1, c.change_id, o.id
      FROM write.catalog_changes c
      JOIN write.orders o ON o.customer_id = c.key
     WHERE c.source = 'customers'
       AND (c.columns IS NULL OR c.columns && ARRAY['name', 'email'])
       AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
),
todo AS (
    SELECT * FROM pending
     WHERE NOT coalesce(txid = $2::text::xid8 AND (src, seq, key COLLATE "C") <= ($3::int, $4::bigint, $6::text COLLATE "C"), false)
),
-- the batch, and the one change after it (to tell where the batch ends)
slice AS MATERIALIZED (
    SELECT todo.*, row_number() OVER (ORDER BY txid, src, seq, key COLLATE "C") AS n
      FROM (SELECT * FROM todo ORDER BY txid, src, seq, key COLLATE "C" LIMIT $5::bigint + 1) todo
),
batch AS (SELECT * FROM slice WHERE n <= $5::bigint),
last AS (SELECT txid, src, seq, key FROM slice WHERE n = least($5::bigint, (SELECT count(*) FROM slice))),
following AS (SELECT txid FROM slice WHERE n = $5::bigint + 1),
changed AS (
    SELECT DISTINCT key AS id FROM batch
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
     -- a row that would not change is not rewritten
     WHERE t IS DISTINCT FROM EXCLUDED
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
SELECT pgcqrs.snapshot_advance($1::text::pg_snapshot, pg_current_snapshot(),
                               (SELECT txid FROM following))::text AS snapshot,
       statement_timestamp()                              AS taken_at,
       (SELECT count(*) FROM batch)                       AS changes,
       (SELECT count(*) FROM todo) - (SELECT count(*) FROM batch) AS backlog,
       (SELECT count(*) FROM changed)                     AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows,
       -- stopped inside a transaction: where, so the next batch goes on from there
       (SELECT l.txid::text FROM last l, following f WHERE l.txid = f.txid) AS resume_txid,
       (SELECT l.src::int   FROM last l, following f WHERE l.txid = f.txid) AS resume_src,
       (SELECT l.seq        FROM last l, following f WHERE l.txid = f.txid) AS resume_seq,
       (SELECT l.key        FROM last l, following f WHERE l.txid = f.txid) AS resume_key
