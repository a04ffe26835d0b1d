SELECT version FROM write.customers WHERE id = $1::text FOR UPDATE
