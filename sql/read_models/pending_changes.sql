-- Has anything the view reads changed since the snapshot it reflects?
-- $1: view name; $2: the write tables it reads.
-- Only transactions not visible in that snapshot count; txid >= xmin bounds
-- the index scans to recent transactions, and txid < xmax of the present
-- skips rows restored from a cluster whose counter was ahead. Order changes
-- are found in the event log (every order change is an event); catalog
-- changes in write.catalog_changes. No shared row is written by any writer.
WITH last AS (
    SELECT current_as_of AS s FROM read.read_model_status WHERE view_name = $1::text
),
orders AS (
    SELECT e.occurred_at AS at
      FROM write.order_events e, last
     WHERE 'orders' = ANY($2::text[])
       AND e.txid >= pg_snapshot_xmin(last.s)
       AND e.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(e.txid, last.s)
),
catalog AS (
    SELECT c.changed_at AS at
      FROM write.catalog_changes c, last
     WHERE c.source = ANY($2::text[])
       AND c.txid >= pg_snapshot_xmin(last.s)
       AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(c.txid, last.s)
)
SELECT pg_current_snapshot()::text AS snapshot,
       statement_timestamp()       AS taken_at,
       NOT EXISTS (SELECT 1 FROM last) AS never_refreshed,
       least((SELECT min(at) FROM orders), (SELECT min(at) FROM catalog)) AS pending_since,
       (SELECT count(*) FROM orders) + (SELECT count(*) FROM catalog)     AS pending_count
