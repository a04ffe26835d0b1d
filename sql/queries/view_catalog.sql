-- Every declared read model with the columns of its relation read.<name>,
-- one row per column, in column order, for GET /queries/views/{name}.
-- A model whose relation does not exist (yet) has no rows: it is not served.
--
-- cast_type is what a filter value (bound as text) is cast to: the column's
-- base type (a domain's own checks are not the filter's business) named
-- without its type modifier, schema-qualified, so that a cast never
-- truncates or rounds (varchar(5), numeric(10,2) and character(3) would)
-- and never depends on search_path. json_type and json_element describe the
-- value's JSON in /openapi.json.
SELECT m.name,
       m.key,
       m.filterable,
       m.description,
       a.attname::text                         AS column_name,
       format_type(a.atttypid, a.atttypmod)    AS sql_type,
       format('%I.%I', bn.nspname, b.typname)  AS cast_type,
       b.typname::text                         AS base_type,
       e.typname::text                         AS element_type,
       -- (a materialized view's columns are never NOT NULL: its key may
       -- come to hold a NULL after the declaration)
       a.attnotnull                            AS not_null,
       col_description(c.oid, a.attnum)        AS comment
FROM pgcqrs.read_models AS m
JOIN pg_class AS c
  ON c.relname = m.name
 AND c.relnamespace = 'read'::regnamespace
 AND c.relkind IN ('r', 'm', 'v', 'p')
JOIN pg_attribute AS a
  ON a.attrelid = c.oid
 AND a.attnum > 0
 AND NOT a.attisdropped
JOIN pg_type AS t ON t.oid = a.atttypid
-- A domain's base type (one level: a domain over a domain is rare, and its
-- base's base only matters to the JSON description).
JOIN pg_type AS b ON b.oid = CASE WHEN t.typbasetype <> 0 THEN t.typbasetype ELSE t.oid END
JOIN pg_namespace AS bn ON bn.oid = b.typnamespace
LEFT JOIN pg_type AS e ON e.oid = b.typelem AND b.typcategory = 'A'
ORDER BY m.name, a.attnum
