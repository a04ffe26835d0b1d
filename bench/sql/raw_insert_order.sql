-- Baseline: the order row of a create-order transaction, as raw SQL.
INSERT INTO write.orders (id, customer_id, total) VALUES ($1::text, $2::text, $3::numeric)
