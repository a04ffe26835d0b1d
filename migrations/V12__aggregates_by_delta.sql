-- Grouped read models kept by delta.
--
-- A batch of a grouped model used to recompute every group its changes
-- touch, which costs as much as the groups are large. Now, for the table
-- with the most changes in the batch, it runs the model's query over that
-- table's changed rows twice: once over their versions now (plus) and once
-- over their versions before the batch (minus). count and sum columns move
-- by plus minus minus, max and min by the rule below; a group the delta
-- cannot settle (a sum or every count reaching zero, the max removed, a
-- new group under an outer join) is recomputed, as are the groups the
-- other tables' changes touch. The delta is exact only when the batch's
-- changes are exactly the difference between the snapshot the model shows
-- and the one the batch reads in, so batches run in REPEATABLE READ and a
-- delta is used only when the model is exact and the batch took every
-- change its snapshot sees. See docs/decisions/0003-incremental-aggregates.md.

-- Per key, the first change of a batch holds the row as it was before
-- the batch: changes are numbered as they are captured, and a change of a
-- row is captured after the change before it committed.
ALTER TABLE pgcqrs.batch ADD COLUMN seq bigint;

ALTER TABLE read.read_model_status ADD COLUMN exact boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN read.read_model_status.exact IS
    'The model equals its query as of current_as_of, neither behind nor ahead (a delta batch needs that).';

ALTER TABLE pgcqrs.read_models ADD COLUMN delta_sql text;
COMMENT ON COLUMN pgcqrs.read_models.delta_sql IS
    'Generated: merge the delta in the model''s working table into it, sending the groups it cannot settle to pgcqrs.batch_keys.';

ALTER TABLE pgcqrs.read_model_sources
    ADD COLUMN any_schema text,
    ADD COLUMN old_sql    text,
    ADD COLUMN term       int,
    ADD COLUMN delta_kinds text[],
    ADD COLUMN old_schema text,
    ADD COLUMN first_sql  text,
    ADD COLUMN plus_path  text,
    ADD COLUMN plus_sql   text,
    ADD COLUMN minus_path text,
    ADD COLUMN minus_sql  text;
COMMENT ON COLUMN pgcqrs.read_model_sources.any_schema IS
    'A schema holding a view of this table''s name over its rows now and the old versions of the batch''s changed rows: on the search path while another table''s changes find their keys, so a row that joined two changed rows is found.';
COMMENT ON COLUMN pgcqrs.read_model_sources.old_sql IS
    'Generated: copy the old versions of the batch''s changed rows of this table into the any_schema view''s table.';
COMMENT ON COLUMN pgcqrs.read_model_sources.term IS
    'The table''s place among those the model reads: a delta''s terms run in this order, reading the tables after each as they were.';
COMMENT ON COLUMN pgcqrs.read_model_sources.delta_kinds IS
    'How a delta of this table''s changes moves each column of the model (NULL: its changes are not kept by delta).';
COMMENT ON COLUMN pgcqrs.read_model_sources.old_schema IS
    'A schema holding a view of this table''s name over its rows as they were before the batch (first_sql copies the first versions).';
COMMENT ON COLUMN pgcqrs.read_model_sources.plus_sql IS
    'Generated, with plus_path: the query over the batch''s changed rows of this table as they are now, into the working table.';
COMMENT ON COLUMN pgcqrs.read_model_sources.minus_sql IS
    'Generated, with minus_path: the query over the same rows as they were before the batch.';

CREATE SCHEMA pgcqrs_delta;
COMMENT ON SCHEMA pgcqrs_delta IS 'Working tables of delta batches, one per grouped read model; empty outside a batch.';

-- The top-level items of a node list as stored in pg_rewrite: '({A} {B})'.
CREATE FUNCTION pgcqrs.node_items(list text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    items text[] := '{}';
    depth int := 0;
    start int;
    i     int := 2;
    ch    text;
BEGIN
    WHILE i < length(list) LOOP
        ch := substr(list, i, 1);
        IF ch = '\' THEN
            i := i + 1;
        ELSIF ch IN ('{', '(') THEN
            IF depth = 0 THEN
                start := i;
            END IF;
            depth := depth + 1;
        ELSIF ch IN ('}', ')') THEN
            depth := depth - 1;
            IF depth = 0 THEN
                items := items || substr(list, start, i - start + 1);
            END IF;
        END IF;
        i := i + 1;
    END LOOP;
    RETURN items;
END
$fn$;

-- The value of the first field `name` (':args ', ':expr ') of a node.
CREATE FUNCTION pgcqrs.node_field(node text, name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT s FROM pgcqrs.node_segments(node, name, true) s LIMIT 1
$$;

-- Whether an expression (node text) is NULL, or not true, whenever the
-- columns of range entry `rte` are NULL: it reads one of them, through
-- strict functions and operators and AND only.
CREATE FUNCTION pgcqrs.null_when_missing(expr text, rte int) RETURNS boolean
LANGUAGE sql STABLE STRICT AS $$
    SELECT expr ~ format(':varno %s :', rte)
       AND expr !~ '\{(COALESCEEXPR|CASEEXPR|NULLIFEXPR|MINMAXEXPR|NULLTEST|BOOLEANTEST|DISTINCTEXPR|SUBLINK|SCALARARRAYOPEXPR|ROWEXPR|ARRAYEXPR|ARRAYCOERCEEXPR|XMLEXPR|CONVERTROWTYPEEXPR|FIELDSELECT|FIELDSTORE|ROWCOMPAREEXPR|SUBSCRIPTINGREF) '
       AND expr !~ ':boolop (or|not)'
       AND NOT EXISTS (SELECT 1 FROM regexp_matches(expr, ':(?:op)?funcid (\d+)', 'g') f
                         JOIN pg_proc p ON p.oid = f[1]::oid WHERE NOT p.proisstrict)
$$;

-- How a delta of one table's changes moves one output column of a grouped
-- query, from its target entry: group (not an aggregate: taken from the
-- group's new row), count, sum, sum0 (coalesce(sum(...), 0)), max, min,
-- distinct (a count(DISTINCT x) whose x is not that table's key: a group
-- the delta touches is recomputed), or other (not kept by delta). Casts
-- that keep the value exact are looked through. `rte` is the table's
-- range entry; `keyed` the columns ('varno:attno') equal to its one-column
-- primary key, for which a count of distinct values is a count: the rows
-- of the changed rows and of the others have different values. Under an
-- outer join (`outer_j`), an aggregate must skip the rows the join adds for
-- a missing match of the table: its argument reads only the table through
-- strict expressions, or its FILTER is not true without the table's row.
CREATE FUNCTION pgcqrs.delta_kind(entry text, rte int, keyed text[], outer_j boolean) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
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
        ELSE 'other'
    END;
END
$fn$;

-- The delta kind of every column of a model's query, for a batch of
-- changes to `source`; NULL when such a batch cannot be kept by delta:
-- the query is not one plain GROUP BY over tables (no subquery, CTE,
-- DISTINCT, grouping sets or set operation), a column is not kept by
-- delta, or, under an outer join, the table is not read once as the right
-- side of a LEFT JOIN, or a grouped column reads it.
CREATE FUNCTION pgcqrs.delta_kinds(def regclass, source regclass) RETURNS text[]
LANGUAGE plpgsql STABLE AS $fn$
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
        CONTINUE WHEN entry ~ ':resjunk true';
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
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM unnest(kinds) k WHERE k NOT IN ('group', 'distinct')) THEN
        RETURN NULL;
    END IF;
    RETURN kinds;
END
$fn$;

-- The statement that merges a model's working table into read.<name>.
-- The table holds, per changed table (term), the query over its changed
-- rows now (sign 1) and before the batch (sign -1), the tables after it
-- read as they were and those before it as they are: the terms add up to
-- the change of the query. Per group, counts and sums move by plus minus
-- minus, a max (min) by the larger (smaller) of the old and the new rows
-- unless the old one was removed. A group it cannot settle goes to
-- pgcqrs.batch_keys to be recomputed: a sum at zero after a removal (zero
-- or empty?), every count and sum at zero (gone?), a removed max not
-- beaten or one from two terms, a distinct count a term touches
-- (`distinct`: per column, the terms where it is not a count), a group new
-- under an outer join. Groups already in pgcqrs.batch_keys (another
-- table's changes touch them) are left to that.
CREATE FUNCTION pgcqrs.delta_merge(model text, cols text[], kinds text[], distinct_in text[], key text[],
                                   outer_j boolean) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    c       text;
    k       text;
    i       int;
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
$fn$;

-- For a grouped model whose batches of `source`'s changes can be kept by
-- delta, three more stand-ins of the table, each a view of its name in a
-- schema of its own: the rows the batch changed (the first change per key
-- gives the row before the batch) whose change touches a column the query
-- reads, as they are now (plus) and as they were (minus); and the whole
-- table as it was before the batch (old: the rows not changed, and the
-- first versions of the changed ones, copied by first_sql), read for the
-- tables after a term's. Then the model's statements are made again.
CREATE FUNCTION pgcqrs.delta_stand_in(model text, source regclass, n int, path text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    def     regclass := format('pgcqrs_defs.%I', model)::regclass;
    kinds   text[] := pgcqrs.delta_kinds(def, source);
    s       pgcqrs.read_model_sources;
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
    plus    text := format('pgcqrs_p%s_%s', n, model);
    minus   text := format('pgcqrs_m%s_%s', n, model);
    old     text := format('pgcqrs_o%s_%s', n, model);
    pktypes text[];
    pkjoin  text;
    pkeq    text;
    same    text;
    firsts  text;
BEGIN
    -- a key column must be a grouped one (the merge groups by the key)
    IF kinds IS NULL OR EXISTS (
           SELECT 1 FROM pgcqrs.read_models m, unnest(m.key) k
             JOIN pg_attribute a ON a.attrelid = def AND a.attname = k
            WHERE m.name = delta_stand_in.model AND kinds[a.attnum] <> 'group') THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM pgcqrs.read_model_sources r WHERE r.model = delta_stand_in.model AND r.source = delta_stand_in.source;
    SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY x.i) INTO pktypes
      FROM unnest(s.key) WITH ORDINALITY AS x(k, i) JOIN pg_attribute a ON a.attrelid = source AND a.attname = x.k;
    pkjoin := (SELECT string_agg(format('t.%I = (f.key ->> %s)::%s', p, i - 1, pktypes[i]), ' AND ')
                 FROM unnest(s.key) WITH ORDINALITY AS x(p, i));
    pkeq := (SELECT string_agg(format('t.%1$I = r.%1$I', p), ' AND ') FROM unnest(s.key) p);
    same := coalesce((SELECT string_agg(format('(f.old -> %1$L) IS NOT DISTINCT FROM to_jsonb(t.%1$I)', u), ' AND ')
                        FROM unnest(s.columns) u), 'true');
    firsts := format('(SELECT DISTINCT ON (b.key) b.key, b.old FROM pgcqrs.batch b WHERE b.relid = %L::regclass ORDER BY b.key, b.seq) f',
                     source::text);
    EXECUTE format('CREATE SCHEMA %I', plus);
    EXECUTE format('CREATE SCHEMA %I', minus);
    EXECUTE format('CREATE SCHEMA %I', old);
    EXECUTE format('CREATE VIEW %I.%I AS SELECT t.* FROM %s JOIN %s t ON %s WHERE f.old IS NULL OR NOT (%s)',
                   plus, relname, firsts, source, pkjoin, same);
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT r.* FROM %s CROSS JOIN LATERAL jsonb_populate_record(NULL::%s, f.old) r
         WHERE f.old IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s t WHERE %s AND %s)$v$,
                   minus, relname, firsts, source, source, pkeq, same);
    -- Two parts without conditions of their own, so that a join reaches
    -- each through its indexes, the condition applied to both.
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_first_rows (LIKE %s)', old, source);
    EXECUTE format($v$CREATE VIEW %I.%I AS
        SELECT %s FROM (SELECT t.*, false AS pgcqrs_first FROM %s t
                        UNION ALL
                        SELECT f.*, true FROM %I.pgcqrs_first_rows f) u
         WHERE u.pgcqrs_first OR %s <> ALL (ARRAY(SELECT %s FROM pgcqrs.batch b WHERE b.relid = %L::regclass))$v$,
                   old, relname,
                   (SELECT pgcqrs.ident_list(array_agg(a.attname::text ORDER BY a.attnum), 'u.')
                      FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped),
                   source, old,
                   -- a one-column key compared as itself, cheaper than as JSON
                   CASE WHEN cardinality(s.key) = 1 THEN format('u.%I', s.key[1])
                        ELSE format('jsonb_build_array(%s)', pgcqrs.ident_list(s.key, 'u.')) END,
                   CASE WHEN cardinality(s.key) = 1 THEN format('(b.key ->> 0)::%s', pktypes[1]) ELSE 'b.key' END,
                   source::text);
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
$fn$;

-- A grouped model's delta statements, from the tables whose changes it
-- keeps by delta: the query with each of them joined inner (under an
-- outer join its aggregates skip the rows a missing match adds, so the
-- inner join gives them the same values), run over a term's stand-ins into
-- the working table pgcqrs_delta.<model>; and the merge.
CREATE FUNCTION pgcqrs.delta_statements(model text) RETURNS void
LANGUAGE plpgsql AS $fn$
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
$fn$;

-- The table as it is now together with the old versions of the rows the
-- batch changed, a view of its name in a schema of its own. When a batch
-- changed two tables a model joins, a row of the model made of two old
-- versions joins neither table as it is now: each table's changes find
-- their keys with the other tables read through this view.
CREATE FUNCTION pgcqrs.any_stand_in(model text, source regclass, n int) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    own     text := format('pgcqrs_a%s_%s', n, model);
    relname text := (SELECT c.relname FROM pg_class c WHERE c.oid = source);
BEGIN
    EXECUTE format('CREATE SCHEMA %I', own);
    EXECUTE format('CREATE UNLOGGED TABLE %I.pgcqrs_old_rows (LIKE %s)', own, source);
    EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM %s UNION ALL SELECT * FROM %I.pgcqrs_old_rows',
                   own, relname, source, own);
    UPDATE pgcqrs.read_model_sources r
       SET any_schema = quote_ident(own),
           old_sql = format($q$INSERT INTO %1$I.pgcqrs_old_rows
SELECT r.* FROM pgcqrs.batch b CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$I.pgcqrs_old_rows, b.old) r
 WHERE b.relid = %2$L::regclass AND b.old IS NOT NULL$q$, own, any_stand_in.source::text)
     WHERE r.model = any_stand_in.model AND r.source = any_stand_in.source;
END
$fn$;

-- A source's stand-ins: the one that finds the keys a batch touches (V9),
-- the table with old versions, and for a grouped model the two a delta
-- runs over.
ALTER FUNCTION pgcqrs.stand_in(text, regclass, int, text, text, text[]) RENAME TO key_stand_in;
CREATE FUNCTION pgcqrs.stand_in(model text, source regclass, n int, path text, definition text,
                                key text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgcqrs.key_stand_in(model, source, n, path, definition, key);
    PERFORM pgcqrs.any_stand_in(model, source, n);
    PERFORM pgcqrs.delta_stand_in(model, source, n, path);
END
$fn$;

CREATE OR REPLACE FUNCTION pgcqrs.drop_read_model(name text) RETURNS void
LANGUAGE plpgsql AS $fn$
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
$fn$;

REVOKE EXECUTE ON FUNCTION pgcqrs.node_items(text), pgcqrs.node_field(text, text), pgcqrs.delta_kind(text, int, text[], boolean),
                           pgcqrs.delta_kinds(regclass, regclass),
                           pgcqrs.delta_merge(text, text[], text[], text[], text[], boolean),
                           pgcqrs.delta_statements(text), pgcqrs.null_when_missing(text, int),
                           pgcqrs.delta_stand_in(text, regclass, int, text), pgcqrs.any_stand_in(text, regclass, int),
                           pgcqrs.stand_in(text, regclass, int, text, text, text[])
    FROM PUBLIC;

-- The built-in aggregates, declared again to get their delta statements.
-- Every model kept in batches gets its new stand-ins: the tables with old
-- versions, and the delta ones where its query allows (the built-in
-- customer_orders and daily_sales do).
SELECT pgcqrs.any_stand_in(s.model, s.source, substring(s.delta_schema FROM '^pgcqrs_d(\d+)_')::int),
       pgcqrs.delta_stand_in(s.model, s.source, substring(s.delta_schema FROM '^pgcqrs_d(\d+)_')::int,
                             substr(s.search_path, strpos(s.search_path, ', ') + 2))
  FROM pgcqrs.read_model_sources s
 ORDER BY s.model, s.source;

-- product_sales kept in batches, as soon as a source changes: an order's
-- lines and its status move a product's counts by delta. Its count of
-- distinct orders is a count in the orders term (each order is one row
-- there); a term of line changes that touches a product recomputes it,
-- and new lines meet no old order, so placing orders touches none.
SELECT pgcqrs.drop_read_model('product_sales');
SELECT pgcqrs.define_read_model(
    name        => 'product_sales',
    query       => $q$
SELECT p.id::text                                  AS product_id,
       p.name                                      AS product_name,
       p.price::numeric(14, 2)                     AS current_price,
       count(DISTINCT i.order_id) FILTER (WHERE o.status <> 'cancelled') AS orders,
       coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0)::bigint AS units,
       coalesce(sum(i.quantity * i.unit_price) FILTER (WHERE o.status <> 'cancelled'), 0.00)::numeric AS revenue
FROM write.products p
LEFT JOIN write.order_items i ON i.product_id = p.id
LEFT JOIN write.orders o ON o.id = i.order_id
GROUP BY p.id, p.name, p.price
$q$,
    key         => ARRAY['product_id'],
    filterable  => ARRAY['product_id', 'units', 'revenue'],
    description => 'One row per product: units sold and revenue, over orders not cancelled.');

COMMENT ON COLUMN read.product_sales.product_id IS 'The product''s id.';
COMMENT ON COLUMN read.product_sales.product_name IS 'The product''s current name.';
COMMENT ON COLUMN read.product_sales.current_price IS 'The product''s catalog price today.';
COMMENT ON COLUMN read.product_sales.orders IS 'Orders (not cancelled) with at least one line of this product.';
COMMENT ON COLUMN read.product_sales.units IS 'Units sold in orders not cancelled.';
COMMENT ON COLUMN read.product_sales.revenue IS 'Revenue from those units at the prices paid (exact, two decimals, no upper bound).';

COMMENT ON COLUMN read.refresh_log.mode IS
    'incremental (the changed keys re-projected), delta (counts and sums moved by the changed rows, the groups it could not settle re-projected) or full (recomputed whole), as chosen for this refresh.';

-- The snapshot a declaration's first fill covers, without the declaring
-- transaction itself: its writes after the declaration are captured, not
-- in the fill, and must wait for the first batch. pg_current_snapshot()
-- leaves the current transaction out of the running list, so it counted as
-- covered whenever a later one had finished.
CREATE FUNCTION pgcqrs.snapshot_without_self(snap pg_snapshot) RETURNS pg_snapshot
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN me IS NULL THEN snap ELSE
        (least(pg_snapshot_xmin(snap), me)::text || ':' ||
         greatest(pg_snapshot_xmax(snap), (me::text::bigint + 1)::text::xid8)::text || ':' ||
         (SELECT string_agg(x::text, ',' ORDER BY x)
            FROM (SELECT pg_snapshot_xip(snap) AS x UNION SELECT me) xs))::pg_snapshot END
    FROM (SELECT pg_current_xact_id_if_assigned() AS me) m
$$;

-- A batch's keys are in a table that is empty whenever it is analyzed, so
-- the planner takes them for one row. Re-projecting thousands of keys then
-- removed the rows no longer there by scanning every fresh row once per
-- key (a 20,000-change batch of order_summary took 30 to 115 s at 1M
-- orders). NOT IN against the fresh keys is a hashed subplan whatever the
-- estimate: for the models declared from now on, and those already kept.
DO $patch$
DECLARE
    src   text;
    fixed text;
BEGIN
    SELECT p.prosrc INTO src FROM pg_proc p
     WHERE p.oid = 'pgcqrs.define_read_model(text, text, text[], text, text, text[], text)'::regprocedure;
    fixed := replace(src, 'AND NOT EXISTS (SELECT 1 FROM fresh v WHERE %8$s)', 'AND (%7$s) NOT IN (SELECT %5$s FROM fresh)');
    fixed := replace(fixed, 'taken := pg_current_snapshot();', 'taken := pgcqrs.snapshot_without_self(pg_current_snapshot());');
    -- (a column named t would make a bare t ambiguous)
    fixed := replace(fixed, 'WHERE t::text IS DISTINCT FROM EXCLUDED::text', 'WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text');
    IF fixed = src THEN
        RAISE EXCEPTION 'pgcqrs.define_read_model does not build its key batches as expected';
    END IF;
    EXECUTE format($f$CREATE OR REPLACE FUNCTION pgcqrs.define_read_model(
        name text, query text, key text[], mode text DEFAULT 'auto', schedule text DEFAULT NULL,
        filterable text[] DEFAULT '{}', description text DEFAULT NULL) RETURNS void
        LANGUAGE plpgsql AS %L$f$, fixed);
END
$patch$;

UPDATE pgcqrs.read_models m
   SET apply_sql = replace(m.apply_sql,
                           format('AND NOT EXISTS (SELECT 1 FROM fresh v WHERE %s)',
                                  (SELECT string_agg(format('v.%1$I = t.%1$I', k), ' AND ') FROM unnest(m.key) k)),
                           format('AND (%s) NOT IN (SELECT %s FROM fresh)',
                                  pgcqrs.ident_list(m.key, 't.'), pgcqrs.ident_list(m.key)))
 WHERE m.apply_sql IS NOT NULL;
UPDATE pgcqrs.read_models m
   SET apply_sql = replace(m.apply_sql, 'WHERE t::text IS DISTINCT FROM EXCLUDED::text',
                           'WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text'),
       full_sql = replace(m.full_sql, 'WHERE t::text IS DISTINCT FROM EXCLUDED::text',
                          'WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text')
 WHERE m.full_sql IS NOT NULL;

-- The per-order models too are refreshed as soon as a source changes
-- (looked for every quarter of a second) rather than every second.
UPDATE pgcqrs.read_models SET schedule = NULL WHERE name IN ('order_summary', 'order_lines');

-- The capture triggers named the transition tables n and o, so on a table
-- with a column named n or o every update and delete failed ("column
-- reference is ambiguous"): a team's table of counts could not be written
-- once a model read it. Their aliases are now pgcqrs_n and pgcqrs_o, and
-- every captured table's trigger function is written again.
CREATE OR REPLACE FUNCTION pgcqrs.capture(source regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    pk    text[];
    fname text := (SELECT format('capture_%s', left(md5(n.nspname || '.' || c.relname), 20))
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source);
    keyx  text;
    keyo  text;
    same  text;
BEGIN
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
        keyx := format('jsonb_build_array(%s)', pgcqrs.ident_list(pk, 'pgcqrs_n.'));
        keyo := format('jsonb_build_array(%s)', pgcqrs.ident_list(pk, 'pgcqrs_o.'));
        same := format('(%s) = (%s)', pgcqrs.ident_list(pk, 'pgcqrs_n.'), pgcqrs.ident_list(pk, 'pgcqrs_o.'));
    END IF;
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION pgcqrs.%1$I() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO pgcqrs.changes (relid, op, key)
                SELECT TG_RELID, 'I', %3$s FROM pgcqrs_new pgcqrs_n;
            ELSIF TG_OP = 'UPDATE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'U', %3$s, to_jsonb(pgcqrs_o)
                  FROM pgcqrs_new pgcqrs_n JOIN pgcqrs_old pgcqrs_o ON %5$s
                 WHERE to_jsonb(pgcqrs_n) IS DISTINCT FROM to_jsonb(pgcqrs_o)
                UNION ALL
                SELECT TG_RELID, 'D', %4$s, to_jsonb(pgcqrs_o)
                  FROM pgcqrs_old pgcqrs_o WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_new pgcqrs_n WHERE %5$s)
                UNION ALL
                SELECT TG_RELID, 'I', %3$s, NULL
                  FROM pgcqrs_new pgcqrs_n WHERE NOT EXISTS (SELECT 1 FROM pgcqrs_old pgcqrs_o WHERE %5$s);
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO pgcqrs.changes (relid, op, key, old)
                SELECT TG_RELID, 'D', %4$s, to_jsonb(pgcqrs_o) FROM pgcqrs_old pgcqrs_o;
            ELSE
                INSERT INTO pgcqrs.changes (relid, op) VALUES (TG_RELID, 'T');
            END IF;
            RETURN NULL;
        END
        $body$ $f$, fname, source::oid, keyx, keyo, same);
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = source AND tgname = 'pgcqrs_capture_insert') THEN
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
$fn$;

SELECT pgcqrs.capture(t.tgrelid::regclass) FROM pg_trigger t WHERE t.tgname = 'pgcqrs_capture_insert';
