-- Baseline: a customer's 20 newest orders straight from the write tables,
-- the same columns order_summary holds, using orders_customer_created_idx.
SELECT o.id, o.customer_id, c.name, c.email,
       (SELECT count(*) FROM write.order_items i WHERE i.order_id = o.id) AS item_count,
       o.total, o.status, o.cancel_reason, o.version, o.created_at, o.updated_at
FROM write.orders o
JOIN write.customers c ON c.id = o.customer_id
WHERE o.customer_id = $1::text
ORDER BY o.created_at DESC
LIMIT 20
