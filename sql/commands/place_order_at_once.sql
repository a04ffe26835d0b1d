-- An order placed in one statement, its own transaction: the lines priced
-- from the catalog, every check made, the order and its lines inserted,
-- and the correlation id set for the event-log triggers (they run at the
-- end of the statement and at commit). No row back when a check failed or
-- the id is taken, and then nothing was written: the command goes the
-- long way (place_order.sql), which says why.
-- $1 order id, $2 customer id, $3..$6 per line: number, product,
-- quantity, the price the client expects (or NULL); $7 correlation id.
WITH correlated AS MATERIALIZED (
    SELECT set_config('pgcqrs.correlation_id', $7::text, true) AS id
),
priced AS (
    SELECT l.line_no, l.product_id, l.quantity, p.price AS unit_price, l.expected
    FROM unnest($3::smallint[], $4::text[], $5::int[], $6::numeric[])
             AS l (line_no, product_id, quantity, expected)
    JOIN write.products p ON p.id = l.product_id
),
checked AS (
    SELECT sum(quantity * unit_price) AS total
    FROM priced
    HAVING count(*) = cardinality($3::smallint[])
       AND bool_and(expected IS NULL OR expected = unit_price)
       AND sum(quantity * unit_price) <= 999999999999.99
       AND EXISTS (SELECT 1 FROM write.customers c WHERE c.id = $2::text)
),
new_order AS (
    INSERT INTO write.orders (id, customer_id, total)
    SELECT $1::text, $2::text, c.total FROM checked c, correlated
    ON CONFLICT (id) DO NOTHING
    RETURNING status, version, created_at, total
),
lines AS (
    INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
    SELECT $1::text, p.line_no, p.product_id, p.quantity, p.unit_price
    FROM priced p
    WHERE EXISTS (SELECT 1 FROM new_order)
)
SELECT status, version, created_at AS updated_at, pg_current_xact_id()::text AS token, total
FROM new_order
