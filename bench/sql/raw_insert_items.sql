-- Baseline: the three lines of a create-order transaction, as raw SQL.
INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
VALUES ($1::text, 1, $2::text, $3::int, $4::numeric),
       ($1::text, 2, $5::text, $6::int, $7::numeric),
       ($1::text, 3, $8::text, $9::int, $10::numeric)
