-- Whether customer_orders lists the customer. The query also counts the
-- customer's rows in order_summary: either says the customer exists (the
-- two models are refreshed on different schedules).
SELECT EXISTS (SELECT 1 FROM read.customer_orders WHERE customer_id = $1::text)
