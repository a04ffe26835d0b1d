-- A customer's orders as customer_orders keeps the count (NULL: it has no
-- row for the customer), and whether customer_orders has caught up with
-- order_summary. Always one row.
SELECT k.order_count,
       (SELECT caught_up FROM pgcqrs.caught_up
         WHERE model = 'customer_orders' AND other = 'order_summary') IS TRUE AS current
FROM (SELECT $1::text AS customer_id) asked
LEFT JOIN read.customer_orders k ON k.customer_id = asked.customer_id
