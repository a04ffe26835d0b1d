-- Sums kept by delta over values that do not cancel out.
--
-- A numeric column may hold NaN, Infinity and -Infinity. A sum kept by
-- delta adds what a batch added and takes away what it removed, and those
-- values do not come back out: a group that once summed a NaN stayed NaN
-- after the row was deleted, and a group with an Infinity became NaN when
-- the row changed (Infinity - Infinity), for good, while the query said
-- 15.8. Now a group whose stored sum, added part or removed part is not
-- finite is recomputed from the query, as a group whose maximum was
-- removed is. Finite sums are kept by delta as before.

-- V12's merge, with the groups that hold a non-finite sum recomputed.
CREATE OR REPLACE FUNCTION pgcqrs.delta_merge(model text, cols text[], kinds text[], distinct_in text[], key text[],
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

-- Every model kept by delta: its merge written again, and, where a sum it
-- keeps already holds a value that is not finite, recomputed once at its
-- next refresh (the path a restored model takes).
DO $again$
DECLARE
    m     text;
    sums  text;
BEGIN
    FOR m IN SELECT DISTINCT r.model FROM pgcqrs.read_model_sources r WHERE r.delta_kinds IS NOT NULL ORDER BY 1 LOOP
        PERFORM pgcqrs.delta_statements(m);
        SELECT string_agg(format('%I::numeric IN (''NaN'', ''Infinity'', ''-Infinity'')', a.attname), ' OR ')
          INTO sums
          FROM pg_attribute a
          JOIN LATERAL (SELECT r.delta_kinds FROM pgcqrs.read_model_sources r
                         WHERE r.model = m AND r.delta_kinds IS NOT NULL LIMIT 1) k ON true
         WHERE a.attrelid = format('pgcqrs_defs.%I', m)::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND k.delta_kinds[a.attnum] IN ('sum', 'sum0');
        CONTINUE WHEN sums IS NULL;
        EXECUTE format('UPDATE read.read_model_status SET cluster_id = NULL
                         WHERE view_name = %L AND EXISTS (SELECT FROM read.%I WHERE %s)', m, m, sums);
    END LOOP;
END
$again$;
