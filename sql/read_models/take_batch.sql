-- One batch of an incrementally kept read model: at most $4 captured
-- changes of the tables it reads ($5), in (transaction, sequence) order,
-- copied into pgcqrs.batch for the appliers.
-- $1: the snapshot the model reflects; $2, $3: the position (txid,
-- sequence) the last batch stopped at inside a transaction it applied in
-- part, or NULLs; $6: how many changes wait (waiting_changes.sql, counted
-- in the same snapshot). Changes of transactions past the present's xmax
-- cannot be this cluster's (rows restored from another) and are ignored.
-- Returns the snapshot the model reflects once the batch is applied (every
-- transaction it took in full) and where it stopped, if inside one.
WITH slice AS MATERIALIZED (
    SELECT c.txid, c.seq, c.relid, c.op, c.key, c.old,
           row_number() OVER (ORDER BY c.txid, c.seq) AS n
      FROM (SELECT * FROM pgcqrs.changes c
             WHERE c.relid = ANY($5::oid[])
               AND c.txid >= pg_snapshot_xmin($1::text::pg_snapshot)
               AND c.txid < pg_snapshot_xmax(pg_current_snapshot())
               AND NOT pg_visible_in_snapshot(c.txid, $1::text::pg_snapshot)
               AND NOT coalesce(c.txid = $2::text::xid8 AND c.seq <= $3::bigint, false)
             ORDER BY c.txid, c.seq
             LIMIT $4::bigint + 1) c
),
taken AS (
    INSERT INTO pgcqrs.batch (relid, op, key, old, seq)
    SELECT relid, op, key, old, seq FROM slice WHERE n <= $4::bigint
    RETURNING relid, op
),
last AS (SELECT txid, seq FROM slice WHERE n = least($4::bigint, (SELECT count(*) FROM slice))),
following AS (SELECT txid FROM slice WHERE n = $4::bigint + 1)
SELECT pgcqrs.snapshot_advance($1::text::pg_snapshot, pg_current_snapshot(),
                               (SELECT txid FROM following))::text AS snapshot,
       statement_timestamp()                                        AS taken_at,
       (SELECT count(*) FROM taken)                                 AS changes,
       $6::bigint - (SELECT count(*) FROM taken)                    AS backlog,
       coalesce((SELECT bool_or(op = 'T') FROM taken), false)       AS truncated,
       (SELECT coalesce(array_agg(DISTINCT relid), '{}') FROM taken) AS touched,
       -- stopped inside a transaction: where, so the next batch goes on from there
       (SELECT l.txid::text FROM last l, following f WHERE l.txid = f.txid) AS resume_txid,
       (SELECT l.seq        FROM last l, following f WHERE l.txid = f.txid) AS resume_seq
