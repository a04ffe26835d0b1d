-- A customer's orders as customer_orders keeps the count (NULL: it has no
-- row for the customer), and whether customer_orders shows every order
-- order_summary shows: no change to the tables it reads is visible in
-- order_summary's snapshot and not in its own. Always one row.
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
FROM (SELECT $1::text AS customer_id) asked
LEFT JOIN read.customer_orders k ON k.customer_id = asked.customer_id
