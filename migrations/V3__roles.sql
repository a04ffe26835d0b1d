-- Roles. Both are NOLOGIN groups: grant them to login roles.
--   pgcqrs_writer: what the command side needs on the write schema.
--   pgcqrs_reader: SELECT on the read schema only; what the query side and
--                  reporting tools (psql, Metabase, Grafana) use.
-- Roles are cluster-wide, so create them only if another database of the
-- cluster has not already done so.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgcqrs_writer') THEN
        CREATE ROLE pgcqrs_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgcqrs_reader') THEN
        CREATE ROLE pgcqrs_reader NOLOGIN;
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS read;

REVOKE ALL ON SCHEMA write FROM PUBLIC;
GRANT USAGE ON SCHEMA write TO pgcqrs_writer;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA write TO pgcqrs_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA write TO pgcqrs_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA write GRANT SELECT, INSERT, UPDATE ON TABLES TO pgcqrs_writer;

GRANT USAGE ON SCHEMA read TO pgcqrs_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA read GRANT SELECT ON TABLES TO pgcqrs_reader;
