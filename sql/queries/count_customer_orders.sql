-- A customer's orders as customer_orders keeps the count, and whether that
-- count shows every order order_summary shows. No row: a customer the
-- read models do not know.
SELECT order_count, pgcqrs.covers('customer_orders', 'order_summary') AS current
FROM read.customer_orders
WHERE customer_id = $1::text
