-- The count daily_sales keeps for a status, as the service reads it
-- (sql/queries/count_orders_by_day.sql without day bounds).
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
WHERE d.status = $1::text
