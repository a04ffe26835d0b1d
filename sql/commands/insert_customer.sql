INSERT INTO write.customers (id, name, email)
VALUES ($1::text, $2::text, $3::text)
ON CONFLICT (id) DO NOTHING
RETURNING version, pg_current_xact_id()::text AS token
