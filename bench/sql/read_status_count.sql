-- The count daily_sales keeps for a status, as the service reads it
-- (sql/queries/count_orders_by_day.sql without day bounds).
SELECT coalesce(sum(d.orders), 0)::bigint AS orders,
       (SELECT caught_up FROM pgcqrs.caught_up
         WHERE model = 'daily_sales' AND other = 'order_summary') IS TRUE AS current
FROM read.daily_sales d
WHERE d.status = $1::text
