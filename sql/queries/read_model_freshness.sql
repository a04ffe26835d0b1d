-- The snapshot every read model reflects and when it was taken, with the
-- database's own current snapshot (to tell a token from the future).
SELECT view_name,
       current_as_of::text          AS current_as_of,
       verified_at,
       pg_current_snapshot()::text  AS now_snapshot
FROM read.read_model_status
