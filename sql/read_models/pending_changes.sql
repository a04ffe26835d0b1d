-- Has anything the view reads changed since the snapshot it reflects?
-- $1: view name; $2: the tables it reads (oids).
-- Only transactions not visible in that snapshot count; txid >= xmin bounds
-- the index scan to recent transactions, and txid < xmax of the present
-- skips rows restored from a cluster whose counter was ahead. Changes are
-- captured per row in pgcqrs.changes; no shared row is written by writers.
WITH last AS (
    SELECT current_as_of AS s FROM read.read_model_status WHERE view_name = $1::text
),
pending AS (
    SELECT c.at
      FROM pgcqrs.changes c, last
     WHERE c.relid = ANY($2::oid[])
       AND c.txid >= pg_snapshot_xmin(last.s)
       AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(c.txid, last.s)
)
SELECT pg_current_snapshot()::text AS snapshot,
       statement_timestamp()       AS taken_at,
       NOT EXISTS (SELECT 1 FROM last) AS never_refreshed,
       (SELECT min(at) FROM pending)   AS pending_since,
       (SELECT count(*) FROM pending)  AS pending_count
