-- Log the refresh (or batch: $7 is the rows it changed, NULL for a full
-- refresh) and move the view's freshness forward, in the refresh's own
-- transaction: a refresh that rolls back leaves no trace here.
WITH logged AS (
    INSERT INTO read.refresh_log (view_name, covers, started_at, finished_at, duration_ms, rows, instance, changed_rows)
    VALUES ($1::text, $2::text::pg_snapshot, $3, clock_timestamp(), $4, $5, $6, $7::bigint)
    RETURNING refresh_id
)
INSERT INTO read.read_model_status
       (view_name, current_as_of, verified_at, last_refresh_at, last_duration_ms, rows,
        pending_since, last_error, last_error_at, consecutive_failures)
VALUES ($1::text, $2::text::pg_snapshot, $3, clock_timestamp(), $4, $5, NULL, NULL, NULL, 0)
ON CONFLICT (view_name) DO UPDATE
SET current_as_of        = EXCLUDED.current_as_of,
    verified_at          = EXCLUDED.verified_at,
    last_refresh_at      = EXCLUDED.last_refresh_at,
    last_duration_ms     = EXCLUDED.last_duration_ms,
    rows                 = EXCLUDED.rows,
    pending_since        = NULL,
    last_error           = NULL,
    last_error_at        = NULL,
    consecutive_failures = 0
