-- How many captured changes of the tables a model reads ($4) wait past its
-- snapshot ($1) and the position inside a transaction it stopped at ($2,
-- $3): the conditions of take_batch.sql, counted.
SELECT count(*) AS waiting
  FROM pgcqrs.changes c
 WHERE c.relid = ANY($4::oid[])
   AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
   AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
   AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
   AND NOT coalesce(c.txid = $2::text::xid8 AND c.seq <= $3::bigint, false)
