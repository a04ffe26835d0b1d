-- Orders in a status (NULL: any) placed on whole UTC days [$2, $3) (NULL:
-- unbounded), as daily_sales keeps the count (a few rows per day); and
-- whether daily_sales has caught up with order_summary.
SELECT coalesce(sum(d.orders), 0)::bigint AS orders,
       (SELECT caught_up FROM pgcqrs.caught_up
         WHERE model = 'daily_sales' AND other = 'order_summary') IS TRUE AS current
FROM read.daily_sales d
WHERE ($1::text IS NULL OR d.status = $1::text)
  AND ($2::date IS NULL OR d.day >= $2::date)
  AND ($3::date IS NULL OR d.day < $3::date)
