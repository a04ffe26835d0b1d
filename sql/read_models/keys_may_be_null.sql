-- A NULL met in column $2 of read model $1's own table: if that is a key
-- column whose key took no NULL, the key now takes NULLs (V28: its
-- statements compare them already). True when that was done now.
SELECT pgcqrs.keys_may_be_null($1::text, $2::text)
