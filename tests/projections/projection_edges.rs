//! The edges a read model must survive: a backlog larger than one batch can
//! take, a restore into another cluster, a panicking refresh, and catalog
//! changes that touch nothing a model shows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::read::*;
use crate::support::*;
use pgcqrs::config::read_models_from_env;
use pgcqrs::db::embedded::{LocalCluster, StartOptions};
use pgcqrs::db::tokio_postgres;
use pgcqrs::read_models::{RefreshOutcome, RefresherSettings};
use serde_json::{json, Value};

/// `/queries/read-models`' entry for `name`.
async fn model_status(app: &TestApp, name: &str) -> Value {
    let r = app.get("/queries/read-models").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    body["read_models"]
        .as_array()
        .expect("read_models")
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed: {body}"))
}

async fn scalar_i64(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// `n` orders `<prefix>1` ... `<prefix>n` of c-1, one Widget each, written
/// in one transaction as a bulk loader would (the events alongside, triggers
/// off); returns that transaction's id.
async fn bulk_import(client: &tokio_postgres::Client, prefix: &str, n: i64) -> String {
    client
        .batch_execute("SET session_replication_role = replica")
        .await
        .expect("loader mode");
    let token = client
        .query_one(
            "WITH o AS (
                 INSERT INTO write.orders (id, customer_id, total)
                 SELECT $1 || g, 'c-1', 19.99 FROM generate_series(1, $2::bigint) g RETURNING id),
             i AS (
                 INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
                 SELECT id, 1, 'p-1', 1, 19.99 FROM o RETURNING order_id),
             e AS (
                 INSERT INTO write.order_events (order_id, order_version, event_type, payload)
                 SELECT order_id, 1, 'OrderCreated', '{}' FROM i RETURNING 1)
             SELECT pg_current_xact_id()::text FROM (SELECT count(*) FROM e) n",
            &[&prefix, &n],
        )
        .await
        .expect("bulk import")
        .get(0);
    client
        .batch_execute("SET session_replication_role = origin")
        .await
        .expect("writer mode");
    token
}

#[tokio::test]
async fn a_backlog_of_150k_orders_in_one_transaction_is_caught_up_in_bounded_batches() {
    // 150,000 orders and their lines: 300,000 captured changes for each
    // per-order model, at least 15 batches of the 20,000 limit.
    const ORDERS: i64 = 150_000;
    let db = TestDb::create().await;
    // Each batch of the per-order models may run for 3 s at most: the whole
    // backlog in one statement would not fit.
    let mut settings = RefresherSettings::new(read_models_from_env().expect("read-model settings"));
    settings.models.set_timeout("order_summary", 3_000);
    settings.models.set_timeout("order_lines", 3_000);
    let app = TestApp::builder()
        .on(db)
        .refreshing(Refreshing::With(settings))
        .start()
        .await;
    app.seed_catalog().await;
    wait_for_startup_checks(&app).await;

    // A bulk import in one transaction, as a loader would write it.
    let client = app.client().await;
    let token = bulk_import(client, "bulk-", ORDERS).await;

    // The backlog shows, and goes down in steps.
    let seen_backlog = poll_until("the backlog to show", Duration::from_secs(30), || async {
        let s = model_status(&app, "order_summary").await;
        let backlog = s["backlog"].as_i64().unwrap_or(0);
        (backlog > 0).then_some(backlog)
    })
    .await;
    // A change is a captured row: an order and its line each.
    assert!(seen_backlog <= 2 * ORDERS, "backlog {seen_backlog}");

    // Every bulk order is visible through a min_token read of the import's
    // own token, once caught up. (About two minutes on two idle cores; the
    // bound leaves room for a machine busy with other test binaries.)
    poll_until(
        "the backlog to be caught up",
        Duration::from_secs(900),
        || async {
            let r = app.get("/queries/read-models").await;
            let body: Value = r.json().await.ok()?;
            body["read_models"]
                .as_array()?
                .iter()
                .all(|m| m["backlog"] == 0 && m["stale"] == false)
                .then_some(())
        },
    )
    .await;
    let r = app
        .http
        .get(app.url(&format!("/queries/orders/bulk-{ORDERS}")))
        .query(&[("min_token", token.as_str()), ("wait", "30")])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        scalar_i64(
            client,
            "SELECT count(*) FROM read.order_summary WHERE order_id LIKE 'bulk-%'"
        )
        .await,
        ORDERS
    );
    assert_eq!(
        scalar_i64(
            client,
            "SELECT count(*) FROM read.order_lines WHERE order_id LIKE 'bulk-%'"
        )
        .await,
        ORDERS
    );
    // In bounded steps: several batches, none over the limit, none failed
    // for good, and each batch but the last left a backlog behind it.
    let batches = client
        .query(
            "SELECT view_name, changes, backlog FROM read.refresh_log
              WHERE kind = 'batch' AND view_name IN ('order_summary', 'order_lines')
              ORDER BY refresh_id",
            &[],
        )
        .await
        .expect("refresh log");
    for view in ["order_summary", "order_lines"] {
        let mine: Vec<(i64, i64)> = batches
            .iter()
            .filter(|r| r.get::<_, String>(0) == view)
            .map(|r| (r.get(1), r.get(2)))
            .collect();
        let applied: i64 = mine.iter().map(|(c, _)| c).sum();
        assert!(applied >= ORDERS, "{view}: {applied} changes applied");
        // No batch over the limit: at least as many batches as the limit
        // divides the changes into.
        assert!(
            mine.len() as i64 >= applied / 20_000,
            "{view}: {applied} changes caught up in {} batches",
            mine.len()
        );
        assert!(
            mine.iter().all(|(c, _)| *c <= 20_000),
            "{view}: a batch took more than the limit: {mine:?}"
        );
        assert!(
            mine.iter().any(|(_, b)| *b > 0),
            "{view}: no batch left a backlog: {mine:?}"
        );
    }
    assert_views_match_write_tables(client, "catching up a bulk import").await;
}

/// Every model of `app` caught up with every change, batch after batch.
async fn catch_up_all(app: &TestApp) {
    let refresher = app.refresher.as_ref().expect("this app has no refresher");
    for m in refresher.models() {
        refresher
            .catch_up(&m, false, |_| {})
            .await
            .unwrap_or_else(|e| panic!("catching up {} failed: {e:#}", m.model.name));
    }
}

#[tokio::test]
async fn before_anything_is_measured_auto_recomputes_a_large_import_whole_and_delta_keeps_the_rest()
{
    let app = seeded_app_on_request().await;
    refresh_settled(&app).await;
    let client = app.client().await;
    client
        .batch_execute("ANALYZE write.customers, write.products, write.orders, write.order_items")
        .await
        .expect("analyze");
    // 25,000 orders (50,000 changes with their lines) against a catalog of
    // a few rows: far more changes than a twentieth of what a whole
    // recomputation of an aggregate reads.
    bulk_import(client, "import-", 25_000).await;
    let last = client
        .query_one(
            "SELECT coalesce(max(refresh_id), 0) FROM read.refresh_log",
            &[],
        )
        .await
        .expect("last refresh")
        .get::<_, i64>(0);
    catch_up_all(&app).await;
    let modes: Vec<(String, String, String)> = client
        .query(
            "SELECT view_name, coalesce(kind, ''), coalesce(mode, '') FROM read.refresh_log
              WHERE refresh_id > $1 ORDER BY refresh_id",
            &[&last],
        )
        .await
        .expect("refresh log")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mode_of = |view: &str| {
        modes
            .iter()
            .find(|(v, _, _)| v == view)
            .map(|(_, kind, mode)| (kind.as_str(), mode.as_str()))
            .unwrap_or_else(|| panic!("no refresh of {view} after the import: {modes:?}"))
    };
    // `auto`, and nothing measured yet: the whole table, in one refresh.
    for view in ["customer_orders", "product_sales"] {
        assert_eq!(mode_of(view), ("refresh", "full"), "{view}: {modes:?}");
    }
    // Declared `incremental`: by delta, however large the import.
    assert_eq!(mode_of("daily_sales"), ("batch", "delta"), "{modes:?}");
    assert_views_match_write_tables(client, "a large import").await;

    // A few orders more: a delta again, for every aggregate.
    bulk_import(client, "more-", 10).await;
    let last = client
        .query_one("SELECT max(refresh_id) FROM read.refresh_log", &[])
        .await
        .expect("last refresh")
        .get::<_, i64>(0);
    catch_up_all(&app).await;
    let deltas: Vec<String> = client
        .query(
            "SELECT view_name FROM read.refresh_log
              WHERE refresh_id > $1 AND mode = 'delta' ORDER BY view_name",
            &[&last],
        )
        .await
        .expect("refresh log")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(deltas, ["customer_orders", "daily_sales", "product_sales"]);
    assert_views_match_write_tables(client, "a small import after it").await;
}

#[tokio::test]
async fn a_batch_that_stops_inside_a_transaction_covers_no_token_of_it_until_done() {
    let app = seeded_app_on_request().await;
    refresh_settled(&app).await;
    let client = app.client().await;
    // 30,000 orders in one transaction: more than one batch takes.
    let token = bulk_import(client, "big-", 30_000).await;
    let covered = |view: &'static str| {
        let client = &client;
        let token = token.clone();
        async move {
            client
                .query_one(
                    "SELECT pg_visible_in_snapshot($1::text::xid8, current_as_of)
                       FROM read.read_model_status WHERE view_name = $2",
                    &[&token, &view],
                )
                .await
                .expect("coverage")
                .get::<_, bool>(0)
        }
    };
    let refresher = app.refresher.as_ref().expect("refresher");
    let model = refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == "order_summary")
        .expect("order_summary");
    let first = refresher.refresh_once(&model, false).await.expect("batch");
    let RefreshOutcome::Refreshed {
        backlog, changes, ..
    } = first
    else {
        panic!("expected a batch: {first:?}")
    };
    // A change is a captured row: 30,000 orders and their 30,000 lines.
    assert_eq!(changes, 20_000, "the first batch takes the limit");
    assert_eq!(backlog, 40_000);
    // The cursor inside the transaction: each next batch takes from there,
    // and the transaction is covered only once its last change is in.
    let mut backlog = backlog;
    let mut taken = changes;
    while backlog > 0 {
        assert!(
            !covered("order_summary").await,
            "a transaction applied in part must not count as covered ({backlog} left)"
        );
        match refresher.refresh_once(&model, false).await.expect("batch") {
            RefreshOutcome::Refreshed {
                changes,
                backlog: b,
                ..
            } => {
                assert!(changes <= 20_000 && changes > 0, "{changes}");
                assert_eq!(b, backlog - changes, "the backlog goes down by the batch");
                taken += changes;
                backlog = b;
            }
            other => panic!("expected a batch: {other:?}"),
        }
    }
    assert_eq!(taken, 60_000, "every change taken once");
    assert!(covered("order_summary").await);
    assert_eq!(
        refresher.refresh_once(&model, false).await.expect("check"),
        RefreshOutcome::Current
    );
    assert_eq!(
        scalar_i64(
            client,
            "SELECT count(*) FROM read.order_summary WHERE order_id LIKE 'big-%'"
        )
        .await,
        30_000
    );
}

#[tokio::test]
async fn a_panicking_refresh_is_recorded_as_a_failure_and_the_worker_goes_on() {
    let db = TestDb::create().await;
    let panicked = Arc::new(AtomicBool::new(false));
    let mut settings = RefresherSettings::new(read_models_from_env().expect("read-model settings"));
    let once = Arc::clone(&panicked);
    settings.before_refresh = Some(Arc::new(move |view: &str| {
        if view == "daily_sales" && !once.swap(true, Ordering::SeqCst) {
            panic!("unexpected column type in daily_sales");
        }
    }));
    let app = TestApp::builder()
        .on(db)
        .refreshing(Refreshing::With(settings))
        .start()
        .await;
    // The start-up check of daily_sales panics: the failure is recorded.
    let failed = poll_until(
        "the panic to be recorded",
        Duration::from_secs(20),
        || async {
            let s = model_status(&app, "daily_sales").await;
            s["last_error"]
                .as_str()
                .filter(|e| e.contains("panicked"))
                .map(str::to_owned)
        },
    )
    .await;
    assert!(failed.contains("unexpected column type"), "{failed}");
    assert!(panicked.load(Ordering::SeqCst));

    // The worker is still there: a write is refreshed into daily_sales and
    // read with its token.
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    let token = token_of(&placed);
    let r = app
        .http
        .get(app.url("/queries/order-statistics"))
        .query(&[
            ("from", "2000-01-01T00:00:00Z"),
            ("to", "2100-01-01T00:00:00Z"),
            ("min_token", token.as_str()),
            ("wait", "20"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let stats: Value = r.json().await.expect("json");
    assert_eq!(stats["total_orders"], 1, "{stats}");
    let s = model_status(&app, "daily_sales").await;
    assert!(s["last_error"].is_null(), "{s}");
}

#[tokio::test]
async fn catalog_changes_re_project_only_the_rows_that_show_what_changed() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    for i in 0..5 {
        app.place_simple_order(&format!("o-{i}")).await;
    }
    wait_for_startup_checks(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;
    let last_batch = |view: &'static str| {
        let client = &client;
        async move {
            client
                .query_opt(
                    "SELECT changes, changed_rows FROM read.refresh_log
                      WHERE view_name = $1 ORDER BY refresh_id DESC LIMIT 1",
                    &[&view],
                )
                .await
                .expect("refresh log")
                .map(|r| (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)))
        }
    };
    let refresher = app.refresher.as_ref().expect("refresher");
    let lines = refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == "order_lines")
        .expect("order_lines");
    let summary = refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == "order_summary")
        .expect("order_summary");

    // A price change: order lines keep the price paid, so nothing to do.
    let r = app
        .post(
            "/commands/products/p-1/change-price",
            json!({"price": "21.00"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        refresher.refresh_once(&lines, false).await.expect("batch"),
        RefreshOutcome::Current,
        "a price change must not re-project order lines"
    );

    // An update that changes nothing is not a change at all.
    client
        .execute(
            "UPDATE write.customers SET email = email WHERE id = 'c-1'",
            &[],
        )
        .await
        .expect("no-op update");
    assert_eq!(
        refresher
            .refresh_once(&summary, false)
            .await
            .expect("batch"),
        RefreshOutcome::Current,
        "an update that changed nothing must not re-project orders"
    );

    // A rename and its undo before the next batch: two captured changes; the
    // product's lines are looked at, but no row is rewritten, since none
    // differs.
    client
        .batch_execute(
            "UPDATE write.products SET name = 'Renamed' WHERE id = 'p-1';
             UPDATE write.products SET name = 'Widget' WHERE id = 'p-1';",
        )
        .await
        .expect("rename twice");
    let outcome = refresher.refresh_once(&lines, false).await.expect("batch");
    assert!(
        matches!(outcome, RefreshOutcome::Refreshed { rows: 0, .. }),
        "{outcome:?}"
    );
    assert_eq!(last_batch("order_lines").await, Some((Some(2), Some(0))));

    // A real rename re-projects exactly the lines of that product.
    client
        .execute(
            "UPDATE write.products SET name = 'Widget Pro' WHERE id = 'p-1'",
            &[],
        )
        .await
        .expect("rename");
    refresher.refresh_once(&lines, false).await.expect("batch");
    assert_eq!(last_batch("order_lines").await, Some((Some(1), Some(5))));
    assert_eq!(
        scalar_i64(
            client,
            "SELECT count(*) FROM read.order_lines WHERE product_name = 'Widget Pro'"
        )
        .await,
        5
    );
}

/// `pg_dumpall --globals-only` and `pg_dump` of `db` on the test cluster,
/// restored into `target` (a fresh cluster) as database `name`.
fn dump_and_restore(source_url: &str, source_admin: &str, target: &LocalCluster, name: &str) {
    let bindir = LocalCluster::find_bindir().expect("PostgreSQL binaries");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dump-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dump dir");
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(bindir.join(program))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let globals = dir.join("globals.sql");
    let dump = dir.join("db.dump");
    let (globals, dump) = (
        globals.to_str().expect("path"),
        dump.to_str().expect("path"),
    );
    run(
        "pg_dumpall",
        &["--globals-only", "-d", source_admin, "-f", globals],
    );
    run("pg_dump", &["-Fc", "-d", source_url, "-f", dump]);
    let target_admin = target.url("postgres");
    // The globals hold the superuser too: its "already exists" is expected.
    let _ = std::process::Command::new(bindir.join("psql"))
        .args(["-q", "-d", &target_admin, "-f", globals])
        .output();
    run(
        "psql",
        &[
            "-q",
            "-d",
            &target_admin,
            "-c",
            &format!("CREATE DATABASE {name}"),
        ],
    );
    run(
        "pg_restore",
        &["--exit-on-error", "-d", &target.url(name), dump],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn after_a_restore_into_a_cluster_with_a_lower_counter_no_change_is_lost() {
    // The source: a few orders, every view refreshed, and a transaction
    // counter well ahead of a new cluster's.
    let source = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    source.seed_catalog().await;
    for i in 1..=3 {
        source.place_simple_order(&format!("o-{i}")).await;
    }
    let r = source.post("/commands/orders/o-2/confirm", json!({})).await;
    assert_eq!(r.status(), 202);
    wait_for_startup_checks(&source).await;
    refresh_settled(&source).await;
    let client = source.db.client().await;
    client
        .batch_execute(
            "CREATE TEMP TABLE burn (x int);
             DO $$ BEGIN
               FOR i IN 1..3000 LOOP
                 BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN OTHERS THEN NULL; END;
               END LOOP;
             END $$;",
        )
        .await
        .expect("advance the source's transaction counter");
    let source_xmax = scalar_i64(
        &client,
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
    )
    .await;
    drop(client);
    let source_url = source.db.url.clone();
    let source_admin = source_url
        .rsplit_once('/')
        .map(|(b, _)| format!("{b}/postgres"))
        .expect("admin url");

    // The target: a new cluster, restored from a dump.
    // Under the system's temporary directory: the postgres OS user must
    // reach it even when the clone sits in a home closed to others.
    let dir =
        std::env::temp_dir().join(format!("pgcqrs-restore-{}", uuid::Uuid::new_v4().simple()));
    let target = LocalCluster::start(
        &dir,
        &StartOptions {
            fsync: false,
            max_connections: 100,
        },
    )
    .expect("a second cluster");
    target.remove_when_process_exits().expect("clean-up");
    dump_and_restore(&source_url, &source_admin, &target, "restored");
    let restored = TestDb::existing("restored", &target.url("restored"));
    let client = restored.client().await;

    // A change made on the new cluster before the service starts: its
    // transaction id is below what the restored snapshots claim to cover.
    let token: String = client
        .query_one(
            "UPDATE write.orders SET status = 'shipped' WHERE id = 'o-2' RETURNING pg_current_xact_id()::text",
            &[],
        )
        .await
        .expect("ship on the restored cluster")
        .get(0);
    let token_n: i64 = token.parse().expect("token");
    assert!(
        token_n < source_xmax,
        "the test needs a lower counter: token {token_n}, source at {source_xmax}"
    );

    let app = TestApp::builder()
        .on(restored)
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    // Read your write: the restored snapshot must not pass for covering it.
    let r = app
        .http
        .get(app.url("/queries/orders/o-2"))
        .query(&[("min_token", token.as_str()), ("wait", "20")])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let order: Value = r.json().await.expect("json");
    assert_eq!(order["status"], "shipped", "{order}");

    // Every view was recomputed on this cluster, and is trusted again.
    refresh_settled(&app).await;
    let kinds = client
        .query(
            "SELECT DISTINCT view_name FROM read.refresh_log WHERE kind = 'resync'",
            &[],
        )
        .await
        .expect("log");
    assert_eq!(
        kinds.len(),
        5,
        "every view is recomputed once after a restore"
    );
    for name in [
        "order_summary",
        "order_lines",
        "customer_orders",
        "daily_sales",
        "product_sales",
    ] {
        let s = model_status(&app, name).await;
        assert_eq!(s["trusted"], true, "{s}");
        // Restored events carry the old cluster's (higher) transaction ids:
        // they are not mistaken for a backlog that never drains.
        assert_eq!(s["backlog"], 0, "{s}");
        assert_eq!(s["stale"], false, "{s}");
    }
    assert_views_match_write_tables(&client, "a restore").await;

    // New writes on the new cluster are read with their own tokens.
    let placed = app.place_simple_order("o-4").await;
    let r = app
        .http
        .get(app.url("/queries/orders/o-4"))
        .query(&[("min_token", token_of(&placed).as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    app.stop().await;
    source.stop().await;
    let _ = target.stop();
}
