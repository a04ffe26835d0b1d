UPDATE write.idempotency_keys
SET status_code = $2, response_body = $3
WHERE idempotency_key = $1
