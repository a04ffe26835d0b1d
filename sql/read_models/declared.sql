-- When read model $1 was declared: none if it has been dropped since this
-- instance loaded it, another time if it has been declared again.
SELECT defined_at FROM pgcqrs.read_models WHERE name = $1::text
