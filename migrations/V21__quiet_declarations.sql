-- Declaring, declaring again and dropping a read model make and drop
-- objects of the model's own (stand-in views, working tables, schemas),
-- with IF EXISTS and CASCADE. PostgreSQL's notices about them ("view ...
-- does not exist, skipping", "drop cascades to 2 other objects") tell
-- the one declaring nothing they asked about, and buried the warnings
-- that do. Inside these two functions only warnings and errors reach the
-- client; the caller's own setting is back when they return.
--
-- A later migration that replaces either function (CREATE OR REPLACE
-- resets a function's settings) sets this again.
ALTER FUNCTION pgcqrs.define_read_model(text, text, text[], text, text, text[], text)
    SET client_min_messages = warning;
ALTER FUNCTION pgcqrs.drop_read_model(text)
    SET client_min_messages = warning;
