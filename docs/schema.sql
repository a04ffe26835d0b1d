-- The schema the migrations build, dumped by pg_dump. Generated: do not edit;
-- regenerate with `PGCQRS_WRITE_SCHEMA=1 cargo test --test api schema_file`.

CREATE SCHEMA pgcqrs;

COMMENT ON SCHEMA pgcqrs IS 'pgcqrs internals: functions the refresher uses. Not for reporting tools.';

CREATE SCHEMA pgcqrs_a1_customer_orders;

CREATE SCHEMA pgcqrs_a1_daily_sales;

CREATE SCHEMA pgcqrs_a1_order_lines;

CREATE SCHEMA pgcqrs_a1_order_summary;

CREATE SCHEMA pgcqrs_a1_product_sales;

CREATE SCHEMA pgcqrs_a2_customer_orders;

CREATE SCHEMA pgcqrs_a2_order_lines;

CREATE SCHEMA pgcqrs_a2_order_summary;

CREATE SCHEMA pgcqrs_a2_product_sales;

CREATE SCHEMA pgcqrs_a3_order_summary;

CREATE SCHEMA pgcqrs_a3_product_sales;

CREATE SCHEMA pgcqrs_d1_customer_orders;

COMMENT ON SCHEMA pgcqrs_d1_customer_orders IS 'pgcqrs: stand-in for write.customers while a batch of read model customer_orders finds its keys.';

CREATE SCHEMA pgcqrs_d1_daily_sales;

COMMENT ON SCHEMA pgcqrs_d1_daily_sales IS 'pgcqrs: stand-in for write.orders while a batch of read model daily_sales finds its keys.';

CREATE SCHEMA pgcqrs_d1_order_lines;

COMMENT ON SCHEMA pgcqrs_d1_order_lines IS 'pgcqrs: stand-in for write.products while a batch of read model order_lines finds its keys.';

CREATE SCHEMA pgcqrs_d1_order_summary;

COMMENT ON SCHEMA pgcqrs_d1_order_summary IS 'pgcqrs: stand-in for write.customers while a batch of read model order_summary finds its keys.';

CREATE SCHEMA pgcqrs_d1_product_sales;

COMMENT ON SCHEMA pgcqrs_d1_product_sales IS 'pgcqrs: stand-in for write.products while a batch of read model product_sales finds its keys.';

CREATE SCHEMA pgcqrs_d2_customer_orders;

COMMENT ON SCHEMA pgcqrs_d2_customer_orders IS 'pgcqrs: stand-in for write.orders while a batch of read model customer_orders finds its keys.';

CREATE SCHEMA pgcqrs_d2_order_lines;

COMMENT ON SCHEMA pgcqrs_d2_order_lines IS 'pgcqrs: stand-in for write.order_items while a batch of read model order_lines finds its keys.';

CREATE SCHEMA pgcqrs_d2_order_summary;

COMMENT ON SCHEMA pgcqrs_d2_order_summary IS 'pgcqrs: stand-in for write.orders while a batch of read model order_summary finds its keys.';

CREATE SCHEMA pgcqrs_d2_product_sales;

COMMENT ON SCHEMA pgcqrs_d2_product_sales IS 'pgcqrs: stand-in for write.orders while a batch of read model product_sales finds its keys.';

CREATE SCHEMA pgcqrs_d3_order_summary;

COMMENT ON SCHEMA pgcqrs_d3_order_summary IS 'pgcqrs: stand-in for write.order_items while a batch of read model order_summary finds its keys.';

CREATE SCHEMA pgcqrs_d3_product_sales;

COMMENT ON SCHEMA pgcqrs_d3_product_sales IS 'pgcqrs: stand-in for write.order_items while a batch of read model product_sales finds its keys.';

CREATE SCHEMA pgcqrs_defs;

COMMENT ON SCHEMA pgcqrs_defs IS 'Each read model''s query as a view: read.<name> equals pgcqrs_defs.<name> once refreshed.';

CREATE SCHEMA pgcqrs_delta;

COMMENT ON SCHEMA pgcqrs_delta IS 'Working tables of delta batches, one per grouped read model; empty outside a batch.';

CREATE SCHEMA pgcqrs_m1_daily_sales;

CREATE SCHEMA pgcqrs_m2_customer_orders;

CREATE SCHEMA pgcqrs_m2_product_sales;

CREATE SCHEMA pgcqrs_m3_product_sales;

CREATE SCHEMA pgcqrs_o1_daily_sales;

CREATE SCHEMA pgcqrs_o2_customer_orders;

CREATE SCHEMA pgcqrs_o2_product_sales;

CREATE SCHEMA pgcqrs_o3_product_sales;

CREATE SCHEMA pgcqrs_p1_daily_sales;

CREATE SCHEMA pgcqrs_p2_customer_orders;

CREATE SCHEMA pgcqrs_p2_product_sales;

CREATE SCHEMA pgcqrs_p3_product_sales;

CREATE SCHEMA read;

CREATE SCHEMA write;

CREATE DOMAIN write.entity_id AS text
	CONSTRAINT entity_id_pattern CHECK ((VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'::text));

CREATE DOMAIN write.money AS numeric(14,2)
	CONSTRAINT money_not_negative CHECK ((VALUE >= (0)::numeric));

CREATE FUNCTION pgcqrs.aggregate_signature(entry text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS $$
    SELECT regexp_replace(regexp_replace(substring(a FROM ':args (.*) :aggstar '), ' :location -?\d+', '', 'g'),
                          '^\(\{TARGETENTRY :expr \{RELABELTYPE :arg (\{VAR [^{}]*\}) :resulttype \d+ :resulttypmod -?\d+ :resultcollid \d+ :relabelformat \d+\}',
                          '({TARGETENTRY :expr \1')
      FROM pgcqrs.node_segments(entry, '{AGGREF ') a LIMIT 1
$$;

CREATE FUNCTION pgcqrs.any_stand_in(model text, source regclass, n integer) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    own     text := format('pgcqrs_a%s_%s', n, model);
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    key     text[] := (SELECT r.key FROM pgcqrs.read_model_sources r
                        WHERE r.model = any_stand_in.model AND r.source = any_stand_in.source);
BEGIN
    EXECUTE format('CREATE SCHEMA %I', own);
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_old_rows (LIKE %s)', own, source);
    IF cardinality(key) > 0 THEN
        EXECUTE format('CREATE INDEX ON %I.pgcqrs_old_rows (%s)', own, pgcqrs.ident_list(key));
    END IF;
    EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM %s UNION ALL SELECT * FROM %I.pgcqrs_old_rows',
                   own, relname, source, own);
    UPDATE pgcqrs.read_model_sources r
       SET any_schema = quote_ident(own),
           old_sql = format($q$INSERT INTO %1$I.pgcqrs_old_rows
SELECT r.* FROM pgcqrs.batch b CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$I.pgcqrs_old_rows, b.old) r
 WHERE b.relid = %2$L::regclass AND b.old IS NOT NULL$q$, own, pgcqrs.qualified(any_stand_in.source))
     WHERE r.model = any_stand_in.model AND r.source = any_stand_in.source;
END
$_$;

CREATE FUNCTION pgcqrs.average_obstacle(def regclass) RETURNS text
    LANGUAGE plpgsql STABLE STRICT
    AS $$
DECLARE
    entries text[] := (SELECT pgcqrs.node_items(pgcqrs.node_field(r.ev_action::text, ':targetList '))
                         FROM pg_rewrite r WHERE r.ev_class = def);
    entry   text;
    agg     text;
    sig     text;
    name    text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = def AND r.ev_action::text ~ ':groupClause \(') THEN
        RETURN NULL;
    END IF;
    FOREACH entry IN ARRAY coalesce(entries, '{}') LOOP
        CONTINUE WHEN strpos(entry, '{SUBLINK ') > 0;
        agg := (SELECT a FROM pgcqrs.node_segments(entry, '{AGGREF ') a LIMIT 1);
        CONTINUE WHEN agg IS NULL OR NOT EXISTS (
            SELECT 1 FROM pg_proc p
             WHERE p.oid = (regexp_match(agg, ':aggfnoid (\d+) '))[1]::oid
               AND p.proname = 'avg' AND p.pronamespace = 'pg_catalog'::regnamespace);
        -- (the entry's own name comes after those of the aggregate's arguments)
        name := regexp_replace((regexp_match(entry, '.*:resname ((?:\\.|[^ \\])+) :ressortgroupref '))[1], '\\(.)', '\1', 'g');
        IF pgcqrs.node_field(entry, ':expr ') NOT LIKE '{AGGREF %' THEN
            RETURN format('%s is computed from an avg (a cast or a function around it)', name);
        END IF;
        IF agg !~ ':aggdistinct <> ' THEN
            RETURN format('%s averages DISTINCT values', name);
        END IF;
        sig := pgcqrs.aggregate_signature(entry);
        IF pgcqrs.fixed_scale(sig) IS NULL THEN
            RETURN format('%s averages values of no one scale (only a column of integers or of numeric(p, s) moves by delta)', name);
        END IF;
        IF (SELECT count(DISTINCT p.proname) FROM unnest(entries) e, pg_proc p
             WHERE p.oid = (regexp_match(e, ':aggfnoid (\d+) '))[1]::oid
               AND p.proname IN ('sum', 'count') AND p.pronamespace = 'pg_catalog'::regnamespace
               AND pgcqrs.aggregate_signature(e) = sig) < 2 THEN
            RETURN format('%s is an avg without a sum and a count of the same values beside it', name);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION pgcqrs.base_type(source regclass, col text) RETURNS regtype
    LANGUAGE sql STABLE
    AS $$
    WITH RECURSIVE t(oid) AS (
        SELECT a.atttypid FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        SELECT y.typbasetype FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype = 'd'
    )
    SELECT t.oid::regtype FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype <> 'd'
$$;

CREATE FUNCTION pgcqrs.canonical_json(v anyelement) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    SET "TimeZone" TO 'UTC'
    SET extra_float_digits TO '1'
    SET "IntervalStyle" TO 'postgres'
    SET bytea_output TO 'hex'
    SET "DateStyle" TO 'ISO, MDY'
    AS $$ SELECT to_jsonb(v) $$;

COMMENT ON FUNCTION pgcqrs.canonical_json(v anyelement) IS 'A value as JSON, rendered with fixed settings (UTC, exact floats, postgres intervals, hex bytea, ISO dates): a captured value reads the same from every session.';

CREATE FUNCTION pgcqrs.capture(source regclass) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    pk       text[];
    fname    text;
    captured boolean := EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = source AND tgname = 'pgcqrs_capture_insert');
    keyx     text;
    keyo     text;
    same     text;
BEGIN
    -- the function its triggers call (the table may have been renamed
    -- since), or one named by the table's oid (a name taken from the
    -- table's would be the one a renamed table's triggers still call)
    fname := coalesce((SELECT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                        WHERE t.tgrelid = source AND t.tgname = 'pgcqrs_capture_insert'),
                      format('capture_%s', source::oid));
    SELECT array_agg(a.attname::text ORDER BY k.i)
      INTO pk
      FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
     WHERE x.indrelid = source AND x.indisprimary;
    IF pk IS NULL THEN
        keyx := 'NULL::jsonb';
        keyo := 'NULL::jsonb';
        same := 'false';
    ELSE
        keyx := pgcqrs.key_json(source, pk, 'pgcqrs_n.');
        keyo := pgcqrs.key_json(source, pk, 'pgcqrs_o.');
        -- each part's equality operator named with its schema: the
        -- trigger's search_path holds pg_catalog alone, where an
        -- extension's type (ltree, citext) has none, and every update
        -- failed or compared the key as text
        same := (SELECT string_agg(format('pgcqrs_n.%1$I %2$s pgcqrs_o.%1$I',
                                          p, coalesce((SELECT format('OPERATOR(%I.=)', n.nspname)
                                                         FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                                                        WHERE o.oprname = '=' AND o.oprleft = b AND o.oprright = b
                                                        ORDER BY n.nspname = 'pg_catalog' DESC LIMIT 1), '=')),
                                   ' AND ')
                   FROM unnest(pk) p CROSS JOIN LATERAL pgcqrs.base_type(source, p) b);
    END IF;
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION pgcqrs.%1$I() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        SET TimeZone = 'UTC' SET extra_float_digits = 1 SET IntervalStyle = postgres SET bytea_output = hex
        SET DateStyle = 'ISO, MDY'
        AS $body$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', %3$s FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', %3$s, %6$s
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON %5$s
                 WHERE pgcqrs_n OPERATOR(pg_catalog.*<>) pgcqrs_o
                UNION ALL
                SELECT TG_RELID, 'D', %4$s, %6$s
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE %5$s)
                UNION ALL
                SELECT TG_RELID, 'I', %3$s, NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE %5$s);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', %4$s, %6$s FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $body$ $f$, fname, source::oid, keyx, keyo, same, pgcqrs.old_image(source));
    IF captured THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.%I()', source, fname);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_insert, ENABLE ALWAYS TRIGGER pgcqrs_capture_update', source);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_delete', source);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate', source);
END
$_$;

CREATE FUNCTION pgcqrs.capture_02d6eb4957f6c84bf255() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    SET extra_float_digits TO '1'
    SET "IntervalStyle" TO 'postgres'
    SET bytea_output TO 'hex'
    SET "DateStyle" TO 'ISO, MDY'
    AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.order_id, pgcqrs_n.line_no) FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', jsonb_build_array(pgcqrs_n.order_id, pgcqrs_n.line_no), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON pgcqrs_n.order_id OPERATOR(pg_catalog.=) pgcqrs_o.order_id AND pgcqrs_n.line_no OPERATOR(pg_catalog.=) pgcqrs_o.line_no
                 WHERE pgcqrs_n OPERATOR(pg_catalog.*<>) pgcqrs_o
                UNION ALL
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.order_id, pgcqrs_o.line_no), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE pgcqrs_n.order_id OPERATOR(pg_catalog.=) pgcqrs_o.order_id AND pgcqrs_n.line_no OPERATOR(pg_catalog.=) pgcqrs_o.line_no)
                UNION ALL
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.order_id, pgcqrs_n.line_no), NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE pgcqrs_n.order_id OPERATOR(pg_catalog.=) pgcqrs_o.order_id AND pgcqrs_n.line_no OPERATOR(pg_catalog.=) pgcqrs_o.line_no);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.order_id, pgcqrs_o.line_no), to_jsonb(pgcqrs_o) FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $$;

CREATE FUNCTION pgcqrs.capture_083849c66f4a1eccdc8a() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    SET extra_float_digits TO '1'
    SET "IntervalStyle" TO 'postgres'
    SET bytea_output TO 'hex'
    SET "DateStyle" TO 'ISO, MDY'
    AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.id) FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', jsonb_build_array(pgcqrs_n.id), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id
                 WHERE pgcqrs_n OPERATOR(pg_catalog.*<>) pgcqrs_o
                UNION ALL
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.id), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id)
                UNION ALL
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.id), NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.id), to_jsonb(pgcqrs_o) FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $$;

CREATE FUNCTION pgcqrs.capture_3c5b5c1a8bb157bc52b0() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    SET extra_float_digits TO '1'
    SET "IntervalStyle" TO 'postgres'
    SET bytea_output TO 'hex'
    SET "DateStyle" TO 'ISO, MDY'
    AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.id) FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', jsonb_build_array(pgcqrs_n.id), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id
                 WHERE pgcqrs_n OPERATOR(pg_catalog.*<>) pgcqrs_o
                UNION ALL
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.id), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id)
                UNION ALL
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.id), NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.id), to_jsonb(pgcqrs_o) FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $$;

CREATE FUNCTION pgcqrs.capture_797c1c68af1e1982682a() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    SET extra_float_digits TO '1'
    SET "IntervalStyle" TO 'postgres'
    SET bytea_output TO 'hex'
    SET "DateStyle" TO 'ISO, MDY'
    AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.id) FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', jsonb_build_array(pgcqrs_n.id), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id
                 WHERE pgcqrs_n OPERATOR(pg_catalog.*<>) pgcqrs_o
                UNION ALL
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.id), to_jsonb(pgcqrs_o)
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id)
                UNION ALL
                SELECT TG_RELID, 'I', jsonb_build_array(pgcqrs_n.id), NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE pgcqrs_n.id OPERATOR(pg_catalog.=) pgcqrs_o.id);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', jsonb_build_array(pgcqrs_o.id), to_jsonb(pgcqrs_o) FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $$;

CREATE FUNCTION pgcqrs.capture_follows_renames() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    source regclass;
    model  text;
BEGIN
    FOR source IN
        SELECT DISTINCT c.objid::regclass
          FROM pg_event_trigger_ddl_commands() c
         WHERE c.classid = 'pg_class'::regclass
           AND c.object_type = 'table column'   -- RENAME COLUMN
           AND EXISTS (SELECT 1 FROM pg_trigger t
                        WHERE t.tgrelid = c.objid AND t.tgname = 'pgcqrs_capture_insert')
    LOOP
        PERFORM pgcqrs.capture(source);
        FOR model IN SELECT r.name FROM pgcqrs.read_models r
                      WHERE source = ANY (r.sources) AND r.kept = 'incremental' ORDER BY r.name LOOP
            BEGIN
                PERFORM pgcqrs.stand_ins_again(model);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'the stand-ins of read model % were not written again after a column of % was renamed: %',
                              model, source, SQLERRM
                    USING HINT = 'The model is recomputed whole at every change until it is declared again.';
            END;
        END LOOP;
    END LOOP;
END
$$;

CREATE FUNCTION pgcqrs.capture_gap(source regclass) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
               WHEN c.relkind = 'p' THEN 'is partitioned'
               WHEN c.relispartition THEN 'is a partition'
               WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid) THEN 'has inheritance children'
               WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) THEN 'inherits from another table'
           END
      FROM pg_class c
     WHERE c.oid = source
$$;

CREATE FUNCTION pgcqrs.cluster_id() RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT system_identifier FROM pg_control_system());
EXCEPTION WHEN insufficient_privilege OR undefined_function THEN
    RETURN NULL;
END
$$;

CREATE FUNCTION pgcqrs.define_read_model(name text, query text, key text[], mode text DEFAULT 'auto'::text, schedule text DEFAULT NULL::text, filterable text[] DEFAULT '{}'::text[], description text DEFAULT NULL::text) RETURNS void
    LANGUAGE plpgsql
    SET client_min_messages TO 'warning'
    AS $_$
DECLARE
    def        regclass;
    target     text;
    cols       text[];
    col        text;
    direct     regclass[];
    tables     regclass[];
    src        regclass;
    kept       text;
    why        text;
    plan       jsonb;
    schemas    text[];
    path       text;
    definition text;
    taken      pg_snapshot;
    n          int := 0;
    updates    text;
    on_conflict text;
    keyeq      text;
    keylist    text;
    old_path   text := current_setting('search_path');
BEGIN
    -- The name.
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,47}$' THEN
        RAISE EXCEPTION 'invalid read model name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_name',
                  HINT = 'Use lower-case letters, digits and underscores, starting with a letter, at most 48 characters.';
    END IF;
    IF EXISTS (SELECT 1 FROM pgcqrs.read_models m WHERE m.name = define_read_model.name) THEN
        RAISE EXCEPTION 'read model % is already defined', name
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Drop it first: SELECT pgcqrs.drop_read_model(%L);', name);
    END IF;
    IF to_regclass(format('read.%I', name)) IS NOT NULL THEN
        RAISE EXCEPTION 'relation read.% already exists and is not a declared read model', name
            USING ERRCODE = 'duplicate_table', HINT = 'Choose another name.';
    END IF;
    IF mode IS NULL OR mode NOT IN ('full', 'incremental', 'auto') THEN
        RAISE EXCEPTION 'invalid mode %', coalesce(quote_literal(mode), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'mode is full, incremental or auto.';
    END IF;
    IF key IS NULL OR cardinality(key) = 0 THEN
        RAISE EXCEPTION 'read model % needs a key', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the columns that identify a row, e.g. ARRAY[''id''].';
    END IF;
    IF schedule IS NOT NULL AND cardinality(regexp_split_to_array(trim(schedule), '\s+')) NOT IN (6, 7) THEN
        RAISE EXCEPTION 'invalid schedule %', quote_literal(schedule)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A cron schedule with seconds: sec min hour day month weekday, e.g. ''*/5 * * * * *''; NULL refreshes as soon as a source changes.';
    END IF;

    -- The query: one SELECT that writes nothing. Run first in a read-only
    -- subtransaction, always rolled back: a second statement smuggled in
    -- after a semicolon, or a data-modifying WITH, fails there and never
    -- runs (the whole string is parsed before any of it runs).
    BEGIN
        PERFORM set_config('transaction_read_only', 'on', true);
        EXECUTE format('SELECT 1 FROM (%s) AS q LIMIT 0', query);
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'pgcqrs: query checked';
    EXCEPTION WHEN OTHERS THEN
        IF SQLERRM <> 'pgcqrs: query checked' THEN
            RAISE EXCEPTION 'the query of read model % is not valid: %', name, SQLERRM
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The query is one SELECT (no semicolon, no data-modifying WITH) over tables and views of this database, with schema-qualified names.';
        END IF;
    END;
    -- It must plan as a view.
    BEGIN
        EXECUTE format('CREATE VIEW pgcqrs_defs.%I AS %s', name, query);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'the query of read model % is not valid: %', name, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The query is one SELECT (no semicolon) over tables and views of this database, with schema-qualified names.';
    END;
    def := format('pgcqrs_defs.%I', name)::regclass;
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO cols
      FROM pg_attribute a WHERE a.attrelid = def AND a.attnum > 0 AND NOT a.attisdropped;
    FOREACH col IN ARRAY key LOOP
        IF NOT col = ANY(cols) THEN
            RAISE EXCEPTION 'key column % is not a column of the query', quote_ident(col)
                USING ERRCODE = 'undefined_column', HINT = format('The query''s columns: %s.', array_to_string(cols, ', '));
        END IF;
    END LOOP;
    FOREACH col IN ARRAY coalesce(filterable, '{}') LOOP
        IF NOT col = ANY(cols) THEN
            RAISE EXCEPTION 'filterable column % is not a column of the query', quote_ident(col)
                USING ERRCODE = 'undefined_column', HINT = format('The query''s columns: %s.', array_to_string(cols, ', '));
        END IF;
    END LOOP;

    -- Its sources: what the view depends on, views followed to tables.
    WITH RECURSIVE deps(rel, via_view) AS (
        SELECT DISTINCT d.refobjid::regclass, false
          FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         WHERE r.ev_class = def AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> def
        UNION
        SELECT DISTINCT d.refobjid::regclass, true
          FROM deps JOIN pg_class c ON c.oid = deps.rel AND c.relkind = 'v'
          JOIN pg_rewrite r ON r.ev_class = c.oid
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
         WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid
    )
    SELECT array_agg(DISTINCT rel) FILTER (WHERE NOT via_view),
           array_agg(DISTINCT rel) FILTER (WHERE c.relkind IN ('r', 'p'))
      INTO direct, tables
      FROM deps JOIN pg_class c ON c.oid = deps.rel AND c.relkind <> 'c';
    FOR src IN
        SELECT d.rel FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel
         WHERE c.relkind NOT IN ('r', 'p', 'v')
    LOOP
        RAISE EXCEPTION 'read model % reads %, whose changes cannot be captured', name, src
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Read tables or views over tables; not materialized views, foreign tables or sequences.';
    END LOOP;
    IF tables IS NULL THEN
        RAISE EXCEPTION 'the query of read model % reads no table', name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A read model is kept fresh from the tables it reads.';
    END IF;

    -- How it can be kept: incremental when every relation it reads is a
    -- table with a primary key, and a batch can find every key its changes
    -- touch by running the query over the changed rows (see
    -- pgcqrs.incremental_obstacle). Grouped rows are kept by recomputing
    -- the groups a batch touches.
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM pgcqrs_defs.%I', name) INTO plan;
    IF EXISTS (SELECT 1 FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel WHERE c.relkind = 'v') THEN
        why := 'it reads a view';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel)
                   WHERE NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = d.rel AND x.indisprimary)) THEN
        why := 'a table it reads has no primary key';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel)
                    JOIN pg_index x ON x.indrelid = d.rel AND x.indisprimary
                    JOIN pg_attribute a ON a.attrelid = d.rel AND a.attnum = ANY (x.indkey)
                    JOIN pg_collation co ON co.oid = a.attcollation
                   WHERE NOT co.collisdeterministic) THEN
        why := 'a table it reads is keyed by a column with a nondeterministic collation';
    ELSIF EXISTS (SELECT 1 FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel
                   GROUP BY c.relname HAVING count(*) > 1) THEN
        -- a stand-in replaces a table by its name on the search path
        why := 'it reads two tables of the same name';
    ELSE
        why := pgcqrs.incremental_obstacle(def);
    END IF;
    -- under an outer join, a key computed from a missing row
    IF why IS NULL AND EXISTS (
        SELECT 1 FROM pg_rewrite r, pgcqrs.node_segments(r.ev_action::text, '{TARGETENTRY ') te, unnest(key) k
         WHERE r.ev_class = def AND r.ev_action::text ~ '\{JOINEXPR :jointype [123]'
           AND strpos(te, format(':resname %s ', k)) > 0 AND pgcqrs.nulls_shown(te)) THEN
        why := 'under an outer join, a key column is computed from a row that may be missing (coalesce, CASE, ...)';
    END IF;
    -- a table read twice (a self-join) is stood in for by its changed rows
    -- at every read at once
    IF why IS NULL AND EXISTS (
        SELECT r FROM jsonb_path_query(plan, 'strict $.**."Relation Name"') r
        GROUP BY r HAVING count(*) > 1) THEN
        why := 'it reads a table more than once';
    END IF;
    IF mode = 'full' THEN
        kept := 'full';
        why := 'declared full';
    ELSIF why IS NULL THEN
        kept := 'incremental';
        why := CASE WHEN jsonb_path_exists(plan, 'strict $.**."Node Type" ? (@ == "Aggregate" || @ == "Unique" || @ == "SetOp")')
                    THEN 'grouped rows: the groups a change touches are recomputed'
                    ELSE 'keyed rows: changed keys are re-projected' END;
        IF mode = 'incremental' THEN
            why := 'declared incremental; ' || why;
        END IF;
    ELSIF mode = 'incremental' AND why = 'it reads a table more than once' THEN
        -- Right when each read is tied to the same key (such as a count and
        -- an EXISTS over an order's lines), which auto cannot tell, so only
        -- an explicit declaration gets it.
        kept := 'incremental';
        why := 'declared incremental; ' || why;
    ELSIF mode = 'incremental' THEN
        RAISE EXCEPTION 'read model % cannot be kept incrementally: %', name, why
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Declare it with mode => ''full'' (or ''auto''), or read the tables directly, each with a primary key, without negation, LIMIT, window functions or HAVING.';
    ELSE
        kept := 'full';
        why := 'auto: ' || why;
    END IF;

    -- Capture changes of every table first, then take the snapshot the
    -- fill covers: every write after it is captured.
    FOREACH src IN ARRAY tables LOOP
        PERFORM pgcqrs.capture(src);
    END LOOP;
    taken := pgcqrs.snapshot_without_self(pg_current_snapshot());
    target := format('read.%I', name);
    keylist := pgcqrs.ident_list(key);
    BEGIN
        IF kept = 'full' THEN
            EXECUTE format('CREATE MATERIALIZED VIEW %s AS SELECT * FROM pgcqrs_defs.%I', target, name);
            EXECUTE format('CREATE UNIQUE INDEX %I ON %s (%s) NULLS NOT DISTINCT', name || '_pkey', target, keylist);
        ELSE
            EXECUTE format('CREATE TABLE %s AS SELECT * FROM pgcqrs_defs.%I', target, name);
            -- a key holding a NULL already: the key keys_may_be_null gives
            -- at the first NULL met
            EXECUTE format('SELECT count(*) FROM (SELECT FROM %s WHERE %s LIMIT 1) x', target,
                           (SELECT string_agg(format('%I IS NULL', k), ' OR ') FROM unnest(key) k)) INTO n;
            IF n > 0 THEN
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE NULLS NOT DISTINCT (%s)',
                               target, name || '_pkey', keylist);
            ELSE
                FOREACH col IN ARRAY key LOOP
                    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, col);
                END LOOP;
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (%s)', target, name || '_pkey', keylist);
            END IF;
        END IF;
    EXCEPTION
        WHEN unique_violation THEN
            RAISE EXCEPTION 'the key (%) of read model % is not unique: %', array_to_string(key, ', '), name, SQLERRM
                USING ERRCODE = 'unique_violation',
                      HINT = 'The key must identify one row of the query: add columns to it, or group by it.';
    END;
    EXECUTE format('COMMENT ON %s %s IS %L',
                   CASE kept WHEN 'full' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, target,
                   coalesce(description, format('Read model %s, declared in pgcqrs.read_models.', name)));
    EXECUTE format('GRANT SELECT ON %s TO pgcqrs_reader', target);

    -- Recompute whole, once, writing only the rows that differ.
    keyeq := (SELECT string_agg(format('v.%1$I = t.%1$I', k), ' AND ') FROM unnest(key) k);
    updates := (SELECT string_agg(format('%1$I = EXCLUDED.%1$I', c), ', ')
                  FROM unnest(cols) c WHERE NOT c = ANY(key));
    -- rows that would not change are not rewritten
    on_conflict := CASE WHEN updates IS NULL THEN 'NOTHING'
                        ELSE format('UPDATE SET %s WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text', updates) END;
    INSERT INTO pgcqrs.read_models (name, query, key, mode, schedule, filterable, description,
                                    kept, kept_reason, sources, full_sql)
    VALUES (name, query, key, mode, nullif(trim(schedule), ''), coalesce(filterable, '{}'), description,
            kept, why, tables,
            CASE WHEN kept = 'incremental' THEN format($q$
WITH fresh AS MATERIALIZED (
    SELECT * FROM pgcqrs_defs.%2$I
),
upserted AS (
    INSERT INTO %1$s AS t SELECT * FROM fresh
    ON CONFLICT (%3$s) DO %4$s
    RETURNING 1
),
removed AS (
    DELETE FROM %1$s t WHERE NOT EXISTS (SELECT 1 FROM fresh v WHERE %5$s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows$q$,
                target, name, keylist,
                on_conflict,
                keyeq) END);

    -- Per table read: its stand-in and the statement that applies its changes.
    IF kept = 'incremental' THEN
        SELECT array_agg(DISTINCT n.nspname::text) INTO schemas
          FROM unnest(direct) d(rel) JOIN pg_class c ON c.oid = d.rel JOIN pg_namespace n ON n.oid = c.relnamespace;
        path := pgcqrs.ident_list(schemas);
        PERFORM set_config('search_path', path, true);
        definition := pg_get_viewdef(def);
        PERFORM set_config('search_path', old_path, true);
        n := 0;
        FOREACH src IN ARRAY direct LOOP
            n := n + 1;
            PERFORM pgcqrs.stand_in(name, src, n, path, definition, key);
        END LOOP;
        -- The touched keys, each recomputed on its own (OFFSET 0 keeps the
        -- lookup per key, so a grouped query computes just that group,
        -- through its indexes); rows that did not change are not rewritten.
        UPDATE pgcqrs.read_models m SET apply_sql = format($q$
WITH k AS MATERIALIZED (
    SELECT DISTINCT %1$s FROM pgcqrs.batch_keys
),
fresh AS MATERIALIZED (
    SELECT v.* FROM k CROSS JOIN LATERAL (
        SELECT * FROM pgcqrs_defs.%2$I v WHERE %3$s OFFSET 0) v
),
upserted AS (
    INSERT INTO %4$s AS t
    SELECT * FROM fresh
    ON CONFLICT (%5$s) DO %6$s
    RETURNING 1
),
removed AS (
    DELETE FROM %4$s t
     WHERE (%7$s) IN (SELECT * FROM k)
       AND (%7$s) NOT IN (SELECT %5$s FROM fresh)
    RETURNING 1
)
SELECT (SELECT count(*) FROM k) AS keys,
       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows$q$,
            (SELECT string_agg(format('(key ->> %s)::%s AS %I', x.i - 1, format_type(a.atttypid, a.atttypmod), x.k), ', ' ORDER BY x.i)
               FROM unnest(define_read_model.key) WITH ORDINALITY AS x(k, i)
               JOIN pg_attribute a ON a.attrelid = def AND a.attname = x.k),
            define_read_model.name,
            (SELECT string_agg(format('v.%1$I = k.%1$I', x), ' AND ') FROM unnest(define_read_model.key) x),
            target,
            keylist,
            on_conflict,
            pgcqrs.ident_list(define_read_model.key, 't.'),
            keyeq)
        WHERE m.name = define_read_model.name;
    END IF;

    IF kept = 'incremental' THEN
        PERFORM pgcqrs.null_safe_statements(name);
    END IF;
    INSERT INTO read.read_model_status (view_name, current_as_of, verified_at, cluster_id, backlog)
    VALUES (name, taken, now(), pgcqrs.cluster_id(), 0);
    PERFORM pg_notify('pgcqrs_read_models', name);
END
$_$;

COMMENT ON FUNCTION pgcqrs.define_read_model(name text, query text, key text[], mode text, schedule text, filterable text[], description text) IS 'Declare a read model: read.<name> kept fresh from query, identified by key. See pgcqrs.read_models.';

CREATE FUNCTION pgcqrs.delta_kind(entry text, rte integer, keyed text[], outer_j boolean) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $_$
DECLARE
    e        text := pgcqrs.node_field(entry, ':expr ');
    args     text[];
    zeroed   boolean := false;
    narrowed boolean := false;
    casted   boolean := false;
    fname    text;
    agg_type int;
    arg      text;
    var      text[];
BEGIN
    IF strpos(e, '{AGGREF ') = 0 THEN
        RETURN 'group';
    END IF;
    LOOP
        IF e LIKE '{RELABELTYPE %' THEN
            e := pgcqrs.node_field(e, ':arg ');
        ELSIF e ~ '^\{FUNCEXPR :funcid \d+ :funcresulttype (20|21|23|1700) :funcretset false :funcvariadic false :funcformat [12] ' THEN
            args := pgcqrs.node_items(pgcqrs.node_field(e, ':args '));
            EXIT WHEN cardinality(args) <> 1;
            narrowed := narrowed OR e !~ ':funcresulttype 1700 ';
            casted := true;
            e := args[1];
        ELSIF e LIKE '{COALESCEEXPR %' AND NOT zeroed THEN
            args := pgcqrs.node_items(pgcqrs.node_field(e, ':args '));
            -- coalesce(x, 0): an integer zero, or a numeric without digits,
            -- maybe cast
            WHILE cardinality(args) = 2 AND args[2] ~ '^\{FUNCEXPR .*:funcformat [12] '
                  AND cardinality(pgcqrs.node_items(pgcqrs.node_field(args[2], ':args '))) = 1 LOOP
                args[2] := (pgcqrs.node_items(pgcqrs.node_field(args[2], ':args ')))[1];
            END LOOP;
            IF cardinality(args) <> 2 OR NOT (
                   args[2] ~ '^\{CONST .*:constisnull false .*:constvalue \d+ \[( 0)+ \]\}$'
                OR args[2] ~ '^\{CONST :consttype 1700 .*:constisnull false .*:constvalue 6 \[ 24 0 0 0 -?\d+ -(9[7-9]|1[01]\d|12[0-8]) \]\}$') THEN
                RETURN 'other';
            END IF;
            zeroed := true;
            e := args[1];
        ELSE
            EXIT;
        END IF;
    END LOOP;
    IF e !~ '^\{AGGREF ' OR e !~ ':aggkind n ' OR e !~ ':agglevelsup 0 ' THEN
        RETURN 'other';
    END IF;
    SELECT p.proname, (regexp_match(e, ':aggtype (\d+) '))[1]::int INTO fname, agg_type
      FROM pg_proc p WHERE p.oid = (regexp_match(e, ':aggfnoid (\d+) '))[1]::oid
       AND p.pronamespace = 'pg_catalog'::regnamespace;
    arg := coalesce(pgcqrs.node_field(e, ':args '), '');
    IF outer_j AND NOT (
           (e ~ ':aggstar false' AND pgcqrs.null_when_missing(arg, rte)
            AND NOT EXISTS (SELECT 1 FROM regexp_matches(arg, ':varno (\d+) ', 'g') v WHERE v[1]::int <> rte))
        OR coalesce(pgcqrs.null_when_missing(pgcqrs.node_field(e, ':aggfilter '), rte), false)) THEN
        RETURN 'other';
    END IF;
    IF e !~ ':aggdistinct <> ' THEN
        -- count(DISTINCT x): a count when x is the table's key
        args := pgcqrs.node_items(arg);
        IF fname <> 'count' OR cardinality(args) <> 1 THEN
            RETURN 'other';
        END IF;
        var := regexp_match(args[1], '^\{TARGETENTRY :expr (?:\{RELABELTYPE :arg )?\{VAR :varno (\d+) :varattno (\d+) ');
        RETURN CASE WHEN var[1] || ':' || var[2] = ANY (keyed) THEN 'count' ELSE 'distinct' END;
    END IF;
    RETURN CASE
        WHEN fname = 'count' THEN 'count'
        WHEN fname = 'sum' AND agg_type IN (20, 1700) AND NOT (agg_type = 1700 AND narrowed) THEN
            CASE WHEN zeroed THEN 'sum0' ELSE 'sum' END
        WHEN fname IN ('max', 'min') AND NOT zeroed AND NOT casted THEN fname
        -- moved through the group's sum and count of the same values
        WHEN fname = 'avg' AND agg_type = 1700 AND NOT zeroed AND NOT casted THEN 'avg'
        ELSE 'other'
    END;
END
$_$;

CREATE FUNCTION pgcqrs.delta_kinds(def regclass, source regclass) RETURNS text[]
    LANGUAGE plpgsql STABLE
    AS $_$
DECLARE
    tree    text;
    rtable  text[];
    idx     int;
    joins   int[];
    outer_j boolean;
    keyed   text[];
    pk      int[];
    entry   text;
    kind    text;
    kinds   text[] := '{}';
    entries text[] := '{}';
    sig     text;
    sum_at  int;
    count_at int;
    scale   int;
    avg_i   int;
    comp_i  int;
BEGIN
    SELECT r.ev_action::text INTO tree FROM pg_rewrite r WHERE r.ev_class = def;
    IF tree !~ ':hasAggs true' OR tree !~ ':groupClause \(' OR tree ~ ':groupingSets \('
       OR tree ~ ':distinctClause \(' OR tree ~ ':setOperations \{' OR tree ~ ':cteList \('
       OR tree ~ '\{SUBLINK ' OR tree ~ ':rtekind 1 ' OR tree ~ ':hasTargetSRFs true'
       OR tree ~ '\{JOINEXPR :jointype [23] ' THEN
        RETURN NULL;
    END IF;
    rtable := pgcqrs.node_items(pgcqrs.node_field(tree, ':rtable '));
    SELECT array_agg(i::int) FILTER (WHERE r ~ ':rtekind 2 '),
           min(i) FILTER (WHERE r ~ format(':rtekind 0 :relid %s ', source::oid))
      INTO joins, idx
      FROM unnest(rtable) WITH ORDINALITY AS x(r, i);
    IF (SELECT count(*) FROM unnest(rtable) r WHERE r ~ format(':rtekind 0 :relid %s ', source::oid)) <> 1 THEN
        RETURN NULL;
    END IF;
    outer_j := tree ~ '\{JOINEXPR :jointype 1 ';
    -- under an outer join: the table is the right side of a LEFT JOIN
    -- itself (not of an inner join somewhere after one)
    IF outer_j AND NOT EXISTS (
           SELECT 1 FROM pgcqrs.node_segments(tree, '{JOINEXPR :jointype 1 ') j,
                  LATERAL (SELECT pgcqrs.node_field(j, ':larg ') AS larg) l
            WHERE substr(j, strpos(j, l.larg) + length(l.larg)) ~ format('^ :rarg \{RANGETBLREF :rtindex %s\}', idx)) THEN
        RETURN NULL;
    END IF;
    -- its one-column primary key, and the columns a condition equates to
    -- it: a column = column that is a whole WHERE or ON condition or one of
    -- its top-level ANDs (not inside an OR or a NOT)
    SELECT array_agg(k) INTO pk FROM pg_index x, unnest(x.indkey) k WHERE x.indrelid = source AND x.indisprimary;
    IF cardinality(pk) = 1 THEN
        keyed := ARRAY[format('%s:%s', idx, pk[1])];
        SELECT keyed || coalesce(array_agg(CASE WHEN v[1] = keyed[1] THEN v[2] ELSE v[1] END), '{}') INTO keyed
          FROM (SELECT ARRAY(SELECT m[1] || ':' || m[2] FROM regexp_matches(q, ':varno (\d+) :varattno (\d+) ', 'g') m) AS v
                  FROM pgcqrs.node_segments(tree, ':quals ', true) qs
                 CROSS JOIN LATERAL unnest(CASE WHEN qs ~ '^\{BOOLEXPR :boolop and '
                                                THEN pgcqrs.node_items(pgcqrs.node_field(qs, ':args '))
                                                ELSE ARRAY[qs] END) q
                  JOIN pg_operator o ON o.oid = (regexp_match(q, '^\{OPEXPR :opno (\d+) '))[1]::oid
                 WHERE o.oprname = '='
                   AND NOT EXISTS (SELECT 1 FROM unnest(pgcqrs.node_items(pgcqrs.node_field(q, ':args '))) a
                                    WHERE a !~ '^\{(RELABELTYPE :arg \{)?VAR ')) e
         WHERE cardinality(v) = 2 AND keyed[1] = ANY (v);
    END IF;
    FOREACH entry IN ARRAY pgcqrs.node_items(pgcqrs.node_field(tree, ':targetList ')) LOOP
        -- an entry of the query's own that is junk (not the sort key of an
        -- aggregate's ORDER BY inside it, which V12 skipped the column for)
        CONTINUE WHEN entry ~ ':resjunk true\}$';
        kind := pgcqrs.delta_kind(entry, idx, coalesce(keyed, '{}'), outer_j);
        IF kind = 'other' THEN
            RETURN NULL;
        END IF;
        -- under an outer join, a group must not hang on the changed table
        IF outer_j AND kind = 'group' AND EXISTS (
               SELECT 1 FROM regexp_matches(entry, ':varno (\d+) ', 'g') v
                WHERE v[1]::int = idx OR v[1]::int = ANY (coalesce(joins, '{}'))) THEN
            RETURN NULL;
        END IF;
        kinds := kinds || kind;
        entries := entries || entry;
    END LOOP;
    -- an average moves with a sum and a count of the same values (same
    -- arguments, same FILTER) among the columns, over a column whose values
    -- all have one scale; or it is not kept by delta
    FOR avg_i IN 1 .. cardinality(kinds) LOOP
        CONTINUE WHEN kinds[avg_i] <> 'avg';
        sig := pgcqrs.aggregate_signature(entries[avg_i]);
        scale := pgcqrs.fixed_scale(sig);
        sum_at := NULL;
        count_at := NULL;
        FOR comp_i IN 1 .. cardinality(kinds) LOOP
            IF sum_at IS NULL AND kinds[comp_i] IN ('sum', 'sum0') AND pgcqrs.aggregate_signature(entries[comp_i]) = sig THEN
                sum_at := comp_i;
            ELSIF count_at IS NULL AND kinds[comp_i] = 'count' AND pgcqrs.aggregate_signature(entries[comp_i]) = sig THEN
                count_at := comp_i;
            END IF;
        END LOOP;
        IF sum_at IS NULL OR count_at IS NULL OR scale IS NULL THEN
            RETURN NULL;
        END IF;
        kinds[avg_i] := format('avg:%s:%s:%s', sum_at, count_at, scale);
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM unnest(kinds) k WHERE k NOT IN ('group', 'distinct')) THEN
        RETURN NULL;
    END IF;
    RETURN kinds;
END
$_$;

CREATE FUNCTION pgcqrs.delta_merge(model text, cols text[], kinds text[], distinct_in text[], key text[], outer_j boolean) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $_$
DECLARE
    c       text;
    k       text;
    i       int;
    avg_at  int[];
    sides   text[] := '{}';
    news    text[] := '{}';
    unsure  text[] := ARRAY['d.pgcqrs_np > d.pgcqrs_tp', 'd.pgcqrs_nm > d.pgcqrs_tm', 'pgcqrs_absent AND d.pgcqrs_nm > 0'];
    moved   text[] := '{}';
    keyeq   text := (SELECT string_agg(format('t.%1$I = d.%1$I', x), ' AND ') FROM unnest(key) x);
    updates text := (SELECT string_agg(format('%1$I = EXCLUDED.%1$I', x), ', ')
                       FROM unnest(cols) x WHERE NOT x = ANY (key));
BEGIN
    FOR i IN 1 .. cardinality(cols) LOOP
        c := cols[i];
        k := kinds[i];
        CONTINUE WHEN c = ANY (key);
        IF k LIKE 'avg:%' THEN
            -- the new sum over the new count, as avg divides them, the sum
            -- at the scale of the values (the query's sum has it; the kept
            -- one may have another, from a zero in coalesce or from values
            -- gone); a group whose count or sum the merge cannot settle is
            -- recomputed whole, this column with it
            avg_at := string_to_array(substr(k, 5), ':')::int[];
            news := news || format('CASE WHEN %2$s = 0 THEN NULL ELSE round((%1$s)::numeric, %4$s) / (%2$s)::numeric END AS %3$I',
                                   format(CASE kinds[avg_at[1]]
                                              WHEN 'sum' THEN 'CASE WHEN d.%3$I IS NULL AND t.%1$I IS NULL THEN d.%2$I '
                                                              'ELSE coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0) END'
                                              ELSE 'coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0)' END,
                                          cols[avg_at[1]], 'p:' || cols[avg_at[1]], 'm:' || cols[avg_at[1]]),
                                   format('(coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0))',
                                          cols[avg_at[2]], 'p:' || cols[avg_at[2]], 'm:' || cols[avg_at[2]]),
                                   c, avg_at[3]);
            CONTINUE;
        END IF;
        IF k = 'group' THEN
            -- the last term reads every other table as it is now
            sides := sides || format('(array_agg(%1$I ORDER BY pgcqrs_term DESC) FILTER (WHERE pgcqrs_sign > 0))[1] AS %1$I', c);
            news := news || format('CASE WHEN d.pgcqrs_np > 0 THEN d.%1$I ELSE t.%1$I END AS %1$I', c);
            CONTINUE;
        END IF;
        sides := sides || format('%1$s(%2$I) FILTER (WHERE pgcqrs_sign > 0) AS %3$I, %1$s(%2$I) FILTER (WHERE pgcqrs_sign < 0) AS %4$I',
                                 CASE WHEN k IN ('max', 'min') THEN k ELSE 'sum' END, c, 'p:' || c, 'm:' || c);
        IF distinct_in[i] IS NOT NULL THEN
            unsure := unsure || format('d.%I', 'u:' || c);
            sides := sides || format('count(*) FILTER (WHERE pgcqrs_term = ANY (%L::int[])) > 0 AS %I', distinct_in[i], 'u:' || c);
        END IF;
        IF k IN ('sum', 'sum0') THEN
            -- NaN and the infinities do not cancel out (Infinity - Infinity
            -- is NaN): a group whose sum holds one, gains one or loses one is
            -- recomputed
            unsure := unsure || format('coalesce(t.%1$I::numeric IN (''NaN'', ''Infinity'', ''-Infinity'') '
                                       'OR d.%2$I::numeric IN (''NaN'', ''Infinity'', ''-Infinity'') '
                                       'OR d.%3$I::numeric IN (''NaN'', ''Infinity'', ''-Infinity''), false)',
                                       c, 'p:' || c, 'm:' || c);
        END IF;
        IF k IN ('count', 'sum0') THEN
            news := news || format('coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0) AS %1$I', c, 'p:' || c, 'm:' || c);
            moved := moved || format('(coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0)) <> 0', c, 'p:' || c, 'm:' || c);
        ELSIF k = 'sum' THEN
            news := news || format('CASE WHEN d.%3$I IS NULL AND t.%1$I IS NULL THEN d.%2$I '
                                   'ELSE coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0) END AS %1$I',
                                   c, 'p:' || c, 'm:' || c);
            unsure := unsure || format('(d.%3$I IS NOT NULL AND coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - d.%3$I = 0)',
                                       c, 'p:' || c, 'm:' || c);
            moved := moved || format('coalesce(coalesce(t.%1$I, 0) + coalesce(d.%2$I, 0) - coalesce(d.%3$I, 0) <> 0, false)',
                                     c, 'p:' || c, 'm:' || c);
        ELSE
            -- the old extreme stays unless a removed row held it; a new row
            -- at least as far out settles it either way
            news := news || format('CASE WHEN coalesce(d.%3$I %4$s t.%1$I, d.%3$I IS NULL) THEN %5$s(t.%1$I, d.%2$I) ELSE d.%2$I END AS %1$I',
                                   c, 'p:' || c, 'm:' || c, CASE k WHEN 'max' THEN '<' ELSE '>' END,
                                   CASE k WHEN 'max' THEN 'greatest' ELSE 'least' END);
            unsure := unsure || 'd.pgcqrs_terms > 1'::text
                             || format('NOT coalesce(d.%3$I %4$s t.%1$I, d.%3$I IS NULL) AND NOT coalesce(d.%2$I %5$s d.%3$I, false)',
                                       c, 'p:' || c, 'm:' || c, CASE k WHEN 'max' THEN '<' ELSE '>' END,
                                       CASE k WHEN 'max' THEN '>=' ELSE '<=' END);
        END IF;
    END LOOP;
    IF outer_j THEN
        -- a group missing from the model may have a preserved row the
        -- delta's inner join leaves out
        unsure := unsure || 'pgcqrs_absent'::text;
    END IF;
    -- a condition on the joined table can empty a group under an outer
    -- join too
    unsure := unsure || format('(d.pgcqrs_nm > 0 AND NOT (%s))',
                               coalesce(nullif(array_to_string(moved, ' OR '), ''), 'false'));
    RETURN format($q$
WITH d AS (
    SELECT %1$s, count(*) FILTER (WHERE pgcqrs_sign > 0) AS pgcqrs_np,
           count(*) FILTER (WHERE pgcqrs_sign < 0) AS pgcqrs_nm,
           count(DISTINCT pgcqrs_term) FILTER (WHERE pgcqrs_sign > 0) AS pgcqrs_tp,
           count(DISTINCT pgcqrs_term) FILTER (WHERE pgcqrs_sign < 0) AS pgcqrs_tm,
           count(DISTINCT pgcqrs_term) AS pgcqrs_terms, %2$s
      FROM pgcqrs_delta.%3$I w
     WHERE jsonb_build_array(%4$s) NOT IN (SELECT b.key FROM pgcqrs.batch_keys b)
     GROUP BY %1$s
),
n AS (
    SELECT %5$s, %6$s, (%7$s) AS pgcqrs_unsure
      FROM d LEFT JOIN read.%3$I t ON %8$s
      CROSS JOIN LATERAL (SELECT t.%13$I IS NULL AS pgcqrs_absent) a
),
unsure AS (
    INSERT INTO pgcqrs.batch_keys (key)
    SELECT jsonb_build_array(%9$s) FROM n WHERE pgcqrs_unsure
    RETURNING 1
),
upserted AS (
    INSERT INTO read.%3$I AS t (%10$s)
    SELECT %10$s FROM n WHERE NOT pgcqrs_unsure
    ON CONFLICT (%11$s) DO UPDATE SET %12$s WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text
    RETURNING 1
),
emptied AS (
    DELETE FROM pgcqrs_delta.%3$I
)
SELECT (SELECT count(*) FROM d) AS keys,
       (SELECT count(*) FROM upserted) AS changed_rows,
       (SELECT count(*) FROM unsure) AS unsure$q$,
        pgcqrs.ident_list(key), array_to_string(sides, ', '), model,
        pgcqrs.ident_list(key, 'w.'),
        pgcqrs.ident_list(key, 'd.'), array_to_string(news, ', '), array_to_string(unsure, ' OR '),
        keyeq, pgcqrs.ident_list(key, 'n.'), pgcqrs.ident_list(cols), pgcqrs.ident_list(key), updates, key[1]);
END
$_$;

CREATE FUNCTION pgcqrs.delta_stand_in(model text, source regclass, n integer, path text) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    def     regclass := format('pgcqrs_defs.%I', model)::regclass;
    kinds   text[] := pgcqrs.delta_kinds(def, source);
    s       pgcqrs.read_model_sources;
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    plus    text := format('pgcqrs_p%s_%s', n, model);
    minus   text := format('pgcqrs_m%s_%s', n, model);
    old     text := format('pgcqrs_o%s_%s', n, model);
    firsts  text;
    needed  text[];
    rebuilt text;
    shape   text;
BEGIN
    -- a key column must be a grouped one (the merge groups by the key)
    IF kinds IS NULL OR EXISTS (
           SELECT 1 FROM pgcqrs.read_models m, unnest(m.key) k
             JOIN pg_attribute a ON a.attrelid = def AND a.attname = k
            WHERE m.name = delta_stand_in.model AND kinds[a.attnum] <> 'group') THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM pgcqrs.read_model_sources r WHERE r.model = delta_stand_in.model AND r.source = delta_stand_in.source;
    firsts := format('(SELECT DISTINCT ON (b.key) b.key, b.old FROM pgcqrs.batch b WHERE b.relid = %L::regclass ORDER BY b.key, b.seq) f',
                     pgcqrs.qualified(source));
    needed := s.columns || s.key;
    SELECT string_agg(CASE WHEN a.attname = ANY (needed) THEN format('r.%I', a.attname)
                           ELSE format('NULL::%s AS %I', pgcqrs.plain_type(source, a.attname), a.attname) END,
                      ', ' ORDER BY a.attnum),
           string_agg(format('%I %s', a.attname, pgcqrs.plain_type(source, a.attname)), ', ' ORDER BY a.attnum)
             FILTER (WHERE a.attname = ANY (needed))
      INTO rebuilt, shape
      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('CREATE SCHEMA %I', plus);
    EXECUTE format('CREATE SCHEMA %I', minus);
    EXECUTE format('CREATE SCHEMA %I', old);
    -- every changed row as it is now, and as it was first: a row the same
    -- in both (in the columns the query reads) cancels out
    EXECUTE format('CREATE VIEW %I.%I AS SELECT t.* FROM %s JOIN %s t ON %s',
                   plus, relname, firsts, source, pgcqrs.key_join(source, s.key, 'f'));
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM %s CROSS JOIN LATERAL %s
         WHERE f.old IS NOT NULL$v$,
                   minus, relname, rebuilt, firsts,
                   coalesce(pgcqrs.rebuilt_from(source, needed, 'f.old'),
                            format('jsonb_to_record(f.old) AS r(%s)', shape)));
    -- Two parts without conditions of their own, so that a join reaches
    -- each through its indexes, the condition applied to both.
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_first_rows (LIKE %s)', old, source);
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM (SELECT t.*, false AS pgcqrs_first FROM %s t
                        UNION ALL
                        SELECT f.*, true FROM %I.pgcqrs_first_rows f) u
         WHERE u.pgcqrs_first
            OR NOT EXISTS (SELECT FROM pgcqrs.batch b
                            WHERE b.relid = %L::regclass AND b.key = %s)$v$,
                   old, relname,
                   (SELECT pgcqrs.ident_list(array_agg(a.attname::text ORDER BY a.attnum), 'u.')
                      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped),
                   source, old, pgcqrs.qualified(source), pgcqrs.key_json(source, s.key, 'u.'));
    EXECUTE format('CREATE INDEX ON %I.pgcqrs_first_rows (%s)', old, pgcqrs.ident_list(s.key, ''));
    UPDATE pgcqrs.read_model_sources r
       SET term        = delta_stand_in.n,
           delta_kinds = kinds,
           plus_path   = format('%I, %s', plus, path),
           minus_path  = format('%I, %s', minus, path),
           old_schema  = quote_ident(old),
           -- (the working table's own row type: a column added to the
           -- table later is not in it)
           first_sql   = format('INSERT INTO %1$I.pgcqrs_first_rows SELECT r.* FROM %2$s CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$I.pgcqrs_first_rows, f.old) r WHERE f.old IS NOT NULL',
                                old, firsts)
     WHERE r.model = delta_stand_in.model AND r.source = delta_stand_in.source;
    PERFORM pgcqrs.delta_statements(model);
END
$_$;

CREATE FUNCTION pgcqrs.delta_statements(model text) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    def        regclass := format('pgcqrs_defs.%I', model)::regclass;
    s          pgcqrs.read_model_sources;
    definition text;
    relre      text;
    cols       text[];
    kinds      text[];
    distinct_in text[];
    i          int;
    old_path   text := current_setting('search_path');
BEGIN
    -- The terms' order: a table whose distinct count is not a count comes
    -- first, so the others are new to it (lines of a new order meet no
    -- old order), and its term has no row for them.
    UPDATE pgcqrs.read_model_sources r
       SET term = o.term
      FROM (SELECT x.source, row_number() OVER (ORDER BY 'distinct' = ANY (x.delta_kinds) DESC, x.term) AS term
              FROM pgcqrs.read_model_sources x
             WHERE x.model = delta_statements.model AND x.delta_kinds IS NOT NULL) o
     WHERE r.model = delta_statements.model AND r.source = o.source;
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r
              WHERE r.model = delta_statements.model AND r.delta_kinds IS NOT NULL ORDER BY r.term LOOP
        IF definition IS NULL THEN
            PERFORM set_config('search_path', substr(s.search_path, strpos(s.search_path, ', ') + 2), true);
            definition := regexp_replace(pg_get_viewdef(def), ';\s*$', '');
            PERFORM set_config('search_path', old_path, true);
            kinds := s.delta_kinds;
            distinct_in := array_fill(NULL::text, ARRAY[cardinality(kinds)]);
        END IF;
        relre := regexp_replace(quote_ident((SELECT c.relname FROM pg_class c WHERE c.oid = s.source)),
                                '([\\.^$*+?()\[\]{}|])', '\\\1', 'g');
        definition := regexp_replace(definition, format('\mLEFT (JOIN %s )', relre), '\1', 'g');
        FOR i IN 1 .. cardinality(kinds) LOOP
            IF s.delta_kinds[i] = 'distinct' THEN
                distinct_in[i] := coalesce(rtrim(distinct_in[i], '}') || ',', '{') || s.term || '}';
            END IF;
        END LOOP;
    END LOOP;
    IF definition IS NULL THEN
        RETURN;
    END IF;
    UPDATE pgcqrs.read_model_sources r
       SET plus_sql  = format('INSERT INTO pgcqrs_delta.%I SELECT 1, %s, q.* FROM (%s) q', r.model, r.term, definition),
           minus_sql = format('INSERT INTO pgcqrs_delta.%I SELECT -1, %s, q.* FROM (%s) q', r.model, r.term, definition)
     WHERE r.model = delta_statements.model AND r.delta_kinds IS NOT NULL;
    EXECUTE format('DROP TABLE IF EXISTS pgcqrs_delta.%I', model);
    EXECUTE format('CREATE UNLOGGED TABLE pgcqrs_delta.%I AS SELECT 0 AS pgcqrs_sign, 0 AS pgcqrs_term, * FROM %s WITH NO DATA',
                   model, def);
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO cols
      FROM pg_attribute a WHERE a.attrelid = def AND a.attnum > 0 AND NOT a.attisdropped;
    UPDATE pgcqrs.read_models m
       SET delta_sql = pgcqrs.delta_merge(m.name, cols,
                                          ARRAY(SELECT CASE k WHEN 'distinct' THEN 'count' ELSE k END FROM unnest(kinds) k),
                                          distinct_in, m.key,
                                          (SELECT r.ev_action::text ~ '\{JOINEXPR :jointype 1 ' FROM pg_rewrite r WHERE r.ev_class = def)),
           kept_reason = regexp_replace(m.kept_reason, '(; counts and sums of .* kept by delta)?$',
                                        format('; counts and sums of %s kept by delta',
                                               (SELECT string_agg(r.source::text, ', ' ORDER BY r.term)
                                                  FROM pgcqrs.read_model_sources r
                                                 WHERE r.model = m.name AND r.delta_kinds IS NOT NULL)))
     WHERE m.name = delta_statements.model;
END
$_$;

CREATE FUNCTION pgcqrs.drop_read_model(name text) RETURNS void
    LANGUAGE plpgsql
    SET client_min_messages TO 'warning'
    AS $$
DECLARE
    m   pgcqrs.read_models;
    s   text;
    src regclass;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = drop_read_model.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'read model % is not defined', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM pgcqrs.read_models lists the defined ones.';
    END IF;
    FOR s IN SELECT x FROM pgcqrs.read_model_sources r,
                    unnest(ARRAY[quote_ident(r.delta_schema), r.any_schema, r.old_schema, split_part(r.plus_path, ',', 1), split_part(r.minus_path, ',', 1)]) x
              WHERE r.model = m.name AND x IS NOT NULL LOOP
        EXECUTE format('DROP SCHEMA %s CASCADE', s);
    END LOOP;
    EXECUTE format('DROP TABLE IF EXISTS pgcqrs_delta.%I', m.name);
    DELETE FROM pgcqrs.read_models r WHERE r.name = m.name;
    EXECUTE format('DROP %s read.%I', CASE m.kept WHEN 'full' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, m.name);
    EXECUTE format('DROP VIEW pgcqrs_defs.%I', m.name);
    DELETE FROM read.read_model_status WHERE view_name = m.name;
    FOREACH src IN ARRAY m.sources LOOP
        PERFORM pgcqrs.uncapture(src);
    END LOOP;
    PERFORM pg_notify('pgcqrs_read_models', m.name);
END
$$;

COMMENT ON FUNCTION pgcqrs.drop_read_model(name text) IS 'Remove a declared read model and its relation read.<name>.';

CREATE FUNCTION pgcqrs.fixed_scale(signature text) RETURNS integer
    LANGUAGE plpgsql STABLE STRICT
    AS $$
DECLARE
    var  text[] := regexp_match(signature, '^\(\{TARGETENTRY :expr (?:\{RELABELTYPE :arg )?\{VAR :varno \d+ :varattno \d+ :vartype (\d+) :vartypmod (-?\d+) ');
    typ  oid := var[1]::oid;
    mods int := var[2]::int;
    t    pg_type;
BEGIN
    -- a domain's values have its base type's scale, its own type modifier
    -- first
    LOOP
        SELECT * INTO t FROM pg_type WHERE oid = typ;
        EXIT WHEN NOT FOUND OR t.typtype <> 'd';
        IF mods < 0 THEN
            mods := t.typtypmod;
        END IF;
        typ := t.typbasetype;
    END LOOP;
    RETURN CASE
        WHEN typ IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN 0
        -- (a negative scale rounds to tens, hundreds...: scale 0)
        WHEN typ = 'numeric'::regtype AND mods >= 4 THEN greatest(((((mods - 4) & 2047) # 1024) - 1024), 0)
    END;
END
$$;

CREATE FUNCTION pgcqrs.holds_json(t oid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (SELECT 1 FROM pgcqrs.type_parts(t) p WHERE p = 'json'::regtype)
$$;

CREATE FUNCTION pgcqrs.ident_list(names text[], prefix text DEFAULT ''::text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT coalesce(string_agg(prefix || quote_ident(n), ', ' ORDER BY i), '')
    FROM unnest(names) WITH ORDINALITY AS u(n, i)
$$;

CREATE FUNCTION pgcqrs.incremental_obstacle(def regclass) RETURNS text
    LANGUAGE plpgsql
    AS $_$
DECLARE
    tree  text;
    plan  jsonb;
    quals text;
BEGIN
    SELECT r.ev_action::text INTO tree FROM pg_rewrite r WHERE r.ev_class = def;
    IF tree ~ ':hasWindowFuncs true' THEN
        RETURN 'it uses a window function';
    ELSIF tree ~ ':limit(Count|Offset) \{' THEN
        RETURN 'it has LIMIT or OFFSET';
    ELSIF tree ~ ':hasRecursive true' THEN
        RETURN 'it is recursive';
    ELSIF tree ~ ':havingQual \{' THEN
        RETURN 'it filters groups with HAVING';
    ELSIF tree ~ '\{SETOPERATIONSTMT :op 3' THEN
        RETURN 'it uses EXCEPT';
    END IF;
    SELECT string_agg(q, ' ') INTO quals FROM pgcqrs.node_segments(tree, ':quals ', true) q;
    quals := coalesce(quals, '');
    IF quals ~ ':subLinkType [1345678]' OR (quals ~ ':boolop not' AND quals ~ '\{SUBLINK') THEN
        RETURN 'a condition negates or compares with a subquery (NOT EXISTS, NOT IN, ALL, a scalar subquery)';
    END IF;
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM %s', def) INTO plan;
    IF jsonb_path_exists(plan, 'strict $.**."Join Type" ? (@ like_regex "Anti")') THEN
        RETURN 'it keeps rows that have no match (an anti-join)';
    END IF;
    IF tree ~ '\{JOINEXPR :jointype [123]' AND (
           quals ~ '\{(NULLTEST|BOOLEANTEST|COALESCEEXPR|CASEEXPR|NULLIFEXPR|MINMAXEXPR|DISTINCTEXPR|SUBLINK)|:boolop or'
        OR EXISTS (SELECT 1 FROM regexp_matches(quals, ':(?:op)?funcid (\d+)', 'g') m
                     JOIN pg_proc p ON p.oid = m[1]::oid WHERE NOT p.proisstrict)) THEN
        RETURN 'under an outer join, a condition could hold for a missing row (IS NULL, OR, coalesce, CASE, IS DISTINCT FROM)';
    END IF;
    RETURN NULL;
END
$_$;

CREATE FUNCTION pgcqrs.json_by_cast(t oid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (SELECT 1 FROM pgcqrs.type_parts(t) p JOIN pg_type y ON y.oid = p
                    WHERE p >= 16384
                      AND y.typtype NOT IN ('d', 'c')
                      AND NOT (y.typcategory = 'A' AND y.typelem <> 0)
                      AND EXISTS (SELECT 1 FROM pg_cast c
                                   WHERE c.castsource = p AND c.casttarget = 'json'::regtype
                                     AND c.castmethod = 'f'))
$$;

CREATE FUNCTION pgcqrs.key_join(source regclass, key text[], batch text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT string_agg(format('t.%I = %s', p,
                             CASE WHEN b IN ('jsonb'::regtype, 'json'::regtype)
                                  THEN format('(%s.key -> %s)::%s', batch, i - 1, b)
                                  WHEN y.typtype = 'c' OR (y.typcategory = 'A' AND y.typelem <> 0)
                                  THEN format('(jsonb_populate_record(NULL::%s, jsonb_build_object(%L, %s.key -> %s))).%I',
                                              source, p, batch, i - 1, p)
                                  ELSE format('(%s.key ->> %s)::%s', batch, i - 1, pgcqrs.plain_type(source, p)) END),
                      ' AND ' ORDER BY i)
      FROM unnest(key) WITH ORDINALITY AS x(p, i)
      CROSS JOIN LATERAL pgcqrs.base_type(source, p) b
      JOIN pg_type y ON y.oid = b
$$;

CREATE FUNCTION pgcqrs.key_json(source regclass, key text[], prefix text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT format('jsonb_build_array(%s)', string_agg(pgcqrs.key_part(source, p, prefix), ', ' ORDER BY i))
      FROM unnest(key) WITH ORDINALITY AS x(p, i)
$$;

CREATE FUNCTION pgcqrs.key_part(source regclass, col text, prefix text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
    SELECT CASE WHEN b = 'bpchar'::regtype THEN format('%s%I::text', prefix, col)
                WHEN pgcqrs.renders_alike(source, col) THEN prefix || quote_ident(col)
                -- (justify_interval overflows on intervals of millions of
                -- years: those are left as they are)
                WHEN b = 'interval'::regtype
                THEN format($f$pgcqrs.canonical_json(CASE WHEN %1$s%2$I BETWEEN interval '-100000 years' AND interval '100000 years'
                                                        THEN justify_interval(%1$s%2$I) ELSE %1$s%2$I END)$f$, prefix, col)
                -- (citext compares in the database's collation, whatever
                -- the column's)
                WHEN y.typname = 'citext' THEN format('lower(%s%I::text COLLATE "default")', prefix, col)
                ELSE format('pgcqrs.canonical_json(%s%I)', prefix, col) END
      FROM pgcqrs.base_type(source, col) b JOIN pg_type y ON y.oid = b
$_$;

CREATE FUNCTION pgcqrs.key_stand_in(model text, source regclass, n integer, path text, definition text, key text[]) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    schema  text := format('pgcqrs_d%s_%s', n, model);
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    pk      text[];
    tree    text;
    relre   text;
BEGIN
    SELECT array_agg(a.attname::text ORDER BY k.i) INTO pk
      FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
     WHERE x.indrelid = source AND x.indisprimary;

    -- Read once and on the nullable side of an outer join, its missing
    -- rows show no change of it: joined inner, the stood-in query yields
    -- only the rows its changes are in, not every row of the other side.
    SELECT r.ev_action::text INTO tree
      FROM pg_rewrite r WHERE r.ev_class = format('pgcqrs_defs.%I', model)::regclass;
    IF regexp_count(tree, format(':rtekind 0 :relid %s ', source::oid)) = 1 THEN
        relre := regexp_replace(quote_ident(relname), '([\\.^$*+?()\[\]{}|])', '\\\1', 'g');
        definition := regexp_replace(definition, format('\mLEFT (JOIN %s )', relre), '\1', 'g');
        definition := regexp_replace(definition, format('\mFULL (JOIN %s )', relre), 'RIGHT \1', 'g');
    END IF;

    EXECUTE format('CREATE SCHEMA %I', schema);
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', schema,
                   format('pgcqrs: stand-in for %s while a batch of read model %s finds its keys.', source, model));
    INSERT INTO pgcqrs.read_model_sources (model, source, key, columns, delta_schema, search_path, keys_sql)
    VALUES (model, source, pk, pgcqrs.used_columns(model, source), schema, format('%I, %s', schema, path), format($q$
INSERT INTO pgcqrs.batch_keys (key)
SELECT DISTINCT jsonb_build_array(%1$s) FROM (%2$s) q$q$,
        pgcqrs.ident_list(key, 'q.'),
        regexp_replace(definition, ';\s*$', '')));
    PERFORM pgcqrs.key_view(model, source);
END
$_$;

CREATE FUNCTION pgcqrs.key_view(model text, source regclass) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    s       pgcqrs.read_model_sources;
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    same    text;
    needed  text[];
    current text;
    rebuilt text;
    shape   text;
BEGIN
    SELECT * INTO s FROM pgcqrs.read_model_sources r WHERE r.model = key_view.model AND r.source = key_view.source;
    same := coalesce((SELECT string_agg(pgcqrs.unchanged(source, u, 'b.old', 't'), ' AND ')
                        FROM unnest(s.columns) u), 'true');
    needed := s.columns || s.key;
    -- Both parts' columns as the same (base) types, so that the union is
    -- flattened into the query that reads it.
    SELECT string_agg(CASE WHEN pgcqrs.plain_type(source, a.attname) = format_type(a.atttypid, a.atttypmod)
                           THEN format('t.%I', a.attname)
                           ELSE format('t.%1$I::%2$s AS %1$I', a.attname, pgcqrs.plain_type(source, a.attname)) END,
                      ', ' ORDER BY a.attnum),
           string_agg(CASE WHEN a.attname = ANY (needed) THEN format('r.%I', a.attname)
                           ELSE format('NULL::%s AS %I', pgcqrs.plain_type(source, a.attname), a.attname) END,
                      ', ' ORDER BY a.attnum),
           string_agg(format('%I %s', a.attname, pgcqrs.plain_type(source, a.attname)), ', ' ORDER BY a.attnum)
             FILTER (WHERE a.attname = ANY (needed))
      INTO current, rebuilt, shape
      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped;
    -- (its columns' types change: base types where they were domains)
    EXECUTE format('DROP VIEW IF EXISTS %I.%I', s.delta_schema, relname);
    EXECUTE format($v$
        CREATE VIEW %1$I.%2$I AS
        SELECT %10$s FROM pgcqrs.batch b JOIN %3$s t ON %4$s
         WHERE b.relid = %5$s AND b.op IN ('I', 'U') AND (b.old IS NULL OR NOT (%6$s))
        UNION ALL
        SELECT %7$s FROM pgcqrs.batch b CROSS JOIN LATERAL %8$s
         WHERE b.relid = %5$s AND b.old IS NOT NULL
           AND (b.op = 'D' OR NOT EXISTS (SELECT 1 FROM %3$s t WHERE %9$s AND %6$s))$v$,
        s.delta_schema, relname, source, pgcqrs.key_join(source, s.key, 'b'),
        format('%L::regclass', pgcqrs.qualified(source)), same, rebuilt,
        coalesce(pgcqrs.rebuilt_from(source, needed, 'b.old'),
                 format('jsonb_to_record(b.old) AS r(%s)', shape)),
        -- (probed by the rebuilt row's key, after a join's condition on
        -- the row has applied)
        (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(s.key) p),
        current);
END
$_$;

CREATE FUNCTION pgcqrs.keys_may_be_null(model text, col text) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    m       pgcqrs.read_models;
    target  regclass;
    pkey    name;
    c       text;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = keys_may_be_null.model FOR UPDATE;
    IF NOT FOUND OR m.kept <> 'incremental' OR NOT col = ANY (m.key) THEN
        RETURN false;
    END IF;
    target := format('read.%I', m.name)::regclass;
    SELECT k.conname INTO pkey FROM pg_constraint k WHERE k.conrelid = target AND k.contype = 'p';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- its statements must compare NULL keys first (a statement of
    -- another shape than a declaration writes: the model stays stopped)
    PERFORM pgcqrs.null_safe_statements(m.name);
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', target, pkey);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE NULLS NOT DISTINCT (%s)',
                   target, m.name || '_pkey', pgcqrs.ident_list(m.key));
    FOREACH c IN ARRAY m.key LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL', target, c);
    END LOOP;
    RETURN true;
END
$$;

CREATE FUNCTION pgcqrs.node_field(node text, name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    AS $$
    SELECT s FROM pgcqrs.node_segments(node, name, true) s LIMIT 1
$$;

CREATE FUNCTION pgcqrs.node_items(list text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT
    AS $$
DECLARE
    b     bytea := convert_to(list, 'UTF8');
    len   int := length(convert_to(list, 'UTF8'));
    items text[] := '{}';
    depth int := 0;
    start int;
    i     int := 2;
    ch    int;
BEGIN
    WHILE i < len LOOP
        ch := get_byte(b, i - 1);
        IF ch = 92 THEN
            i := i + 1;
        ELSIF ch IN (123, 40) THEN
            IF depth = 0 THEN
                start := i;
            END IF;
            depth := depth + 1;
        ELSIF ch IN (125, 41) THEN
            depth := depth - 1;
            IF depth = 0 THEN
                items := items || convert_from(substring(b FROM start FOR i - start + 1), 'UTF8');
            END IF;
        END IF;
        i := i + 1;
    END LOOP;
    RETURN items;
END
$$;

CREATE FUNCTION pgcqrs.node_segments(tree text, marker text, value boolean DEFAULT false) RETURNS SETOF text
    LANGUAGE plpgsql IMMUTABLE STRICT
    AS $$
DECLARE
    b     bytea := convert_to(tree, 'UTF8');
    m     bytea := convert_to(marker, 'UTF8');
    len   int := length(convert_to(tree, 'UTF8'));
    pos   int := 1;
    found int;
    i     int;
    depth int;
    ch    int;
BEGIN
    LOOP
        found := position(m IN substring(b FROM pos));
        EXIT WHEN found = 0;
        pos := pos + found - 1 + CASE WHEN value THEN length(m) ELSE 0 END;
        IF pos > len OR get_byte(b, pos - 1) NOT IN (123, 40) THEN  -- { (
            pos := pos + 1;
            CONTINUE;
        END IF;
        i := pos;
        depth := 0;
        LOOP
            ch := get_byte(b, i - 1);
            IF ch = 92 THEN                                          -- \
                i := i + 1;
            ELSIF ch IN (123, 40) THEN
                depth := depth + 1;
            ELSIF ch IN (125, 41) THEN                               -- } )
                depth := depth - 1;
            END IF;
            i := i + 1;
            EXIT WHEN depth = 0 OR i > len;
        END LOOP;
        RETURN NEXT convert_from(substring(b FROM pos FOR i - pos), 'UTF8');
        pos := pos + 1;
    END LOOP;
END
$$;

CREATE FUNCTION pgcqrs.note_averages(model text) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    why    text;
    marker text := '; not by delta, for one: ';
BEGIN
    IF EXISTS (SELECT 1 FROM pgcqrs.read_model_sources r
                WHERE r.model = note_averages.model AND r.delta_kinds IS NOT NULL) THEN
        -- kept by delta: V12's note names the counts and sums; the
        -- averages moved with them are named in it too (it still ends as
        -- V12 writes it, so V12 finds it to write it again)
        why := (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum)
                  FROM pg_attribute a
                  JOIN LATERAL (SELECT r.delta_kinds FROM pgcqrs.read_model_sources r
                                 WHERE r.model = note_averages.model AND r.delta_kinds IS NOT NULL
                                 ORDER BY r.term LIMIT 1) k ON true
                 WHERE a.attrelid = format('pgcqrs_defs.%I', model)::regclass AND a.attnum > 0
                   AND NOT a.attisdropped AND k.delta_kinds[a.attnum] LIKE 'avg:%');
        UPDATE pgcqrs.read_models m
           SET kept_reason = regexp_replace(m.kept_reason, '; counts and sums of .* kept by delta$', '')
                             || format('; counts and sums of %s, and the averages %s from them, kept by delta',
                                       (SELECT string_agg(r.source::text, ', ' ORDER BY r.term)
                                          FROM pgcqrs.read_model_sources r
                                         WHERE r.model = m.name AND r.delta_kinds IS NOT NULL),
                                       why)
         WHERE m.name = note_averages.model AND why IS NOT NULL;
        RETURN;
    END IF;
    why := pgcqrs.average_obstacle(format('pgcqrs_defs.%I', model)::regclass);
    UPDATE pgcqrs.read_models m
       SET kept_reason = CASE WHEN strpos(m.kept_reason, marker) > 0
                              THEN left(m.kept_reason, strpos(m.kept_reason, marker) - 1)
                              ELSE m.kept_reason END || marker || why
     WHERE m.name = note_averages.model AND m.kept = 'incremental' AND why IS NOT NULL;
END
$_$;

CREATE FUNCTION pgcqrs.null_safe_statements(model text) RETURNS void
    LANGUAGE plpgsql
    AS $_$
DECLARE
    m        pgcqrs.read_models;
    target   text;
    keyeq    text;
    nulls_t  text;
    nulls_k  text;
    nulls_v  text;
    nulls_f  text;
    nulls_d  text;
    same_vt  text;
    same_kt  text;
    same_kv  text;
    new_full  text;
    new_apply text;
    new_delta text;
    old       text;
    rows      text;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = null_safe_statements.model FOR UPDATE;
    IF NOT FOUND OR m.kept <> 'incremental' THEN
        RETURN;
    END IF;
    target := format('read.%I', m.name);
    keyeq := (SELECT string_agg(format('v.%1$I = t.%1$I', k), ' AND ') FROM unnest(m.key) k);
    nulls_t := (SELECT string_agg(format('t.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_k := (SELECT string_agg(format('k.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_v := (SELECT string_agg(format('v.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_f := (SELECT string_agg(format('%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    nulls_d := (SELECT string_agg(format('d.%I IS NULL', k), ' OR ') FROM unnest(m.key) k);
    same_vt := (SELECT string_agg(format('v.%1$I IS NOT DISTINCT FROM t.%1$I', k), ' AND ') FROM unnest(m.key) k);
    same_kt := (SELECT string_agg(format('k.%1$I IS NOT DISTINCT FROM t.%1$I', k), ' AND ') FROM unnest(m.key) k);
    same_kv := (SELECT string_agg(format('k.%1$I IS NOT DISTINCT FROM v.%1$I', k), ' AND ') FROM unnest(m.key) k);

    new_full := m.full_sql;
    IF strpos(new_full, 'pgcqrs_null_keys') = 0 THEN
        -- the query's rows as a declaration reads them (fresh), or as the
        -- built-in models' statements do (the query itself)
        rows := CASE WHEN strpos(new_full, 'fresh AS MATERIALIZED') > 0 THEN 'fresh'
                     ELSE format('pgcqrs_defs.%I', m.name) END;
        old := format('DELETE FROM %s t WHERE NOT EXISTS (SELECT 1 FROM %s v WHERE %s)', target, rows, keyeq);
        IF strpos(new_full, old) = 0 THEN
            RAISE EXCEPTION 'the whole recomputation of read model % is not of the shape expected', m.name;
        END IF;
        new_full := replace(new_full, old,
                            format('%s AND (NOT (%s) OR NOT EXISTS (SELECT 1 FROM %s v WHERE %s)) /* pgcqrs_null_keys */',
                                   old, nulls_t, rows, same_vt));
    END IF;

    new_apply := m.apply_sql;
    IF new_apply IS NOT NULL AND strpos(new_apply, 'pgcqrs_null_keys') = 0 THEN
        old := format(E' OFFSET 0) v\n),');
        IF strpos(new_apply, old) = 0 THEN
            RAISE EXCEPTION 'the batch statement of read model % is not of the shape expected', m.name;
        END IF;
        -- the rows of keys holding a NULL, looked up once, only when the
        -- batch has such a key
        new_apply := replace(new_apply, old, format(E' OFFSET 0) v\n    UNION ALL\n'
            '    SELECT v.* FROM pgcqrs_defs.%I v\n'
            '     WHERE (%s) AND EXISTS (SELECT 1 FROM k WHERE %s)\n'
            '       AND EXISTS (SELECT 1 FROM k WHERE %s)\n),',
            m.name, nulls_v, same_kv, nulls_k));
        old := format('AND (%s) NOT IN (SELECT %s FROM fresh)', pgcqrs.ident_list(m.key, 't.'), pgcqrs.ident_list(m.key));
        IF strpos(new_apply, old) = 0 THEN
            RAISE EXCEPTION 'the batch statement of read model % is not of the shape expected', m.name;
        END IF;
        new_apply := replace(new_apply, old,
                             format('AND (%s) NOT IN (SELECT %s FROM fresh WHERE NOT (%s))',
                                    pgcqrs.ident_list(m.key, 't.'), pgcqrs.ident_list(m.key), nulls_f));
        old := E'    RETURNING 1\n)\nSELECT (SELECT count(*) FROM k) AS keys,\n'
               '       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed) AS changed_rows';
        IF strpos(new_apply, old) = 0 THEN
            RAISE EXCEPTION 'the batch statement of read model % is not of the shape expected', m.name;
        END IF;
        new_apply := replace(new_apply, old, format(E'    RETURNING 1\n),\n'
            'pgcqrs_null_keys AS (\n'
            '    DELETE FROM %s t\n'
            '     WHERE (%s) AND EXISTS (SELECT 1 FROM k WHERE %s)\n'
            '       AND NOT EXISTS (SELECT 1 FROM fresh v WHERE %s)\n'
            '       AND EXISTS (SELECT 1 FROM k WHERE %s)\n'
            '    RETURNING 1\n'
            ')\n'
            'SELECT (SELECT count(*) FROM k) AS keys,\n'
            '       (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed)'
            ' + (SELECT count(*) FROM pgcqrs_null_keys) AS changed_rows',
            target, nulls_t, same_kt, same_vt, nulls_k));
    END IF;

    new_delta := m.delta_sql;
    IF new_delta IS NOT NULL AND strpos(new_delta, 'pgcqrs_null_keys') = 0 THEN
        IF strpos(new_delta, ') AS pgcqrs_unsure') = 0 THEN
            RAISE EXCEPTION 'the delta statement of read model % is not of the shape expected', m.name;
        END IF;
        -- a group whose key holds a NULL finds no row by =: recomputed
        new_delta := replace(new_delta, ') AS pgcqrs_unsure',
                             format(' OR %s /* pgcqrs_null_keys */) AS pgcqrs_unsure', nulls_d));
    END IF;

    UPDATE pgcqrs.read_models r
       SET full_sql = new_full, apply_sql = new_apply, delta_sql = new_delta
     WHERE r.name = m.name
       AND (r.full_sql, r.apply_sql, r.delta_sql) IS DISTINCT FROM (new_full, new_apply, new_delta);
END
$_$;

CREATE FUNCTION pgcqrs.null_when_missing(expr text, rte integer) RETURNS boolean
    LANGUAGE sql STABLE STRICT
    AS $$
    SELECT expr ~ format(':varno %s :', rte)
       AND expr !~ '\{(COALESCEEXPR|CASEEXPR|NULLIFEXPR|MINMAXEXPR|NULLTEST|BOOLEANTEST|DISTINCTEXPR|SUBLINK|SCALARARRAYOPEXPR|ROWEXPR|ARRAYEXPR|ARRAYCOERCEEXPR|XMLEXPR|CONVERTROWTYPEEXPR|FIELDSELECT|FIELDSTORE|ROWCOMPAREEXPR|SUBSCRIPTINGREF) '
       AND expr !~ ':boolop (or|not)'
       AND NOT EXISTS (SELECT 1 FROM regexp_matches(expr, ':(?:op)?funcid (\d+)', 'g') f
                         JOIN pg_proc p ON p.oid = f[1]::oid WHERE NOT p.proisstrict)
$$;

CREATE FUNCTION pgcqrs.nulls_shown(expr text) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT
    AS $$
DECLARE
    agg text;
BEGIN
    FOR agg IN SELECT pgcqrs.node_segments(expr, '{AGGREF ') LOOP
        expr := replace(expr, agg, '');
    END LOOP;
    RETURN EXISTS (
        SELECT 1
          FROM unnest(ARRAY['{COALESCEEXPR ', '{CASEEXPR ', '{NULLIFEXPR ', '{MINMAXEXPR ', '{NULLTEST ',
                            '{BOOLEANTEST ', '{DISTINCTEXPR ', '{BOOLEXPR ', '{SUBLINK ']) m,
               pgcqrs.node_segments(expr, m) seg
         WHERE seg LIKE '%{VAR %')
        OR (expr LIKE '%{VAR %' AND EXISTS (
               SELECT 1 FROM regexp_matches(expr, ':(?:op)?funcid (\d+)', 'g') f
                 JOIN pg_proc p ON p.oid = f[1]::oid WHERE NOT p.proisstrict));
END
$$;

CREATE FUNCTION pgcqrs.old_image(source regclass) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT 'to_jsonb(pgcqrs_o)'
           || coalesce(string_agg(format(' OPERATOR(pg_catalog.||) jsonb_build_object(%L, pgcqrs_o.%I::pg_catalog.text)',
                                         a.attname, a.attname), '' ORDER BY a.attnum), '')
      FROM pg_attribute a
     WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
       AND pgcqrs.json_by_cast(a.atttypid)
$$;

CREATE FUNCTION pgcqrs.plain_type(source regclass, col text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    WITH RECURSIVE t(oid, mod) AS (
        SELECT a.atttypid, a.atttypmod FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        SELECT y.typbasetype, y.typtypmod FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype = 'd'
    )
    SELECT format_type(t.oid, t.mod)
           || coalesce((SELECT format(' COLLATE %I.%I', n.nspname, c.collname)
                          FROM pg_attribute a
                          JOIN pg_collation c ON c.oid = a.attcollation
                          JOIN pg_namespace n ON n.oid = c.collnamespace
                         WHERE a.attrelid = source AND a.attname = col
                           AND a.attcollation <> 0 AND a.attcollation <> y.typcollation), '')
      FROM t JOIN pg_type y ON y.oid = t.oid AND y.typtype <> 'd'
$$;

CREATE FUNCTION pgcqrs.qualified(rel regclass) RETURNS text
    LANGUAGE sql STABLE STRICT
    AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel
$$;

COMMENT ON FUNCTION pgcqrs.qualified(rel regclass) IS 'A table''s name with its schema, quoted as needed: the same table on any search path.';

CREATE FUNCTION pgcqrs.rebuilt_from(source regclass, needed text[], old text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN bool_or(y.typtype = 'c' OR (y.typcategory = 'A' AND y.typelem <> 0)
                             -- a cast from text that is a function of
                             -- its own, not the input function: regclass
                             -- looks a name up ('-' and an oid fail)
                             OR EXISTS (SELECT 1 FROM pg_cast c
                                         WHERE c.castsource = 'text'::regtype AND c.casttarget = b
                                           AND c.castmethod = 'f'
                                           AND b NOT IN ('"char"'::regtype, 'name'::regtype, 'xml'::regtype)))
                THEN NULL
                ELSE format('(SELECT %s) AS r',
                            string_agg(CASE WHEN b IN ('jsonb'::regtype, 'json'::regtype)
                                            THEN format('nullif(%s -> %L, ''null'')::%s AS %I', old, a.attname, b, a.attname)
                                            ELSE format('(%s ->> %L)::%s AS %I', old, a.attname,
                                                        pgcqrs.plain_type(source, a.attname), a.attname) END,
                                       ', ' ORDER BY a.attnum)) END
      FROM pg_attribute a
      CROSS JOIN LATERAL pgcqrs.base_type(source, a.attname) b
      JOIN pg_type y ON y.oid = b
     WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY (needed)
$$;

CREATE FUNCTION pgcqrs.renders_alike(source regclass, col text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    WITH RECURSIVE t(oid) AS (
        SELECT a.atttypid FROM pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        -- through domains, and from an array to its elements
        SELECT CASE WHEN y.typtype = 'd' THEN y.typbasetype ELSE y.typelem END
          FROM t JOIN pg_type y ON y.oid = t.oid
         WHERE y.typtype = 'd' OR (y.typcategory = 'A' AND y.typelem <> 0)
    )
    SELECT coalesce(bool_or(t.oid = ANY (ARRAY['text', 'varchar', 'bpchar', 'name', 'int2', 'int4', 'int8', 'oid',
                                               'numeric', 'uuid', 'bool', 'date', 'timestamp', 'jsonb', 'json']::regtype[])
                            OR y.typtype = 'e'), false)
      FROM t JOIN pg_type y ON y.oid = t.oid
     WHERE y.typtype <> 'd' AND NOT (y.typcategory = 'A' AND y.typelem <> 0)
$$;

CREATE FUNCTION pgcqrs.snapshot_advance(covered pg_snapshot, now pg_snapshot, upto xid8) RETURNS pg_snapshot
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    WITH bound AS (
        SELECT least(coalesce(upto, pg_snapshot_xmax(now)), pg_snapshot_xmax(now)) AS u
    ),
    running AS (
        -- below the bound: what `now` had not seen
        SELECT t FROM pg_snapshot_xip(now) t, bound WHERE t < bound.u
        UNION
        -- at or above it: what `covered` had not seen
        SELECT t FROM pg_snapshot_xip(covered) t, bound WHERE t >= bound.u
    ),
    top AS (
        SELECT greatest(pg_snapshot_xmax(covered), bound.u) AS xmax FROM bound
    )
    SELECT (coalesce((SELECT min(t) FROM running), top.xmax)::text || ':' ||
            top.xmax::text || ':' ||
            coalesce((SELECT string_agg(t::text, ',' ORDER BY t) FROM running), ''))::pg_snapshot
    FROM top
$$;

COMMENT ON FUNCTION pgcqrs.snapshot_advance(covered pg_snapshot, now pg_snapshot, upto xid8) IS 'Coverage after a batch: what the first snapshot covers plus every transaction below upto that the second sees.';

CREATE FUNCTION pgcqrs.snapshot_trusted(covers pg_snapshot, taken_on bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT taken_on IS NOT DISTINCT FROM pgcqrs.cluster_id()
       AND pg_snapshot_xmax(covers) <= pg_snapshot_xmax(pg_current_snapshot())
$$;

CREATE FUNCTION pgcqrs.snapshot_without_self(snap pg_snapshot) RETURNS pg_snapshot
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN me IS NULL THEN snap ELSE
        (least(pg_snapshot_xmin(snap), me)::text || ':' ||
         greatest(pg_snapshot_xmax(snap), (me::text::bigint + 1)::text::xid8)::text || ':' ||
         (SELECT string_agg(x::text, ',' ORDER BY x)
            FROM (SELECT pg_snapshot_xip(snap) AS x UNION SELECT me) xs))::pg_snapshot END
    FROM (SELECT pg_current_xact_id_if_assigned() AS me) m
$$;

CREATE FUNCTION pgcqrs.sources_captured_whole() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    gap      record;
    unsteady text;
BEGIN
    SELECT s AS source, pgcqrs.capture_gap(s) AS why INTO gap
      FROM unnest(NEW.sources) s
     WHERE pgcqrs.capture_gap(s) IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'read model % reads %, which %', NEW.name, gap.source, gap.why
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Changes are captured on the table a statement names: writes addressed to a partition, or to a parent that reaches its children, would never reach the model.',
                  HINT = 'Declare the model over tables without partitions or inheritance.';
    END IF;
    IF TG_OP = 'INSERT' THEN
        unsteady := pgcqrs.unsteady_calls(NEW.name);
        IF unsteady IS NOT NULL THEN
            RAISE WARNING 'read model % calls %, whose answer changes while the tables it reads do not: it is refreshed only when those change', NEW.name, unsteady
                USING HINT = 'Keep such calls out of the query (filter by time when reading the model), or make the value a column of a table it reads.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION pgcqrs.stand_in(model text, source regclass, n integer, path text, definition text, key text[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pgcqrs.key_stand_in(model, source, n, path, definition, key);
    PERFORM pgcqrs.any_stand_in(model, source, n);
    PERFORM pgcqrs.delta_stand_in(model, source, n, path);
    PERFORM pgcqrs.note_averages(model);
END
$$;

CREATE FUNCTION pgcqrs.stand_ins_again(model text) RETURNS void
    LANGUAGE plpgsql
    SET client_min_messages TO 'warning'
    AS $_$
DECLARE
    m          pgcqrs.read_models;
    def        regclass := format('pgcqrs_defs.%I', model)::regclass;
    old_path   text := current_setting('search_path');
    path       text;
    definition text;
    sources    regclass[];
    terms      int[];
    s          text;
    i          int;
BEGIN
    SELECT * INTO m FROM pgcqrs.read_models r WHERE r.name = stand_ins_again.model FOR UPDATE;
    IF NOT FOUND OR m.kept <> 'incremental' THEN
        RETURN;
    END IF;
    SELECT array_agg(r.source ORDER BY substring(r.delta_schema FROM '^pgcqrs_d(\d+)_')::int),
           array_agg(substring(r.delta_schema FROM '^pgcqrs_d(\d+)_')::int
                     ORDER BY substring(r.delta_schema FROM '^pgcqrs_d(\d+)_')::int),
           min(substr(r.search_path, strpos(r.search_path, ', ') + 2))
      INTO sources, terms, path
      FROM pgcqrs.read_model_sources r WHERE r.model = m.name;
    IF sources IS NULL THEN
        RETURN;
    END IF;
    FOR s IN SELECT x FROM pgcqrs.read_model_sources r,
                    unnest(ARRAY[quote_ident(r.delta_schema), r.any_schema, r.old_schema,
                                 split_part(r.plus_path, ',', 1), split_part(r.minus_path, ',', 1)]) x
              WHERE r.model = m.name AND x IS NOT NULL LOOP
        EXECUTE format('DROP SCHEMA %s CASCADE', s);
    END LOOP;
    EXECUTE format('DROP TABLE IF EXISTS pgcqrs_delta.%I', m.name);
    DELETE FROM pgcqrs.read_model_sources r WHERE r.model = m.name;
    UPDATE pgcqrs.read_models r
       SET delta_sql = NULL,
           kept_reason = regexp_replace(r.kept_reason, '; counts and sums of .* kept by delta$', ''),
           defined_at = clock_timestamp()
     WHERE r.name = m.name;
    PERFORM set_config('search_path', path, true);
    definition := pg_get_viewdef(def);
    PERFORM set_config('search_path', old_path, true);
    FOR i IN 1 .. cardinality(sources) LOOP
        PERFORM pgcqrs.stand_in(m.name, sources[i], terms[i], path, definition, m.key);
    END LOOP;
    PERFORM pgcqrs.null_safe_statements(m.name);
    -- a mark no cluster has: recomputed whole, once
    UPDATE read.read_model_status SET cluster_id = 0 WHERE view_name = m.name;
    PERFORM pg_notify('pgcqrs_read_models', m.name);
END
$_$;

CREATE FUNCTION pgcqrs.type_parts(t oid) RETURNS SETOF oid
    LANGUAGE sql STABLE
    AS $$
    WITH RECURSIVE x(oid) AS (
        SELECT t
        UNION
        SELECT s.u
          FROM x JOIN pg_type y ON y.oid = x.oid
         CROSS JOIN LATERAL (SELECT y.typbasetype WHERE y.typtype = 'd'
                             UNION ALL
                             SELECT y.typelem WHERE y.typcategory = 'A' AND y.typelem <> 0
                             UNION ALL
                             SELECT a.atttypid FROM pg_attribute a
                              WHERE y.typtype = 'c' AND a.attrelid = y.typrelid
                                AND a.attnum > 0 AND NOT a.attisdropped) s(u)
    )
    SELECT x.oid FROM x
$$;

CREATE FUNCTION pgcqrs.uncapture(source regclass) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    fn regprocedure;
BEGIN
    IF EXISTS (SELECT 1 FROM pgcqrs.read_models WHERE source = ANY(sources)) THEN
        RETURN;
    END IF;
    FOR fn IN SELECT t.tgfoid::regprocedure FROM pg_trigger t
               WHERE t.tgrelid = source AND t.tgname = 'pgcqrs_capture_insert' LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', fn);
    END LOOP;
    DELETE FROM pgcqrs.changes WHERE relid = source::oid;
END
$$;

CREATE FUNCTION pgcqrs.unchanged(source regclass, col text, old text, cur text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
    SELECT CASE WHEN pgcqrs.holds_json((SELECT a.atttypid FROM pg_attribute a
                                         WHERE a.attrelid = source AND a.attname = col AND NOT a.attisdropped))
                THEN 'false'
                WHEN pgcqrs.base_type(source, col) = 'jsonb'::regtype
                THEN format('(%1$s -> %2$L)::text IS NOT DISTINCT FROM to_jsonb(%3$s.%4$I)::text AND (%1$s -> %2$L) IS DISTINCT FROM ''null''::jsonb',
                            old, col, cur, col)
                WHEN pgcqrs.renders_alike(source, col)
                THEN format('(%s -> %L)::text IS NOT DISTINCT FROM to_jsonb(%s.%I)::text', old, col, cur, col)
                WHEN pgcqrs.base_type(source, col) IN ('float4'::regtype, 'float8'::regtype)
                THEN format('(%1$s ->> %2$L)::%3$s IS NOT DISTINCT FROM %4$s.%5$I AND %4$s.%5$I IS DISTINCT FROM 0',
                            old, col, pgcqrs.plain_type(source, col), cur, col)
                WHEN pgcqrs.base_type(source, col) = 'timestamptz'::regtype
                THEN format('(%s ->> %L)::%s IS NOT DISTINCT FROM %s.%I', old, col, pgcqrs.plain_type(source, col), cur, col)
                ELSE format('(%s -> %L)::text IS NOT DISTINCT FROM pgcqrs.canonical_json(%s.%I)::text', old, col, cur, col) END
$_$;

CREATE FUNCTION pgcqrs.unsteady_calls(model text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT string_agg(DISTINCT called, ', ')
      FROM (SELECT p.oid::regprocedure::text AS called
              FROM pg_rewrite r
             CROSS JOIN LATERAL regexp_matches(r.ev_action::text, ':(funcid|opno) (\d+)', 'g') x
              JOIN pg_proc p ON p.oid = CASE x[1] WHEN 'funcid' THEN x[2]::oid
                                        ELSE (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = x[2]::oid) END
             WHERE r.ev_class = to_regclass(format('pgcqrs_defs.%I', model))
               AND (p.provolatile = 'v'
                    OR p.oid IN ('pg_catalog.now()'::regprocedure, 'pg_catalog.statement_timestamp()'::regprocedure,
                                 'pg_catalog.transaction_timestamp()'::regprocedure)
                    OR (p.provolatile = 's' AND p.pronamespace <> 'pg_catalog'::regnamespace))
            UNION ALL
            SELECT 'CURRENT_DATE, CURRENT_TIMESTAMP, CURRENT_USER or the like'
              FROM pg_rewrite r
             WHERE r.ev_class = to_regclass(format('pgcqrs_defs.%I', model))
               AND r.ev_action::text LIKE '%{SQLVALUEFUNCTION %') calls
$$;

CREATE FUNCTION pgcqrs.used_columns(model text, source regclass) RETURNS text[]
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE WHEN r.ev_action::text ~ ':varattno 0 '
                THEN (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                       WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped)
                ELSE (SELECT coalesce(array_agg(DISTINCT a.attname::text), '{}')
                        FROM pg_depend d
                        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       WHERE d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refobjid = source AND d.refobjsubid > 0) END
      FROM pg_rewrite r
     WHERE r.ev_class = format('pgcqrs_defs.%I', model)::regclass
$$;

CREATE FUNCTION write.bump_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'an id never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'id_immutable';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE FUNCTION write.correlation_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT nullif(current_setting('pgcqrs.correlation_id', true), '')
$$;

CREATE FUNCTION write.order_created_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    lines      jsonb;
    line_total numeric;
BEGIN
    SELECT jsonb_agg(jsonb_build_object(
               'line_no', i.line_no, 'product_id', i.product_id,
               'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.line_no),
           sum(i.quantity * i.unit_price)
      INTO lines, line_total
      FROM write.order_items i
     WHERE i.order_id = NEW.id;

    IF lines IS NULL THEN
        RAISE EXCEPTION 'order % has no items', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_have_items';
    END IF;
    IF line_total <> NEW.total THEN
        RAISE EXCEPTION 'order % total % is not the sum of its lines %', NEW.id, NEW.total, line_total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_total_matches_items';
    END IF;

    INSERT INTO write.order_events (order_id, order_version, event_type, payload, correlation_id)
    VALUES (NEW.id, NEW.version, 'OrderCreated',
            jsonb_build_object('customer_id', NEW.customer_id, 'total', NEW.total, 'items', lines),
            write.correlation_id());
    RETURN NULL;
END
$$;

CREATE FUNCTION write.order_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_events_append_only';
END
$$;

CREATE FUNCTION write.order_items_immutable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'order items are written with their order and never changed'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_items_immutable';
END
$$;

CREATE FUNCTION write.order_items_only_with_new_order() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    stray text;
BEGIN
    SELECT n.order_id INTO stray
      FROM new_items n
     WHERE EXISTS (SELECT 1 FROM write.order_events e WHERE e.order_id = n.order_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'items can only be added to order % in the transaction that creates it', stray
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_items_immutable';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION write.order_status_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO write.order_events (order_id, order_version, event_type, payload, correlation_id)
    VALUES (NEW.id, NEW.version,
            CASE WHEN NEW.status = 'cancelled' THEN 'OrderCancelled' ELSE 'OrderStatusChanged' END,
            jsonb_strip_nulls(jsonb_build_object('from', OLD.status, 'to', NEW.status, 'reason', NEW.cancel_reason)),
            write.correlation_id());
    RETURN NULL;
END
$$;

CREATE FUNCTION write.order_transition_allowed(from_status text, to_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT (from_status, to_status) IN (
        ('pending',   'confirmed'), ('pending',   'cancelled'),
        ('confirmed', 'shipped'),   ('confirmed', 'cancelled'),
        ('shipped',   'delivered'), ('shipped',   'cancelled'))
$$;

CREATE FUNCTION write.orders_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' THEN
            RAISE EXCEPTION 'a new order must be pending, not %', NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_status_transition';
        END IF;
        NEW.version := 1;
        RETURN NEW;
    END IF;

    IF NEW.id <> OLD.id OR NEW.customer_id <> OLD.customer_id
       OR NEW.created_at <> OLD.created_at OR NEW.total <> OLD.total THEN
        RAISE EXCEPTION 'an order''s id, customer, total and creation time never change'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_immutable_facts';
    END IF;
    -- Every version of an order is one event in the log, so an update that
    -- does not move the status is refused rather than silently versioned.
    IF NEW.status = OLD.status THEN
        RAISE EXCEPTION 'order % is already %', OLD.id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_status_transition';
    END IF;
    IF NOT write.order_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'order % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_status_transition';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE UNLOGGED TABLE pgcqrs.batch (
    relid oid NOT NULL,
    op "char" NOT NULL,
    key jsonb,
    old jsonb,
    seq bigint
)
WITH (autovacuum_enabled='true');

COMMENT ON TABLE pgcqrs.batch IS 'Working table of a batch; always empty outside one.';

CREATE UNLOGGED TABLE pgcqrs.batch_keys (
    key jsonb NOT NULL
);

COMMENT ON TABLE pgcqrs.batch_keys IS 'Working table of a batch; always empty outside one.';

CREATE TABLE pgcqrs.changes (
    txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    seq bigint NOT NULL,
    relid oid NOT NULL,
    op "char" NOT NULL,
    key jsonb,
    old jsonb,
    at timestamp with time zone DEFAULT statement_timestamp() NOT NULL
);

COMMENT ON TABLE pgcqrs.changes IS 'Captured changes of every table a read model reads, until every model reading it has applied them.';

CREATE TABLE pgcqrs.read_models (
    name text NOT NULL,
    query text NOT NULL,
    key text[] NOT NULL,
    mode text DEFAULT 'auto'::text NOT NULL,
    schedule text,
    filterable text[] DEFAULT '{}'::text[] NOT NULL,
    description text,
    defined_at timestamp with time zone DEFAULT now() NOT NULL,
    defined_by text DEFAULT CURRENT_USER NOT NULL,
    kept text DEFAULT 'full'::text NOT NULL,
    kept_reason text,
    sources regclass[] DEFAULT '{}'::regclass[] NOT NULL,
    timeout_ms integer DEFAULT 120000 NOT NULL,
    full_sql text,
    apply_sql text,
    delta_sql text,
    CONSTRAINT read_models_kept_check CHECK ((kept = ANY (ARRAY['full'::text, 'incremental'::text]))),
    CONSTRAINT read_models_mode_check CHECK ((mode = ANY (ARRAY['full'::text, 'incremental'::text, 'auto'::text]))),
    CONSTRAINT read_models_name_check CHECK ((name ~ '^[a-z][a-z0-9_]{0,62}$'::text))
);

COMMENT ON TABLE pgcqrs.read_models IS 'Declared read models: each is kept fresh as read.<name> by the refresher. Change with pgcqrs.define_read_model and pgcqrs.drop_read_model.';

COMMENT ON COLUMN pgcqrs.read_models.name IS 'The read model: the relation read.<name>.';

COMMENT ON COLUMN pgcqrs.read_models.query IS 'The SELECT that defines the rows, as declared.';

COMMENT ON COLUMN pgcqrs.read_models.key IS 'Columns that identify a row (a unique index on read.<name>).';

COMMENT ON COLUMN pgcqrs.read_models.mode IS 'full (recomputed whole), incremental (changed keys re-projected) or auto.';

COMMENT ON COLUMN pgcqrs.read_models.schedule IS 'Cron schedule with seconds; empty: refreshed as soon as a source changes.';

COMMENT ON COLUMN pgcqrs.read_models.filterable IS 'Columns the HTTP API may filter and order on.';

COMMENT ON COLUMN pgcqrs.read_models.description IS 'What the read model is, for people.';

COMMENT ON COLUMN pgcqrs.read_models.kept IS 'How the model is kept: incremental (a table, changed keys re-projected in batches) or full (a materialized view refreshed whole).';

COMMENT ON COLUMN pgcqrs.read_models.kept_reason IS 'Why a model declared auto is kept this way.';

COMMENT ON COLUMN pgcqrs.read_models.sources IS 'The tables the query reads, found from the query; their changes are captured.';

COMMENT ON COLUMN pgcqrs.read_models.timeout_ms IS 'Statement timeout of one refresh or batch.';

COMMENT ON COLUMN pgcqrs.read_models.full_sql IS 'Generated: recompute the model whole, writing only the rows that differ.';

COMMENT ON COLUMN pgcqrs.read_models.apply_sql IS 'Generated: re-project the keys a batch touched, writing only the rows that differ.';

COMMENT ON COLUMN pgcqrs.read_models.delta_sql IS 'Generated: merge the delta in the model''s working table into it, sending the groups it cannot settle to pgcqrs.batch_keys.';

CREATE TABLE read.read_model_status (
    view_name text NOT NULL,
    current_as_of pg_snapshot NOT NULL,
    verified_at timestamp with time zone NOT NULL,
    last_refresh_at timestamp with time zone,
    last_duration_ms double precision,
    rows bigint,
    pending_since timestamp with time zone,
    last_error text,
    last_error_at timestamp with time zone,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    cluster_id bigint,
    resume_txid xid8,
    resume_src smallint,
    resume_seq bigint,
    resume_key text,
    backlog bigint,
    exact boolean DEFAULT false NOT NULL
);

COMMENT ON TABLE read.read_model_status IS 'Freshness of each read model: how current it is, its last refresh, and its last error.';

COMMENT ON COLUMN read.read_model_status.view_name IS 'The read model (a materialized view in this schema).';

COMMENT ON COLUMN read.read_model_status.current_as_of IS 'Snapshot of the write tables the view is known to reflect.';

COMMENT ON COLUMN read.read_model_status.verified_at IS 'When the view was last known to be current (its data is as of this time).';

COMMENT ON COLUMN read.read_model_status.last_refresh_at IS 'When the view was last refreshed.';

COMMENT ON COLUMN read.read_model_status.last_duration_ms IS 'How long the last refresh took, in milliseconds.';

COMMENT ON COLUMN read.read_model_status.rows IS 'Rows in the view after its last refresh.';

COMMENT ON COLUMN read.read_model_status.pending_since IS 'Time of the oldest change not yet in the view; empty when the view is current.';

COMMENT ON COLUMN read.read_model_status.last_error IS 'Error of the last failed refresh, if the latest attempt failed.';

COMMENT ON COLUMN read.read_model_status.last_error_at IS 'When the last refresh failed.';

COMMENT ON COLUMN read.read_model_status.consecutive_failures IS 'Failed refreshes since the last success.';

COMMENT ON COLUMN read.read_model_status.cluster_id IS 'System identifier of the cluster current_as_of was taken on: a snapshot from another cluster (after a restore) is not trusted.';

COMMENT ON COLUMN read.read_model_status.resume_txid IS 'A transaction the last batch applied only in part (it is not in current_as_of).';

COMMENT ON COLUMN read.read_model_status.resume_src IS 'With resume_txid: the change source (0 orders, 1 catalog) of the last change applied.';

COMMENT ON COLUMN read.read_model_status.resume_seq IS 'With resume_txid: the sequence number of the last change applied.';

COMMENT ON COLUMN read.read_model_status.resume_key IS 'With resume_txid: the key (order) of the last change applied.';

COMMENT ON COLUMN read.read_model_status.backlog IS 'Changes not yet applied when the last batch or refresh finished.';

COMMENT ON COLUMN read.read_model_status.exact IS 'The model equals its query as of current_as_of, neither behind nor ahead (a delta batch needs that).';

CREATE VIEW pgcqrs.caught_up AS
 SELECT m.view_name AS model,
    o.view_name AS other,
    (NOT (EXISTS ( SELECT 1
           FROM pgcqrs.changes c
          WHERE ((c.relid = ANY ((r.sources)::oid[])) AND (c.txid >= pg_snapshot_xmin(m.current_as_of)) AND (c.txid < pg_snapshot_xmax(o.current_as_of)) AND pg_visible_in_snapshot(c.txid, o.current_as_of) AND (NOT pg_visible_in_snapshot(c.txid, m.current_as_of)))))) AS caught_up
   FROM ((read.read_model_status m
     JOIN pgcqrs.read_models r ON ((r.name = m.view_name)))
     CROSS JOIN read.read_model_status o);

COMMENT ON VIEW pgcqrs.caught_up IS 'Whether read model `model` shows every change to its tables that read model `other` shows.';

ALTER TABLE pgcqrs.changes ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME pgcqrs.changes_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE pgcqrs.read_model_sources (
    model text NOT NULL,
    source regclass NOT NULL,
    key text[] NOT NULL,
    columns text[] NOT NULL,
    delta_schema text NOT NULL,
    search_path text NOT NULL,
    keys_sql text NOT NULL,
    any_schema text,
    old_sql text,
    term integer,
    delta_kinds text[],
    old_schema text,
    first_sql text,
    plus_path text,
    plus_sql text,
    minus_path text,
    minus_sql text
);

COMMENT ON TABLE pgcqrs.read_model_sources IS 'For each incrementally kept read model, the tables it reads and how their changes are applied.';

COMMENT ON COLUMN pgcqrs.read_model_sources.any_schema IS 'A schema holding a view of this table''s name over its rows now and the old versions of the batch''s changed rows: on the search path while another table''s changes find their keys, so a row that joined two changed rows is found.';

COMMENT ON COLUMN pgcqrs.read_model_sources.old_sql IS 'Generated: copy the old versions of the batch''s changed rows of this table into the any_schema view''s table.';

COMMENT ON COLUMN pgcqrs.read_model_sources.term IS 'The table''s place among those the model reads: a delta''s terms run in this order, reading the tables after each as they were.';

COMMENT ON COLUMN pgcqrs.read_model_sources.delta_kinds IS 'How a delta of this table''s changes moves each column of the model (NULL: its changes are not kept by delta).';

COMMENT ON COLUMN pgcqrs.read_model_sources.old_schema IS 'A schema holding a view of this table''s name over its rows as they were before the batch (first_sql copies the first versions).';

COMMENT ON COLUMN pgcqrs.read_model_sources.plus_sql IS 'Generated, with plus_path: the query over the batch''s changed rows of this table as they are now, into the working table.';

COMMENT ON COLUMN pgcqrs.read_model_sources.minus_sql IS 'Generated, with minus_path: the query over the same rows as they were before the batch.';

CREATE UNLOGGED TABLE pgcqrs_a1_customer_orders.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE write.customers (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT customers_email_shape CHECK (((email ~ '^[^@\s]+@[^@\s]+$'::text) AND (length(email) <= 254))),
    CONSTRAINT customers_name_not_blank CHECK (((btrim(name) <> ''::text) AND (length(name) <= 200)))
);

CREATE VIEW pgcqrs_a1_customer_orders.customers AS
 SELECT customers.id,
    customers.name,
    customers.email,
    customers.version,
    customers.created_at,
    customers.updated_at
   FROM write.customers
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.name,
    pgcqrs_old_rows.email,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at
   FROM pgcqrs_a1_customer_orders.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a1_daily_sales.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE TABLE write.orders (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    total write.money NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    cancel_reason text,
    CONSTRAINT orders_cancel_reason_only_when_cancelled CHECK (((cancel_reason IS NULL) OR (status = 'cancelled'::text))),
    CONSTRAINT orders_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'confirmed'::text, 'shipped'::text, 'delivered'::text, 'cancelled'::text])))
);

CREATE VIEW pgcqrs_a1_daily_sales.orders AS
 SELECT orders.id,
    orders.customer_id,
    orders.status,
    orders.total,
    orders.version,
    orders.created_at,
    orders.updated_at,
    orders.cancel_reason
   FROM write.orders
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.customer_id,
    pgcqrs_old_rows.status,
    pgcqrs_old_rows.total,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at,
    pgcqrs_old_rows.cancel_reason
   FROM pgcqrs_a1_daily_sales.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a1_order_lines.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    price write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE write.products (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    price write.money NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT products_name_not_blank CHECK (((btrim(name) <> ''::text) AND (length(name) <= 200)))
);

CREATE VIEW pgcqrs_a1_order_lines.products AS
 SELECT products.id,
    products.name,
    products.price,
    products.version,
    products.created_at,
    products.updated_at
   FROM write.products
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.name,
    pgcqrs_old_rows.price,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at
   FROM pgcqrs_a1_order_lines.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a1_order_summary.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE VIEW pgcqrs_a1_order_summary.customers AS
 SELECT customers.id,
    customers.name,
    customers.email,
    customers.version,
    customers.created_at,
    customers.updated_at
   FROM write.customers
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.name,
    pgcqrs_old_rows.email,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at
   FROM pgcqrs_a1_order_summary.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a1_product_sales.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    name text NOT NULL,
    price write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE VIEW pgcqrs_a1_product_sales.products AS
 SELECT products.id,
    products.name,
    products.price,
    products.version,
    products.created_at,
    products.updated_at
   FROM write.products
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.name,
    pgcqrs_old_rows.price,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at
   FROM pgcqrs_a1_product_sales.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a2_customer_orders.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE VIEW pgcqrs_a2_customer_orders.orders AS
 SELECT orders.id,
    orders.customer_id,
    orders.status,
    orders.total,
    orders.version,
    orders.created_at,
    orders.updated_at,
    orders.cancel_reason
   FROM write.orders
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.customer_id,
    pgcqrs_old_rows.status,
    pgcqrs_old_rows.total,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at,
    pgcqrs_old_rows.cancel_reason
   FROM pgcqrs_a2_customer_orders.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a2_order_lines.pgcqrs_old_rows (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price write.money NOT NULL
);

CREATE TABLE write.order_items (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price write.money NOT NULL,
    CONSTRAINT order_items_line_no_positive CHECK ((line_no > 0)),
    CONSTRAINT order_items_quantity_positive CHECK ((quantity > 0))
);

CREATE VIEW pgcqrs_a2_order_lines.order_items AS
 SELECT order_items.order_id,
    order_items.line_no,
    order_items.product_id,
    order_items.quantity,
    order_items.unit_price
   FROM write.order_items
UNION ALL
 SELECT pgcqrs_old_rows.order_id,
    pgcqrs_old_rows.line_no,
    pgcqrs_old_rows.product_id,
    pgcqrs_old_rows.quantity,
    pgcqrs_old_rows.unit_price
   FROM pgcqrs_a2_order_lines.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a2_order_summary.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE VIEW pgcqrs_a2_order_summary.orders AS
 SELECT orders.id,
    orders.customer_id,
    orders.status,
    orders.total,
    orders.version,
    orders.created_at,
    orders.updated_at,
    orders.cancel_reason
   FROM write.orders
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.customer_id,
    pgcqrs_old_rows.status,
    pgcqrs_old_rows.total,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at,
    pgcqrs_old_rows.cancel_reason
   FROM pgcqrs_a2_order_summary.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a2_product_sales.pgcqrs_old_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE VIEW pgcqrs_a2_product_sales.orders AS
 SELECT orders.id,
    orders.customer_id,
    orders.status,
    orders.total,
    orders.version,
    orders.created_at,
    orders.updated_at,
    orders.cancel_reason
   FROM write.orders
UNION ALL
 SELECT pgcqrs_old_rows.id,
    pgcqrs_old_rows.customer_id,
    pgcqrs_old_rows.status,
    pgcqrs_old_rows.total,
    pgcqrs_old_rows.version,
    pgcqrs_old_rows.created_at,
    pgcqrs_old_rows.updated_at,
    pgcqrs_old_rows.cancel_reason
   FROM pgcqrs_a2_product_sales.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a3_order_summary.pgcqrs_old_rows (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price write.money NOT NULL
);

CREATE VIEW pgcqrs_a3_order_summary.order_items AS
 SELECT order_items.order_id,
    order_items.line_no,
    order_items.product_id,
    order_items.quantity,
    order_items.unit_price
   FROM write.order_items
UNION ALL
 SELECT pgcqrs_old_rows.order_id,
    pgcqrs_old_rows.line_no,
    pgcqrs_old_rows.product_id,
    pgcqrs_old_rows.quantity,
    pgcqrs_old_rows.unit_price
   FROM pgcqrs_a3_order_summary.pgcqrs_old_rows;

CREATE UNLOGGED TABLE pgcqrs_a3_product_sales.pgcqrs_old_rows (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price write.money NOT NULL
);

CREATE VIEW pgcqrs_a3_product_sales.order_items AS
 SELECT order_items.order_id,
    order_items.line_no,
    order_items.product_id,
    order_items.quantity,
    order_items.unit_price
   FROM write.order_items
UNION ALL
 SELECT pgcqrs_old_rows.order_id,
    pgcqrs_old_rows.line_no,
    pgcqrs_old_rows.product_id,
    pgcqrs_old_rows.quantity,
    pgcqrs_old_rows.unit_price
   FROM pgcqrs_a3_product_sales.pgcqrs_old_rows;

CREATE VIEW pgcqrs_d1_customer_orders.customers AS
 SELECT (t.id)::text AS id,
    t.name,
    t.email,
    t.version,
    t.created_at,
    t.updated_at
   FROM (pgcqrs.batch b
     JOIN write.customers t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.customers'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'email'::text))::text IS DISTINCT FROM (to_jsonb(t.email))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text))))))
UNION ALL
 SELECT r.id,
    r.name,
    r.email,
    NULL::integer AS version,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS updated_at
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'name'::text) AS name,
            (b.old ->> 'email'::text) AS email) r)
  WHERE ((b.relid = ('write.customers'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.customers t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old -> 'email'::text))::text IS DISTINCT FROM (to_jsonb(t.email))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text))))))));

CREATE VIEW pgcqrs_d1_daily_sales.orders AS
 SELECT (t.id)::text AS id,
    t.customer_id,
    t.status,
    (t.total)::numeric(14,2) AS total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (pgcqrs.batch b
     JOIN write.orders t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old ->> 'created_at'::text))::timestamp with time zone IS DISTINCT FROM t.created_at)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text)) AND (NOT (((b.old -> 'total'::text))::text IS DISTINCT FROM (to_jsonb(t.total))::text))))))
UNION ALL
 SELECT r.id,
    NULL::text AS customer_id,
    r.status,
    r.total,
    NULL::integer AS version,
    r.created_at,
    NULL::timestamp with time zone AS updated_at,
    NULL::text AS cancel_reason
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'status'::text) AS status,
            ((b.old ->> 'total'::text))::numeric(14,2) AS total,
            ((b.old ->> 'created_at'::text))::timestamp with time zone AS created_at) r)
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.orders t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old ->> 'created_at'::text))::timestamp with time zone IS DISTINCT FROM t.created_at)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text)) AND (NOT (((b.old -> 'total'::text))::text IS DISTINCT FROM (to_jsonb(t.total))::text))))))));

CREATE VIEW pgcqrs_d1_order_lines.products AS
 SELECT (t.id)::text AS id,
    t.name,
    (t.price)::numeric(14,2) AS price,
    t.version,
    t.created_at,
    t.updated_at
   FROM (pgcqrs.batch b
     JOIN write.products t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.products'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text))))))
UNION ALL
 SELECT r.id,
    r.name,
    NULL::numeric(14,2) AS price,
    NULL::integer AS version,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS updated_at
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'name'::text) AS name) r)
  WHERE ((b.relid = ('write.products'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.products t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text))))))));

CREATE VIEW pgcqrs_d1_order_summary.customers AS
 SELECT (t.id)::text AS id,
    t.name,
    t.email,
    t.version,
    t.created_at,
    t.updated_at
   FROM (pgcqrs.batch b
     JOIN write.customers t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.customers'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'email'::text))::text IS DISTINCT FROM (to_jsonb(t.email))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text))))))
UNION ALL
 SELECT r.id,
    r.name,
    r.email,
    NULL::integer AS version,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS updated_at
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'name'::text) AS name,
            (b.old ->> 'email'::text) AS email) r)
  WHERE ((b.relid = ('write.customers'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.customers t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old -> 'email'::text))::text IS DISTINCT FROM (to_jsonb(t.email))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text))))))));

CREATE VIEW pgcqrs_d1_product_sales.products AS
 SELECT (t.id)::text AS id,
    t.name,
    (t.price)::numeric(14,2) AS price,
    t.version,
    t.created_at,
    t.updated_at
   FROM (pgcqrs.batch b
     JOIN write.products t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.products'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text)) AND (NOT (((b.old -> 'price'::text))::text IS DISTINCT FROM (to_jsonb(t.price))::text))))))
UNION ALL
 SELECT r.id,
    r.name,
    r.price,
    NULL::integer AS version,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS updated_at
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'name'::text) AS name,
            ((b.old ->> 'price'::text))::numeric(14,2) AS price) r)
  WHERE ((b.relid = ('write.products'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.products t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'name'::text))::text IS DISTINCT FROM (to_jsonb(t.name))::text)) AND (NOT (((b.old -> 'price'::text))::text IS DISTINCT FROM (to_jsonb(t.price))::text))))))));

CREATE VIEW pgcqrs_d2_customer_orders.orders AS
 SELECT (t.id)::text AS id,
    t.customer_id,
    t.status,
    (t.total)::numeric(14,2) AS total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (pgcqrs.batch b
     JOIN write.orders t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old ->> 'created_at'::text))::timestamp with time zone IS DISTINCT FROM t.created_at)) AND (NOT (((b.old -> 'customer_id'::text))::text IS DISTINCT FROM (to_jsonb(t.customer_id))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text)) AND (NOT (((b.old -> 'total'::text))::text IS DISTINCT FROM (to_jsonb(t.total))::text))))))
UNION ALL
 SELECT r.id,
    r.customer_id,
    r.status,
    r.total,
    NULL::integer AS version,
    r.created_at,
    NULL::timestamp with time zone AS updated_at,
    NULL::text AS cancel_reason
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'customer_id'::text) AS customer_id,
            (b.old ->> 'status'::text) AS status,
            ((b.old ->> 'total'::text))::numeric(14,2) AS total,
            ((b.old ->> 'created_at'::text))::timestamp with time zone AS created_at) r)
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.orders t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old ->> 'created_at'::text))::timestamp with time zone IS DISTINCT FROM t.created_at)) AND (NOT (((b.old -> 'customer_id'::text))::text IS DISTINCT FROM (to_jsonb(t.customer_id))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text)) AND (NOT (((b.old -> 'total'::text))::text IS DISTINCT FROM (to_jsonb(t.total))::text))))))));

CREATE VIEW pgcqrs_d2_order_lines.order_items AS
 SELECT t.order_id,
    t.line_no,
    t.product_id,
    t.quantity,
    (t.unit_price)::numeric(14,2) AS unit_price
   FROM (pgcqrs.batch b
     JOIN write.order_items t ON (((t.order_id = (b.key ->> 0)) AND (t.line_no = ((b.key ->> 1))::smallint))))
  WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'line_no'::text))::text IS DISTINCT FROM (to_jsonb(t.line_no))::text)) AND (NOT (((b.old -> 'order_id'::text))::text IS DISTINCT FROM (to_jsonb(t.order_id))::text)) AND (NOT (((b.old -> 'product_id'::text))::text IS DISTINCT FROM (to_jsonb(t.product_id))::text)) AND (NOT (((b.old -> 'quantity'::text))::text IS DISTINCT FROM (to_jsonb(t.quantity))::text)) AND (NOT (((b.old -> 'unit_price'::text))::text IS DISTINCT FROM (to_jsonb(t.unit_price))::text))))))
UNION ALL
 SELECT r.order_id,
    r.line_no,
    r.product_id,
    r.quantity,
    r.unit_price
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'order_id'::text) AS order_id,
            ((b.old ->> 'line_no'::text))::smallint AS line_no,
            (b.old ->> 'product_id'::text) AS product_id,
            ((b.old ->> 'quantity'::text))::integer AS quantity,
            ((b.old ->> 'unit_price'::text))::numeric(14,2) AS unit_price) r)
  WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.order_items t
          WHERE ((t.order_id = r.order_id) AND (t.line_no = r.line_no) AND (NOT (((b.old -> 'line_no'::text))::text IS DISTINCT FROM (to_jsonb(t.line_no))::text)) AND (NOT (((b.old -> 'order_id'::text))::text IS DISTINCT FROM (to_jsonb(t.order_id))::text)) AND (NOT (((b.old -> 'product_id'::text))::text IS DISTINCT FROM (to_jsonb(t.product_id))::text)) AND (NOT (((b.old -> 'quantity'::text))::text IS DISTINCT FROM (to_jsonb(t.quantity))::text)) AND (NOT (((b.old -> 'unit_price'::text))::text IS DISTINCT FROM (to_jsonb(t.unit_price))::text))))))));

CREATE VIEW pgcqrs_d2_order_summary.orders AS
 SELECT (t.id)::text AS id,
    t.customer_id,
    t.status,
    (t.total)::numeric(14,2) AS total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (pgcqrs.batch b
     JOIN write.orders t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'cancel_reason'::text))::text IS DISTINCT FROM (to_jsonb(t.cancel_reason))::text)) AND (NOT (((b.old ->> 'created_at'::text))::timestamp with time zone IS DISTINCT FROM t.created_at)) AND (NOT (((b.old -> 'customer_id'::text))::text IS DISTINCT FROM (to_jsonb(t.customer_id))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text)) AND (NOT (((b.old -> 'total'::text))::text IS DISTINCT FROM (to_jsonb(t.total))::text)) AND (NOT (((b.old ->> 'updated_at'::text))::timestamp with time zone IS DISTINCT FROM t.updated_at)) AND (NOT (((b.old -> 'version'::text))::text IS DISTINCT FROM (to_jsonb(t.version))::text))))))
UNION ALL
 SELECT r.id,
    r.customer_id,
    r.status,
    r.total,
    r.version,
    r.created_at,
    r.updated_at,
    r.cancel_reason
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'customer_id'::text) AS customer_id,
            (b.old ->> 'status'::text) AS status,
            ((b.old ->> 'total'::text))::numeric(14,2) AS total,
            ((b.old ->> 'version'::text))::integer AS version,
            ((b.old ->> 'created_at'::text))::timestamp with time zone AS created_at,
            ((b.old ->> 'updated_at'::text))::timestamp with time zone AS updated_at,
            (b.old ->> 'cancel_reason'::text) AS cancel_reason) r)
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.orders t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old -> 'cancel_reason'::text))::text IS DISTINCT FROM (to_jsonb(t.cancel_reason))::text)) AND (NOT (((b.old ->> 'created_at'::text))::timestamp with time zone IS DISTINCT FROM t.created_at)) AND (NOT (((b.old -> 'customer_id'::text))::text IS DISTINCT FROM (to_jsonb(t.customer_id))::text)) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text)) AND (NOT (((b.old -> 'total'::text))::text IS DISTINCT FROM (to_jsonb(t.total))::text)) AND (NOT (((b.old ->> 'updated_at'::text))::timestamp with time zone IS DISTINCT FROM t.updated_at)) AND (NOT (((b.old -> 'version'::text))::text IS DISTINCT FROM (to_jsonb(t.version))::text))))))));

CREATE VIEW pgcqrs_d2_product_sales.orders AS
 SELECT (t.id)::text AS id,
    t.customer_id,
    t.status,
    (t.total)::numeric(14,2) AS total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (pgcqrs.batch b
     JOIN write.orders t ON (((t.id)::text = (b.key ->> 0))))
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text))))))
UNION ALL
 SELECT r.id,
    NULL::text AS customer_id,
    r.status,
    NULL::numeric(14,2) AS total,
    NULL::integer AS version,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS updated_at,
    NULL::text AS cancel_reason
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'id'::text) AS id,
            (b.old ->> 'status'::text) AS status) r)
  WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.orders t
          WHERE (((t.id)::text = r.id) AND (NOT (((b.old -> 'id'::text))::text IS DISTINCT FROM (to_jsonb(t.id))::text)) AND (NOT (((b.old -> 'status'::text))::text IS DISTINCT FROM (to_jsonb(t.status))::text))))))));

CREATE VIEW pgcqrs_d3_order_summary.order_items AS
 SELECT t.order_id,
    t.line_no,
    t.product_id,
    t.quantity,
    (t.unit_price)::numeric(14,2) AS unit_price
   FROM (pgcqrs.batch b
     JOIN write.order_items t ON (((t.order_id = (b.key ->> 0)) AND (t.line_no = ((b.key ->> 1))::smallint))))
  WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT (NOT (((b.old -> 'order_id'::text))::text IS DISTINCT FROM (to_jsonb(t.order_id))::text)))))
UNION ALL
 SELECT r.order_id,
    r.line_no,
    NULL::text AS product_id,
    NULL::integer AS quantity,
    NULL::numeric(14,2) AS unit_price
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'order_id'::text) AS order_id,
            ((b.old ->> 'line_no'::text))::smallint AS line_no) r)
  WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.order_items t
          WHERE ((t.order_id = r.order_id) AND (t.line_no = r.line_no) AND (NOT (((b.old -> 'order_id'::text))::text IS DISTINCT FROM (to_jsonb(t.order_id))::text))))))));

CREATE VIEW pgcqrs_d3_product_sales.order_items AS
 SELECT t.order_id,
    t.line_no,
    t.product_id,
    t.quantity,
    (t.unit_price)::numeric(14,2) AS unit_price
   FROM (pgcqrs.batch b
     JOIN write.order_items t ON (((t.order_id = (b.key ->> 0)) AND (t.line_no = ((b.key ->> 1))::smallint))))
  WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.op = ANY (ARRAY['I'::"char", 'U'::"char"])) AND ((b.old IS NULL) OR (NOT ((NOT (((b.old -> 'order_id'::text))::text IS DISTINCT FROM (to_jsonb(t.order_id))::text)) AND (NOT (((b.old -> 'product_id'::text))::text IS DISTINCT FROM (to_jsonb(t.product_id))::text)) AND (NOT (((b.old -> 'quantity'::text))::text IS DISTINCT FROM (to_jsonb(t.quantity))::text)) AND (NOT (((b.old -> 'unit_price'::text))::text IS DISTINCT FROM (to_jsonb(t.unit_price))::text))))))
UNION ALL
 SELECT r.order_id,
    r.line_no,
    r.product_id,
    r.quantity,
    r.unit_price
   FROM (pgcqrs.batch b
     CROSS JOIN LATERAL ( SELECT (b.old ->> 'order_id'::text) AS order_id,
            ((b.old ->> 'line_no'::text))::smallint AS line_no,
            (b.old ->> 'product_id'::text) AS product_id,
            ((b.old ->> 'quantity'::text))::integer AS quantity,
            ((b.old ->> 'unit_price'::text))::numeric(14,2) AS unit_price) r)
  WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.old IS NOT NULL) AND ((b.op = 'D'::"char") OR (NOT (EXISTS ( SELECT 1
           FROM write.order_items t
          WHERE ((t.order_id = r.order_id) AND (t.line_no = r.line_no) AND (NOT (((b.old -> 'order_id'::text))::text IS DISTINCT FROM (to_jsonb(t.order_id))::text)) AND (NOT (((b.old -> 'product_id'::text))::text IS DISTINCT FROM (to_jsonb(t.product_id))::text)) AND (NOT (((b.old -> 'quantity'::text))::text IS DISTINCT FROM (to_jsonb(t.quantity))::text)) AND (NOT (((b.old -> 'unit_price'::text))::text IS DISTINCT FROM (to_jsonb(t.unit_price))::text))))))));

CREATE VIEW pgcqrs_defs.customer_orders AS
 SELECT (c.id)::text AS customer_id,
    c.name AS customer_name,
    c.email AS customer_email,
    count(o.id) AS order_count,
    count(o.id) FILTER (WHERE (o.status <> 'cancelled'::text)) AS active_order_count,
    COALESCE(sum((o.total)::numeric) FILTER (WHERE (o.status <> 'cancelled'::text)), 0.00) AS lifetime_value,
    max(o.created_at) AS last_order_at
   FROM (write.customers c
     LEFT JOIN write.orders o ON ((o.customer_id = (c.id)::text)))
  GROUP BY c.id, c.name, c.email;

CREATE VIEW pgcqrs_defs.daily_sales AS
 SELECT ((o.created_at AT TIME ZONE 'UTC'::text))::date AS day,
    o.status,
    count(*) AS orders,
    sum((o.total)::numeric) AS revenue
   FROM write.orders o
  GROUP BY (((o.created_at AT TIME ZONE 'UTC'::text))::date), o.status;

CREATE VIEW pgcqrs_defs.order_lines AS
 SELECT i.order_id,
    i.line_no,
    i.product_id,
    p.name AS product_name,
    i.quantity,
    (i.unit_price)::numeric(14,2) AS unit_price,
    (((i.quantity)::numeric * (i.unit_price)::numeric))::numeric(16,2) AS subtotal
   FROM (write.order_items i
     JOIN write.products p ON (((p.id)::text = i.product_id)));

CREATE VIEW pgcqrs_defs.order_summary AS
 SELECT (o.id)::text AS order_id,
    o.customer_id,
    c.name AS customer_name,
    c.email AS customer_email,
    i.item_count,
    (o.total)::numeric(14,2) AS total,
    o.status,
        CASE o.status
            WHEN 'pending'::text THEN 'Pending'::text
            WHEN 'confirmed'::text THEN 'Confirmed'::text
            WHEN 'shipped'::text THEN 'Shipped'::text
            WHEN 'delivered'::text THEN 'Delivered'::text
            WHEN 'cancelled'::text THEN 'Cancelled'::text
            ELSE NULL::text
        END AS status_display,
    o.cancel_reason,
    o.version,
    o.created_at,
    o.updated_at
   FROM ((write.orders o
     JOIN write.customers c ON (((c.id)::text = o.customer_id)))
     CROSS JOIN LATERAL ( SELECT (count(*))::integer AS item_count
           FROM write.order_items it
          WHERE (it.order_id = (o.id)::text)) i)
  WHERE (EXISTS ( SELECT 1
           FROM write.order_items x
          WHERE (x.order_id = (o.id)::text)));

CREATE VIEW pgcqrs_defs.product_sales AS
 SELECT (p.id)::text AS product_id,
    p.name AS product_name,
    (p.price)::numeric(14,2) AS current_price,
    count(DISTINCT i.order_id) FILTER (WHERE (o.status <> 'cancelled'::text)) AS orders,
    COALESCE(sum(i.quantity) FILTER (WHERE (o.status <> 'cancelled'::text)), (0)::bigint) AS units,
    COALESCE(sum(((i.quantity)::numeric * (i.unit_price)::numeric)) FILTER (WHERE (o.status <> 'cancelled'::text)), 0.00) AS revenue
   FROM ((write.products p
     LEFT JOIN write.order_items i ON ((i.product_id = (p.id)::text)))
     LEFT JOIN write.orders o ON (((o.id)::text = i.order_id)))
  GROUP BY p.id, p.name, p.price;

CREATE UNLOGGED TABLE pgcqrs_delta.customer_orders (
    pgcqrs_sign integer,
    pgcqrs_term integer,
    customer_id text,
    customer_name text,
    customer_email text,
    order_count bigint,
    active_order_count bigint,
    lifetime_value numeric,
    last_order_at timestamp with time zone
);

CREATE UNLOGGED TABLE pgcqrs_delta.daily_sales (
    pgcqrs_sign integer,
    pgcqrs_term integer,
    day date,
    status text,
    orders bigint,
    revenue numeric
);

CREATE UNLOGGED TABLE pgcqrs_delta.product_sales (
    pgcqrs_sign integer,
    pgcqrs_term integer,
    product_id text,
    product_name text,
    current_price numeric(14,2),
    orders bigint,
    units bigint,
    revenue numeric
);

CREATE VIEW pgcqrs_m1_daily_sales.orders AS
 SELECT r.id,
    NULL::text AS customer_id,
    r.status,
    r.total,
    NULL::integer AS version,
    r.created_at,
    NULL::timestamp with time zone AS updated_at,
    NULL::text AS cancel_reason
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.orders'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     CROSS JOIN LATERAL ( SELECT (f.old ->> 'id'::text) AS id,
            (f.old ->> 'status'::text) AS status,
            ((f.old ->> 'total'::text))::numeric(14,2) AS total,
            ((f.old ->> 'created_at'::text))::timestamp with time zone AS created_at) r)
  WHERE (f.old IS NOT NULL);

CREATE VIEW pgcqrs_m2_customer_orders.orders AS
 SELECT r.id,
    r.customer_id,
    r.status,
    r.total,
    NULL::integer AS version,
    r.created_at,
    NULL::timestamp with time zone AS updated_at,
    NULL::text AS cancel_reason
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.orders'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     CROSS JOIN LATERAL ( SELECT (f.old ->> 'id'::text) AS id,
            (f.old ->> 'customer_id'::text) AS customer_id,
            (f.old ->> 'status'::text) AS status,
            ((f.old ->> 'total'::text))::numeric(14,2) AS total,
            ((f.old ->> 'created_at'::text))::timestamp with time zone AS created_at) r)
  WHERE (f.old IS NOT NULL);

CREATE VIEW pgcqrs_m2_product_sales.orders AS
 SELECT r.id,
    NULL::text AS customer_id,
    r.status,
    NULL::numeric(14,2) AS total,
    NULL::integer AS version,
    NULL::timestamp with time zone AS created_at,
    NULL::timestamp with time zone AS updated_at,
    NULL::text AS cancel_reason
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.orders'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     CROSS JOIN LATERAL ( SELECT (f.old ->> 'id'::text) AS id,
            (f.old ->> 'status'::text) AS status) r)
  WHERE (f.old IS NOT NULL);

CREATE VIEW pgcqrs_m3_product_sales.order_items AS
 SELECT r.order_id,
    r.line_no,
    r.product_id,
    r.quantity,
    r.unit_price
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.order_items'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     CROSS JOIN LATERAL ( SELECT (f.old ->> 'order_id'::text) AS order_id,
            ((f.old ->> 'line_no'::text))::smallint AS line_no,
            (f.old ->> 'product_id'::text) AS product_id,
            ((f.old ->> 'quantity'::text))::integer AS quantity,
            ((f.old ->> 'unit_price'::text))::numeric(14,2) AS unit_price) r)
  WHERE (f.old IS NOT NULL);

CREATE UNLOGGED TABLE pgcqrs_o1_daily_sales.pgcqrs_first_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE VIEW pgcqrs_o1_daily_sales.orders AS
 SELECT u.id,
    u.customer_id,
    u.status,
    u.total,
    u.version,
    u.created_at,
    u.updated_at,
    u.cancel_reason
   FROM ( SELECT t.id,
            t.customer_id,
            t.status,
            t.total,
            t.version,
            t.created_at,
            t.updated_at,
            t.cancel_reason,
            false AS pgcqrs_first
           FROM write.orders t
        UNION ALL
         SELECT f.id,
            f.customer_id,
            f.status,
            f.total,
            f.version,
            f.created_at,
            f.updated_at,
            f.cancel_reason,
            true
           FROM pgcqrs_o1_daily_sales.pgcqrs_first_rows f) u
  WHERE (u.pgcqrs_first OR (NOT (EXISTS ( SELECT
           FROM pgcqrs.batch b
          WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.key = jsonb_build_array(u.id)))))));

CREATE UNLOGGED TABLE pgcqrs_o2_customer_orders.pgcqrs_first_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE VIEW pgcqrs_o2_customer_orders.orders AS
 SELECT u.id,
    u.customer_id,
    u.status,
    u.total,
    u.version,
    u.created_at,
    u.updated_at,
    u.cancel_reason
   FROM ( SELECT t.id,
            t.customer_id,
            t.status,
            t.total,
            t.version,
            t.created_at,
            t.updated_at,
            t.cancel_reason,
            false AS pgcqrs_first
           FROM write.orders t
        UNION ALL
         SELECT f.id,
            f.customer_id,
            f.status,
            f.total,
            f.version,
            f.created_at,
            f.updated_at,
            f.cancel_reason,
            true
           FROM pgcqrs_o2_customer_orders.pgcqrs_first_rows f) u
  WHERE (u.pgcqrs_first OR (NOT (EXISTS ( SELECT
           FROM pgcqrs.batch b
          WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.key = jsonb_build_array(u.id)))))));

CREATE UNLOGGED TABLE pgcqrs_o2_product_sales.pgcqrs_first_rows (
    id write.entity_id NOT NULL,
    customer_id text NOT NULL,
    status text NOT NULL,
    total write.money NOT NULL,
    version integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    cancel_reason text
);

CREATE VIEW pgcqrs_o2_product_sales.orders AS
 SELECT u.id,
    u.customer_id,
    u.status,
    u.total,
    u.version,
    u.created_at,
    u.updated_at,
    u.cancel_reason
   FROM ( SELECT t.id,
            t.customer_id,
            t.status,
            t.total,
            t.version,
            t.created_at,
            t.updated_at,
            t.cancel_reason,
            false AS pgcqrs_first
           FROM write.orders t
        UNION ALL
         SELECT f.id,
            f.customer_id,
            f.status,
            f.total,
            f.version,
            f.created_at,
            f.updated_at,
            f.cancel_reason,
            true
           FROM pgcqrs_o2_product_sales.pgcqrs_first_rows f) u
  WHERE (u.pgcqrs_first OR (NOT (EXISTS ( SELECT
           FROM pgcqrs.batch b
          WHERE ((b.relid = ('write.orders'::regclass)::oid) AND (b.key = jsonb_build_array(u.id)))))));

CREATE UNLOGGED TABLE pgcqrs_o3_product_sales.pgcqrs_first_rows (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price write.money NOT NULL
);

CREATE VIEW pgcqrs_o3_product_sales.order_items AS
 SELECT u.order_id,
    u.line_no,
    u.product_id,
    u.quantity,
    u.unit_price
   FROM ( SELECT t.order_id,
            t.line_no,
            t.product_id,
            t.quantity,
            t.unit_price,
            false AS pgcqrs_first
           FROM write.order_items t
        UNION ALL
         SELECT f.order_id,
            f.line_no,
            f.product_id,
            f.quantity,
            f.unit_price,
            true
           FROM pgcqrs_o3_product_sales.pgcqrs_first_rows f) u
  WHERE (u.pgcqrs_first OR (NOT (EXISTS ( SELECT
           FROM pgcqrs.batch b
          WHERE ((b.relid = ('write.order_items'::regclass)::oid) AND (b.key = jsonb_build_array(u.order_id, u.line_no)))))));

CREATE VIEW pgcqrs_p1_daily_sales.orders AS
 SELECT t.id,
    t.customer_id,
    t.status,
    t.total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.orders'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     JOIN write.orders t ON (((t.id)::text = (f.key ->> 0))));

CREATE VIEW pgcqrs_p2_customer_orders.orders AS
 SELECT t.id,
    t.customer_id,
    t.status,
    t.total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.orders'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     JOIN write.orders t ON (((t.id)::text = (f.key ->> 0))));

CREATE VIEW pgcqrs_p2_product_sales.orders AS
 SELECT t.id,
    t.customer_id,
    t.status,
    t.total,
    t.version,
    t.created_at,
    t.updated_at,
    t.cancel_reason
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.orders'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     JOIN write.orders t ON (((t.id)::text = (f.key ->> 0))));

CREATE VIEW pgcqrs_p3_product_sales.order_items AS
 SELECT t.order_id,
    t.line_no,
    t.product_id,
    t.quantity,
    t.unit_price
   FROM (( SELECT DISTINCT ON (b.key) b.key,
            b.old
           FROM pgcqrs.batch b
          WHERE (b.relid = ('write.order_items'::regclass)::oid)
          ORDER BY b.key, b.seq) f
     JOIN write.order_items t ON (((t.order_id = (f.key ->> 0)) AND (t.line_no = ((f.key ->> 1))::smallint))));

CREATE TABLE public.refinery_schema_history (
    version integer NOT NULL,
    name character varying(255),
    applied_on character varying(255),
    checksum character varying(255)
);

CREATE TABLE read.customer_orders (
    customer_id text NOT NULL,
    customer_name text,
    customer_email text,
    order_count bigint,
    active_order_count bigint,
    lifetime_value numeric,
    last_order_at timestamp with time zone
);

COMMENT ON TABLE read.customer_orders IS 'One row per customer: how many orders, what they are worth, when the last was placed.';

COMMENT ON COLUMN read.customer_orders.customer_id IS 'The customer''s id.';

COMMENT ON COLUMN read.customer_orders.customer_name IS 'The customer''s current name.';

COMMENT ON COLUMN read.customer_orders.customer_email IS 'The customer''s current e-mail address.';

COMMENT ON COLUMN read.customer_orders.order_count IS 'Orders ever placed, cancelled ones included.';

COMMENT ON COLUMN read.customer_orders.active_order_count IS 'Orders placed and not cancelled.';

COMMENT ON COLUMN read.customer_orders.lifetime_value IS 'Sum of the totals of orders not cancelled (exact, two decimals, no upper bound).';

COMMENT ON COLUMN read.customer_orders.last_order_at IS 'When the customer last placed an order (UTC); empty if never.';

CREATE TABLE read.daily_sales (
    day date NOT NULL,
    status text NOT NULL,
    orders bigint,
    revenue numeric
);

COMMENT ON TABLE read.daily_sales IS 'Orders and revenue per UTC day of placement and current status: what the statistics query reads.';

COMMENT ON COLUMN read.daily_sales.day IS 'The UTC calendar day the orders were placed.';

COMMENT ON COLUMN read.daily_sales.status IS 'The orders'' current status.';

COMMENT ON COLUMN read.daily_sales.orders IS 'Number of orders placed that day now in that status.';

COMMENT ON COLUMN read.daily_sales.revenue IS 'Sum of their totals, whatever the status (exact, two decimals, no upper bound).';

CREATE TABLE write.order_events (
    event_id bigint NOT NULL,
    order_id text NOT NULL,
    order_version integer NOT NULL,
    event_type text NOT NULL,
    schema_version smallint DEFAULT 1 NOT NULL,
    payload jsonb NOT NULL,
    correlation_id text,
    txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_events_type_known CHECK ((event_type = ANY (ARRAY['OrderCreated'::text, 'OrderStatusChanged'::text, 'OrderCancelled'::text])))
);

CREATE VIEW read.order_history WITH (security_barrier='true') AS
 SELECT e.order_id,
    e.order_version,
    e.event_type,
        CASE
            WHEN (e.event_type = 'OrderCreated'::text) THEN 'pending'::text
            ELSE (e.payload ->> 'to'::text)
        END AS status,
    (e.payload ->> 'reason'::text) AS reason,
    e.payload,
    e.correlation_id,
    e.occurred_at
   FROM write.order_events e;

COMMENT ON VIEW read.order_history IS 'Every event of every order, read from the event log: what happened to an order, and when. Always current.';

COMMENT ON COLUMN read.order_history.order_id IS 'The order.';

COMMENT ON COLUMN read.order_history.order_version IS 'The order''s version after this event.';

COMMENT ON COLUMN read.order_history.event_type IS 'OrderCreated, OrderStatusChanged or OrderCancelled.';

COMMENT ON COLUMN read.order_history.status IS 'The order''s status after this event.';

COMMENT ON COLUMN read.order_history.reason IS 'Why it was cancelled, for OrderCancelled.';

COMMENT ON COLUMN read.order_history.payload IS 'The event as recorded (JSON).';

COMMENT ON COLUMN read.order_history.correlation_id IS 'Request id of the command that caused it.';

COMMENT ON COLUMN read.order_history.occurred_at IS 'When it happened (UTC).';

CREATE TABLE read.order_lines (
    order_id text NOT NULL,
    line_no smallint NOT NULL,
    product_id text,
    product_name text,
    quantity integer,
    unit_price numeric(14,2),
    subtotal numeric(16,2)
);

COMMENT ON TABLE read.order_lines IS 'One row per order line, with the product''s name and the line subtotal. Kept current in small batches by the refresher.';

COMMENT ON COLUMN read.order_lines.order_id IS 'The order the line belongs to.';

COMMENT ON COLUMN read.order_lines.line_no IS 'Position of the line in the order, from 1.';

COMMENT ON COLUMN read.order_lines.product_id IS 'The product ordered.';

COMMENT ON COLUMN read.order_lines.product_name IS 'The product''s current name.';

COMMENT ON COLUMN read.order_lines.quantity IS 'How many were ordered.';

COMMENT ON COLUMN read.order_lines.unit_price IS 'Price of one unit when the order was placed.';

COMMENT ON COLUMN read.order_lines.subtotal IS 'quantity × unit_price, exact.';

CREATE TABLE read.order_summary (
    order_id text NOT NULL,
    customer_id text,
    customer_name text,
    customer_email text,
    item_count integer,
    total numeric(14,2),
    status text,
    status_display text,
    cancel_reason text,
    version integer,
    created_at timestamp with time zone,
    updated_at timestamp with time zone
);

COMMENT ON TABLE read.order_summary IS 'One row per order, with its customer and totals: what an order page or list shows. Kept current in small batches by the refresher.';

COMMENT ON COLUMN read.order_summary.order_id IS 'The order''s id.';

COMMENT ON COLUMN read.order_summary.customer_id IS 'The ordering customer''s id.';

COMMENT ON COLUMN read.order_summary.customer_name IS 'The customer''s current name.';

COMMENT ON COLUMN read.order_summary.customer_email IS 'The customer''s current e-mail address.';

COMMENT ON COLUMN read.order_summary.item_count IS 'Number of lines (distinct items) in the order.';

COMMENT ON COLUMN read.order_summary.total IS 'Order total: the sum of quantity × unit price over its lines, exact.';

COMMENT ON COLUMN read.order_summary.status IS 'pending, confirmed, shipped, delivered or cancelled.';

COMMENT ON COLUMN read.order_summary.status_display IS 'The status as a label for people (Pending, Shipped, ...).';

COMMENT ON COLUMN read.order_summary.cancel_reason IS 'Why the order was cancelled; empty unless cancelled.';

COMMENT ON COLUMN read.order_summary.version IS 'The order''s version: 1 when placed, plus one per status change.';

COMMENT ON COLUMN read.order_summary.created_at IS 'When the order was placed (UTC).';

COMMENT ON COLUMN read.order_summary.updated_at IS 'When the order last changed (UTC).';

CREATE TABLE read.product_sales (
    product_id text NOT NULL,
    product_name text,
    current_price numeric(14,2),
    orders bigint,
    units bigint,
    revenue numeric
);

COMMENT ON TABLE read.product_sales IS 'One row per product: units sold and revenue, over orders not cancelled.';

COMMENT ON COLUMN read.product_sales.product_id IS 'The product''s id.';

COMMENT ON COLUMN read.product_sales.product_name IS 'The product''s current name.';

COMMENT ON COLUMN read.product_sales.current_price IS 'The product''s catalog price today.';

COMMENT ON COLUMN read.product_sales.orders IS 'Orders (not cancelled) with at least one line of this product.';

COMMENT ON COLUMN read.product_sales.units IS 'Units sold in orders not cancelled.';

COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid (exact, two decimals, no upper bound).';

CREATE TABLE read.refresh_log (
    refresh_id bigint NOT NULL,
    view_name text NOT NULL,
    covers pg_snapshot NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    duration_ms double precision NOT NULL,
    rows bigint NOT NULL,
    instance text NOT NULL,
    changed_rows bigint,
    kind text,
    changes bigint,
    backlog bigint,
    mode text
);

COMMENT ON TABLE read.refresh_log IS 'One row per refresh of a read model.';

COMMENT ON COLUMN read.refresh_log.refresh_id IS 'Sequence number of the refresh.';

COMMENT ON COLUMN read.refresh_log.view_name IS 'The read model refreshed.';

COMMENT ON COLUMN read.refresh_log.covers IS 'Snapshot taken just before the refresh: every transaction visible in it is in the refreshed view.';

COMMENT ON COLUMN read.refresh_log.started_at IS 'When the refresh started.';

COMMENT ON COLUMN read.refresh_log.finished_at IS 'When the refresh finished.';

COMMENT ON COLUMN read.refresh_log.duration_ms IS 'Duration of the refresh, in milliseconds.';

COMMENT ON COLUMN read.refresh_log.rows IS 'Rows in the read model after the refresh (an estimate for incrementally kept ones).';

COMMENT ON COLUMN read.refresh_log.instance IS 'Service instance that ran the refresh.';

COMMENT ON COLUMN read.refresh_log.changed_rows IS 'For a batch of an incrementally kept read model: rows it recomputed. Empty for a full refresh.';

COMMENT ON COLUMN read.refresh_log.kind IS 'batch (changes applied incrementally), refresh (recomputed whole), rebuild (refilled from empty) or resync (recomputed after a restore from another cluster).';

COMMENT ON COLUMN read.refresh_log.changes IS 'Change records (events, catalog changes) applied.';

COMMENT ON COLUMN read.refresh_log.backlog IS 'Change records still waiting after this refresh.';

COMMENT ON COLUMN read.refresh_log.mode IS 'incremental (the changed keys re-projected), delta (counts and sums moved by the changed rows, the groups it could not settle re-projected) or full (recomputed whole), as chosen for this refresh.';

ALTER TABLE read.refresh_log ALTER COLUMN refresh_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME read.refresh_log_refresh_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE write.idempotency_keys (
    idempotency_key text NOT NULL,
    request_fingerprint bytea NOT NULL,
    status_code smallint,
    response_body jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE write.order_events ALTER COLUMN event_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME write.order_events_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY pgcqrs.changes
    ADD CONSTRAINT changes_pkey PRIMARY KEY (txid, seq);

ALTER TABLE ONLY pgcqrs.read_model_sources
    ADD CONSTRAINT read_model_sources_pkey PRIMARY KEY (model, source);

ALTER TABLE ONLY pgcqrs.read_models
    ADD CONSTRAINT read_models_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.refinery_schema_history
    ADD CONSTRAINT refinery_schema_history_pkey PRIMARY KEY (version);

ALTER TABLE ONLY read.customer_orders
    ADD CONSTRAINT customer_orders_pkey PRIMARY KEY (customer_id);

ALTER TABLE ONLY read.daily_sales
    ADD CONSTRAINT daily_sales_pkey PRIMARY KEY (day, status);

ALTER TABLE ONLY read.order_lines
    ADD CONSTRAINT order_lines_pkey PRIMARY KEY (order_id, line_no);

ALTER TABLE ONLY read.order_summary
    ADD CONSTRAINT order_summary_pkey PRIMARY KEY (order_id);

ALTER TABLE ONLY read.product_sales
    ADD CONSTRAINT product_sales_pkey PRIMARY KEY (product_id);

ALTER TABLE ONLY read.read_model_status
    ADD CONSTRAINT read_model_status_pkey PRIMARY KEY (view_name);

ALTER TABLE ONLY read.refresh_log
    ADD CONSTRAINT refresh_log_pkey PRIMARY KEY (refresh_id);

ALTER TABLE ONLY write.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY write.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (idempotency_key);

ALTER TABLE ONLY write.order_events
    ADD CONSTRAINT order_events_one_per_version UNIQUE (order_id, order_version);

ALTER TABLE ONLY write.order_events
    ADD CONSTRAINT order_events_pkey PRIMARY KEY (event_id);

ALTER TABLE ONLY write.order_items
    ADD CONSTRAINT order_items_pkey PRIMARY KEY (order_id, line_no);

ALTER TABLE ONLY write.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);

ALTER TABLE ONLY write.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);

CREATE INDEX batch_key_idx ON pgcqrs.batch USING hash (key);

COMMENT ON INDEX pgcqrs.batch_key_idx IS 'Whether the batch changed a row: one probe per row a stand-in reaches.';

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a1_customer_orders.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a1_daily_sales.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a1_order_lines.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a1_order_summary.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a1_product_sales.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a2_customer_orders.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_order_id_line_no_idx ON pgcqrs_a2_order_lines.pgcqrs_old_rows USING btree (order_id, line_no);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a2_order_summary.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_id_idx ON pgcqrs_a2_product_sales.pgcqrs_old_rows USING btree (id);

CREATE INDEX pgcqrs_old_rows_order_id_line_no_idx ON pgcqrs_a3_order_summary.pgcqrs_old_rows USING btree (order_id, line_no);

CREATE INDEX pgcqrs_old_rows_order_id_line_no_idx ON pgcqrs_a3_product_sales.pgcqrs_old_rows USING btree (order_id, line_no);

CREATE INDEX pgcqrs_first_rows_id_idx ON pgcqrs_o1_daily_sales.pgcqrs_first_rows USING btree (id);

CREATE INDEX pgcqrs_first_rows_id_idx ON pgcqrs_o2_customer_orders.pgcqrs_first_rows USING btree (id);

CREATE INDEX pgcqrs_first_rows_id_idx ON pgcqrs_o2_product_sales.pgcqrs_first_rows USING btree (id);

CREATE INDEX pgcqrs_first_rows_order_id_line_no_idx ON pgcqrs_o3_product_sales.pgcqrs_first_rows USING btree (order_id, line_no);

CREATE INDEX order_lines_product_idx ON read.order_lines USING btree (product_id);

CREATE INDEX order_summary_created_cover_idx ON read.order_summary USING btree (created_at) INCLUDE (status, total);

CREATE INDEX order_summary_created_idx ON read.order_summary USING btree (created_at DESC, order_id DESC);

CREATE INDEX order_summary_customer_idx ON read.order_summary USING btree (customer_id, created_at DESC, order_id DESC);

CREATE INDEX order_summary_status_idx ON read.order_summary USING btree (status, created_at DESC, order_id DESC);

CREATE INDEX refresh_log_view_finished_idx ON read.refresh_log USING btree (view_name, finished_at DESC);

CREATE INDEX refresh_log_view_idx ON read.refresh_log USING btree (view_name, refresh_id DESC);

CREATE INDEX idempotency_keys_created_idx ON write.idempotency_keys USING btree (created_at);

CREATE INDEX order_items_product_idx ON write.order_items USING btree (product_id);

CREATE INDEX orders_created_day_idx ON write.orders USING btree ((((created_at AT TIME ZONE 'UTC'::text))::date));

CREATE INDEX orders_created_idx ON write.orders USING btree (created_at);

CREATE INDEX orders_customer_created_idx ON write.orders USING btree (customer_id, created_at DESC);

CREATE TRIGGER read_models_sources_captured_whole BEFORE INSERT OR UPDATE OF sources ON pgcqrs.read_models FOR EACH ROW EXECUTE FUNCTION pgcqrs.sources_captured_whole();

CREATE TRIGGER customers_bump_version BEFORE UPDATE ON write.customers FOR EACH ROW EXECUTE FUNCTION write.bump_version();

CREATE CONSTRAINT TRIGGER order_created_event AFTER INSERT ON write.orders DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION write.order_created_event();

CREATE TRIGGER order_events_append_only BEFORE DELETE OR UPDATE ON write.order_events FOR EACH ROW EXECUTE FUNCTION write.order_events_append_only();

CREATE TRIGGER order_items_immutable BEFORE DELETE OR UPDATE ON write.order_items FOR EACH ROW EXECUTE FUNCTION write.order_items_immutable();

CREATE TRIGGER order_items_only_with_new_order AFTER INSERT ON write.order_items REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION write.order_items_only_with_new_order();

CREATE TRIGGER order_status_event AFTER UPDATE ON write.orders FOR EACH ROW EXECUTE FUNCTION write.order_status_event();

CREATE TRIGGER orders_guard BEFORE INSERT OR UPDATE ON write.orders FOR EACH ROW EXECUTE FUNCTION write.orders_guard();

CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON write.customers REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_797c1c68af1e1982682a();

ALTER TABLE write.customers ENABLE ALWAYS TRIGGER pgcqrs_capture_delete;

CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON write.order_items REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_02d6eb4957f6c84bf255();

ALTER TABLE write.order_items ENABLE ALWAYS TRIGGER pgcqrs_capture_delete;

CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON write.orders REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_083849c66f4a1eccdc8a();

ALTER TABLE write.orders ENABLE ALWAYS TRIGGER pgcqrs_capture_delete;

CREATE TRIGGER pgcqrs_capture_delete AFTER DELETE ON write.products REFERENCING OLD TABLE AS pgcqrs_old FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_3c5b5c1a8bb157bc52b0();

ALTER TABLE write.products ENABLE ALWAYS TRIGGER pgcqrs_capture_delete;

CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON write.customers REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_797c1c68af1e1982682a();

ALTER TABLE write.customers ENABLE ALWAYS TRIGGER pgcqrs_capture_insert;

CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON write.order_items REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_02d6eb4957f6c84bf255();

ALTER TABLE write.order_items ENABLE ALWAYS TRIGGER pgcqrs_capture_insert;

CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON write.orders REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_083849c66f4a1eccdc8a();

ALTER TABLE write.orders ENABLE ALWAYS TRIGGER pgcqrs_capture_insert;

CREATE TRIGGER pgcqrs_capture_insert AFTER INSERT ON write.products REFERENCING NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_3c5b5c1a8bb157bc52b0();

ALTER TABLE write.products ENABLE ALWAYS TRIGGER pgcqrs_capture_insert;

CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON write.customers FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_797c1c68af1e1982682a();

ALTER TABLE write.customers ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate;

CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON write.order_items FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_02d6eb4957f6c84bf255();

ALTER TABLE write.order_items ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate;

CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON write.orders FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_083849c66f4a1eccdc8a();

ALTER TABLE write.orders ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate;

CREATE TRIGGER pgcqrs_capture_truncate AFTER TRUNCATE ON write.products FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_3c5b5c1a8bb157bc52b0();

ALTER TABLE write.products ENABLE ALWAYS TRIGGER pgcqrs_capture_truncate;

CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON write.customers REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_797c1c68af1e1982682a();

ALTER TABLE write.customers ENABLE ALWAYS TRIGGER pgcqrs_capture_update;

CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON write.order_items REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_02d6eb4957f6c84bf255();

ALTER TABLE write.order_items ENABLE ALWAYS TRIGGER pgcqrs_capture_update;

CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON write.orders REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_083849c66f4a1eccdc8a();

ALTER TABLE write.orders ENABLE ALWAYS TRIGGER pgcqrs_capture_update;

CREATE TRIGGER pgcqrs_capture_update AFTER UPDATE ON write.products REFERENCING OLD TABLE AS pgcqrs_old NEW TABLE AS pgcqrs_new FOR EACH STATEMENT EXECUTE FUNCTION pgcqrs.capture_3c5b5c1a8bb157bc52b0();

ALTER TABLE write.products ENABLE ALWAYS TRIGGER pgcqrs_capture_update;

CREATE TRIGGER products_bump_version BEFORE UPDATE ON write.products FOR EACH ROW EXECUTE FUNCTION write.bump_version();

ALTER TABLE ONLY pgcqrs.read_model_sources
    ADD CONSTRAINT read_model_sources_model_fkey FOREIGN KEY (model) REFERENCES pgcqrs.read_models(name) ON DELETE CASCADE;

ALTER TABLE ONLY write.order_events
    ADD CONSTRAINT order_events_order_id_fkey FOREIGN KEY (order_id) REFERENCES write.orders(id);

ALTER TABLE ONLY write.order_items
    ADD CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES write.orders(id);

ALTER TABLE ONLY write.order_items
    ADD CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES write.products(id);

ALTER TABLE ONLY write.orders
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES write.customers(id);

CREATE EVENT TRIGGER pgcqrs_capture_follows_renames ON ddl_command_end
         WHEN TAG IN ('ALTER TABLE')
   EXECUTE FUNCTION pgcqrs.capture_follows_renames();
