-- Whether read model $1 is still declared (a model dropped since this
-- instance loaded it is not).
SELECT 1 FROM pgcqrs.read_models WHERE name = $1::text
