SELECT request_fingerprint, status_code, response_body
FROM write.idempotency_keys
WHERE idempotency_key = $1
