-- The catalog price of each product an order names, at order time.
SELECT id, price FROM write.products WHERE id = ANY($1::text[])
