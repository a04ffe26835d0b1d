-- Orders created in [$1, $2) ($2 NULL: up to now), counted by current status, revenue summed
-- whatever the status. Whole UTC days come from daily_sales (one row per day
-- and status, so 30 days cost ~150 rows whatever the order volume); the
-- partial days at either edge come from order_summary by its created_at
-- index. The write tables are never read.
WITH bounds AS (
    SELECT lo, hi, whole_lo, greatest(whole_lo, whole_hi) AS whole_hi
    FROM (
        SELECT $1::timestamptz AS lo,
               coalesce($2::timestamptz, 'infinity') AS hi,
               -- first midnight (UTC) at or after lo
               (date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC')
                 + CASE WHEN date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') = ($1::timestamptz AT TIME ZONE 'UTC')
                        THEN interval '0' ELSE interval '1 day' END)::date AS whole_lo,
               -- last midnight (UTC) at or before hi; a range open to the
               -- future ($2 NULL or later than now) holds all of today, which
               -- daily_sales has whole: no need to scan today's orders
               CASE WHEN $2::timestamptz IS NULL OR $2::timestamptz > statement_timestamp()
                    THEN (date_trunc('day', statement_timestamp() AT TIME ZONE 'UTC') + interval '1 day')::date
                    ELSE date_trunc('day', $2::timestamptz AT TIME ZONE 'UTC')::date
               END AS whole_hi
    ) b
),
-- whole days inside the range
whole_days AS (
    SELECT s.status, sum(s.orders)::bigint AS orders, sum(s.revenue) AS revenue
    FROM read.daily_sales s, bounds b
    WHERE s.day >= b.whole_lo AND s.day < b.whole_hi
    GROUP BY s.status
),
-- from lo to the first whole day, and from the last whole day to hi
edges AS (
    SELECT o.status, count(*) AS orders, sum(o.total) AS revenue
    FROM read.order_summary o, bounds b
    WHERE o.created_at >= b.lo
      AND o.created_at < least(b.hi, b.whole_lo::timestamp AT TIME ZONE 'UTC')
    GROUP BY o.status
    UNION ALL
    SELECT o.status, count(*), sum(o.total)
    FROM read.order_summary o, bounds b
    WHERE o.created_at >= greatest(b.lo, b.whole_hi::timestamp AT TIME ZONE 'UTC')
      AND o.created_at < b.hi
    GROUP BY o.status
)
SELECT status, sum(orders)::bigint AS orders, coalesce(sum(revenue), 0)::numeric AS revenue
FROM (SELECT * FROM whole_days UNION ALL SELECT * FROM edges) parts
GROUP BY status
