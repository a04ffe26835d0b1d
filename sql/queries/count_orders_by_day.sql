-- Orders in a status (NULL: any) placed on whole UTC days [$2, $3) (NULL:
-- unbounded), as daily_sales keeps the count (a few rows per day); and
-- whether that count shows every order order_summary shows: no change to
-- the tables daily_sales reads is visible in order_summary's snapshot and
-- not in its own.
SELECT coalesce(sum(d.orders), 0)::bigint AS orders,
       (SELECT NOT EXISTS (
                   SELECT 1 FROM pgcqrs.change_txids c
                    WHERE c.relid = ANY (r.sources::oid[])
                      AND c.txid >= pg_snapshot_xmin(m.current_as_of)
                      AND c.txid < pg_snapshot_xmax(o.current_as_of)
                      AND pg_visible_in_snapshot(c.txid, o.current_as_of)
                      AND NOT pg_visible_in_snapshot(c.txid, m.current_as_of))
          FROM read.read_model_status m
          JOIN pgcqrs.read_models r ON r.name = m.view_name
          JOIN read.read_model_status o ON o.view_name = 'order_summary'
         WHERE m.view_name = 'daily_sales') IS TRUE AS current
FROM read.daily_sales d
WHERE ($1::text IS NULL OR d.status = $1::text)
  AND ($2::date IS NULL OR d.day >= $2::date)
  AND ($3::date IS NULL OR d.day < $3::date)
