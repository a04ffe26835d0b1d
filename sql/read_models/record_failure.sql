UPDATE read.read_model_status
SET last_error = $2::text, last_error_at = now(), consecutive_failures = consecutive_failures + 1
WHERE view_name = $1::text
RETURNING consecutive_failures
