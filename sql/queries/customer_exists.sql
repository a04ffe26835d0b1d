SELECT EXISTS (SELECT 1 FROM read.customer_orders WHERE customer_id = $1::text)
