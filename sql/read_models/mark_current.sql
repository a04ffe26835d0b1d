-- Nothing changed: the view is current as of this snapshot without a refresh.
-- $4: whether every change the snapshot sees was looked at: then nothing
-- the model shows is behind or ahead of it, and it is exact; a batch that
-- stopped short leaves it not exact.
INSERT INTO read.read_model_status (view_name, current_as_of, verified_at, pending_since, cluster_id, backlog, exact)
VALUES ($1::text, $2::text::pg_snapshot, $3, NULL, pgcqrs.cluster_id(), 0, $4::boolean)
ON CONFLICT (view_name) DO UPDATE
SET current_as_of = EXCLUDED.current_as_of,
    verified_at   = EXCLUDED.verified_at,
    pending_since = NULL,
    cluster_id    = EXCLUDED.cluster_id,
    backlog       = 0,
    resume_txid   = NULL,
    resume_src    = NULL,
    resume_seq    = NULL,
    resume_key    = NULL,
    exact         = EXCLUDED.exact
