-- Read models declared in SQL.
--
-- A read model is a row of pgcqrs.read_models, made by
-- pgcqrs.define_read_model(name, query, key, mode, schedule, filterable,
-- description) and removed by pgcqrs.drop_read_model(name). See
-- docs/decisions/0002-declared-read-models.md.

CREATE TABLE pgcqrs.read_models (
    -- The relation read.<name>.
    name        text        NOT NULL CONSTRAINT read_models_pkey PRIMARY KEY
                            CONSTRAINT read_models_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    -- The SELECT as declared.
    query       text        NOT NULL,
    -- Columns of the query that identify a row (a unique index).
    key         text[]      NOT NULL,
    -- full, incremental or auto, as declared.
    mode        text        NOT NULL DEFAULT 'auto'
                            CONSTRAINT read_models_mode_check CHECK (mode IN ('full', 'incremental', 'auto')),
    -- Cron with seconds; NULL: as soon as a source changes.
    schedule    text,
    -- Columns GET /queries/views/{name} may filter and order on.
    filterable  text[]      NOT NULL DEFAULT '{}',
    description text,
    defined_at  timestamptz NOT NULL DEFAULT now(),
    defined_by  text        NOT NULL DEFAULT current_user
);

COMMENT ON TABLE pgcqrs.read_models IS 'Declared read models: each is kept fresh as read.<name> by the refresher. Change with pgcqrs.define_read_model and pgcqrs.drop_read_model.';
COMMENT ON COLUMN pgcqrs.read_models.name IS 'The read model: the relation read.<name>.';
COMMENT ON COLUMN pgcqrs.read_models.query IS 'The SELECT that defines the rows, as declared.';
COMMENT ON COLUMN pgcqrs.read_models.key IS 'Columns that identify a row (a unique index on read.<name>).';
COMMENT ON COLUMN pgcqrs.read_models.mode IS 'full (recomputed whole), incremental (changed keys re-projected) or auto.';
COMMENT ON COLUMN pgcqrs.read_models.schedule IS 'Cron schedule with seconds; empty: refreshed as soon as a source changes.';
COMMENT ON COLUMN pgcqrs.read_models.filterable IS 'Columns the HTTP API may filter and order on.';
COMMENT ON COLUMN pgcqrs.read_models.description IS 'What the read model is, for people.';

GRANT SELECT ON pgcqrs.read_models TO pgcqrs_reader;
