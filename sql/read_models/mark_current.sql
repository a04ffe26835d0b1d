-- Nothing changed: the view is current as of this snapshot without a refresh.
INSERT INTO read.read_model_status (view_name, current_as_of, verified_at, pending_since, cluster_id, backlog)
VALUES ($1::text, $2::text::pg_snapshot, $3, NULL, pgcqrs.cluster_id(), 0)
ON CONFLICT (view_name) DO UPDATE
SET current_as_of = EXCLUDED.current_as_of,
    verified_at   = EXCLUDED.verified_at,
    pending_since = NULL,
    cluster_id    = EXCLUDED.cluster_id,
    backlog       = 0,
    resume_txid   = NULL,
    resume_src    = NULL,
    resume_seq    = NULL,
    resume_key    = NULL
