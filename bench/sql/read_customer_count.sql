SELECT count(*) FROM read.order_summary WHERE customer_id = $1::text
