-- Averages kept by delta.
--
-- avg(x) moved no model by delta: an average cannot be added to or taken
-- from, and the model's own columns hold no count to weigh it with, so a
-- model with one recomputed every group a batch touched. But PostgreSQL
-- computes avg(x) of integers and numerics as sum(x) / count(x), both as
-- numeric and divided by numeric division, whose result's digits depend on
-- the sum's scale. So a model that also keeps sum(x) and count(x) of the
-- same values (same argument, same FILTER), x a column of integers or of
-- numeric(p, s) (every value of it has one scale, which its sum has too),
-- now keeps its average by delta: the new sum at that scale over the new
-- count, the value avg gives. A group whose sum or count the merge cannot
-- settle is recomputed whole, as before. Not kept by delta, as before: an
-- average without such a sum and count beside it, or with count(*) (a NOT
-- NULL the column may lose later), over floats, over a numeric without a
-- scale (values of several scales: the kept sum would keep a scale the
-- query's no longer has) or over an expression.
--
-- Also a bug of V12's column kinds: the sort key of an aggregate's ORDER BY
-- is a junk entry inside the column, and V12 skipped every column holding
-- one, so the kinds after it were read shifted by one (wrong merges, or a
-- sum of text that failed every batch). The models it misread are remade
-- and recomputed once below.

-- The arguments, order, DISTINCT and FILTER of the aggregate a column of a
-- query tree computes (its first), without token locations, and with a
-- column that is the aggregate's one argument read without its relabeling
-- (sum(x) and avg(x) read a domain-typed x as its base type, count(x) as it
-- is; the values are the same; a relabeling elsewhere, in a FILTER, may
-- change what a function makes of a value, and stays): two columns with
-- the same signature aggregate the same values.
CREATE FUNCTION pgcqrs.aggregate_signature(entry text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT regexp_replace(regexp_replace(substring(a FROM ':args (.*) :aggstar '), ' :location -?\d+', '', 'g'),
                          '^\(\{TARGETENTRY :expr \{RELABELTYPE :arg (\{VAR [^{}]*\}) :resulttype \d+ :resulttypmod -?\d+ :resultcollid \d+ :relabelformat \d+\}',
                          '({TARGETENTRY :expr \1')
      FROM pgcqrs.node_segments(entry, '{AGGREF ') a LIMIT 1
$$;

-- The scale every value of an aggregate's one argument has (signature as
-- above), or NULL: 0 for a column of integers, s for a numeric(p, s)
-- column or a domain over one, NULL for anything else (an unconstrained
-- numeric holds values of any scale, and so does an expression).
CREATE FUNCTION pgcqrs.fixed_scale(signature text) RETURNS int
LANGUAGE plpgsql STABLE STRICT AS $fn$
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
$fn$;

-- V12's kind of a column, with avg.
CREATE OR REPLACE FUNCTION pgcqrs.delta_kind(entry text, rte int, keyed text[], outer_j boolean) RETURNS text
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
        -- moved through the group's sum and count of the same values
        WHEN fname = 'avg' AND agg_type = 1700 AND NOT zeroed AND NOT casted THEN 'avg'
        ELSE 'other'
    END;
END
$fn$;

-- V12's kinds of a query's columns, with an average's sum and count.
CREATE OR REPLACE FUNCTION pgcqrs.delta_kinds(def regclass, source regclass) RETURNS text[]
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
$fn$;

-- V17's merge, with averages.
CREATE OR REPLACE FUNCTION pgcqrs.delta_merge(model text, cols text[], kinds text[], distinct_in text[], key text[],
                                   outer_j boolean) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
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
$fn$;

-- Why an average keeps a grouped model from deltas, for its kept_reason:
-- the first avg column without a sum and a count of the same values beside
-- it, over DISTINCT values or values of no one scale, or under a cast or a
-- function; NULL if none (another aggregate may still keep it from them).
CREATE FUNCTION pgcqrs.average_obstacle(def regclass) RETURNS text
LANGUAGE plpgsql STABLE STRICT AS $fn$
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
$fn$;

-- A model that no table's changes move by delta says in its kept_reason
-- which average, if any, is a reason why: after a fixed marker, the end of
-- the reason (a column's name may hold anything). One kept by delta names
-- the averages it moves.
CREATE FUNCTION pgcqrs.note_averages(model text) RETURNS void
LANGUAGE plpgsql AS $fn$
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
$fn$;

-- V12's stand-ins of a source, and the note on averages.
CREATE OR REPLACE FUNCTION pgcqrs.stand_in(model text, source regclass, n int, path text, definition text,
                                           key text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgcqrs.key_stand_in(model, source, n, path, definition, key);
    PERFORM pgcqrs.any_stand_in(model, source, n);
    PERFORM pgcqrs.delta_stand_in(model, source, n, path);
    PERFORM pgcqrs.note_averages(model);
END
$fn$;

REVOKE EXECUTE ON FUNCTION pgcqrs.aggregate_signature(text), pgcqrs.fixed_scale(text),
                           pgcqrs.average_obstacle(regclass), pgcqrs.note_averages(text) FROM PUBLIC;

-- The models V12 misread: where a column's aggregate has an ORDER BY, the
-- sort key's junk entry inside it made V12 skip the whole column, so the
-- kinds after it were shifted by one (an avg(x ORDER BY y) merged as the
-- sum beside it, a string_agg(w, ',' ORDER BY y) beside a count(*) as a
-- sum of text, which failed every batch). Their delta stand-ins are made
-- again from the kinds read right, and they are recomputed once at their
-- next refresh (the path a restored model takes).
DO $misread$
DECLARE
    s pgcqrs.read_model_sources;
    m text;
    misread text[] := '{}';
BEGIN
    FOR s IN SELECT * FROM pgcqrs.read_model_sources r WHERE r.term IS NOT NULL ORDER BY r.model, r.source LOOP
        IF pgcqrs.delta_kinds(format('pgcqrs_defs.%I', s.model)::regclass, s.source) IS DISTINCT FROM s.delta_kinds THEN
            misread := misread || s.model;
        END IF;
    END LOOP;
    FOR m IN SELECT DISTINCT x FROM unnest(misread) x ORDER BY 1 LOOP
        FOR s IN SELECT * FROM pgcqrs.read_model_sources r WHERE r.model = m AND r.term IS NOT NULL LOOP
            EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.plus_path, ',', 1));
            EXECUTE format('DROP SCHEMA %s CASCADE', split_part(s.minus_path, ',', 1));
            EXECUTE format('DROP SCHEMA %s CASCADE', s.old_schema);
        END LOOP;
        UPDATE pgcqrs.read_model_sources r
           SET term = NULL, delta_kinds = NULL, plus_path = NULL, minus_path = NULL, old_schema = NULL,
               first_sql = NULL, plus_sql = NULL, minus_sql = NULL
         WHERE r.model = m;
        EXECUTE format('DROP TABLE IF EXISTS pgcqrs_delta.%I', m);
        UPDATE pgcqrs.read_models x
           SET delta_sql = NULL,
               kept_reason = regexp_replace(x.kept_reason, '; counts and sums of .* kept by delta$', '')
         WHERE x.name = m;
        -- a mark no cluster has
        UPDATE read.read_model_status SET cluster_id = 0 WHERE view_name = m;
    END LOOP;
END
$misread$;

-- The models whose averages kept them from deltas, and those just misread:
-- their stand-ins made now, where the query allows (the others return at
-- once), and the note on the averages that still keep them from deltas.
SELECT pgcqrs.delta_stand_in(s.model, s.source, substring(s.delta_schema FROM '^pgcqrs_d(\d+)_')::int,
                             substr(s.search_path, strpos(s.search_path, ', ') + 2))
  FROM pgcqrs.read_model_sources s
 WHERE s.term IS NULL
 ORDER BY s.model, s.source;
SELECT pgcqrs.note_averages(m.name) FROM pgcqrs.read_models m WHERE m.kept = 'incremental' ORDER BY m.name;
