INSERT INTO write.products (id, name, price)
VALUES ($1::text, $2::text, $3::numeric)
ON CONFLICT (id) DO NOTHING
RETURNING version, pg_current_xact_id()::text AS token
