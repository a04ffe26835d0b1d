-- The order and its lines in one statement. The constraint trigger
-- order_created_event checks at commit that the total is the sum of the lines
-- and appends OrderCreated.
WITH new_order AS (
    INSERT INTO write.orders (id, customer_id, total)
    VALUES ($1::text, $2::text, $3::numeric)
    ON CONFLICT (id) DO NOTHING
    RETURNING status, version, created_at
),
-- The lines, one array per column. Inserted only if the order row was.
lines AS (
    INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
    SELECT $1::text, l.line_no, l.product_id, l.quantity, l.unit_price
    FROM unnest($4::smallint[], $5::text[], $6::int[], $7::numeric[])
             AS l (line_no, product_id, quantity, unit_price)
    WHERE EXISTS (SELECT 1 FROM new_order)
)
SELECT status, version, created_at AS updated_at, pg_current_xact_id()::text AS token
FROM new_order
