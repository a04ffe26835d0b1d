-- The node-tree walkers of V9 (node_segments) and V12 (node_items), made
-- linear: the originals read the tree a character at a time with substr,
-- and in a UTF-8 database every substr counts characters from the start,
-- so a walk cost the square of the tree's length (46 of the 50 s a fresh
-- database took to migrate). These read the tree's bytes with get_byte;
-- the braces, parentheses and backslashes they look for are ASCII, which
-- never occurs inside a multi-byte character, so they cut the same parts.
-- A database that replays the migrations (a new one) gets them right
-- after V12, before the migrations that declare the built-in models again
-- (see db::migrate); this file applies them to every other.
CREATE OR REPLACE FUNCTION pgcqrs.node_segments(tree text, marker text, value boolean DEFAULT false) RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
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
$fn$;

CREATE OR REPLACE FUNCTION pgcqrs.node_items(list text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
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
$fn$;
