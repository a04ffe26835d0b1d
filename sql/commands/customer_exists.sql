SELECT EXISTS (SELECT 1 FROM write.customers WHERE id = $1::text)
