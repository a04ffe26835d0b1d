//! The rules hold for any writer, not only for the service: plain SQL on the
//! write schema (as psql or a batch job would send it) cannot break the status
//! machine, the immutability of items and events, totals, or the id pattern.

use crate::support::write::*;
use crate::support::*;
use pgcqrs::db::tokio_postgres::{self, Client};
use serde_json::json;

/// Assert that `result` is a database error raised by `constraint` (or by one
/// of several, separated by `|`, where more than one rule forbids the change).
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tokio_postgres::Error>,
    constraint: &str,
    case: &str,
) {
    let err = result.expect_err(&format!("[{case}] the database must refuse this"));
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("[{case}] a database error, got {err:?}"));
    assert!(
        db.constraint()
            .is_some_and(|c| constraint.split('|').any(|want| want == c)),
        "[{case}] refused by {constraint}, got {:?}: {} ({:?})",
        db.constraint(),
        db.message(),
        db.code()
    );
}

/// Run one statement that must be refused by `constraint`, and check that
/// nothing was written.
async fn refused(app: &TestApp, client: &Client, sql: &str, constraint: &str, case: &str) {
    let before = write_counts(app).await;
    let snapshot = orders_snapshot(client).await;
    assert_refused(client.batch_execute(sql).await, constraint, case);
    assert_nothing_written(app, &before, case).await;
    assert_eq!(
        orders_snapshot(client).await,
        snapshot,
        "[{case}] no order changed"
    );
}

/// Every order as text, to see that a refused update changed nothing.
async fn orders_snapshot(client: &Client) -> Vec<String> {
    client
        .query("SELECT row(o.*)::text FROM write.orders o ORDER BY id", &[])
        .await
        .expect("orders")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Place `order_id` over HTTP and move it to `status`.
async fn order_in(app: &TestApp, order_id: &str, status: &str) {
    app.place_simple_order(order_id).await;
    let steps: &[&str] = match status {
        "pending" => &[],
        "confirmed" => &["confirm"],
        "shipped" => &["confirm", "ship"],
        "delivered" => &["confirm", "ship", "deliver"],
        "cancelled" => &["cancel"],
        other => panic!("unknown status {other}"),
    };
    for step in steps {
        let body = if *step == "cancel" {
            json!({"reason": "set-up"})
        } else {
            json!({})
        };
        let r = app
            .post(&format!("/commands/orders/{order_id}/{step}"), body)
            .await;
        accepted(r, 202, &format!("set-up {step} {order_id}")).await;
    }
}

const STATUSES: [&str; 5] = ["pending", "confirmed", "shipped", "delivered", "cancelled"];
const LEGAL: [(&str, &str); 6] = [
    ("pending", "confirmed"),
    ("pending", "cancelled"),
    ("confirmed", "shipped"),
    ("confirmed", "cancelled"),
    ("shipped", "delivered"),
    ("shipped", "cancelled"),
];

#[tokio::test]
async fn a_plain_sql_status_update_is_allowed_or_refused_exactly_as_the_machine_says() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let client = app.db.client().await;
    for from in STATUSES {
        for to in STATUSES {
            let order_id = format!("o-{from}-{to}");
            order_in(&app, &order_id, from).await;
            let (_, version) = order_state(&app, &order_id).await;
            let reason = if to == "cancelled" {
                "'by hand'"
            } else {
                "NULL"
            };
            let sql = format!(
                "UPDATE write.orders SET status = '{to}', cancel_reason = {reason} WHERE id = '{order_id}'"
            );
            let case = format!("SQL {from} -> {to}");
            if LEGAL.contains(&(from, to)) {
                client
                    .batch_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("[{case}] a legal update is allowed: {e}"));
                assert_eq!(
                    order_state(&app, &order_id).await,
                    (to.to_string(), version + 1),
                    "[{case}] the version goes up by one for any writer"
                );
                let (kind, payload_to): (String, String) = {
                    let row = client
                        .query_one(
                            "SELECT event_type, payload->>'to' FROM write.order_events
                              WHERE order_id = $1 AND order_version = $2",
                            &[&order_id, &(version + 1)],
                        )
                        .await
                        .unwrap_or_else(|e| panic!("[{case}] the change left its event: {e}"));
                    (row.get(0), row.get(1))
                };
                let expected = if to == "cancelled" {
                    "OrderCancelled"
                } else {
                    "OrderStatusChanged"
                };
                assert_eq!(
                    (kind.as_str(), payload_to.as_str()),
                    (expected, to),
                    "[{case}] event"
                );
            } else {
                refused(&app, &client, &sql, "orders_status_transition", &case).await;
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn an_update_that_does_not_change_the_status_is_refused() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "confirmed").await;
    let client = app.db.client().await;
    let cases = [
        (
            "status set to itself",
            "UPDATE write.orders SET status = status WHERE id = 'o-1'",
        ),
        (
            "status set to its own value",
            "UPDATE write.orders SET status = 'confirmed' WHERE id = 'o-1'",
        ),
        (
            "only updated_at",
            "UPDATE write.orders SET updated_at = now() - interval '1 day' WHERE id = 'o-1'",
        ),
        (
            "only the version",
            "UPDATE write.orders SET version = 99 WHERE id = 'o-1'",
        ),
    ];
    for (case, sql) in cases {
        refused(&app, &client, sql, "orders_status_transition", case).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_status_or_a_stray_cancel_reason_is_refused() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "pending").await;
    let client = app.db.client().await;
    refused(
        &app,
        &client,
        "UPDATE write.orders SET status = 'lost' WHERE id = 'o-1'",
        "orders_status_known|orders_status_transition",
        "unknown status",
    )
    .await;
    refused(
        &app,
        &client,
        "UPDATE write.orders SET status = 'Confirmed' WHERE id = 'o-1'",
        "orders_status_known|orders_status_transition",
        "status stored in another case",
    )
    .await;
    refused(
        &app,
        &client,
        "UPDATE write.orders SET status = 'confirmed', cancel_reason = 'why' WHERE id = 'o-1'",
        "orders_cancel_reason_only_when_cancelled",
        "cancel reason without cancelling",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_orders_id_customer_total_and_creation_time_never_change() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "pending").await;
    let r = app
        .post(
            "/commands/customers",
            json!({"id": "c-2", "name": "Grace", "email": "grace@example.com"}),
        )
        .await;
    accepted(r, 201, "second customer").await;
    let client = app.db.client().await;
    let cases = [
        ("new total", "UPDATE write.orders SET status = 'confirmed', total = 1 WHERE id = 'o-1'"),
        ("new customer", "UPDATE write.orders SET status = 'confirmed', customer_id = 'c-2' WHERE id = 'o-1'"),
        ("new creation time", "UPDATE write.orders SET status = 'confirmed', created_at = now() - interval '1 year' WHERE id = 'o-1'"),
    ];
    for (case, sql) in cases {
        refused(&app, &client, sql, "orders_immutable_facts", case).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn items_cannot_be_added_to_an_existing_order_nor_changed_nor_deleted() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "pending").await;
    let client = app.db.client().await;
    let cases = [
        (
            "a new line in a later transaction",
            "INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             VALUES ('o-1', 2, 'p-2', 1, 5.00)",
        ),
        (
            "a changed quantity",
            "UPDATE write.order_items SET quantity = 5 WHERE order_id = 'o-1'",
        ),
        (
            "a changed unit price",
            "UPDATE write.order_items SET unit_price = 0 WHERE order_id = 'o-1'",
        ),
        (
            "a deleted line",
            "DELETE FROM write.order_items WHERE order_id = 'o-1'",
        ),
    ];
    for (case, sql) in cases {
        refused(&app, &client, sql, "order_items_immutable", case).await;
    }
    assert_eq!(
        sql_text(&app, "SELECT string_agg(line_no || ':' || product_id || 'x' || quantity || '@' || unit_price, ',') FROM write.order_items").await,
        Some("1:p-1x1@19.99".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_raw_order_commits_only_if_it_is_pending_has_items_and_its_total_is_their_sum() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let mut client = app.db.client().await;
    let insert_order = |id: &str, total: &str| {
        format!("INSERT INTO write.orders (id, customer_id, total) VALUES ('{id}', 'c-1', {total})")
    };
    let insert_item = |id: &str, line: i32, product: &str, q: i32, price: &str| {
        format!(
            "INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             VALUES ('{id}', {line}, '{product}', {q}, {price})"
        )
    };
    // (case, statements, constraint that refuses the commit)
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "total below the sum of the lines",
            vec![
                insert_order("o-low", "10.00"),
                insert_item("o-low", 1, "p-1", 1, "19.99"),
            ],
            "orders_total_matches_items",
        ),
        (
            "total above the sum of the lines",
            vec![
                insert_order("o-high", "30.00"),
                insert_item("o-high", 1, "p-1", 1, "19.99"),
                insert_item("o-high", 2, "p-2", 2, "5.00"),
            ],
            "orders_total_matches_items",
        ),
        (
            "no items at all",
            vec![insert_order("o-empty", "0")],
            "orders_have_items",
        ),
    ];
    for (case, statements, constraint) in cases {
        let before = write_counts(&app).await;
        let tx = client.transaction().await.expect("begin");
        for sql in &statements {
            tx.batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("[{case}] {sql}: {e}"));
        }
        assert_refused(tx.commit().await, constraint, case);
        assert_nothing_written(&app, &before, case).await;
    }

    refused(
        &app,
        &client,
        "INSERT INTO write.orders (id, customer_id, total, status) VALUES ('o-conf', 'c-1', 0, 'confirmed')",
        "orders_status_transition",
        "a new order that is not pending",
    )
    .await;

    // The control: a correct raw order commits, with its event and the
    // correlation id the writer set.
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(&format!(
        "SELECT set_config('pgcqrs.correlation_id', 'batch-job-7', true);
         {}; {}; {};",
        insert_order("o-ok", "29.99"),
        insert_item("o-ok", 1, "p-1", 1, "19.99"),
        insert_item("o-ok", 2, "p-2", 2, "5.00"),
    ))
    .await
    .expect("a correct order");
    tx.commit().await.expect("a correct order commits");
    let row = client
        .query_one(
            "SELECT event_type, order_version, correlation_id, payload->>'total'
               FROM write.order_events WHERE order_id = 'o-ok'",
            &[],
        )
        .await
        .expect("one OrderCreated event");
    assert_eq!(row.get::<_, String>(0), "OrderCreated");
    assert_eq!(row.get::<_, i32>(1), 1);
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("batch-job-7")
    );
    assert_eq!(row.get::<_, String>(3), "29.99");
    app.stop().await;
}

#[tokio::test]
async fn events_can_be_neither_updated_nor_deleted() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "confirmed").await;
    let client = app.db.client().await;
    let cases = [
        (
            "rewrite a payload",
            "UPDATE write.order_events SET payload = '{}' WHERE order_id = 'o-1'",
        ),
        (
            "renumber a version",
            "UPDATE write.order_events SET order_version = order_version + 10",
        ),
        (
            "change the correlation id",
            "UPDATE write.order_events SET correlation_id = 'forged'",
        ),
        (
            "delete one event",
            "DELETE FROM write.order_events WHERE order_version = 2",
        ),
        ("delete the log", "DELETE FROM write.order_events"),
    ];
    for (case, sql) in cases {
        let before: Vec<String> = client
            .query(
                "SELECT row(e.*)::text FROM write.order_events e ORDER BY event_id",
                &[],
            )
            .await
            .expect("events")
            .iter()
            .map(|r| r.get(0))
            .collect();
        refused(&app, &client, sql, "order_events_append_only", case).await;
        let after: Vec<String> = client
            .query(
                "SELECT row(e.*)::text FROM write.order_events e ORDER BY event_id",
                &[],
            )
            .await
            .expect("events")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(after, before, "[{case}] the log is unchanged");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_id_that_breaks_the_pattern_is_refused_by_the_database() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let client = app.db.client().await;
    let long = "x".repeat(65);
    let ids = [
        "bad id!",
        "",
        "-leading-dash",
        "slash/inside",
        "é",
        long.as_str(),
    ];
    for id in ids {
        let cases = [
            (
                "customer",
                format!("INSERT INTO write.customers (id, name, email) VALUES ('{id}', 'N', 'n@example.com')"),
            ),
            (
                "product",
                format!("INSERT INTO write.products (id, name, price) VALUES ('{id}', 'N', 1)"),
            ),
            (
                "order",
                format!("INSERT INTO write.orders (id, customer_id, total) VALUES ('{id}', 'c-1', 0)"),
            ),
        ];
        for (what, sql) in cases {
            let case = format!("{what} id {id:?}");
            refused(&app, &client, &sql, "entity_id_pattern", &case).await;
        }
    }
    // 64 characters is the limit, and it is accepted.
    let ok = "y".repeat(64);
    client
        .batch_execute(&format!(
            "INSERT INTO write.customers (id, name, email) VALUES ('{ok}', 'N', 'n@example.com')"
        ))
        .await
        .expect("an id of 64 characters is accepted");
    app.stop().await;
}

#[tokio::test]
async fn catalog_rows_the_service_would_refuse_are_refused_by_the_database_too() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let client = app.db.client().await;
    let cases = [
        (
            "negative price",
            "INSERT INTO write.products (id, name, price) VALUES ('p-neg', 'N', -0.01)",
            "money_not_negative",
        ),
        (
            "negative price change",
            "UPDATE write.products SET price = -1 WHERE id = 'p-1'",
            "money_not_negative",
        ),
        (
            "blank product name",
            "INSERT INTO write.products (id, name, price) VALUES ('p-blank', '  ', 1)",
            "products_name_not_blank",
        ),
        (
            "blank customer name",
            "INSERT INTO write.customers (id, name, email) VALUES ('c-blank', '', 'a@example.com')",
            "customers_name_not_blank",
        ),
        (
            "email without @",
            "INSERT INTO write.customers (id, name, email) VALUES ('c-mail', 'N', 'nobody')",
            "customers_email_shape",
        ),
        (
            "quantity zero",
            "INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             VALUES ('o-none', 1, 'p-1', 0, 1)",
            "order_items_quantity_positive",
        ),
        (
            "a changed customer id",
            "UPDATE write.customers SET id = 'c-9' WHERE id = 'c-1'",
            "id_immutable",
        ),
    ];
    for (case, sql, constraint) in cases {
        refused(&app, &client, sql, constraint, case).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn items_cannot_be_added_to_an_existing_order_by_a_transaction_that_also_changes_its_status()
{
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "pending").await;
    let mut client = app.db.client().await;
    let before = write_counts(&app).await;
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("UPDATE write.orders SET status = 'confirmed' WHERE id = 'o-1'")
        .await
        .expect("a legal status change");
    let inserted = tx
        .batch_execute(
            "INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             VALUES ('o-1', 2, 'p-2', 1, 5.00)",
        )
        .await;
    let committed = match inserted {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert_refused(
        committed,
        "order_items_immutable",
        "a line added in a later transaction",
    );
    assert_nothing_written(&app, &before, "a line added in a later transaction").await;
    assert_eq!(
        sql_text(
            &app,
            "SELECT o.total::text || ' = ' || sum(i.quantity * i.unit_price)::text
               FROM write.orders o JOIN write.order_items i ON i.order_id = o.id
              WHERE o.id = 'o-1' GROUP BY o.total"
        )
        .await,
        Some("19.99 = 19.99".into()),
        "the order's total is still the sum of its lines"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_created_inside_a_savepoint_can_be_given_its_items() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let client = app.db.client().await;
    client
        .batch_execute(
            "BEGIN;
             SAVEPOINT s1;
             INSERT INTO write.orders (id, customer_id, total) VALUES ('o-sp', 'c-1', 5.00);
             RELEASE SAVEPOINT s1;
             SAVEPOINT s2;
             INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             VALUES ('o-sp', 1, 'p-2', 1, 5.00);
             RELEASE SAVEPOINT s2;
             COMMIT;",
        )
        .await
        .expect("an order and its items in one transaction, statement by statement in savepoints");
    assert_eq!(order_state(&app, "o-sp").await, ("pending".into(), 1));
    assert_eq!(event_count(&app, "o-sp").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_writer_role_can_neither_delete_nor_truncate_what_the_log_depends_on() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    order_in(&app, "o-1", "confirmed").await;
    let client = app.db.client().await;
    let cases = [
        ("delete events", "DELETE FROM write.order_events"),
        ("truncate events", "TRUNCATE write.order_events"),
        (
            "update events",
            "UPDATE write.order_events SET payload = '{}'",
        ),
        (
            "delete an order",
            "DELETE FROM write.orders WHERE id = 'o-1'",
        ),
        ("delete items", "DELETE FROM write.order_items"),
        ("truncate orders", "TRUNCATE write.orders CASCADE"),
    ];
    for (case, sql) in cases {
        let before = write_counts(&app).await;
        let result = client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL ROLE pgcqrs_writer; {sql}; COMMIT;"
            ))
            .await;
        let _ = client.batch_execute("ROLLBACK").await;
        let err = result.expect_err(&format!("[{case}] refused for the writer role"));
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("[{case}] {err:?}"));
        assert!(
            *db.code() == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE
                || db
                    .constraint()
                    .is_some_and(|c| c.ends_with("append_only") || c.ends_with("immutable")),
            "[{case}] refused by a privilege or a rule, got {:?}: {}",
            db.code(),
            db.message()
        );
        assert_nothing_written(&app, &before, case).await;
    }
    app.stop().await;
}
