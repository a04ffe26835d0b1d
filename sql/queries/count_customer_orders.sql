-- A customer's orders as customer_orders keeps the count, and whether that
-- count shows every order order_summary shows: no change to the tables
-- customer_orders reads is visible in order_summary's snapshot and not in
-- its own. No row: a customer the read models do not know.
SELECT k.order_count,
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
         WHERE m.view_name = 'customer_orders') IS TRUE AS current
FROM read.customer_orders k
WHERE k.customer_id = $1::text
