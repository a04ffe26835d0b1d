-- Orders in a status (NULL: any) placed on whole UTC days [$2, $3) (NULL:
-- unbounded), as daily_sales keeps the count (a few rows per day); and
-- whether that count shows every order order_summary shows.
SELECT coalesce(sum(orders), 0)::bigint                  AS orders,
       pgcqrs.covers('daily_sales', 'order_summary')      AS current
FROM read.daily_sales
WHERE ($1::text IS NULL OR status = $1::text)
  AND ($2::date IS NULL OR day >= $2::date)
  AND ($3::date IS NULL OR day < $3::date)
