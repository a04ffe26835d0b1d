SELECT view_name, verified_at, last_refresh_at, last_duration_ms, rows,
       pending_since, last_error, last_error_at, consecutive_failures
FROM read.read_model_status
ORDER BY view_name
