//! The reader role: what reporting tools (psql, Metabase, Grafana) log in
//! with. It reads every read model and nothing of the write schema, and
//! changes nothing.

use crate::support::read::*;
use crate::support::*;
use pgcqrs::db::tokio_postgres;
use pgcqrs::db::tokio_postgres::error::SqlState;

/// A login role in `pgcqrs_reader`, dropped when this is (roles are
/// cluster-wide: the name is unique to the test).
struct Reporter {
    name: String,
    admin_url: String,
}

impl Reporter {
    async fn create(app: &TestApp) -> Reporter {
        let name = format!("reporter_{}", uuid::Uuid::new_v4().simple());
        app.db
            .client()
            .await
            .batch_execute(&format!("CREATE ROLE {name} LOGIN IN ROLE pgcqrs_reader"))
            .await
            .expect("create the reporting role");
        Reporter {
            name,
            admin_url: app.db.url.clone(),
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().ok()?;
            rt.block_on(async {
                let admin = pgcqrs::db::connect(&url).await.ok()?;
                admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {name}"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Relations of the read schema: the views, the history, the bookkeeping.
async fn read_relations(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'read' AND c.relkind IN ('r', 'v', 'm', 'p')
             ORDER BY 1",
            &[],
        )
        .await
        .expect("read relations")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn app_with_data() -> TestApp {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    app.place_simple_order("o-2").await;
    refresh_settled(&app).await;
    app
}

#[tokio::test]
async fn a_reader_login_reads_every_read_model_with_the_rows_the_views_hold() {
    let app = app_with_data().await;
    let reporter = Reporter::create(&app).await;
    let reader = pgcqrs::db::connect(&app.db.url_as(&reporter.name))
        .await
        .expect("log in as the reporting role");
    let admin = app.db.client().await;

    let relations = read_relations(&admin).await;
    for required in [
        "order_summary",
        "order_lines",
        "customer_orders",
        "daily_sales",
        "product_sales",
        "order_history",
        "read_model_status",
        "refresh_log",
    ] {
        assert!(
            relations.iter().any(|r| r == required),
            "no read.{required}"
        );
    }
    for relation in &relations {
        let sql = format!("SELECT count(*) FROM read.{relation}");
        let seen: i64 = reader
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("the reader cannot read read.{relation}: {e}"))
            .get(0);
        let all: i64 = admin.query_one(&sql, &[]).await.expect("count").get(0);
        assert_eq!(seen, all, "read.{relation}: the reader sees other rows");
    }
    let ids: Vec<String> = reader
        .query(
            "SELECT order_id FROM read.order_summary ORDER BY order_id",
            &[],
        )
        .await
        .expect("orders")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["o-1", "o-2"]);
    drop(reader);
    let name = reporter.name.clone();
    drop(reporter);
    let left: i64 = admin
        .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .expect("roles")
        .get(0);
    assert_eq!(left, 0, "the role {name} outlived its test");
    app.stop().await;
}

#[tokio::test]
async fn a_reader_login_can_neither_read_nor_change_the_write_schema_nor_change_the_read_models() {
    let app = app_with_data().await;
    let reporter = Reporter::create(&app).await;
    let reader = pgcqrs::db::connect(&app.db.url_as(&reporter.name))
        .await
        .expect("log in as the reporting role");
    let admin = app.db.client().await;

    // (statement, the SQLSTATE it must fail with; None: any error)
    let denied: &[(&str, Option<SqlState>)] = &[
        ("SELECT * FROM write.orders", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        (
            "INSERT INTO write.orders (id, customer_id, total) VALUES ('o-x', 'c-1', 1)",
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
        ),
        (
            "UPDATE write.orders SET status = 'confirmed' WHERE id = 'o-1'",
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
        ),
        ("SELECT * FROM write.customers", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        (
            "INSERT INTO write.customers (id, name, email) VALUES ('c-x', 'X', 'x@example.com')",
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
        ),
        (
            "UPDATE write.customers SET name = 'Mallory' WHERE id = 'c-1'",
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
        ),
        ("SELECT * FROM write.order_events", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        ("SELECT * FROM write.idempotency_keys", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        // A materialized view refuses writes outright; a table refuses the role.
        (
            "INSERT INTO read.order_summary (order_id, customer_id, customer_name, customer_email, item_count, total, status, status_display, version, created_at, updated_at)
             VALUES ('o-x', 'c-1', 'X', 'x@example.com', 1, 1, 'pending', 'Pending', 1, now(), now())",
            None,
        ),
        ("DELETE FROM read.order_summary", None),
        (
            "INSERT INTO read.order_history (order_id, order_version, event_type, payload, occurred_at)
             VALUES ('o-1', 99, 'OrderCreated', '{}', now())",
            Some(SqlState::INSUFFICIENT_PRIVILEGE),
        ),
        ("UPDATE read.read_model_status SET last_error = 'x'", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        ("DELETE FROM read.refresh_log", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        ("REFRESH MATERIALIZED VIEW read.daily_sales", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
        ("CREATE TABLE read.scratch (x int)", Some(SqlState::INSUFFICIENT_PRIVILEGE)),
    ];
    for (sql, code) in denied {
        let statement = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        match reader.batch_execute(sql).await {
            Ok(()) => panic!("the reader was allowed: {statement}"),
            Err(e) => {
                if let Some(code) = code {
                    assert_eq!(
                        e.code(),
                        Some(code),
                        "{statement}: expected SQLSTATE {}, got {e}",
                        code.code()
                    );
                }
            }
        }
    }

    // Nothing changed.
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM write.orders),
                    (SELECT count(*) FROM write.customers WHERE name = 'Ada Lovelace'),
                    (SELECT count(*) FROM read.order_summary),
                    (SELECT count(*) FROM read.order_history),
                    (SELECT count(*) FROM read.refresh_log) > 0,
                    (SELECT count(*) FROM read.read_model_status WHERE last_error IS NOT NULL)",
            &[],
        )
        .await
        .expect("state");
    assert_eq!(row.get::<_, i64>(0), 2, "write.orders");
    assert_eq!(row.get::<_, i64>(1), 1, "write.customers");
    assert_eq!(row.get::<_, i64>(2), 2, "read.order_summary");
    assert_eq!(row.get::<_, i64>(3), 2, "read.order_history");
    assert!(row.get::<_, bool>(4), "read.refresh_log");
    assert_eq!(row.get::<_, i64>(5), 0, "read.read_model_status");
    drop(reader);
    drop(reporter);
    app.stop().await;
}

/// Relations of the read schema (among `relations`) or columns of them
/// that carry no COMMENT, as the reporting role sees them.
async fn without_comment(app: &TestApp, relations: &[&str]) -> Vec<String> {
    let reporter = Reporter::create(app).await;
    let reader = pgcqrs::db::connect(&app.db.url_as(&reporter.name))
        .await
        .expect("log in as the reporting role");
    let relations: Vec<String> = relations.iter().map(|r| r.to_string()).collect();
    let found: i64 = reader
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'read' AND c.relname = ANY($1)",
            &[&relations],
        )
        .await
        .expect("relations")
        .get(0);
    assert_eq!(
        found,
        relations.len() as i64,
        "not all of {relations:?} exist"
    );
    reader
        .query(
            "SELECT c.relname || '.' || a.attname
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE n.nspname = 'read' AND c.relname = ANY($1)
               AND coalesce(col_description(c.oid, a.attnum), '') = ''
             UNION ALL
             SELECT c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'read' AND c.relname = ANY($1)
               AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''
             ORDER BY 1",
            &[&relations],
        )
        .await
        .expect("comments")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn every_column_of_every_read_model_is_explained_to_a_reporting_tool() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let missing = without_comment(
        &app,
        &[
            "order_summary",
            "order_lines",
            "customer_orders",
            "daily_sales",
            "product_sales",
            "order_history",
        ],
    )
    .await;
    assert!(missing.is_empty(), "without a COMMENT: {missing:?}");
    app.stop().await;
}

#[tokio::test]
async fn every_column_of_the_freshness_bookkeeping_is_explained_to_a_reporting_tool() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let missing = without_comment(&app, &["read_model_status", "refresh_log"]).await;
    assert!(missing.is_empty(), "without a COMMENT: {missing:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_query_side_pool_cannot_write_even_when_the_login_can() {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    // The service's read pool, as the query side builds it, on a superuser login.
    let pool = pgcqrs::db::read_pool(&app.db.url, 1, "role-test").expect("pool");
    let client = pool.get().await.expect("connection");
    let role: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("current_user")
        .get(0);
    assert_eq!(role, "pgcqrs_reader");
    client
        .query_one("SELECT count(*) FROM read.order_summary", &[])
        .await
        .expect("the read side can read its views");
    for sql in [
        "INSERT INTO write.customers (id, name, email) VALUES ('x-1', 'X', 'x@example.com')",
        "UPDATE write.orders SET status = 'confirmed'",
        "DELETE FROM read.order_history",
        "SELECT count(*) FROM write.orders",
    ] {
        let err = client
            .batch_execute(sql)
            .await
            .expect_err(&format!("the query side could run: {sql}"));
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
    }
}
