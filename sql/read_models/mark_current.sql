-- Nothing changed: the view is current as of this snapshot without a refresh.
INSERT INTO read.read_model_status (view_name, current_as_of, verified_at, pending_since)
VALUES ($1::text, $2::text::pg_snapshot, $3, NULL)
ON CONFLICT (view_name) DO UPDATE
SET current_as_of = EXCLUDED.current_as_of,
    verified_at   = EXCLUDED.verified_at,
    pending_since = NULL
