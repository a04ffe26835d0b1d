-- The snapshot every read model reflects and when it was taken, with the
-- database's own current snapshot (to tell a token from the future); how
-- long its last refresh took and how many have failed since, to tell a
-- read that timed out when a retry is worth it.
SELECT view_name,
       current_as_of::text          AS current_as_of,
       verified_at,
       last_duration_ms,
       consecutive_failures,
       pg_current_snapshot()::text  AS now_snapshot
FROM read.read_model_status
