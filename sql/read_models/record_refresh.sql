-- Log the refresh (or batch: $7 is the rows it changed, NULL for a full
-- refresh) and move the view's freshness forward, in the refresh's own
-- transaction: a refresh that rolls back leaves no trace here.
-- $8: batch, refresh, rebuild or resync; $9: changes applied; $10: changes
-- still waiting; $11-$14: where a batch stopped inside a transaction it
-- applied in part (NULLs otherwise); $15: incremental or full, how this
-- refresh was computed; $16: whether the model now equals its query as of
-- $2 (a REPEATABLE READ batch that took every change its snapshot sees, or
-- a recomputation).
WITH logged AS (
    INSERT INTO read.refresh_log (view_name, covers, started_at, finished_at, duration_ms, rows, instance,
                                  changed_rows, kind, changes, backlog, mode)
    VALUES ($1::text, $2::text::pg_snapshot, $3, clock_timestamp(), $4, $5, $6, $7::bigint,
            $8::text, $9::bigint, $10::bigint, $15::text)
    RETURNING refresh_id
)
INSERT INTO read.read_model_status
       (view_name, current_as_of, verified_at, last_refresh_at, last_duration_ms, rows,
        pending_since, last_error, last_error_at, consecutive_failures,
        cluster_id, backlog, resume_txid, resume_src, resume_seq, resume_key, exact)
VALUES ($1::text, $2::text::pg_snapshot, $3, clock_timestamp(), $4, $5, NULL, NULL, NULL, 0,
        pgcqrs.cluster_id(), $10::bigint, $11::text::xid8, $12::int::smallint, $13::bigint, $14::text, $16::boolean)
ON CONFLICT (view_name) DO UPDATE
SET current_as_of        = EXCLUDED.current_as_of,
    verified_at          = EXCLUDED.verified_at,
    last_refresh_at      = EXCLUDED.last_refresh_at,
    last_duration_ms     = EXCLUDED.last_duration_ms,
    rows                 = EXCLUDED.rows,
    -- a batch that left a backlog is still behind
    pending_since        = CASE WHEN EXCLUDED.backlog > 0 THEN read_model_status.pending_since END,
    last_error           = NULL,
    last_error_at        = NULL,
    consecutive_failures = 0,
    cluster_id           = EXCLUDED.cluster_id,
    backlog              = EXCLUDED.backlog,
    resume_txid          = EXCLUDED.resume_txid,
    resume_src           = EXCLUDED.resume_src,
    resume_seq           = EXCLUDED.resume_seq,
    resume_key           = EXCLUDED.resume_key,
    exact                = EXCLUDED.exact
