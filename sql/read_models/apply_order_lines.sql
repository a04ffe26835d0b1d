-- One batch of order_lines; the same shape as apply_order_summary.sql.
-- $1: the snapshot the table reflects; $2, $3, $4, $6: where the last batch
-- stopped inside a transaction, or NULLs; $5: the most changes to take.
WITH pending AS MATERIALIZED (
    -- new orders: lines never change once written
    SELECT e.txid, 0 AS src, e.event_id AS seq, e.order_id AS key
      FROM write.order_events e
     WHERE e.event_type = 'OrderCreated'
       AND e.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND e.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(e.txid, $1::text::pg_snapshot)
    UNION ALL
    -- the orders with a line of a product whose name changed, one row each
    -- (lines keep the price paid, so a price change touches no line)
    SELECT DISTINCT c.txid, 1, c.change_id, i.order_id
      FROM write.catalog_changes c
      JOIN write.order_items i ON i.product_id = c.key
     WHERE c.source = 'products'
       AND (c.columns IS NULL OR c.columns && ARRAY['name'])
       AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
),
todo AS (
    SELECT * FROM pending
     WHERE NOT coalesce(txid = $2::text::xid8 AND (src, seq, key COLLATE "C") <= ($3::int, $4::bigint, $6::text COLLATE "C"), false)
),
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
     WHERE t IS DISTINCT FROM EXCLUDED
    RETURNING 1
),
removed AS (
    DELETE FROM read.order_lines t
     WHERE t.order_id IN (SELECT id FROM changed)
       AND NOT EXISTS (SELECT 1 FROM write.order_items i
                        WHERE i.order_id = t.order_id AND i.line_no = t.line_no)
    RETURNING 1
)
SELECT pgcqrs.snapshot_advance($1::text::pg_snapshot, pg_current_snapshot(),
                               (SELECT txid FROM following))::text AS snapshot,
       statement_timestamp()                              AS taken_at,
       (SELECT count(*) FROM batch)                       AS changes,
       (SELECT count(*) FROM todo) - (SELECT count(*) FROM batch) AS backlog,
       (SELECT count(*) FROM changed)                     AS changed_keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows,
       (SELECT l.txid::text FROM last l, following f WHERE l.txid = f.txid) AS resume_txid,
       (SELECT l.src::int   FROM last l, following f WHERE l.txid = f.txid) AS resume_src,
       (SELECT l.seq        FROM last l, following f WHERE l.txid = f.txid) AS resume_seq,
       (SELECT l.key        FROM last l, following f WHERE l.txid = f.txid) AS resume_key
