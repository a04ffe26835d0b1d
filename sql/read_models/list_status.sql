-- Every read model's freshness, with its catch-up rate: change records
-- applied per second over the last minute of refreshes.
SELECT s.view_name, s.verified_at, s.last_refresh_at, s.last_duration_ms, s.rows,
       s.pending_since, s.last_error, s.last_error_at, s.consecutive_failures,
       s.backlog,
       pgcqrs.snapshot_trusted(s.current_as_of, s.cluster_id) AS trusted,
       (SELECT sum(l.changes)::float8 / 60
          FROM read.refresh_log l
         WHERE l.view_name = s.view_name
           AND l.finished_at > now() - interval '1 minute') AS changes_per_second
FROM read.read_model_status s
ORDER BY s.view_name
