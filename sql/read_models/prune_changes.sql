-- Forget captured changes every read model has applied: those of
-- transactions below the oldest snapshot any model reflects. Nothing is
-- pruned while a model's snapshot is not trusted here (after a restore).

WITH horizon AS (
    SELECT min(pg_snapshot_xmin(s.current_as_of)) AS xmin,
           bool_and(pgcqrs.snapshot_trusted(s.current_as_of, s.cluster_id)) AS trusted
      FROM read.read_model_status s
      JOIN pgcqrs.read_models m ON m.name = s.view_name
),
gone AS (
    DELETE FROM pgcqrs.changes c
     USING horizon h
     WHERE h.trusted AND c.txid < h.xmin
       -- kept ten minutes more, to tell what a refresh covered
       AND c.at < now() - interval '10 minutes'
    RETURNING 1
)
SELECT count(*) FROM gone
