-- The snapshot every read model reflects and when it was taken, with the
-- database's own current snapshot (to tell a token from the future); how
-- long its last refresh took and how many have failed since, to tell a
-- read that timed out when a retry is worth it. A snapshot recorded on
-- another cluster (the database was restored from a dump) or ahead of the
-- present is not trusted: it is reported as one that covers no transaction,
-- so no min_token is answered from the view until the refresher has
-- recomputed it here.
SELECT view_name,
       CASE WHEN pgcqrs.snapshot_trusted(current_as_of, cluster_id)
            THEN current_as_of::text
            ELSE '1:1:'
       END                          AS current_as_of,
       verified_at,
       last_duration_ms,
       consecutive_failures,
       pg_current_snapshot()::text  AS now_snapshot
FROM read.read_model_status
