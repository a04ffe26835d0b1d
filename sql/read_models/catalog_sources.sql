-- How a batch applies the changes of each table an incremental model reads.
SELECT s.model, s.source::oid AS source, s.search_path, s.keys_sql,
       s.any_schema, s.old_sql, s.plus_path, s.plus_sql,
       s.term, s.old_schema, s.first_sql, s.minus_path, s.minus_sql
FROM pgcqrs.read_model_sources s
ORDER BY s.model, s.source
