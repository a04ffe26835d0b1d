-- take_batch.sql when every waiting change fits in one batch (counted by
-- waiting_changes.sql in the same snapshot): the changes copied as they
-- are found, without ordering them or numbering them first. Returns the
-- columns take_batch.sql returns; the batch ends no transaction part-way.
WITH taken AS (
    INSERT INTO pgcqrs.batch (relid, op, key, old, seq)
    SELECT c.relid, c.op, c.key, c.old, c.seq
      FROM pgcqrs.changes c
     WHERE c.relid = ANY($4::oid[])
       AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
       AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
       AND NOT coalesce(c.txid = $2::text::xid8 AND c.seq <= $3::bigint, false)
    RETURNING relid, op
)
SELECT pgcqrs.snapshot_advance($1::text::pg_snapshot, pg_current_snapshot(), NULL)::text AS snapshot,
       statement_timestamp()                                         AS taken_at,
       count(*)                                                      AS changes,
       0::bigint                                                     AS backlog,
       coalesce(bool_or(op = 'T'), false)                            AS truncated,
       coalesce(array_agg(DISTINCT relid), '{}')                     AS touched,
       NULL::text                                                    AS resume_txid,
       NULL::bigint                                                  AS resume_seq
  FROM taken
