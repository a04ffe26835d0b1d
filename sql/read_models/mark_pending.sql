-- The view is behind; record since when, for /queries/read-models and metrics.
UPDATE read.read_model_status SET pending_since = $2 WHERE view_name = $1::text
