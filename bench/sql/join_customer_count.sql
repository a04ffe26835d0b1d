SELECT count(*) FROM write.orders WHERE customer_id = $1::text
