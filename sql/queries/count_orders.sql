SELECT count(*)
FROM read.order_summary
WHERE ($1::text IS NULL OR customer_id = $1::text)
  AND ($2::text IS NULL OR status = $2::text)
  AND ($3::timestamptz IS NULL OR created_at >= $3::timestamptz)
  AND ($4::timestamptz IS NULL OR created_at < $4::timestamptz)
