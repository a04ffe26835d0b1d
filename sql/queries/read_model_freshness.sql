-- How fresh each named view is, and whether it covers transaction $2 (NULL: no token).
SELECT view_name,
       verified_at,
       CASE WHEN $2::text IS NULL THEN true
            ELSE pg_visible_in_snapshot($2::text::xid8, current_as_of) END AS covers,
       -- A token no transaction of this database has had yet.
       coalesce($2::text::xid8 >= pg_snapshot_xmax(pg_current_snapshot()), false) AS future
FROM read.read_model_status
WHERE view_name = ANY($1::text[])
