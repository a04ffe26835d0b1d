-- The count daily_sales keeps for a status, as the service reads it.
SELECT coalesce(sum(orders), 0)::bigint                  AS orders,
       pgcqrs.covers('daily_sales', 'order_summary')      AS current
FROM read.daily_sales
WHERE status = $1::text
