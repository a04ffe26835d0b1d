-- Forget the changes captured by one bulk-load transaction ($1), once
-- every read model's snapshot shows it: each then holds its rows, and no
-- batch reads those changes again.
DELETE FROM pgcqrs.changes c
 WHERE c.txid = $1::text::xid8
   AND NOT EXISTS (SELECT 1
                     FROM read.read_model_status s
                     JOIN pgcqrs.read_models m ON m.name = s.view_name
                    WHERE NOT pg_visible_in_snapshot($1::text::xid8, s.current_as_of))
