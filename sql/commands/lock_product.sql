SELECT version FROM write.products WHERE id = $1::text FOR UPDATE
