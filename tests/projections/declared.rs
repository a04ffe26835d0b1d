//! Read models declared in SQL on a team's own table, written with plain
//! SQL: validated when declared, kept fresh with exact tokens from any
//! transaction, served over HTTP, listed, readable by a reporting login,
//! picked up and dropped by a running service; and every model, built-in or
//! declared, equal to its query after random writes of every kind.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio_postgres::error::SqlState;

use crate::support::read::{get_json, last_refresh_mode};
use crate::support::{poll_until, Refreshing, TestApp, TestDb};

const TEAM_TABLE: &str = "
    CREATE SCHEMA logistics;
    CREATE TABLE logistics.shipments (
        id         bigint PRIMARY KEY,
        order_ref  text NOT NULL,
        carrier    text NOT NULL,
        weight_kg  numeric(10, 3) NOT NULL,
        shipped_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE logistics.carriers (
        code text PRIMARY KEY,
        name text NOT NULL
    );
    INSERT INTO logistics.carriers VALUES ('DHL', 'DHL Express'), ('UPS', 'United Parcel'), ('GLS', 'GLS');";

const KEYED: &str = "SELECT pgcqrs.define_read_model(
    name        => 'shipment_details',
    query       => $$SELECT s.id, s.order_ref, s.carrier, c.name AS carrier_name, s.weight_kg, s.shipped_at
                     FROM logistics.shipments s JOIN logistics.carriers c ON c.code = s.carrier$$,
    key         => ARRAY['id'],
    filterable  => ARRAY['carrier', 'weight_kg'],
    description => 'One row per shipment with its carrier''s name.')";

const AGGREGATE: &str = "SELECT pgcqrs.define_read_model(
    name        => 'carrier_weights',
    query       => $$SELECT carrier, count(*) AS shipments, sum(weight_kg) AS weight_kg
                     FROM logistics.shipments GROUP BY carrier$$,
    key         => ARRAY['carrier'],
    filterable  => ARRAY['carrier'])";

/// The rows read model `name` holds that its query does not give, and
/// those it lacks (`EXCEPT ALL`, both ways): compared as values, or as
/// their text (where 1.5 and 1.50 differ).
async fn differences(client: &tokio_postgres::Client, name: &str, as_text: bool) -> (i64, i64) {
    let row = if as_text { "x::text" } else { "x.*" };
    let counts = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM (SELECT {row} FROM read.{name} x
                                               EXCEPT ALL SELECT {row} FROM pgcqrs_defs.{name} x) a),
                        (SELECT count(*) FROM (SELECT {row} FROM pgcqrs_defs.{name} x
                                               EXCEPT ALL SELECT {row} FROM read.{name} x) b)"
            ),
            &[],
        )
        .await
        .expect("compare");
    (counts.get(0), counts.get(1))
}

/// Every declared model equals its query, both ways (`EXCEPT ALL`).
async fn assert_models_equal_their_queries(client: &tokio_postgres::Client, after: &str) {
    let names: Vec<String> = client
        .query("SELECT name FROM pgcqrs.read_models ORDER BY name", &[])
        .await
        .expect("catalog")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        let (extra, missing) = differences(client, &name, false).await;
        assert_eq!(
            (extra, missing),
            (0, 0),
            "after {after}: read.{name} has {extra} rows its query does not give and lacks {missing}"
        );
    }
}

async fn sql_error(client: &tokio_postgres::Client, sql: &str) -> (SqlState, String, String) {
    let e = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("{sql} must fail"));
    let db = e.as_db_error().unwrap_or_else(|| panic!("{e:?}"));
    (
        db.code().clone(),
        db.message().to_owned(),
        db.hint().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_declaration_is_validated_when_made_with_errors_that_carry_a_hint() {
    let db = TestDb::create().await;
    let client = db.client().await;
    client.batch_execute(TEAM_TABLE).await.expect("team table");
    client
        .batch_execute("INSERT INTO logistics.shipments (id, order_ref, carrier, weight_kg) VALUES (1, 'a', 'DHL', 1), (2, 'b', 'DHL', 2)")
        .await
        .expect("rows");
    let define = |name: &str, query: &str, key: &str, extra: &str| {
        format!(
            "SELECT pgcqrs.define_read_model(name => '{name}', query => $q${query}$q$, key => ARRAY[{key}]{extra})"
        )
    };
    let cases = [
        (
            define("Bad-Name", "SELECT 1 AS id", "'id'", ""),
            "invalid read model name",
        ),
        (define("x", "SELEC 1", "'id'", ""), "is not valid"),
        (
            define(
                "x",
                "SELECT 1 AS id; DROP TABLE logistics.shipments",
                "'id'",
                "",
            ),
            "is not valid",
        ),
        (
            define("x", "SELECT id FROM logistics.nowhere", "'id'", ""),
            "is not valid",
        ),
        (
            define("x", "SELECT id FROM logistics.shipments", "'nope'", ""),
            "key column",
        ),
        (
            define(
                "x",
                "SELECT carrier FROM logistics.shipments",
                "'carrier'",
                "",
            ),
            "is not unique",
        ),
        // NULL is one key (a single NULL key is a row like any other)
        (
            define(
                "x",
                "SELECT id, NULLIF(id, id) AS k FROM logistics.shipments",
                "'k'",
                "",
            ),
            "is not unique",
        ),
        (
            define(
                "x",
                "SELECT id FROM logistics.shipments",
                "'id'",
                ", filterable => ARRAY['weight']",
            ),
            "filterable column",
        ),
        (
            define(
                "x",
                "SELECT id FROM logistics.shipments",
                "'id'",
                ", mode => 'sometimes'",
            ),
            "invalid mode",
        ),
        (
            define(
                "x",
                "SELECT id FROM logistics.shipments",
                "'id'",
                ", schedule => 'hourly'",
            ),
            "invalid schedule",
        ),
        (
            define(
                "order_history",
                "SELECT id FROM logistics.shipments",
                "'id'",
                "",
            ),
            "already exists",
        ),
        (define("x", "SELECT 1 AS id", "'id'", ""), "reads no table"),
    ];
    for (sql, expected) in cases {
        let (_, message, hint) = sql_error(&client, &sql).await;
        assert!(message.contains(expected), "{sql}: {message}");
        assert!(!hint.is_empty(), "{sql}: no HINT for {message}");
    }
    // Nothing was left behind by the failed declarations.
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pgcqrs.read_models),
                    (SELECT count(*) FROM pg_class WHERE relnamespace = 'pgcqrs_defs'::regnamespace),
                    (SELECT count(*) FROM logistics.shipments)",
            &[],
        )
        .await
        .expect("counts");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(2)), (5, 2));
    assert_eq!(row.get::<_, i64>(1), 5, "only the built-in definitions");

    // Incremental is refused where it cannot work, with the reason.
    client
        .batch_execute(
            "CREATE VIEW logistics.heavy AS SELECT * FROM logistics.shipments WHERE weight_kg > 1",
        )
        .await
        .expect("view");
    let (code, message, hint) = sql_error(
        &client,
        &define(
            "x",
            "SELECT id FROM logistics.heavy",
            "'id'",
            ", mode => 'incremental'",
        ),
    )
    .await;
    assert_eq!(code, SqlState::FEATURE_NOT_SUPPORTED);
    assert!(message.contains("reads a view"), "{message}");
    assert!(hint.contains("full"), "{hint}");
    // ... and auto keeps it whole instead.
    client
        .batch_execute(&define(
            "heavy",
            "SELECT id, weight_kg FROM logistics.heavy",
            "'id'",
            "",
        ))
        .await
        .expect("auto over a view");
    let kept: String = client
        .query_one(
            "SELECT kept FROM pgcqrs.read_models WHERE name = 'heavy'",
            &[],
        )
        .await
        .expect("kept")
        .get(0);
    assert_eq!(kept, "full");

    // Queries whose touched keys a batch could not find from the changed
    // rows alone: refused as incremental with the reason, kept whole by auto.
    let whole = [
        (
            "idle",
            "SELECT c.code FROM logistics.carriers c WHERE NOT EXISTS (SELECT 1 FROM logistics.shipments s WHERE s.carrier = c.code)",
            "'code'",
            "NOT EXISTS",
        ),
        (
            "unshipped",
            "SELECT c.code FROM logistics.carriers c LEFT JOIN logistics.shipments s ON s.carrier = c.code WHERE s.id IS NULL",
            "'code'",
            "outer join",
        ),
        (
            "light",
            "SELECT c.code, count(s.id) AS n FROM logistics.carriers c LEFT JOIN logistics.shipments s ON s.carrier = c.code WHERE coalesce(s.weight_kg, 0) < 5 GROUP BY c.code",
            "'code'",
            "outer join",
        ),
        (
            "busy",
            "SELECT carrier, count(*) AS n FROM logistics.shipments GROUP BY carrier HAVING count(*) > 1",
            "'carrier'",
            "HAVING",
        ),
        (
            "ranked",
            "SELECT id, rank() OVER (ORDER BY weight_kg) AS r FROM logistics.shipments",
            "'id'",
            "window",
        ),
        (
            "top",
            "SELECT id FROM logistics.shipments ORDER BY weight_kg DESC LIMIT 3",
            "'id'",
            "LIMIT",
        ),
    ];
    for (name, query, key, reason) in whole {
        let (code, message, hint) = sql_error(
            &client,
            &define(name, query, key, ", mode => 'incremental'"),
        )
        .await;
        assert_eq!(code, SqlState::FEATURE_NOT_SUPPORTED, "{name}: {message}");
        assert!(message.contains(reason), "{name}: {message}");
        assert!(hint.contains("full"), "{name}: {hint}");
        client
            .batch_execute(&define(name, query, key, ""))
            .await
            .unwrap_or_else(|e| panic!("{name} as auto: {e}"));
        let row = client
            .query_one(
                "SELECT kept, kept_reason FROM pgcqrs.read_models WHERE name = $1",
                &[&name],
            )
            .await
            .expect("kept");
        let (kept, why): (String, String) = (row.get(0), row.get(1));
        assert_eq!(kept, "full", "{name}: {why}");
        assert!(why.contains(reason), "{name}: {why}");
    }

    // A table keyed by a column with a nondeterministic collation: its
    // rows cannot be named by their keys' text.
    client
        .batch_execute(
            "CREATE COLLATION logistics.folded (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
             CREATE TABLE logistics.depots (code text COLLATE logistics.folded PRIMARY KEY, city text NOT NULL);
             INSERT INTO logistics.depots VALUES ('North', 'Oslo'), ('south', 'Rome')",
        )
        .await
        .expect("a table keyed by a nondeterministic collation");
    let query = "SELECT city, count(*) AS n FROM logistics.depots GROUP BY city";
    let (code, message, hint) = sql_error(
        &client,
        &define("depot_cities", query, "'city'", ", mode => 'incremental'"),
    )
    .await;
    assert_eq!(code, SqlState::FEATURE_NOT_SUPPORTED, "{message}");
    assert!(message.contains("nondeterministic collation"), "{message}");
    assert!(hint.contains("full"), "{hint}");
    client
        .batch_execute(&define("depot_cities", query, "'city'", ""))
        .await
        .expect("depot_cities as auto");
    let kept: String = client
        .query_one(
            "SELECT kept FROM pgcqrs.read_models WHERE name = 'depot_cities'",
            &[],
        )
        .await
        .expect("kept")
        .get(0);
    assert_eq!(kept, "full");

    // Neither the writer nor the reader may declare.
    for role in ["pgcqrs_reader", "pgcqrs_writer"] {
        let (code, _, _) = sql_error(
            &client,
            &format!(
                "SET ROLE {role}; {}",
                define("y", "SELECT id FROM logistics.shipments", "'id'", "")
            ),
        )
        .await;
        assert_eq!(code, SqlState::INSUFFICIENT_PRIVILEGE, "{role}");
        client.batch_execute("RESET ROLE").await.expect("reset");
    }
}

/// Declaring, dropping and declaring again print no notices about the
/// model's own objects; a warning still reaches the client, and the
/// caller's setting is back afterwards.
#[tokio::test]
async fn a_declaration_speaks_only_of_what_it_was_asked() {
    use futures::StreamExt;
    use tokio_postgres::AsyncMessage;

    let db = TestDb::create().await;
    let (client, mut connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notice(notice) = message {
                let _ = tx.send(format!("{}: {}", notice.severity(), notice.message()));
            }
        }
    });
    client.batch_execute(TEAM_TABLE).await.expect("team table");
    while rx.try_recv().is_ok() {}
    client
        .batch_execute(&format!(
            "SET client_min_messages = notice; {KEYED}; {AGGREGATE};
             SELECT pgcqrs.drop_read_model('carrier_weights'); {AGGREGATE};
             SELECT pgcqrs.drop_read_model('shipment_details');
             SELECT pgcqrs.drop_read_model('carrier_weights');"
        ))
        .await
        .expect("declare, drop, declare again, drop");
    // A notice of the caller's own still arrives: the setting is theirs.
    client
        .batch_execute("DO $$ BEGIN RAISE NOTICE 'mine'; RAISE WARNING 'also mine'; END $$")
        .await
        .expect("own notice");
    // A query whose rows depend on the time is taken, with a warning.
    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(name => 'recent', query => $$SELECT id, carrier FROM logistics.shipments WHERE shipped_at > now() - interval '1 hour'$$, key => ARRAY['id'])",
        )
        .await
        .expect("a query calling now()");
    // Formatting follows the session's settings alone: no warning.
    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(name => 'labelled', query => $$SELECT id, concat(carrier, ' (', id, ')') AS label, format('%s kg', weight_kg) AS weight FROM logistics.shipments$$, key => ARRAY['id'])",
        )
        .await
        .expect("a query formatting text");
    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(name => 'today', query => $$SELECT id FROM logistics.shipments WHERE shipped_at::date = current_date$$, key => ARRAY['id'])",
        )
        .await
        .expect("a query reading CURRENT_DATE");
    let mut said = Vec::new();
    while let Ok(notice) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        said.extend(notice);
    }
    assert_eq!(said.len(), 4, "{said:?}");
    assert_eq!(said[..2], ["NOTICE: mine", "WARNING: also mine"]);
    assert!(
        said[2].starts_with("WARNING: read model recent calls now(), whose answer changes")
            && said[2].contains("refreshed only when those change"),
        "{said:?}"
    );
    assert!(
        said[3].starts_with("WARNING: read model today calls CURRENT_DATE"),
        "{said:?}"
    );
}

/// Changes are captured on the table a statement names, so a table with
/// partitions or inheritance relatives cannot feed a model: refused when
/// declared; and a source that joins one later makes its refreshes fail,
/// saying why, until it leaves it, when the model is recomputed whole.
#[tokio::test]
async fn a_table_with_partitions_or_inheritance_feeds_no_model() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE SCHEMA t;
             CREATE TABLE t.readings (sensor int NOT NULL, day date NOT NULL, v int NOT NULL,
                                      PRIMARY KEY (sensor, day)) PARTITION BY RANGE (day);
             CREATE TABLE t.readings_2026 PARTITION OF t.readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             CREATE TABLE t.parent (id int PRIMARY KEY, v int NOT NULL);
             CREATE TABLE t.child () INHERITS (t.parent);
             CREATE TABLE t.plain (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO t.plain SELECT g, g FROM generate_series(1, 5) g;",
        )
        .await
        .expect("tables");
    for (table, why) in [
        ("t.readings", "is partitioned"),
        ("t.readings_2026", "is a partition"),
        ("t.parent", "has inheritance children"),
        ("t.child", "inherits from another table"),
    ] {
        let (code, message, hint) = sql_error(
            client,
            &format!(
                "SELECT pgcqrs.define_read_model(name => 'gap', query => $$SELECT count(*) AS n, sum(v) AS v, 1 AS k FROM {table}$$, key => ARRAY['k'])"
            ),
        )
        .await;
        assert_eq!(code, SqlState::FEATURE_NOT_SUPPORTED, "{table}: {message}");
        assert!(
            message.contains(table) && message.contains(why),
            "{table}: {message}"
        );
        assert!(hint.contains("without partitions or inheritance"), "{hint}");
    }
    let declared: i64 = client
        .query_one(
            "SELECT count(*) FROM pgcqrs.read_models WHERE name = 'gap'",
            &[],
        )
        .await
        .expect("catalog")
        .get(0);
    assert_eq!(declared, 0, "nothing of a refused declaration is left");

    // A plain table that becomes a partition after the declaration, and
    // takes a write through its partitioned table: not captured, and no
    // later change names its row.
    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(name => 'plain_rows', query => $$SELECT id, v FROM t.plain$$, key => ARRAY['id']);
             CREATE TABLE t.all_plain (id int NOT NULL, v int NOT NULL) PARTITION BY RANGE (id);
             ALTER TABLE t.all_plain ATTACH PARTITION t.plain FOR VALUES FROM (1) TO (100000);
             INSERT INTO t.all_plain VALUES (100, 100);
             INSERT INTO t.plain VALUES (6, 6);",
        )
        .await
        .expect("declared, then attached");
    let refresher = app.refresher.as_ref().expect("refresher");
    let model = reloaded(refresher, "plain_rows").await;
    // (Busy while this instance's own worker tries it.)
    let said = poll_until("a refresh that fails", Duration::from_secs(30), || async {
        match refresher.refresh_once(&model, false).await {
            Ok(pgcqrs::read_models::RefreshOutcome::Busy) => None,
            Ok(outcome) => panic!("a source with a child cannot be kept: {outcome:?}"),
            Err(e) => Some(format!("{e:#}")),
        }
    })
    .await;
    assert!(
        said.contains("t.plain, which is a partition") && said.contains("take the table out"),
        "{said}"
    );
    // Detached: the next refresh recomputes it, the missed row included.
    client
        .batch_execute("ALTER TABLE t.all_plain DETACH PARTITION t.plain")
        .await
        .expect("detach");
    catch_up(refresher, &model, "detached").await;
    let rows: Vec<(i32, i32)> = pairs(
        client,
        "SELECT id, v FROM read.plain_rows WHERE id > 5 ORDER BY id",
    )
    .await;
    assert_eq!(rows, [(6, 6), (100, 100)]);
    assert_models_equal_their_queries(client, "a partition detached").await;
}

/// A column no model reads, dropped with CASCADE, takes the model's
/// stand-ins of its table with it (they list every column); a column
/// renamed leaves them naming it as it was. Either way the model is then
/// recomputed, and stays equal to its query, instead of reading the table
/// itself where a stand-in was, or old rows without the renamed column.
#[tokio::test]
async fn a_model_whose_tables_changed_shape_stays_equal() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE SCHEMA t;
             CREATE TABLE t.c (id int PRIMARY KEY, g text NOT NULL, q int NOT NULL, note text);
             INSERT INTO t.c (id, g, q) SELECT x, 'g' || (x % 3), x FROM generate_series(1, 30) x;
             SELECT pgcqrs.define_read_model(name => 'c_sum', query => $$SELECT g, count(*) AS n, sum(q) AS sq FROM t.c GROUP BY g$$, key => ARRAY['g']);",
        )
        .await
        .expect("model");
    let kept: String = client
        .query_one(
            "SELECT delta_sql IS NOT NULL FROM pgcqrs.read_models WHERE name = 'c_sum'",
            &[],
        )
        .await
        .map(|r| if r.get(0) { "delta" } else { "keys" }.to_owned())
        .expect("kept");
    assert_eq!(kept, "delta");
    let e = client
        .batch_execute("ALTER TABLE t.c DROP COLUMN note")
        .await
        .expect_err("the stand-ins depend on the column");
    assert!(format!("{e:?}").contains("CASCADE"), "{e:?}");
    client
        .batch_execute("ALTER TABLE t.c DROP COLUMN note CASCADE")
        .await
        .expect("dropped with the stand-ins");
    let refresher = app.refresher.as_ref().expect("refresher");
    let model = reloaded(refresher, "c_sum").await;
    for (step, write) in [
        "UPDATE t.c SET q = q + 1 WHERE id = 8",
        "INSERT INTO t.c VALUES (31, 'g1', 31)",
        "UPDATE t.c SET g = 'g9' WHERE id IN (1, 2)",
        "DELETE FROM t.c WHERE id = 3",
    ]
    .iter()
    .enumerate()
    {
        client.batch_execute(write).await.expect(write);
        catch_up(refresher, &model, write).await;
        assert_models_equal_their_queries(client, &format!("step {step}: {write}")).await;
    }

    client
        .batch_execute(
            "CREATE TABLE t.items (id int PRIMARY KEY, grp text NOT NULL, qty int NOT NULL);
             INSERT INTO t.items SELECT g, 'g' || (g % 3), g FROM generate_series(1, 30) g;
             SELECT pgcqrs.define_read_model(name => 'grp_counts', query => $$SELECT grp, count(*) AS n, sum(qty) AS total FROM t.items GROUP BY grp$$, key => ARRAY['grp']);
             SELECT pgcqrs.define_read_model(name => 'grp_ids', query => $$SELECT grp, string_agg(id::text, ',' ORDER BY id) AS ids FROM t.items GROUP BY grp$$, key => ARRAY['grp']);
             ALTER TABLE t.items RENAME COLUMN grp TO category;",
        )
        .await
        .expect("models, then a column renamed");
    refresher.load(false).await.expect("load the catalog");
    let models: Vec<_> = refresher
        .models()
        .into_iter()
        .filter(|m| m.model.name.starts_with("grp_"))
        .collect();
    assert_eq!(models.len(), 2);
    for (step, write) in [
        "UPDATE t.items SET category = 'g9' WHERE id = 1",
        "UPDATE t.items SET qty = qty + 1 WHERE id IN (4, 7)",
        "DELETE FROM t.items WHERE id = 10",
    ]
    .iter()
    .enumerate()
    {
        client.batch_execute(write).await.expect(write);
        for model in &models {
            catch_up(refresher, model, write).await;
        }
        assert_models_equal_their_queries(client, &format!("renamed, step {step}: {write}")).await;
    }

    // The key column renamed: the table still takes writes (its capture
    // is written again under the new name), and the models follow (as
    // declared again: a running instance loads them again).
    for (step, write) in [
        "ALTER TABLE t.items RENAME COLUMN id TO item_id",
        "UPDATE t.items SET qty = qty + 1 WHERE item_id = 5",
        "INSERT INTO t.items VALUES (40, 'g2', 40)",
        "DELETE FROM t.items WHERE item_id = 11",
    ]
    .iter()
    .enumerate()
    {
        client.batch_execute(write).await.expect(write);
        for name in ["grp_counts", "grp_ids"] {
            catch_up(refresher, &reloaded(refresher, name).await, write).await;
        }
        assert_models_equal_their_queries(client, &format!("key renamed, step {step}: {write}"))
            .await;
    }

    // Two columns' names swapped: each name still exists, in another place.
    client
        .batch_execute(
            "CREATE TABLE t.sw (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL, w int NOT NULL);
             INSERT INTO t.sw SELECT g, g % 2, g, 1000 * g FROM generate_series(1, 10) g;
             SELECT pgcqrs.define_read_model(name => 'sw_sum', query => $$SELECT grp, count(*) AS n, sum(v) AS sv FROM t.sw GROUP BY grp$$, key => ARRAY['grp']);
             ALTER TABLE t.sw RENAME COLUMN v TO tmp;
             ALTER TABLE t.sw RENAME COLUMN w TO v;
             ALTER TABLE t.sw RENAME COLUMN tmp TO w;",
        )
        .await
        .expect("a model, then two names swapped");
    let swapped = reloaded(refresher, "sw_sum").await;
    for write in [
        "UPDATE t.sw SET w = w + 1 WHERE id = 3",
        "UPDATE t.sw SET v = v + 1 WHERE id = 4",
    ] {
        client.batch_execute(write).await.expect(write);
        catch_up(refresher, &swapped, write).await;
        assert_models_equal_their_queries(client, &format!("names swapped: {write}")).await;
    }
}

/// Columns renamed in a table that models kept in batches read (two of
/// them swapping names, with a change captured before the renames still
/// waiting): the stand-ins are written again under the new names, the
/// next refresh recomputes each model whole once (the waiting change was
/// captured under the old names), and the refreshes after it are batches
/// again, not whole recomputations. Each model equals its query after
/// every write.
#[tokio::test]
async fn renamed_columns_are_followed_by_the_stand_ins() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.gauges (id int PRIMARY KEY, grp text NOT NULL, v int NOT NULL, w int NOT NULL);
             INSERT INTO public.gauges SELECT g, 'g' || (g % 3), g, 1000 * g FROM generate_series(1, 30) g;
             SELECT pgcqrs.define_read_model(
                 name => 'gauge_sums',
                 query => $$SELECT grp, count(*) AS n, sum(v) AS sv FROM public.gauges GROUP BY grp$$,
                 key => ARRAY['grp']);
             SELECT pgcqrs.define_read_model(
                 name => 'gauge_lists',
                 query => $$SELECT grp, max(w) AS top, string_agg(v::text, ',' ORDER BY id) AS vs
                           FROM public.gauges GROUP BY grp$$,
                 key => ARRAY['grp']);
             SELECT pgcqrs.define_read_model(
                 name => 'gauge_rows',
                 query => $$SELECT id, grp, v, w FROM public.gauges$$,
                 key => ARRAY['id']);",
        )
        .await
        .expect("declare");
    let refresher = app.refresher.as_ref().expect("refresher");
    let names = ["gauge_sums", "gauge_lists", "gauge_rows"];
    for name in names {
        catch_up(refresher, &reloaded(refresher, name).await, "declared").await;
    }
    client
        .batch_execute(
            "UPDATE public.gauges SET v = v + 1, w = w + 1 WHERE id = 1;
             ALTER TABLE public.gauges RENAME COLUMN v TO tmp;
             ALTER TABLE public.gauges RENAME COLUMN w TO v;
             ALTER TABLE public.gauges RENAME COLUMN tmp TO w;
             ALTER TABLE public.gauges RENAME COLUMN grp TO category;",
        )
        .await
        .expect("a change, then columns renamed");
    for name in names {
        catch_up(refresher, &reloaded(refresher, name).await, "renamed").await;
    }
    assert_models_equal_their_queries(client, "after the renames").await;
    let steps = [
        "UPDATE public.gauges SET w = w + 1 WHERE id = 3",
        "UPDATE public.gauges SET v = v + 1, category = 'g9' WHERE id = 4",
        "INSERT INTO public.gauges VALUES (40, 'g2', 40, 4)",
        "DELETE FROM public.gauges WHERE id = 5",
    ];
    run_steps_in_batches(client, refresher, &names, &steps, &[]).await;
}

/// A model's sources are named with their schema, whatever the search
/// path of the connection that lists them: `gauges` alone says nothing of
/// which `gauges` a reader of the status page should look at.
#[tokio::test]
async fn a_models_sources_are_named_with_their_schema() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.gauges (id int PRIMARY KEY, v int NOT NULL);
             CREATE TABLE public.\"Gauge Sites\" (id int PRIMARY KEY, name text NOT NULL);
             SELECT pgcqrs.define_read_model(
                 name => 'gauge_sites',
                 query => $$SELECT s.id, s.name, count(g.id) AS n
                           FROM public.\"Gauge Sites\" s LEFT JOIN public.gauges g ON g.v = s.id
                           GROUP BY s.id, s.name$$,
                 key => ARRAY['id']);",
        )
        .await
        .expect("declare");
    let expected = ["public.\"Gauge Sites\"", "public.gauges"];
    let refresher = app.refresher.as_ref().expect("refresher");
    let mut loaded = reloaded(refresher, "gauge_sites")
        .await
        .model
        .source_names();
    loaded.sort();
    assert_eq!(loaded, expected, "as the refresher loads them");
    let listed = poll_until("gauge_sites listed", Duration::from_secs(15), || async {
        let body: Value = app.get("/queries/read-models").await.json().await.ok()?;
        let model = body["read_models"]
            .as_array()?
            .iter()
            .find(|m| m["name"] == "gauge_sites")?
            .clone();
        Some(model)
    })
    .await;
    let mut sources: Vec<&str> = listed["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    sources.sort();
    assert_eq!(sources, expected, "as the service lists them: {listed}");
}

/// Team tables `team.sites` and `visits` (named `visits_name`, within
/// `team`), tables of the same names in `public`, and three models over
/// them declared from a session whose search path is `team, public`,
/// naming the tables without their schema: an aggregate kept by finding
/// keys, one kept by delta, and one no delta can keep.
async fn declare_on_the_team_path(client: &tokio_postgres::Client, visits_name: &str) {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA team;
             CREATE TABLE team.sites (g text PRIMARY KEY, label text NOT NULL);
             CREATE TABLE team.{visits_name} (id int PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             INSERT INTO team.sites SELECT 'g' || i, 'site ' || i FROM generate_series(0, 4) i;
             INSERT INTO team.{visits_name} SELECT i, 'g' || (i % 4), i FROM generate_series(1, 100) i;
             -- the same names on the service's path, never written
             CREATE TABLE public.sites (LIKE team.sites INCLUDING ALL);
             CREATE TABLE public.{visits_name} (LIKE team.{visits_name} INCLUDING ALL);
             SET search_path = team, public;
             SELECT pgcqrs.define_read_model(
                 name => 'site_visits',
                 query => $$SELECT s.g, s.label, count(v.id) AS n, sum(v.v) AS total
                           FROM sites s JOIN {visits_name} v ON v.g = s.g GROUP BY s.g, s.label$$,
                 key => ARRAY['g'],
                 mode => 'incremental');
             SELECT pgcqrs.define_read_model(
                 name => 'site_visits_by_delta',
                 query => $$SELECT s.g, count(v.id) AS n, sum(v.v) AS total
                           FROM {visits_name} v JOIN sites s ON s.g = v.g GROUP BY s.g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'site_visit_lists',
                 query => $$SELECT s.g, s.label, string_agg(v.id::text, ',' ORDER BY v.id) AS ids
                           FROM sites s JOIN {visits_name} v ON v.g = s.g GROUP BY s.g, s.label$$,
                 key => ARRAY['g']);
             RESET search_path;"
        ))
        .await
        .expect("declare from another search path");
}

const SITE_MODELS: [&str; 3] = ["site_visits", "site_visits_by_delta", "site_visit_lists"];

/// Writes to both team tables in one transaction each, caught up after
/// each: group g1 goes away with both its site and its visits' link to it
/// (only the old versions of both tables, together, still show it).
async fn change_both_team_tables(
    client: &tokio_postgres::Client,
    refresher: &pgcqrs::read_models::Refresher,
    visits: &str,
) {
    let steps = [
        format!("BEGIN; UPDATE team.{visits} SET g = 'g4' WHERE g = 'g1'; DELETE FROM team.sites WHERE g = 'g1'; COMMIT;"),
        format!("BEGIN; UPDATE team.{visits} SET v = v + 1, g = 'g0' WHERE id < 20; UPDATE team.sites SET label = 'moved' WHERE g = 'g0'; COMMIT;"),
        format!("BEGIN; DELETE FROM team.{visits} WHERE g = 'g2'; DELETE FROM team.sites WHERE g = 'g2'; INSERT INTO team.sites VALUES ('g9', 'new'); INSERT INTO team.{visits} VALUES (500, 'g9', 5); COMMIT;"),
    ];
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    run_steps_in_batches(client, refresher, &SITE_MODELS, &steps, &[]).await;
}

/// A model declared from a session with a search path of its own, over
/// tables it names without their schema, is kept by the service (whose
/// path is the default) as it was declared: a batch that changed both of
/// its tables reads the old versions of the right ones, even where a table
/// of the same name on the service's path would answer for an unqualified
/// name.
#[tokio::test]
async fn a_model_declared_on_another_search_path_reads_the_tables_it_was_declared_over() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    declare_on_the_team_path(client, "visits").await;
    let refresher = app.refresher.as_ref().expect("refresher");
    for name in SITE_MODELS {
        catch_up(refresher, &reloaded(refresher, name).await, "declared").await;
    }
    change_both_team_tables(client, refresher, "visits").await;
}

/// The same, declared under V30, whose statements named the tables as the
/// declaring session's path showed them: the upgrade names them with their
/// schema, a name with a backslash (written `E'...'`) included.
#[tokio::test]
async fn an_upgrade_names_the_tables_of_models_declared_on_another_search_path() {
    let db = TestDb::create_at(30).await;
    let visits = r#""vis\its""#;
    {
        let client = db.client().await;
        declare_on_the_team_path(&client, visits).await;
    }
    pgcqrs::db::migrate(&db.url).await.expect("upgrade");
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .on(db)
        .start()
        .await;
    let client = app.client().await;
    let unqualified: i64 = client
        .query_one(
            "SELECT count(*) FROM pgcqrs.read_model_sources r
              WHERE strpos(coalesce(r.old_sql, '') || coalesce(r.first_sql, ''), 'team.') = 0
                AND r.model = ANY($1)",
            &[&SITE_MODELS.to_vec()],
        )
        .await
        .expect("statements")
        .get(0);
    assert_eq!(
        unqualified, 0,
        "every statement names its table with its schema"
    );
    let refresher = app.refresher.as_ref().expect("refresher");
    for name in SITE_MODELS {
        catch_up(refresher, &reloaded(refresher, name).await, "upgraded").await;
    }
    change_both_team_tables(client, refresher, visits).await;
}

/// Run `steps` one at a time, catching the models `names` up after each
/// (each loaded again, as a running instance does): every model must equal
/// its query after every step, and none may have been recomputed whole but
/// at the steps `whole_at`.
async fn run_steps_in_batches(
    client: &tokio_postgres::Client,
    refresher: &pgcqrs::read_models::Refresher,
    names: &[&str],
    steps: &[&str],
    whole_at: &[usize],
) {
    for (i, step) in steps.iter().enumerate() {
        client
            .batch_execute(step)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
        for name in names {
            catch_up(refresher, &reloaded(refresher, name).await, step).await;
            if !whole_at.contains(&i) {
                assert_ne!(
                    last_refresh_mode(client, name).await.as_deref(),
                    Some("full"),
                    "step {i} ({step}): {name} was recomputed whole"
                );
            }
        }
        assert_models_equal_their_queries(client, &format!("step {i}: {step}")).await;
    }
}

/// Two models over `public.parts (id, cat, sub, v)` that NULL keys put to
/// the test: `part_sums` by `cat`, kept by delta; `part_tops` by `cat, sub`,
/// its touched groups recomputed (`max`, `string_agg`).
const PART_MODELS: &str = "SELECT pgcqrs.define_read_model(
     name => 'part_sums',
     query => $$SELECT cat, count(*) AS n, sum(v) AS total FROM public.parts GROUP BY cat$$,
     key => ARRAY['cat']);
 SELECT pgcqrs.define_read_model(
     name => 'part_tops',
     query => $$SELECT cat, sub, max(v) AS top, string_agg(id::text, ',' ORDER BY id) AS ids
               FROM public.parts GROUP BY cat, sub$$,
     key => ARRAY['cat', 'sub'],
     filterable => ARRAY['cat']);";

/// A NULL in a key column of a model kept in batches: GROUP BY gives a
/// group for NULL, and the model now holds it too instead of failing every
/// refresh. Its key takes NULLs from the first one met (one row per key,
/// NULL a value like any other); a model that meets none keeps its NOT NULL
/// key. Rows move into and out of NULL groups, a key is NULL in one column
/// of two or in both, NULL groups empty and come back, and a TRUNCATE makes
/// a whole recomputation meet them: after every write each model equals its
/// query, both ways, and only the TRUNCATE recomputed a model whole.
#[tokio::test]
async fn a_null_in_a_group_key_is_a_group_of_its_own() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.parts (id int PRIMARY KEY, cat text, sub text, v numeric NOT NULL);
             INSERT INTO public.parts SELECT i, 'c' || (i % 3), 's' || (i % 2), i FROM generate_series(1, 20) i;",
        )
        .await
        .expect("parts");
    client
        .batch_execute(&format!(
            "{PART_MODELS} UPDATE public.parts SET v = v + 1 WHERE id = 1;"
        ))
        .await
        .expect("declare");
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("load the catalog");
    let names = ["part_sums", "part_tops"];
    for name in names {
        catch_up(
            refresher,
            &reloaded(refresher, name).await,
            "the first batch",
        )
        .await;
    }
    let steps = [
        "UPDATE public.parts SET cat = NULL WHERE id IN (1, 2)",
        "UPDATE public.parts SET v = v + 1 WHERE id = 1",
        "UPDATE public.parts SET sub = NULL WHERE id IN (2, 3)",
        "INSERT INTO public.parts VALUES (21, NULL, 's1', 5), (22, NULL, NULL, 7)",
        "UPDATE public.parts SET cat = 'c1' WHERE id = 1",
        "DELETE FROM public.parts WHERE cat IS NULL",
        "INSERT INTO public.parts VALUES (23, NULL, NULL, 1)",
        "UPDATE public.parts SET cat = NULL, sub = 's0' WHERE id = 4",
        // a whole recomputation: (NULL, NULL) stays, (NULL, s0) goes,
        // (NULL, s1) comes
        "BEGIN;
         CREATE TEMP TABLE kept AS SELECT * FROM public.parts WHERE id <> 4;
         TRUNCATE public.parts;
         INSERT INTO public.parts SELECT * FROM kept;
         INSERT INTO public.parts VALUES (24, NULL, 's1', 2);
         COMMIT",
    ];
    run_steps_in_batches(client, refresher, &names, &steps, &[steps.len() - 1]).await;
    let null_groups: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM read.part_sums WHERE cat IS NULL)
                  + (SELECT count(*) FROM read.part_tops WHERE cat IS NULL)",
            &[],
        )
        .await
        .expect("null groups")
        .get(0);
    assert_eq!(null_groups, 3, "(NULL), (NULL, NULL) and (NULL, s1)");
    let keys: Vec<(String, String)> = pairs(
        client,
        "SELECT c.conrelid::regclass::text, c.contype::text FROM pg_constraint c
          WHERE c.conrelid IN ('read.part_sums'::regclass, 'read.daily_sales'::regclass)
          ORDER BY 1",
    )
    .await;
    assert_eq!(
        keys,
        [
            ("read.daily_sales".to_owned(), "p".to_owned()),
            ("read.part_sums".to_owned(), "u".to_owned())
        ],
        "a model that met no NULL keeps its primary key"
    );

    // Over HTTP, a page at a time, in both orders: every group once, the
    // NULL groups where PostgreSQL sorts them.
    assert_pages_as_sorted(&app, client, "part_tops", "cat.asc", "cat ASC, sub ASC").await;
    assert_pages_as_sorted(&app, client, "part_tops", "cat.desc", "cat DESC, sub DESC").await;
}

/// A key that is NULL in rows found at declaration: the declaration takes
/// it (it was refused) with the key a first NULL met later gives (one row
/// per key, NULL a value like any other), in a model kept by delta, one
/// whose touched groups are recomputed and a full one. The first two are
/// then kept in batches through writes into and out of the NULL groups,
/// equal to their queries after each; a key that is not unique because
/// of its NULLs is refused as any key that is not unique.
#[tokio::test]
async fn a_key_null_at_declaration_is_a_group_of_its_own() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.parts (id int PRIMARY KEY, cat text, sub text, v numeric NOT NULL);
             INSERT INTO public.parts
             SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'c' || (i % 3) END,
                    CASE WHEN i % 7 = 0 THEN NULL ELSE 's' || (i % 2) END, i
               FROM generate_series(1, 30) i;",
        )
        .await
        .expect("parts");
    client
        .batch_execute(PART_MODELS)
        .await
        .expect("declared over NULL keys");
    let kept: Vec<(String, String)> = pairs(
        client,
        "SELECT m.name, m.kept || '/' || k.contype::text FROM pgcqrs.read_models m
           JOIN pg_constraint k ON k.conrelid = format('read.%I', m.name)::regclass
          WHERE m.name LIKE 'part%' ORDER BY 1",
    )
    .await;
    assert_eq!(
        kept,
        [
            ("part_sums".to_owned(), "incremental/u".to_owned()),
            ("part_tops".to_owned(), "incremental/u".to_owned())
        ],
        "kept in batches, the key unique with NULLs"
    );
    let refresher = app.refresher.as_ref().expect("refresher");
    let names = ["part_sums", "part_tops"];
    let steps = [
        "UPDATE public.parts SET v = v + 1 WHERE cat IS NULL",
        "UPDATE public.parts SET cat = 'c1' WHERE id = 5",
        "UPDATE public.parts SET cat = NULL WHERE id IN (1, 2)",
        "DELETE FROM public.parts WHERE cat IS NULL AND sub IS NULL",
        "INSERT INTO public.parts VALUES (31, NULL, NULL, 3)",
    ];
    run_steps_in_batches(client, refresher, &names, &steps, &[]).await;
    assert_pages_as_sorted(&app, client, "part_tops", "cat.asc", "cat ASC, sub ASC").await;

    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(
                 name => 'part_groups',
                 query => $$SELECT cat, sub, count(*) AS n FROM public.parts GROUP BY cat, sub$$,
                 key => ARRAY['cat', 'sub'],
                 mode => 'full',
                 filterable => ARRAY['cat']);
             UPDATE public.parts SET sub = NULL WHERE id = 4;",
        )
        .await
        .expect("a full model over NULL keys");
    for name in ["part_sums", "part_tops", "part_groups"] {
        catch_up(refresher, &reloaded(refresher, name).await, "a full model").await;
    }
    assert_models_equal_their_queries(client, "the full model's refresh").await;
    // (a running instance serves a new declaration within a moment)
    poll_until("part_groups served", Duration::from_secs(10), || async {
        let page = get_json(&app, "/queries/views/part_groups", &[]).await;
        (page.status == 200).then_some(())
    })
    .await;
    assert_pages_as_sorted(
        &app,
        client,
        "part_groups",
        "cat.desc",
        "cat DESC, sub DESC",
    )
    .await;

    // NULL is one key: three rows with a NULL key are not unique.
    for mode in ["auto", "full"] {
        let (state, message, _) = sql_error(
            client,
            &format!(
                "SELECT pgcqrs.define_read_model(
                     name => 'part_rows',
                     query => $$SELECT CASE WHEN id > 3 THEN id END AS k, v FROM public.parts$$,
                     key => ARRAY['k'],
                     mode => '{mode}')"
            ),
        )
        .await;
        assert_eq!(state, SqlState::UNIQUE_VIOLATION, "{mode}: {message}");
        assert!(message.contains("is not unique"), "{mode}: {message}");
    }
}

/// A full model (a materialized view) whose query comes to give a NULL
/// key after its declaration: refreshed like any other, and paged over
/// HTTP through its NULL keys in both orders.
#[tokio::test]
async fn a_full_models_key_that_comes_to_hold_null_is_paged_through() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.parts (id int PRIMARY KEY, cat text, sub text, v numeric NOT NULL);
             INSERT INTO public.parts SELECT i, 'c' || (i % 4), 's' || (i % 3), i FROM generate_series(1, 40) i;
             SELECT pgcqrs.define_read_model(
                 name => 'part_groups',
                 query => $$SELECT cat, sub, count(*) AS n, sum(v) AS total FROM public.parts GROUP BY cat, sub$$,
                 key => ARRAY['cat', 'sub'],
                 mode => 'full',
                 filterable => ARRAY['cat']);",
        )
        .await
        .expect("declare");
    let refresher = app.refresher.as_ref().expect("refresher");
    let model = reloaded(refresher, "part_groups").await;
    catch_up(refresher, &model, "the first refresh").await;
    let kind: String = client
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = 'read.part_groups'::regclass",
            &[],
        )
        .await
        .expect("relkind")
        .get(0);
    assert_eq!(kind, "m", "a full model is a materialized view");
    client
        .batch_execute(
            "UPDATE public.parts SET cat = NULL WHERE id IN (1, 2, 3, 5);
             UPDATE public.parts SET sub = NULL WHERE id IN (2, 6, 7, 10);",
        )
        .await
        .expect("NULL keys");
    catch_up(refresher, &model, "after NULL keys").await;
    let null_keys: i64 = client
        .query_one(
            "SELECT count(*) FROM read.part_groups WHERE cat IS NULL OR sub IS NULL",
            &[],
        )
        .await
        .expect("null keys")
        .get(0);
    assert_eq!(
        null_keys, 6,
        "(NULL, s0|s1|s2|NULL), (c2, NULL), (c3, NULL)"
    );
    assert_eq!(
        differences(client, "part_groups", false).await,
        (0, 0),
        "part_groups equals its query"
    );
    for (order, sorted) in [
        ("cat.asc", "cat ASC, sub ASC"),
        ("cat.desc", "cat DESC, sub DESC"),
    ] {
        assert_pages_as_sorted(&app, client, "part_groups", order, sorted).await;
    }
}

/// Read `model` over HTTP two rows a page in `order` (as `order=`),
/// following `next`: every row once, in the order `ORDER BY sorted` gives.
async fn assert_pages_as_sorted(
    app: &TestApp,
    client: &tokio_postgres::Client,
    model: &str,
    order: &str,
    sorted: &str,
) {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let mut query = vec![("order", order), ("limit", "2")];
        if let Some(cursor) = &after {
            query.push(("after", cursor.as_str()));
        }
        let page = get_json(app, &format!("/queries/views/{model}"), &query).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for row in page.body["rows"].as_array().expect("rows") {
            seen.push(format!("{}/{}", row["cat"], row["sub"]));
        }
        match page.body["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let all: Vec<String> = first_column(
        client,
        &format!(
            "SELECT coalesce(to_json(cat)::text, 'null') || '/' || coalesce(to_json(sub)::text, 'null')
               FROM read.{model} ORDER BY {sorted}"
        ),
    )
    .await;
    assert_eq!(seen, all, "pages of {model} in {order}");
}

/// A model dropped and declared again under its name, over another table,
/// while a worker still holds the old declaration: that worker does
/// nothing, and the writes to the new table that follow all reach the
/// model once it is loaded again.
#[tokio::test]
async fn a_model_declared_again_under_its_name_loses_no_write() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE SCHEMA t;
             CREATE TABLE t.a (id int PRIMARY KEY, v int NOT NULL);
             CREATE TABLE t.b (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO t.b SELECT g, g FROM generate_series(1, 10) g;
             SELECT pgcqrs.define_read_model(name => 'ab', query => $$SELECT id, v FROM t.a$$, key => ARRAY['id']);",
        )
        .await
        .expect("model over t.a");
    let refresher = app.refresher.as_ref().expect("refresher");
    let old = reloaded(refresher, "ab").await;
    client
        .batch_execute(
            "BEGIN;
             SELECT pgcqrs.drop_read_model('ab');
             SELECT pgcqrs.define_read_model(name => 'ab', query => $$SELECT id, v FROM t.b$$, key => ARRAY['id']);
             COMMIT;
             INSERT INTO t.b VALUES (100, 100);
             UPDATE t.b SET v = -1 WHERE id = 1;",
        )
        .await
        .expect("declared again over t.b, then written");
    let outcome = refresher
        .refresh_once(&old, false)
        .await
        .expect("the old declaration's refresh");
    // Nothing done (or another worker of this instance held the model).
    assert!(
        matches!(
            outcome,
            pgcqrs::read_models::RefreshOutcome::Current
                | pgcqrs::read_models::RefreshOutcome::Busy
        ),
        "{outcome:?}"
    );
    let new = reloaded(refresher, "ab").await;
    assert_eq!(new.model.source_names, ["t.b"]);
    catch_up(refresher, &new, "declared again").await;
    assert_models_equal_their_queries(client, "a declaration again under the same name").await;
    let ids: Vec<(i32, i32)> = pairs(
        client,
        "SELECT id, v FROM read.ab WHERE id IN (1, 100) ORDER BY id",
    )
    .await;
    assert_eq!(ids, [(1, -1), (100, 100)]);
}

#[tokio::test]
async fn a_team_table_written_with_plain_sql_feeds_declared_models_with_exact_tokens() {
    let app = TestApp::builder()
        .refreshing(Refreshing::Scheduled)
        .start()
        .await;
    let client = app.client().await;
    client.batch_execute(TEAM_TABLE).await.expect("team table");
    // Declared while the service runs.
    client.batch_execute(KEYED).await.expect("keyed model");
    client
        .batch_execute(AGGREGATE)
        .await
        .expect("aggregate model");
    let kinds = client
        .query(
            "SELECT name, kept FROM pgcqrs.read_models WHERE name IN ('shipment_details', 'carrier_weights') ORDER BY name",
            &[],
        )
        .await
        .expect("kinds");
    let kinds: Vec<(String, String)> = kinds.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        kinds,
        [
            ("carrier_weights".to_owned(), "incremental".to_owned()),
            ("shipment_details".to_owned(), "incremental".to_owned())
        ]
    );
    // The running service lists them within seconds.
    poll_until("the new models listed", Duration::from_secs(15), || async {
        let r = app.get("/queries/read-models").await;
        let body: Value = r.json().await.ok()?;
        let names: Vec<&str> = body["read_models"]
            .as_array()?
            .iter()
            .filter_map(|m| m["name"].as_str())
            .collect();
        (names.contains(&"shipment_details") && names.contains(&"carrier_weights")).then_some(())
    })
    .await;

    // A psql session's own transaction: its token is honoured.
    let token: String = {
        client.batch_execute("BEGIN").await.expect("begin");
        client
            .batch_execute(
                "INSERT INTO logistics.shipments (id, order_ref, carrier, weight_kg)
                 SELECT g, 'o-' || g, (ARRAY['DHL', 'UPS', 'GLS'])[1 + g % 3], g * 0.125
                 FROM generate_series(1, 30) g",
            )
            .await
            .expect("insert");
        let t: String = client
            .query_one("SELECT pg_current_xact_id()::text", &[])
            .await
            .expect("token")
            .get(0);
        client.batch_execute("COMMIT").await.expect("commit");
        t
    };
    // Over HTTP, with the psql session's token: filtered, ordered, paged.
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("carrier", "eq.DHL".to_owned()),
            ("order", "weight_kg.desc".to_owned()),
            ("limit", "4".to_owned()),
            ("min_token", token.clone()),
        ];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let r = app
            .http
            .get(app.url("/queries/views/shipment_details"))
            .query(&query)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        assert!(r.headers().get("x-read-model-refreshed-at").is_some());
        let page: Value = r.json().await.expect("json");
        let rows = page["rows"].as_array().expect("rows");
        assert!(rows.len() <= 4);
        ids.extend(rows.iter().map(|row| row["id"].as_i64().expect("id")));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        ids,
        [30, 27, 24, 21, 18, 15, 12, 9, 6, 3],
        "DHL by weight, heaviest first"
    );
    let r = app
        .get(&format!(
            "/queries/views/carrier_weights?carrier=in.(DHL,UPS)&order=carrier.asc&min_token={token}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.expect("json");
    let carriers: Vec<&str> = page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|row| row["carrier"].as_str())
        .collect();
    assert_eq!(carriers, ["DHL", "UPS"]);
    let r = app.get("/queries/views/shipment_details?weight=gt.1").await;
    assert_eq!(
        r.status(),
        400,
        "a filter on a column not declared filterable"
    );
    let openapi: Value = app
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("openapi");
    for model in ["shipment_details", "carrier_weights"] {
        assert!(
            openapi["paths"][format!("/queries/views/{model}")].is_object(),
            "{model} is in /openapi.json"
        );
    }

    for model in ["shipment_details", "carrier_weights"] {
        poll_until(
            &format!("{model} to cover the psql token"),
            Duration::from_secs(20),
            || async {
                client
                    .query_one(
                        "SELECT pg_visible_in_snapshot($1::text::xid8, current_as_of) FROM read.read_model_status WHERE view_name = $2",
                        &[&token, &model],
                    )
                    .await
                    .ok()?
                    .get::<_, bool>(0)
                    .then_some(())
            },
        )
        .await;
    }
    assert_models_equal_their_queries(client, "the first insert").await;
    let dhl: (i64, String) = {
        let r = client
            .query_one(
                "SELECT shipments, weight_kg::text FROM read.carrier_weights WHERE carrier = 'DHL'",
                &[],
            )
            .await
            .expect("aggregate");
        (r.get(0), r.get(1))
    };
    assert_eq!(dhl, (10, "20.625".to_owned()));

    // Moves between groups, a rename of a joined row, a delete.
    client
        .batch_execute(
            "UPDATE logistics.shipments SET carrier = 'UPS' WHERE id IN (3, 6);
             UPDATE logistics.carriers SET name = 'DHL Parcel' WHERE code = 'DHL';
             DELETE FROM logistics.shipments WHERE id = 9;",
        )
        .await
        .expect("changes");
    let token: String = client
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .expect("token")
        .get(0);
    for model in ["shipment_details", "carrier_weights"] {
        poll_until(&format!("{model} to cover the changes"), Duration::from_secs(20), || async {
            client
                .query_one(
                    "SELECT pg_visible_in_snapshot($1::text::xid8, current_as_of) FROM read.read_model_status WHERE view_name = $2",
                    &[&token, &model],
                )
                .await
                .ok()?
                .get::<_, bool>(0)
                .then_some(())
        })
        .await;
    }
    assert_models_equal_their_queries(client, "moves, a rename and a delete").await;
    let renamed: i64 = client
        .query_one(
            "SELECT count(*) FROM read.shipment_details WHERE carrier_name = 'DHL Parcel'",
            &[],
        )
        .await
        .expect("renamed")
        .get(0);
    assert_eq!(renamed, 7, "the rename reached every DHL shipment");
    let modes: Vec<String> = client
        .query(
            "SELECT DISTINCT mode FROM read.refresh_log WHERE view_name = 'shipment_details' AND kind = 'batch'",
            &[],
        )
        .await
        .expect("modes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(modes, ["incremental"]);

    // A reporting login in the reader role reads them without a GRANT.
    client
        .batch_execute("CREATE ROLE team_reporting LOGIN IN ROLE pgcqrs_reader")
        .await
        .ok();
    let (reporting, conn) =
        tokio_postgres::connect(&app.db.url_as("team_reporting"), tokio_postgres::NoTls)
            .await
            .expect("reporting login");
    tokio::spawn(conn);
    let n: i64 = reporting
        .query_one("SELECT count(*) FROM read.shipment_details", &[])
        .await
        .expect("the reporting login reads the model")
        .get(0);
    assert_eq!(n, 29);
    let e = reporting
        .query_one("SELECT count(*) FROM logistics.shipments", &[])
        .await
        .expect_err("but not the team's table");
    assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));

    // Dropped cleanly: relation, definition, stand-ins, triggers, status.
    let refresher = app.refresher.as_ref().expect("refresher");
    let stale = reloaded(refresher, "shipment_details").await;
    client
        .batch_execute(
            "SELECT pgcqrs.drop_read_model('shipment_details'); SELECT pgcqrs.drop_read_model('carrier_weights');",
        )
        .await
        .expect("drop");
    // A worker that looks at it before it learns of the drop finds nothing
    // to do, not an error about missing migrations.
    let outcome = refresher
        .refresh_once(&stale, false)
        .await
        .expect("a dropped model's refresh is not an error");
    assert_eq!(outcome, pgcqrs::read_models::RefreshOutcome::Current);
    let row = client
        .query_one(
            "SELECT to_regclass('read.shipment_details') IS NULL AND to_regclass('read.carrier_weights') IS NULL,
                    to_regclass('pgcqrs_defs.shipment_details') IS NULL,
                    (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgcqrs_d%_shipment_details'),
                    (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'logistics.shipments'::regclass AND NOT tgisinternal),
                    (SELECT count(*) FROM read.read_model_status WHERE view_name IN ('shipment_details', 'carrier_weights'))",
            &[],
        )
        .await
        .expect("after drop");
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1));
    assert_eq!(
        (
            row.get::<_, i64>(2),
            row.get::<_, i64>(3),
            row.get::<_, i64>(4)
        ),
        (0, 0, 0)
    );
    client
        .batch_execute("INSERT INTO logistics.shipments (id, order_ref, carrier, weight_kg) VALUES (100, 'x', 'DHL', 1)")
        .await
        .expect("the table still takes writes");
    poll_until(
        "the dropped models unlisted",
        Duration::from_secs(15),
        || async {
            let r = app.get("/queries/read-models").await;
            let body: Value = r.json().await.ok()?;
            let names: Vec<String> = body["read_models"]
                .as_array()?
                .iter()
                .filter_map(|m| m["name"].as_str().map(String::from))
                .collect();
            (!names.iter().any(|n| n == "shipment_details")).then_some(())
        },
    )
    .await;
}

/// The first two columns of every row `sql` returns.
async fn pairs<A, B>(client: &tokio_postgres::Client, sql: &str) -> Vec<(A, B)>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
    B: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The first column of every row `sql` returns.
async fn first_column<A>(client: &tokio_postgres::Client, sql: &str) -> Vec<A>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Catch `model` up, waiting while a worker holds it.
/// Load the catalog again and take the model `name` as it is declared now.
async fn reloaded(
    refresher: &pgcqrs::read_models::Refresher,
    name: &str,
) -> pgcqrs::read_models::ScheduledModel {
    refresher.load(false).await.expect("load the catalog");
    refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == name)
        .unwrap_or_else(|| panic!("{name} loaded"))
}

async fn catch_up(
    refresher: &pgcqrs::read_models::Refresher,
    model: &pgcqrs::read_models::ScheduledModel,
    when: &str,
) {
    poll_until(
        &format!("{} caught up ({when})", model.model.name),
        Duration::from_secs(60),
        || async {
            let outcome = refresher
                .catch_up(model, false, |_| {})
                .await
                .unwrap_or_else(|e| panic!("{} ({when}): {e:#}", model.model.name));
            (outcome != pgcqrs::read_models::RefreshOutcome::Busy).then_some(())
        },
    )
    .await;
}

/// Read model `name` holds the rows its query gives, compared as text both
/// ways (EXCEPT on values would take 1.5 for 1.50).
async fn assert_equal_as_text(client: &tokio_postgres::Client, name: &str, after: &str) {
    let (extra, missing) = differences(client, name, true).await;
    assert_eq!(
        (extra, missing),
        (0, 0),
        "after {after}: read.{name} differs from its query as text"
    );
}

/// Run step `i` of a test's writes, then catch every model up.
async fn write_and_catch_up(
    client: &tokio_postgres::Client,
    refresher: &pgcqrs::read_models::Refresher,
    models: &[pgcqrs::read_models::ScheduledModel],
    i: usize,
    step: &str,
) {
    client
        .batch_execute(step)
        .await
        .unwrap_or_else(|e| panic!("{step}: {e}"));
    for model in models {
        catch_up(refresher, model, &format!("step {i}")).await;
    }
}

/// Declare models (`declared`, ending with a change for the first batch,
/// which makes each model exact), then run `steps` one at a time: each step's batch of every
/// model whose name starts with `prefix` must be a delta, and every model
/// must equal its query after it.
async fn run_delta_steps<'a>(
    app: &'a TestApp,
    declared: &str,
    prefix: &str,
    steps: &[&str],
) -> &'a tokio_postgres::Client {
    let client = app.client().await;
    client.batch_execute(declared).await.expect("declare");
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("reload the catalog");
    let all = refresher.models();
    let models: Vec<_> = all
        .iter()
        .filter(|m| m.model.name.starts_with(prefix))
        .collect();
    assert!(!models.is_empty(), "no model named {prefix}*");
    for model in &all {
        catch_up(refresher, model, "the first batch").await;
    }
    for (i, step) in steps.iter().enumerate() {
        write_and_catch_up(client, refresher, &all, i, step).await;
        for model in &models {
            let mode = last_refresh_mode(client, &model.model.name).await;
            assert_eq!(
                mode.as_deref(),
                Some("delta"),
                "{} step {i}: {step}",
                model.model.name
            );
        }
        assert_models_equal_their_queries(client, &format!("step {i}: {step}")).await;
    }
    client
}

/// A grouped model kept by delta, through each case a delta cannot settle
/// alone: a sum back to zero or to no value, a removed max not beaten, a
/// group emptied, a row moved between groups, changed twice or deleted and
/// added again in one transaction. After every step the model equals its
/// query, and the step's batch was a delta.
#[tokio::test]
async fn a_grouped_model_kept_by_delta_settles_every_edge() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let declared = "CREATE TABLE public.readings (id int PRIMARY KEY, g text NOT NULL, v numeric, w text,
                 p numeric(10, 2) GENERATED ALWAYS AS (CASE WHEN v BETWEEN -1000000 AND 1000000 THEN v / 3 END) STORED);
             SELECT pgcqrs.define_read_model(
                 name => 'reading_sums',
                 query => $$SELECT g, count(*) AS n, count(v) AS nv, sum(v) AS total,
                                   sum(v) FILTER (WHERE v > 0) AS positive, coalesce(sum(v), 0) AS total0
                           FROM public.readings GROUP BY g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'reading_means',
                 query => $$SELECT g, avg(p) AS mean, count(p) AS np, sum(p) AS total,
                                   avg(p) FILTER (WHERE p > 0) AS mean_positive,
                                   coalesce(sum(p) FILTER (WHERE p > 0), 0.000) AS positive,
                                   count(p) FILTER (WHERE p > 0) AS n_positive,
                                   avg(id) AS mean_id, coalesce(sum(id), 0.0) AS id_sum, count(id) AS n
                           FROM public.readings GROUP BY g$$,
                 key => ARRAY['g']);
             -- an aggregate with an ORDER BY inside: its column is read
             -- as itself (a max), the columns after it too
             SELECT pgcqrs.define_read_model(
                 name => 'reading_ordered',
                 query => $$SELECT g, sum(v) AS total, max(w ORDER BY id) AS wmax, count(*) AS n
                           FROM public.readings GROUP BY g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'ordered_words',
                 query => $$SELECT g, string_agg(w, ',' ORDER BY id) AS ws, count(*) AS n,
                                   avg(p ORDER BY id) AS mean_p, sum(p) AS total_p, count(p) AS np
                           FROM public.readings GROUP BY g$$,
                 key => ARRAY['g']);
             -- values of any scale, and a count(*): recomputed by group
             SELECT pgcqrs.define_read_model(
                 name => 'loose_means',
                 query => $$SELECT g, avg(v) AS mean, sum(v) AS total, count(v) AS nv,
                                   avg(id) AS mean_id, sum(id) AS id_sum, count(*) AS n
                           FROM public.readings GROUP BY g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'reading_extremes',
                 query => $$SELECT g, count(*) AS n, max(v) AS hi, min(w) AS lo FROM public.readings GROUP BY g$$,
                 key => ARRAY['g']);
             INSERT INTO public.readings VALUES (100, 'z', 0, 'z')";
    let steps = [
        "INSERT INTO public.readings VALUES (1, 'a', 5, 'x'), (2, 'a', -5, 'y'), (3, 'b', 1, 'z')",
        "INSERT INTO public.readings VALUES (4, 'a', 7, 'w')",
        // positive 12 -> 7; total 7 -> 2
        "DELETE FROM public.readings WHERE id = 1",
        // total 2 -> -5 ... positive to no value at all
        "DELETE FROM public.readings WHERE id = 4",
        // the only value gone: total and positive have none, total0 is 0
        "UPDATE public.readings SET v = NULL WHERE id = 2",
        "INSERT INTO public.readings VALUES (5, 'a', 10, 'v'), (6, 'a', 3, 'u')",
        // the max removed and not beaten
        "UPDATE public.readings SET v = 1 WHERE id = 5",
        // the max removed and beaten
        "UPDATE public.readings SET v = 20 WHERE id = 6",
        // a row moves to another group; the min of w there moves too
        "UPDATE public.readings SET g = 'b', w = 'a' WHERE id = 6",
        // changed twice, deleted and added again, in one transaction
        "UPDATE public.readings SET v = v + 1 WHERE id = 3;
         UPDATE public.readings SET v = v * 10, g = 'c' WHERE id = 3;
         DELETE FROM public.readings WHERE id = 5;
         INSERT INTO public.readings VALUES (5, 'a', -1, 't')",
        // a group emptied
        "DELETE FROM public.readings WHERE g = 'a'",
        // a group of no values emptied: no sum says it is gone
        "INSERT INTO public.readings VALUES (8, 'e', NULL, NULL)",
        "DELETE FROM public.readings WHERE id = 8",
        // added and removed within the batch
        "INSERT INTO public.readings VALUES (7, 'd', 1, 's'); DELETE FROM public.readings WHERE id = 7",
        // values that do not cancel out: NaN, Infinity and -Infinity come
        // and go, and the sums come back to numbers
        "INSERT INTO public.readings VALUES (20, 'n', 'NaN', 'a'), (21, 'n', 4, 'b'), (22, 'i', 'Infinity', 'c'), (23, 'i', 1, 'd')",
        "DELETE FROM public.readings WHERE id = 20",
        "UPDATE public.readings SET v = 2 WHERE id = 22",
        "INSERT INTO public.readings VALUES (24, 'i', '-Infinity', 'e'), (25, 'i', 'Infinity', 'f')",
        "DELETE FROM public.readings WHERE id = 24",
        "UPDATE public.readings SET v = 'NaN' WHERE id = 21; DELETE FROM public.readings WHERE id = 25",
        "UPDATE public.readings SET v = -4 WHERE id = 21",
        // rows changed only in a column one model does not read: both
        // parts hold them as they were and are, and they cancel out; the
        // other model's minimum moves, and the maximum's row is among them
        "UPDATE public.readings SET w = w || '!' WHERE g IN ('b', 'c', 'i')",
        "UPDATE public.readings SET w = 'a' WHERE v = (SELECT max(v) FROM public.readings WHERE g = 'b')",
    ];
    let client = run_delta_steps(&app, declared, "reading_", &steps).await;
    // The averages kept by delta read as the query's own, digit for digit
    // (EXCEPT compares numerics by value: 1.5 = 1.50); the averages over
    // values of any scale, or beside a count(*), kept no model by delta.
    let loose: i64 = client
        .query_one(
            "SELECT count(delta_kinds) FROM pgcqrs.read_model_sources WHERE model IN ('loose_means', 'ordered_words')",
            &[],
        )
        .await
        .expect("kinds")
        .get(0);
    assert_eq!(loose, 0, "loose_means kept by delta");
    let differ: i64 = client
        .query_one(
            "SELECT count(*) FROM (
                 SELECT g, mean::text, mean_positive::text, mean_id::text FROM read.reading_means
                 EXCEPT ALL
                 SELECT g, mean::text, mean_positive::text, mean_id::text FROM pgcqrs_defs.reading_means) x",
            &[],
        )
        .await
        .expect("averages as text")
        .get(0);
    assert_eq!(differ, 0, "averages that differ as text");
}

/// A value rewritten in another form that compares equal (1.5 as 1.50, a
/// json document with other spacing) is a change: the sum's digits, the
/// number's text and the document's text move in a model kept by delta,
/// one kept by key and one whose touched groups are recomputed. A row
/// rewritten byte for byte is still not captured, and an old row's NULL
/// document is rebuilt as NULL. What the captured JSON cannot tell apart
/// (-0 and 0, a jsonb null and NULL, json inside another type) counts as
/// changed, and a regclass naming no relation is read back. (A sum kept by delta
/// keeps the largest scale it met, so no step takes away a group's only
/// value of its largest scale: decision 0003, V20.)
#[tokio::test]
async fn a_value_rewritten_in_another_form_reaches_every_model() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE DOMAIN public.doc AS json;
             CREATE TABLE public.forms (id int PRIMARY KEY, g text NOT NULL, n numeric, j json,
                                        f float8, d jsonb, r regclass, e public.doc[]);
             INSERT INTO public.forms VALUES (1, 'a', 1.5, '{\"k\": 1}', 0, '{}', 'pg_class', '{}'),
                                             (2, 'a', 2, '[1,2]', 1.5, NULL, 'pg_class', '{}'),
                                             (3, 'b', 0.5, '{}', 2, '[]', 'pg_class', '{}');
             SELECT pgcqrs.define_read_model(
                 name => 'form_sums',
                 query => $$SELECT g, count(*) AS n, sum(n) AS total FROM public.forms GROUP BY g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'form_texts',
                 query => $$SELECT id, g, n::text AS n_text, f::text AS f_text, d::text AS d_text
                           FROM public.forms$$,
                 key => ARRAY['id']);
             SELECT pgcqrs.define_read_model(
                 name => 'form_docs',
                 query => $$SELECT id, j::text AS j_text FROM public.forms$$,
                 key => ARRAY['id']);
             SELECT pgcqrs.define_read_model(
                 name => 'form_arrays',
                 query => $$SELECT id, e::text AS e_text FROM public.forms$$,
                 key => ARRAY['id']);
             SELECT pgcqrs.define_read_model(
                 name => 'form_lists',
                 query => $$SELECT g, string_agg(n::text, ',' ORDER BY id) AS ns FROM public.forms GROUP BY g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'form_counts',
                 query => $$SELECT g, count(*) AS n, count(j) AS docs,
                                   count(*) FILTER (WHERE r::oid = 0) AS unbound
                           FROM public.forms GROUP BY g$$,
                 key => ARRAY['g']);
             INSERT INTO public.forms VALUES (4, 'b', 7.5, '[]', 3, '1', '-', '{}'),
                                             (5, 'b', 1, NULL, 4, '2', 'pg_class', '{}')",
        )
        .await
        .expect("declare");
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("load the catalog");
    let models = refresher.models();
    let kept_by_delta: bool = client
        .query_one(
            "SELECT bool_and(delta_kinds IS NOT NULL) FROM pgcqrs.read_model_sources
              WHERE model IN ('form_sums', 'form_counts')",
            &[],
        )
        .await
        .expect("sources")
        .get(0);
    assert!(kept_by_delta, "form_sums and form_counts are kept by delta");
    for model in &models {
        catch_up(refresher, model, "the first batch").await;
    }
    let steps = [
        "UPDATE public.forms SET n = 1.50 WHERE id = 1",
        "UPDATE public.forms SET j = '{\"k\":1}' WHERE id = 1",
        "UPDATE public.forms SET n = 2.000, j = '[1, 2]' WHERE id = 2",
        "UPDATE public.forms SET g = 'a', j = '{ }' WHERE id = 3",
        // a document that is NULL, rebuilt as NULL: count(j) does not move
        "UPDATE public.forms SET n = 2 WHERE id = 5",
        // what the captured JSON cannot tell apart: -0 from 0, a jsonb
        // null from NULL, json inside an array of a domain
        "UPDATE public.forms SET f = '-0' WHERE id = 1",
        "UPDATE public.forms SET d = 'null' WHERE id = 2",
        "UPDATE public.forms SET e = ARRAY['{\"a\": 1}']::public.doc[] WHERE id = 3",
        "UPDATE public.forms SET e = ARRAY['{\"a\":1}']::public.doc[] WHERE id = 3",
        // a regclass of no relation ('-'), read back from the old row
        "UPDATE public.forms SET n = n + 1 WHERE id = 4",
    ];
    for (i, step) in steps.iter().enumerate() {
        write_and_catch_up(client, refresher, &models, i, step).await;
        // as text, both ways: EXCEPT would take 1.5 for 1.50
        for model in &models {
            assert_equal_as_text(client, &model.model.name, &format!("step {i} ({step})")).await;
        }
    }
    let total: String = client
        .query_one("SELECT total::text FROM read.form_sums WHERE g = 'a'", &[])
        .await
        .expect("sum")
        .get(0);
    assert_eq!(total, "4.000", "1.50 + 2.000 + 0.5");
    // The same bytes written again: nothing to capture.
    let captured = "SELECT count(*) FROM pgcqrs.changes WHERE relid = 'public.forms'::regclass";
    let before: i64 = client.query_one(captured, &[]).await.expect("count").get(0);
    client
        .batch_execute("UPDATE public.forms SET n = n, j = j, f = f, d = d, r = r, e = e")
        .await
        .expect("rewrite");
    let after: i64 = client.query_one(captured, &[]).await.expect("count").get(0);
    assert_eq!(after, before, "a row rewritten byte for byte was captured");
}

/// A type that `to_jsonb` writes through a cast to json (hstore, as
/// PostGIS's geometry) is captured as its own text: old rows holding one
/// are rebuilt by every kind of batch (a delta, the groups touched, the
/// keys changed), alone, in an array, in a composite and under a domain.
/// After each write every model equals its query as text, both ways, and
/// none was kept by recomputing it whole (which is what a batch that
/// could not read the old rows fell back to).
#[tokio::test]
async fn a_type_written_to_json_by_a_cast_is_rebuilt_from_its_text() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    client
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS hstore;
             CREATE DOMAIN public.attrs AS hstore;
             CREATE TYPE public.tagged AS (label text, h hstore);
             CREATE TABLE public.items (id int PRIMARY KEY, g text NOT NULL, h public.attrs,
                                        hs hstore[], t public.tagged);
             INSERT INTO public.items
             SELECT i, 'g' || (i % 3), hstore(ARRAY['color', 'size'], ARRAY['c' || (i % 4), i::text]),
                    ARRAY[hstore('a', i::text)], ROW('l' || i, hstore('k', i::text))::public.tagged
               FROM generate_series(1, 12) i;
             SELECT pgcqrs.define_read_model(
                 name => 'item_colors',
                 query => $$SELECT h -> 'color' AS color, count(*) AS n, sum((h -> 'size')::int) AS size
                           FROM public.items GROUP BY 1$$,
                 key => ARRAY['color']);
             SELECT pgcqrs.define_read_model(
                 name => 'item_extremes',
                 query => $$SELECT g, max(h -> 'size') AS largest, count(DISTINCT hs) AS kinds,
                                   min((t).h -> 'k') AS first_k
                           FROM public.items GROUP BY g$$,
                 key => ARRAY['g']);
             SELECT pgcqrs.define_read_model(
                 name => 'item_texts',
                 query => $$SELECT id, g, h::text AS h, hs::text AS hs, t::text AS t FROM public.items$$,
                 key => ARRAY['id']);
             UPDATE public.items SET g = g WHERE id = 1",
        )
        .await
        .expect("declare");
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("load the catalog");
    let models: Vec<_> = refresher
        .models()
        .into_iter()
        .filter(|m| m.model.name.starts_with("item_"))
        .collect();
    assert_eq!(models.len(), 3, "the three item_ models loaded");
    for model in &models {
        catch_up(refresher, model, "the first batch").await;
    }
    let steps = [
        "UPDATE public.items SET h = h || hstore('color', 'c9') WHERE id < 5",
        "UPDATE public.items SET h = h || hstore('size', '99') WHERE id = 6",
        "UPDATE public.items SET hs = ARRAY[hstore('b', '2'), NULL] WHERE id IN (2, 7)",
        "UPDATE public.items SET t = ROW('moved', hstore('k', '0'))::public.tagged WHERE id = 8",
        "UPDATE public.items SET g = 'g9', h = hstore('color', 'c5') WHERE id = 9",
        "DELETE FROM public.items WHERE id IN (3, 10)",
        "INSERT INTO public.items VALUES (13, 'g1', 'color=>c0, size=>5', NULL, NULL)",
        "UPDATE public.items SET g = 'g0' WHERE id = 13",
    ];
    for (i, step) in steps.iter().enumerate() {
        write_and_catch_up(client, refresher, &models, i, step).await;
        for model in &models {
            let name = &model.model.name;
            assert_equal_as_text(client, name, &format!("step {i} ({step})")).await;
            assert_ne!(
                last_refresh_mode(client, name).await.as_deref(),
                Some("full"),
                "after step {i} ({step}): read.{name} was recomputed whole"
            );
        }
    }
}

/// A column read only through a whole-row reference (`to_jsonb(p)`,
/// `p::text`) is a column the query reads: changing it alone reaches a
/// keyed model and a grouped one kept by delta. Keys and values of domain
/// types (checked when written) are compared as their base types, with
/// the domain's or the column's collation.
#[tokio::test]
async fn a_column_read_through_the_whole_row_moves_the_models_that_read_it() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let declared = "CREATE DOMAIN public.tag AS text COLLATE \"C\" CHECK (VALUE ~ '^[a-z0-9-]+$');
             CREATE DOMAIN public.amount AS numeric(12, 2) CHECK (VALUE >= 0);
             CREATE TABLE public.parcels (id public.tag PRIMARY KEY, g text COLLATE \"und-x-icu\" NOT NULL, w public.amount NOT NULL,
                                          note text);
             SELECT pgcqrs.define_read_model(
                 name => 'parcel_docs',
                 query => $$SELECT p.id, p.w, to_jsonb(p) AS doc FROM public.parcels p$$,
                 key => ARRAY['id']);
             SELECT pgcqrs.define_read_model(
                 name => 'parcel_sums',
                 query => $$SELECT p.g, count(*) AS n, sum(p.w) AS w, sum(length(p::text)) AS chars,
                                   min(p.id) AS first_id, count(*) FILTER (WHERE p.g < 'a') AS upper_g
                           FROM public.parcels p GROUP BY p.g$$,
                 key => ARRAY['g']);
             INSERT INTO public.parcels VALUES ('a-1', 'x', 1.5, 'n')";
    let steps = [
        "INSERT INTO public.parcels VALUES ('a-2', 'x', 2, 'm'), ('b-1', 'y', 0, NULL), ('c-1', 'Y', 1, NULL), ('c-2', 'Y', 2, NULL)",
        // only the whole row reads the note
        "UPDATE public.parcels SET note = 'a longer note' WHERE id = 'a-1'",
        "UPDATE public.parcels SET w = w + 1, g = 'y' WHERE id = 'a-2'",
        "UPDATE public.parcels SET note = NULL WHERE id = 'a-1'",
        "DELETE FROM public.parcels WHERE id = 'b-1'",
        "UPDATE public.parcels SET g = 'x' WHERE id = 'c-2'",
    ];
    let client = run_delta_steps(&app, declared, "parcel_sums", &steps).await;
    let columns: Vec<String> = client
        .query_one(
            "SELECT columns FROM pgcqrs.read_model_sources WHERE model = 'parcel_docs'",
            &[],
        )
        .await
        .expect("sources")
        .get(0);
    assert_eq!(columns, ["id", "g", "w", "note"]);
}

/// A delta across a join, both tables changed in one batch: each table's
/// term reads the other's later changes as they were, so a row moved
/// between groups on both sides at once is counted once, and a
/// distinct count over the key of the last term stays a count.
#[tokio::test]
async fn a_delta_across_a_join_counts_changes_to_both_tables_once() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let declared = "CREATE TABLE public.sites (id int PRIMARY KEY, region text NOT NULL, open boolean NOT NULL);
             CREATE TABLE public.visits (id int PRIMARY KEY, site int NOT NULL, n int NOT NULL);
             INSERT INTO public.sites VALUES (1, 'north', true), (2, 'south', true), (3, 'north', false);
             INSERT INTO public.visits SELECT g, g % 3 + 1, g FROM generate_series(1, 30) g;
             SELECT pgcqrs.define_read_model(
                 name => 'region_visits',
                 query => $$SELECT s.region, count(*) AS visits, sum(v.n) AS n,
                                   count(DISTINCT s.id) FILTER (WHERE s.open) AS open_sites,
                                   avg(v.n) AS mean_n, count(v.n) AS counted
                           FROM public.visits v JOIN public.sites s ON s.id = v.site
                           GROUP BY s.region$$,
                 key => ARRAY['region']);
             SELECT pgcqrs.define_read_model(
                 name => 'region_visits_busy',
                 query => $$SELECT s.id AS site, count(v.id) AS visits
                           FROM public.sites s LEFT JOIN public.visits v ON v.site = s.id
                           WHERE v.n > 25 GROUP BY s.id$$,
                 key => ARRAY['site']);
             SELECT pgcqrs.define_read_model(
                 name => 'sites_by_either',
                 query => $$SELECT s.region, count(DISTINCT v.site) AS sites
                           FROM public.visits v JOIN public.sites s ON s.id = v.site OR s.id = v.n
                           GROUP BY s.region$$,
                 key => ARRAY['region']);
             SELECT pgcqrs.define_read_model(
                 name => 'sites_mean_only',
                 query => $$SELECT s.region, avg(v.n) AS mean_n, sum(v.n) FILTER (WHERE v.n > 2) AS n
                           FROM public.visits v JOIN public.sites s ON s.id = v.site
                           GROUP BY s.region$$,
                 key => ARRAY['region']);
             UPDATE public.visits SET n = n + 1 WHERE id = 1";
    let steps = [
        // under the outer join, a condition on visits empties site 1's group
        "UPDATE public.visits SET n = 1 WHERE id IN (27, 30)",
        // a site moves region while visits move between sites
        "UPDATE public.sites SET region = 'south' WHERE id = 1;
         UPDATE public.visits SET site = 1 WHERE id IN (2, 3);
         UPDATE public.visits SET site = 2 WHERE id = 4",
        // a new site with new visits, and a site closed
        "INSERT INTO public.sites VALUES (4, 'east', true);
         INSERT INTO public.visits VALUES (100, 4, 5), (101, 4, 6);
         UPDATE public.sites SET open = false WHERE id = 2",
        // a site and its visits removed, another region emptied
        "DELETE FROM public.visits WHERE site = 3;
         DELETE FROM public.sites WHERE id = 3;
         UPDATE public.visits SET n = 0 WHERE site = 4",
        // a column added to a table, then both changed: the first versions
        // of its rows keep their old shape
        "ALTER TABLE public.sites ADD COLUMN note text;
         UPDATE public.sites SET region = 'north', note = 'moved' WHERE id = 2;
         UPDATE public.visits SET site = 2 WHERE id = 6",
        // both sides changed back and forth in one transaction
        "UPDATE public.sites SET region = 'west' WHERE id = 4;
         UPDATE public.visits SET site = 4 WHERE id = 5;
         UPDATE public.sites SET region = 'east' WHERE id = 4;
         UPDATE public.sites SET open = true WHERE id = 2",
    ];
    let client = run_delta_steps(&app, declared, "region_visits", &steps).await;
    // Both tables' changes were kept by delta, the average with them (a
    // sum and a count of its values beside it); an equality inside an OR
    // does not make a distinct count a count, and an average without the
    // count of its values, or with a sum of others, is not kept by delta.
    let kept: Vec<(String, i64)> = client
        .query(
            "SELECT model, count(delta_kinds) FROM pgcqrs.read_model_sources
              WHERE model IN ('region_visits', 'sites_by_either', 'sites_mean_only') GROUP BY model ORDER BY model",
            &[],
        )
        .await
        .expect("kinds")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        kept,
        [
            ("region_visits".to_owned(), 2),
            ("sites_by_either".to_owned(), 0),
            ("sites_mean_only".to_owned(), 0)
        ]
    );
    let why: String = client
        .query_one(
            "SELECT kept_reason FROM pgcqrs.read_models WHERE name = 'sites_mean_only'",
            &[],
        )
        .await
        .expect("kept_reason")
        .get(0);
    assert!(
        why.ends_with("; not by delta, for one: mean_n is an avg without a sum and a count of the same values beside it"),
        "{why}"
    );
}

/// Keys whose JSON depends on the session's settings (a time with time
/// zone, an interval) and values that do (a float): rows changed in one
/// batch from sessions in different time zones, interval styles and float
/// precisions, the refresher in yet another zone. Each row is still one
/// key, a removed float maximum is still seen, and every model equals its
/// query.
#[tokio::test]
async fn rows_written_from_sessions_with_different_settings_are_one_key_each() {
    let db = TestDb::create().await;
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {0} SET timezone TO 'Pacific/Chatham';
             ALTER DATABASE {0} SET extra_float_digits TO 0;
             ALTER DATABASE {0} SET DateStyle TO 'SQL, DMY'",
            db.name
        ))
        .await
        .expect("set the database's time zone");
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .on(db)
        .start()
        .await;
    let declared = "CREATE TABLE public.sensors (id text PRIMARY KEY, site text NOT NULL);
             CREATE TABLE public.samples (sensor text NOT NULL, at timestamptz NOT NULL, span interval NOT NULL,
                                          v numeric NOT NULL, w float8 NOT NULL, PRIMARY KEY (sensor, at, span));
             INSERT INTO public.sensors VALUES ('s1', 'north'), ('s2', 'south'), ('s3', 'north');
             INSERT INTO public.samples
             SELECT 's' || (g % 3 + 1), timestamptz '2026-03-29 00:30:00+00' + g * interval '17 minutes',
                    interval '1 hour', g, g / 7.0
               FROM generate_series(1, 60) g;
             SELECT pgcqrs.define_read_model(
                 name => 'site_samples',
                 query => $$SELECT s.site, count(*) AS n, sum(x.v) AS v, max(x.w) AS top
                           FROM public.sensors s JOIN public.samples x ON x.sensor = s.id GROUP BY s.site$$,
                 key => ARRAY['site']);
             SELECT pgcqrs.define_read_model(
                 name => 'site_sample_sums',
                 query => $$SELECT s.site, count(*) AS n, sum(x.v) AS v
                           FROM public.sensors s JOIN public.samples x ON x.sensor = s.id GROUP BY s.site$$,
                 key => ARRAY['site']);
             SELECT pgcqrs.define_read_model(
                 name => 'sample_rows',
                 query => $$SELECT x.sensor, x.at, x.span, x.v, x.w, s.site
                           FROM public.samples x JOIN public.sensors s ON s.id = x.sensor$$,
                 key => ARRAY['sensor', 'at', 'span']);
             CREATE TABLE public.bookings (id int PRIMARY KEY, sensor text NOT NULL, r daterange NOT NULL);
             INSERT INTO public.bookings
             SELECT g, 's' || (g % 3 + 1), daterange(date '2026-01-01' + g, date '2026-01-01' + 2 * g)
               FROM generate_series(1, 12) g;
             SELECT pgcqrs.define_read_model(
                 name => 'site_booked_days',
                 query => $$SELECT s.site, count(*) AS n, sum(upper(b.r) - lower(b.r)) AS days
                           FROM public.sensors s JOIN public.bookings b ON b.sensor = s.id GROUP BY s.site$$,
                 key => ARRAY['site']);
             UPDATE public.samples SET v = v + 1 WHERE v = 1";
    let steps = [
        // the same rows changed from two time zones
        "SET TimeZone = 'America/New_York'; UPDATE public.samples SET v = v + 10 WHERE sensor = 's1';
         SET TimeZone = 'Asia/Tokyo'; UPDATE public.samples SET v = v + 5 WHERE sensor = 's1' AND v > 20;
         RESET ALL",
        // both tables changed: the sensors' term reads the samples as they
        // were, leaving out the changed ones by their keys
        "SET TimeZone = 'Asia/Kolkata'; UPDATE public.sensors SET site = 'south' WHERE id = 's3';
         SET TimeZone = 'America/Los_Angeles'; UPDATE public.samples SET sensor = 's3' WHERE sensor = 's2' AND v < 30;
         UPDATE public.samples SET v = v - 1 WHERE sensor = 's1' AND v > 40;
         RESET ALL",
        // each site's maximum removed by a session that writes floats rounded
        "SET extra_float_digits = 0; UPDATE public.samples x SET w = 0
          WHERE w = (SELECT max(y.w) FROM public.samples y JOIN public.sensors s ON s.id = y.sensor
                      WHERE s.site = (SELECT site FROM public.sensors WHERE id = x.sensor));
         RESET ALL",
        // the same rows changed under two interval styles
        "SET IntervalStyle = sql_standard; UPDATE public.samples SET v = v * 2 WHERE sensor = 's2';
         SET IntervalStyle = iso_8601; UPDATE public.samples SET v = v + 1 WHERE sensor = 's2';
         RESET ALL",
        // deleted in one zone, added again in another
        "SET TimeZone = 'Australia/Adelaide'; DELETE FROM public.samples WHERE sensor = 's1' AND v > 30;
         SET TimeZone = 'UTC'; INSERT INTO public.samples
         SELECT 's1', timestamptz '2026-03-29 00:30:00+00' + g * interval '17 minutes', interval '1 hour', 1, 1
           FROM generate_series(1, 60) g WHERE g % 3 = 0 ON CONFLICT DO NOTHING;
         RESET ALL",
        // a float changed by less than the refresher's session renders
        // (extra_float_digits = 0 there: 0.10000000000000002 reads 0.1)
        "UPDATE public.samples SET w = 0.1 WHERE sensor = 's1'",
        "UPDATE public.samples SET w = 0.10000000000000002
          WHERE sensor = 's1' AND v = (SELECT min(v) FROM public.samples WHERE sensor = 's1')",
        // dates written month first, read by a refresher whose dates are
        // day first
        "SET DateStyle = 'SQL, MDY'; UPDATE public.bookings SET sensor = 's2' WHERE id % 4 = 0;
         UPDATE public.bookings SET r = daterange(lower(r), upper(r) + 40) WHERE id % 4 = 1;
         RESET ALL",
        // a key rewritten to an equal value that reads otherwise, the row
        // changed before and after in the same batch
        "UPDATE public.samples SET span = interval '1 day' WHERE sensor = 's2'",
        "UPDATE public.samples SET v = v + 1 WHERE span = interval '1 day';
         UPDATE public.samples SET span = interval '24:00:00' WHERE span = interval '1 day';
         UPDATE public.samples SET v = v + 2 WHERE span = interval '1 day'",
    ];
    let client = run_delta_steps(&app, declared, "site_sample", &steps).await;
    // one key per row: the captured changes of a row, from every session,
    // name it alike
    let keys: Vec<(i64, i64)> = client
        .query(
            "SELECT count(DISTINCT key), count(DISTINCT (key ->> 0, (key ->> 1)::timestamptz, (key ->> 2)::interval))
               FROM pgcqrs.changes WHERE relid = 'public.samples'::regclass",
            &[],
        )
        .await
        .expect("captured keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(keys[0].1 > 0, "the changes are still there to look at");
    assert_eq!(keys[0].0, keys[0].1, "one JSON key per row: {keys:?}");
}

/// Tables keyed by types a cast from text does not read back (an array, a
/// composite, a JSON string), by an extension's types (`ltree`, whose
/// equality the capture must name with its schema; `citext` with a
/// collation of its own, whose values are equal as the database's
/// collation says: here `C`, where `Élan` and `élan` are two), and by an interval too
/// large to justify: every write is captured, every batch is a delta, and
/// every model equals its query. A table created under the name of one
/// renamed since its capture gets a capture of its own.
#[tokio::test]
async fn keys_of_every_kind_name_their_rows_once() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let declared = "CREATE EXTENSION IF NOT EXISTS citext;
             CREATE EXTENSION IF NOT EXISTS ltree;
             CREATE TYPE public.spot AS (x int, y text);
             CREATE TABLE public.by_array (k int[] PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             CREATE TABLE public.by_spot (k public.spot PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             CREATE TABLE public.by_doc (k jsonb PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             CREATE TABLE public.by_path (k ltree PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             CREATE TABLE public.by_name (k citext COLLATE \"und-x-icu\" PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             CREATE TABLE public.by_span (k interval PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             INSERT INTO public.by_array VALUES ('{1,2}', 'a', 1), ('{3}', 'b', 2);
             INSERT INTO public.by_spot VALUES ('(1,x)', 'a', 1), ('(2,\"y z\")', 'b', 2);
             INSERT INTO public.by_doc VALUES ('\"plain\"', 'a', 1), ('{\"n\": [1, 2]}', 'b', 2), ('3', 'a', 3);
             INSERT INTO public.by_path VALUES ('top.left', 'a', 1), ('top.right', 'b', 2);
             INSERT INTO public.by_name VALUES ('Élan', 'a', 1), ('x', 'b', 2);
             INSERT INTO public.by_span VALUES ('1 day', 'a', 1), ('178956970 years 7 mons 2147483647 days', 'b', 2);
             SELECT pgcqrs.define_read_model(name => 'k_' || t, key => ARRAY['g'],
                        query => format($$SELECT g, count(*) AS n, sum(v) AS v FROM public.%I GROUP BY g$$, t))
               FROM unnest(ARRAY['by_array', 'by_spot', 'by_doc', 'by_path', 'by_name', 'by_span']) t;
             -- a table renamed after its capture, and another created and
             -- captured under its old name
             ALTER TABLE public.by_array RENAME TO by_array_before;
             CREATE TABLE public.by_array (code text PRIMARY KEY, g text NOT NULL);
             INSERT INTO public.by_array VALUES ('c', 'a');
             SELECT pgcqrs.define_read_model(name => 'swap_codes', key => ARRAY['code'],
                        query => $$SELECT code, g FROM public.by_array$$);
             UPDATE public.by_array SET g = 'b';
             UPDATE public.by_array_before SET v = v + 1; UPDATE public.by_spot SET v = v + 1;
             UPDATE public.by_doc SET v = v + 1; UPDATE public.by_path SET v = v + 1;
             UPDATE public.by_name SET v = v + 1; UPDATE public.by_span SET v = v + 1";
    let steps = [
        "UPDATE public.by_array_before SET v = v * 2, g = 'b' WHERE k = '{1,2}';
         INSERT INTO public.by_array_before VALUES ('{}', 'a', 5);
         UPDATE public.by_name SET v = v + 1 WHERE k = 'x';
         INSERT INTO public.by_name VALUES ('ölan', 'b', 50);
         UPDATE public.by_spot SET g = 'a' WHERE k = ROW(2, 'y z')::public.spot;
         UPDATE public.by_doc SET v = v + 10 WHERE k = '\"plain\"';
         DELETE FROM public.by_doc WHERE k = '3';
         UPDATE public.by_path SET v = 7 WHERE k = 'top.left';
         INSERT INTO public.by_span VALUES ('-2000000 years', 'a', 4), ('24:00:01', 'b', 3)",
        // keys rewritten to equal values, the rows changed before and after
        "UPDATE public.by_name SET v = v + 10 WHERE k = 'Élan';
         UPDATE public.by_name SET k = 'ÉLAN' WHERE k = 'Élan';
         UPDATE public.by_name SET v = v + 100 WHERE k = 'ölan';
         UPDATE public.by_name SET v = v + 1000, g = 'a' WHERE k = 'ölan';
         UPDATE public.by_span SET v = v + 10 WHERE k = '1 day';
         UPDATE public.by_span SET k = '24:00:00' WHERE k = '1 day';
         UPDATE public.by_span SET v = v + 100, g = 'b' WHERE k = '1 day';
         UPDATE public.by_span SET v = v + 1 WHERE k = '178956970 years 7 mons 2147483647 days'",
        "UPDATE public.by_array_before SET v = v + 1 WHERE k = '{3}';
         UPDATE public.by_array SET g = 'c'",
    ];
    run_delta_steps(&app, declared, "k_by_", &steps).await;
}

/// An upgrade from V15, whose capture wrote a time zone into such keys and
/// whose sums kept an Infinity taken away as NaN: a model over a table
/// keyed by a time, changed from two zones (its figures off, as a second
/// key for one row left them), and a model whose sum holds a NaN are
/// recomputed once and equal their queries; the built-in models (keys of
/// text, finite sums) are not recomputed.
#[tokio::test]
async fn an_upgrade_recomputes_once_the_models_it_finds_misled() {
    upgrade_from_v15(false).await;
}

/// The same upgrade where `pgcqrs.cluster_id()` is NULL, as on a managed
/// service that withholds `pg_control_system()`: the models are still
/// recomputed once.
#[tokio::test]
async fn an_upgrade_recomputes_the_misled_models_where_the_cluster_has_no_identity() {
    upgrade_from_v15(true).await;
}

async fn upgrade_from_v15(hidden_identity: bool) {
    let db = TestDb::create_at(15).await;
    if hidden_identity {
        db.client()
            .await
            .batch_execute(
                "CREATE OR REPLACE FUNCTION pgcqrs.cluster_id() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT NULL::bigint';
                 UPDATE read.read_model_status SET cluster_id = NULL;",
            )
            .await
            .expect("a cluster without an identity");
    }
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE public.meter (id text, at timestamptz, kwh numeric NOT NULL, PRIMARY KEY (id, at));
             INSERT INTO public.meter SELECT 'm' || (g % 4), timestamptz '2026-10-25 00:00+00' + g * interval '20 minutes', g
               FROM generate_series(1, 80) g;
             SELECT pgcqrs.define_read_model(
                 name => 'meter_totals',
                 query => $$SELECT id, count(*) AS n, sum(kwh) AS kwh FROM public.meter GROUP BY id$$,
                 key => ARRAY['id'], mode => 'incremental');
             -- as a second key for one row left it under V15
             UPDATE read.meter_totals SET kwh = kwh + 5 WHERE id = 'm1';
             SET TimeZone = 'Europe/Berlin'; UPDATE public.meter SET kwh = kwh + 1 WHERE id = 'm2';
             SET TimeZone = 'America/Sao_Paulo'; UPDATE public.meter SET kwh = kwh + 2 WHERE id = 'm2';
             CREATE TABLE public.levels (id int PRIMARY KEY, g text NOT NULL, v numeric NOT NULL);
             INSERT INTO public.levels SELECT g, 'g' || (g % 2), g FROM generate_series(1, 10) g;
             SELECT pgcqrs.define_read_model(
                 name => 'level_sums',
                 query => $$SELECT g, count(*) AS n, sum(v) AS v FROM public.levels GROUP BY g$$,
                 key => ARRAY['g']);
             -- as an Infinity added and taken away left it under V15
             UPDATE read.level_sums SET v = 'NaN' WHERE g = 'g0';
             -- a table renamed after its capture: upgrades must still
             -- reach the function its triggers call
             CREATE TABLE public.probes (id text, at timestamptz, v int NOT NULL, PRIMARY KEY (id, at));
             INSERT INTO public.probes SELECT 'p' || (g % 2), timestamptz '2026-10-25 00:00+00' + g * interval '1 hour', g
               FROM generate_series(1, 10) g;
             SELECT pgcqrs.define_read_model(
                 name => 'probe_sums',
                 query => $$SELECT id, count(*) AS n, sum(v) AS v FROM public.probes GROUP BY id$$,
                 key => ARRAY['id']);
             ALTER TABLE public.probes RENAME TO probe_log;
             -- kept in batches under V15, over a table keyed by a
             -- nondeterministic collation
             CREATE COLLATION public.folded (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
             CREATE TABLE public.tags (code text COLLATE public.folded PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             INSERT INTO public.tags VALUES ('North', 'a', 1), ('south', 'a', 2), ('East', 'b', 3);
             SELECT pgcqrs.define_read_model(
                 name => 'tag_sums',
                 query => $$SELECT g, count(*) AS n, sum(v) AS v FROM public.tags GROUP BY g$$,
                 key => ARRAY['g']);",
        )
        .await
        .expect("a V15 database with a model over a table keyed by a time");
    // what `pgcqrs serve` does first
    pgcqrs::db::migrate(&db.url).await.expect("upgrade");
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .on(db)
        .start()
        .await;
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("load the catalog");
    let models = refresher.models();
    assert_eq!(
        models.len(),
        9,
        "the five built-in models and four declared"
    );
    let kept: String = app
        .client()
        .await
        .query_one(
            "SELECT kept FROM pgcqrs.read_models WHERE name = 'tag_sums'",
            &[],
        )
        .await
        .expect("tag_sums")
        .get(0);
    assert_eq!(
        kept, "full",
        "declared again over a nondeterministic key, and kept whole"
    );
    for model in &models {
        catch_up(refresher, model, "after the upgrade").await;
    }
    let client = app.client().await;
    assert_models_equal_their_queries(client, "the upgrade").await;
    let recomputed: Vec<String> = client
        .query(
            "SELECT DISTINCT view_name FROM read.refresh_log WHERE kind = 'resync' ORDER BY 1",
            &[],
        )
        .await
        .expect("refresh log")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recomputed, ["level_sums", "meter_totals", "probe_sums"]);
    // and kept by delta again after it
    client
        .batch_execute(
            "SET TimeZone = 'Asia/Tokyo'; UPDATE public.meter SET kwh = kwh * 2 WHERE id IN ('m1', 'm2');
             RESET TimeZone; UPDATE public.meter SET kwh = kwh - 1 WHERE id = 'm2';
             UPDATE public.levels SET v = v + 3, g = 'g0' WHERE id IN (3, 5);
             UPDATE public.tags SET v = v + 10 WHERE code = 'North';
             UPDATE public.tags SET code = 'NORTH' WHERE code = 'north';
             UPDATE public.tags SET v = v + 100 WHERE code = 'north';
             SET TimeZone = 'Asia/Tokyo'; UPDATE public.probe_log SET v = v + 1;
             RESET TimeZone; UPDATE public.probe_log SET v = v + 1",
        )
        .await
        .expect("writes after the upgrade");
    for model in &models {
        catch_up(refresher, model, "writes after the upgrade").await;
    }
    assert_models_equal_their_queries(client, "writes after the upgrade").await;
    for name in ["level_sums", "meter_totals"] {
        let mode = last_refresh_mode(client, name).await;
        assert_eq!(mode.as_deref(), Some("delta"), "{name} after the upgrade");
    }
    let keys = client
        .query_one(
            "SELECT count(DISTINCT key), count(DISTINCT (key ->> 0, (key ->> 1)::timestamptz))
               FROM pgcqrs.changes WHERE relid = 'public.probe_log'::regclass",
            &[],
        )
        .await
        .expect("captured keys");
    let (json, rows): (i64, i64) = (keys.get(0), keys.get(1));
    assert_eq!(
        (json, rows),
        (10, 10),
        "one JSON key per row of the renamed table"
    );
}

/// An upgrade from V19, where an average kept a model from deltas: the
/// model whose averages (of a numeric(p, s) and of integers) have a sum and
/// a count of the same values beside them is kept by delta from then on
/// and equals its query; those whose average has only a count(*) beside
/// it, or averages a numeric of any scale, are not, and equal their
/// queries too.
#[tokio::test]
async fn an_upgrade_keeps_by_delta_the_averages_beside_their_sum_and_count() {
    let db = TestDb::create_at(19).await;
    db.client()
        .await
        .batch_execute(
            "CREATE DOMAIN public.cents AS numeric(12, 2) CHECK (VALUE >= 0);
             CREATE TABLE public.trips (id int PRIMARY KEY, route text NOT NULL, km numeric(8, 3) NOT NULL, fare int,
                                         raw numeric, big int8, price public.cents);
             INSERT INTO public.trips SELECT g, 'r' || (g % 3), g * 1.5, g % 7, g / 7.0, NULL, g / 3.0 FROM generate_series(1, 30) g;
             SELECT pgcqrs.define_read_model(
                 name => 'route_means',
                 query => $$SELECT route, count(*) AS trips, count(km) AS km_n, sum(km) AS km, avg(km) AS mean_km,
                                   avg(fare) AS mean_fare, count(fare) AS fares, coalesce(sum(fare), 0.0) AS fare_total,
                                   avg(big) AS mean_big, count(big) AS bigs, coalesce(sum(big), 0.0) AS big_total,
                                   avg(price) AS mean_price, sum(price) AS price_total, count(price) AS prices
                           FROM public.trips GROUP BY route$$,
                 key => ARRAY['route']);
             SELECT pgcqrs.define_read_model(
                 name => 'route_mean_only',
                 query => $$SELECT route, avg(fare) AS mean_fare, sum(fare) AS fare_total, count(*) AS trips
                           FROM public.trips GROUP BY route$$,
                 key => ARRAY['route']);
             -- an aggregate with an ORDER BY: V12 skipped its column and
             -- read the kinds after it shifted by one
             SELECT pgcqrs.define_read_model(
                 name => 'route_words',
                 query => $$SELECT route, string_agg(id::text, ',' ORDER BY id) AS ids, count(*) AS trips
                           FROM public.trips GROUP BY route$$,
                 key => ARRAY['route']);
             SELECT pgcqrs.define_read_model(
                 name => 'route_last',
                 query => $$SELECT route, max(id ORDER BY km) AS last_id, sum(fare) AS fare_total, count(fare) AS fares
                           FROM public.trips GROUP BY route$$,
                 key => ARRAY['route']);
             SELECT pgcqrs.define_read_model(
                 name => 'route_ordered',
                 query => $$SELECT route, avg(fare ORDER BY id) AS mean_fare, sum(fare) AS fare_total, count(fare) AS fares
                           FROM public.trips GROUP BY route$$,
                 key => ARRAY['route']);
             SELECT pgcqrs.define_read_model(
                 name => 'route_mean_loose',
                 query => $$SELECT route, avg(raw) AS mean_raw, sum(raw) AS raw_total, count(raw) AS raws
                           FROM public.trips GROUP BY route$$,
                 key => ARRAY['route']);",
        )
        .await
        .expect("a V19 database with models that average");
    pgcqrs::db::migrate(&db.url).await.expect("upgrade");
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .on(db)
        .start()
        .await;
    let client = app.client().await;
    let kinds: Vec<(String, Option<Vec<String>>)> = pairs(
        client,
        "SELECT model, delta_kinds FROM pgcqrs.read_model_sources
              WHERE model LIKE 'route_mean%' ORDER BY model COLLATE \"C\"",
    )
    .await;
    assert_eq!(
        kinds,
        [
            ("route_mean_loose".to_owned(), None),
            ("route_mean_only".to_owned(), None),
            (
                "route_means".to_owned(),
                Some(
                    [
                        "group",
                        "count",
                        "count",
                        "sum",
                        "avg:4:3:3",
                        "avg:8:7:0",
                        "count",
                        "sum0",
                        "avg:11:10:0",
                        "count",
                        "sum0",
                        "avg:13:14:2",
                        "sum",
                        "count"
                    ]
                    .map(String::from)
                    .to_vec()
                )
            )
        ]
    );
    // and the others say which average keeps them from deltas, and why
    let reasons: Vec<String> = first_column(
        client,
        "SELECT kept_reason FROM pgcqrs.read_models WHERE name LIKE 'route_mean%' ORDER BY name COLLATE \"C\"",
    )
    .await;
    assert!(
        reasons[0].ends_with("; not by delta, for one: mean_raw averages values of no one scale (only a column of integers or of numeric(p, s) moves by delta)"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].ends_with("; not by delta, for one: mean_fare is an avg without a sum and a count of the same values beside it"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].ends_with("; counts and sums of trips, and the averages mean_km, mean_fare, mean_big, mean_price from them, kept by delta"),
        "{reasons:?}"
    );
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("load the catalog");
    let models = refresher.models();
    for model in &models {
        catch_up(refresher, model, "after the upgrade").await;
    }
    client
        .batch_execute(
            "UPDATE public.trips SET km = km + 0.25, fare = NULL, raw = raw * 3, price = price * 7 WHERE id % 4 = 0;
             UPDATE public.trips SET route = 'r9' WHERE id IN (3, 6);
             DELETE FROM public.trips WHERE id = 9;
             INSERT INTO public.trips VALUES (100, 'r1', 7.125, 3);
             -- a kept sum of 0.0, then integers whose average has no
             -- decimals in the query: the kept sum's scale must not show
             UPDATE public.trips SET big = 100000000000000001 + id % 2 WHERE id IN (1, 4)",
        )
        .await
        .expect("writes after the upgrade");
    for model in &models {
        catch_up(refresher, model, "writes after the upgrade").await;
    }
    assert_models_equal_their_queries(client, "writes after the upgrade").await;
    let modes: Vec<(String, String)> = pairs(
        client,
        "SELECT DISTINCT ON (view_name COLLATE \"C\") view_name, mode FROM read.refresh_log
              WHERE view_name LIKE 'route_mean%' ORDER BY view_name COLLATE \"C\", refresh_id DESC",
    )
    .await;
    assert_eq!(modes.len(), 3, "{modes:?}");
    assert_eq!(modes[2], ("route_means".to_owned(), "delta".to_owned()));
    assert!(modes[..2].iter().all(|(_, m)| m != "delta"), "{modes:?}");
    // The models V19 misread are read right (by delta where the query
    // allows it) and were recomputed once after the upgrade.
    let misread: Vec<(String, Option<Vec<String>>)> = pairs(
        client,
        "SELECT model, delta_kinds FROM pgcqrs.read_model_sources
              WHERE model IN ('route_last', 'route_ordered', 'route_words') ORDER BY model COLLATE \"C\"",
    )
    .await;
    assert_eq!(
        misread,
        [
            (
                "route_last".to_owned(),
                Some(["group", "max", "sum", "count"].map(String::from).to_vec())
            ),
            ("route_ordered".to_owned(), None),
            ("route_words".to_owned(), None)
        ]
    );
    let resynced: Vec<String> = first_column(
        client,
        "SELECT DISTINCT view_name FROM read.refresh_log WHERE kind = 'resync' ORDER BY 1",
    )
    .await;
    assert_eq!(resynced, ["route_last", "route_ordered", "route_words"]);
    let last = last_refresh_mode(client, "route_last")
        .await
        .expect("route_last refreshed");
    assert_eq!(last, "delta");
}

#[tokio::test]
async fn after_random_writes_of_every_kind_every_model_equals_its_query() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    let client = app.client().await;
    client.batch_execute(TEAM_TABLE).await.expect("team table");
    client.batch_execute(KEYED).await.expect("keyed");
    client.batch_execute(AGGREGATE).await.expect("aggregate");
    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(
                 name => 'shipment_orders',
                 query => $$SELECT s.id, s.carrier, o.id::text AS order_id, o.status, o.total
                           FROM logistics.shipments s JOIN write.orders o ON o.id = s.order_ref$$,
                 key => ARRAY['id'])",
        )
        .await
        .expect("a model across a team table and the write schema");
    // Grouped over an outer join, kept in batches; and a negation, kept whole.
    client
        .batch_execute(
            "SELECT pgcqrs.define_read_model(
                 name => 'carrier_totals',
                 query => $$SELECT c.code, c.name, count(s.id) AS shipments,
                                   coalesce(sum(s.weight_kg) FILTER (WHERE s.weight_kg > 10), 0) AS heavy_kg,
                                   max(s.order_ref) AS last_ref,
                                   avg(s.weight_kg) AS mean_kg, sum(s.weight_kg) AS kg, count(s.weight_kg) AS weighed
                           FROM logistics.carriers c LEFT JOIN logistics.shipments s ON s.carrier = c.code
                           GROUP BY c.code, c.name$$,
                 key => ARRAY['code']);
             SELECT pgcqrs.define_read_model(
                 name => 'carrier_or_none',
                 query => $$SELECT coalesce(s.carrier, 'none') AS carrier, count(*) AS n
                           FROM logistics.carriers c LEFT JOIN logistics.shipments s ON s.carrier = c.code
                           GROUP BY 1$$,
                 key => ARRAY['carrier']);
             SELECT pgcqrs.define_read_model(
                 name => 'heavy_carriers',
                 query => $$SELECT c.code, count(s.id) AS shipments, sum(s.weight_kg) AS kg
                           FROM logistics.carriers c LEFT JOIN logistics.shipments s ON s.carrier = c.code
                           WHERE s.weight_kg > 20
                           GROUP BY c.code$$,
                 key => ARRAY['code']);
             SELECT pgcqrs.define_read_model(
                 name => 'ref_weights',
                 query => $$SELECT order_ref, count(*) AS n,
                                   sum(weight_kg) FILTER (WHERE weight_kg > 40) AS heavy_kg,
                                   min(weight_kg) AS lightest_kg, max(carrier) AS last_carrier,
                                   avg(weight_kg) AS mean_kg, sum(weight_kg) AS kg, count(weight_kg) AS weighed
                           FROM logistics.shipments GROUP BY order_ref$$,
                 key => ARRAY['order_ref']);
             SELECT pgcqrs.define_read_model(
                 name => 'idle_carriers',
                 query => $$SELECT c.code FROM logistics.carriers c
                           WHERE NOT EXISTS (SELECT 1 FROM logistics.shipments s WHERE s.carrier = c.code)$$,
                 key => ARRAY['code'])",
        )
        .await
        .expect("an outer-join aggregate and a negation");
    let kept: Vec<(String, String)> = client
        .query(
            "SELECT name, kept FROM pgcqrs.read_models WHERE name IN ('carrier_totals', 'carrier_or_none', 'idle_carriers', 'customer_orders', 'product_sales') ORDER BY name",
            &[],
        )
        .await
        .expect("kept")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let kept: Vec<(&str, &str)> = kept.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        kept,
        [
            ("carrier_or_none", "full"),
            ("carrier_totals", "incremental"),
            ("customer_orders", "incremental"),
            ("idle_carriers", "full"),
            ("product_sales", "incremental")
        ]
    );
    let refresher = app.refresher.as_ref().expect("refresher");
    refresher.load(false).await.expect("reload the catalog");
    let mut rng = StdRng::seed_from_u64(20261130);
    let mut next_id = 1i64;
    for round in 0..12 {
        for _ in 0..rng.random_range(5..25) {
            let sql = match rng.random_range(0..13) {
                0..=2 => {
                    next_id += 1;
                    format!(
                        "INSERT INTO logistics.shipments (id, order_ref, carrier, weight_kg) VALUES ({next_id}, 'o-{}', '{}', {}.{})",
                        rng.random_range(0..8),
                        ["DHL", "UPS", "GLS", "C0", "C1"][rng.random_range(0..5)],
                        rng.random_range(0..50),
                        rng.random_range(0..1000)
                    )
                }
                3 => format!(
                    "UPDATE logistics.shipments SET carrier = '{}' WHERE id % 7 = {}",
                    ["DHL", "UPS", "GLS"][rng.random_range(0..3)],
                    rng.random_range(0..7)
                ),
                4 => format!(
                    "UPDATE logistics.shipments SET weight_kg = weight_kg + 1, order_ref = 'o-{}' WHERE id = {}",
                    rng.random_range(0..8),
                    rng.random_range(1..=next_id)
                ),
                5 => format!(
                    "DELETE FROM logistics.shipments WHERE id = {}",
                    rng.random_range(1..=next_id)
                ),
                6 => format!(
                    "UPDATE logistics.carriers SET name = name || '{}' WHERE code = '{}'",
                    rng.random_range(0..9),
                    ["DHL", "UPS", "GLS"][rng.random_range(0..3)]
                ),
                7 => format!(
                    "UPDATE write.customers SET name = 'Customer {}' WHERE id = 'c-1'",
                    rng.random_range(0..1000)
                ),
                8 => format!(
                    "INSERT INTO logistics.carriers VALUES ('C{0}', 'Carrier {0}') ON CONFLICT (code) DO UPDATE SET name = 'Renamed {0}'",
                    rng.random_range(0..4)
                ),
                9 => format!(
                    "DELETE FROM logistics.carriers WHERE code = '{}'",
                    ["DHL", "UPS", "GLS", "C0", "C1", "C2", "C3"][rng.random_range(0..7)]
                ),
                // sums that come back to zero
                10 => format!(
                    "UPDATE logistics.shipments SET weight_kg = -weight_kg WHERE id = {}",
                    rng.random_range(1..=next_id)
                ),
                // one row changed twice, and one deleted and added again,
                // in one transaction
                11 => {
                    let (a, b) = (rng.random_range(1..=next_id), rng.random_range(1..=next_id));
                    format!(
                        "UPDATE logistics.shipments SET weight_kg = weight_kg * 2 WHERE id = {a};
                         UPDATE logistics.shipments SET carrier = 'GLS', order_ref = 'o-1' WHERE id = {a};
                         DELETE FROM logistics.shipments WHERE id = {b};
                         INSERT INTO logistics.shipments (id, order_ref, carrier, weight_kg)
                         VALUES ({b}, 'o-2', 'UPS', 0) ON CONFLICT (id) DO NOTHING"
                    )
                }
                _ => {
                    let id = format!("o-{}", rng.random_range(0..8));
                    let exists = client
                        .query_opt("SELECT 1 FROM write.orders WHERE id = $1", &[&id])
                        .await
                        .expect("order")
                        .is_some();
                    if exists {
                        let r = app.post(&format!("/commands/orders/{id}/cancel"), serde_json::json!({"reason": "changed mind"})).await;
                        assert!(r.status().is_success() || r.status() == 409, "{}", r.status());
                        continue;
                    }
                    app.place_simple_order(&id).await;
                    continue;
                }
            };
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        if round == 4 {
            // Columns added to tables models read: the old versions of
            // their rows keep their old shape.
            client
                .batch_execute(
                    "ALTER TABLE logistics.carriers ADD COLUMN country text;
                     ALTER TABLE logistics.shipments ADD COLUMN note text",
                )
                .await
                .expect("add columns");
        }
        if rng.random_bool(0.2) {
            client
                .batch_execute("TRUNCATE logistics.shipments")
                .await
                .expect("truncate");
        }
        // Catch every model up, then compare.
        for m in refresher.models() {
            catch_up(refresher, &m, &format!("round {round}")).await;
        }
        assert_models_equal_their_queries(client, &format!("round {round}")).await;
    }
    // The grouped models were kept by delta, not only by recomputation,
    // their averages with them.
    let by_delta: Vec<String> = client
        .query(
            "SELECT DISTINCT view_name FROM read.refresh_log WHERE mode = 'delta' ORDER BY 1",
            &[],
        )
        .await
        .expect("delta batches")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        by_delta,
        [
            "carrier_totals",
            "carrier_weights",
            "customer_orders",
            "daily_sales",
            "heavy_carriers",
            "product_sales",
            "ref_weights"
        ]
    );
}
