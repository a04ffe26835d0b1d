SELECT status, version FROM write.orders WHERE id = $1::text FOR UPDATE
