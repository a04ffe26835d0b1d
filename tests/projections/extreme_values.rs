//! The largest values the API accepts, at volume, through every read model:
//! the largest price and quantity, an order at the largest total, thousands
//! of such orders of one customer, on one day and of one product. Every
//! refresh succeeds, every read model equals its definition, and the
//! queries answer with exact amounts.

use std::time::Duration;

use crate::support::read::*;
use crate::support::write::{assert_names_field, assert_rejected};
use crate::support::*;
use pgcqrs::db::tokio_postgres;
use pgcqrs::read_models::RefreshOutcome;
use serde_json::{json, Value};

/// The largest price and order total the API accepts.
const MAX_MONEY: &str = "999999999999.99";
/// The largest quantity of a line.
const MAX_QUANTITY: i64 = 1_000_000;
/// The most lines an order may have.
const MAX_LINES: usize = 1000;

/// Orders at the largest total placed with SQL on one day, of one customer
/// and one product: enough that their sum leaves `numeric(18,2)` (10^16),
/// and `numeric(16,2)` a hundred times over.
const BULK: i64 = 10_100;
/// Of those, confirmed and cancelled (the rest stay pending, still more
/// than 10^16 worth on one day in one status).
const BULK_CONFIRMED: i64 = 50;
const BULK_CANCELLED: i64 = 30;
/// Orders at the largest total of another customer, one per day: more
/// than the 100 that `numeric(16,2)` held.
const SPREAD: i64 = 150;

async fn register(app: &TestApp) {
    for (id, name, email) in [
        ("c-whale", "Big Spender", "whale@example.com"),
        ("c-spread", "Steady Spender", "steady@example.com"),
        ("c-lines", "Many Lines", "lines@example.com"),
    ] {
        command(
            app,
            "/commands/customers",
            json!({"id": id, "name": name, "email": email}),
            &format!("req-{id}"),
        )
        .await;
    }
    for (id, name, price) in [
        ("p-max", "Priceless", json!(MAX_MONEY)),
        // × the largest quantity: just below the largest total
        ("p-million", "Costly", json!("999999.99")),
        ("p-cent", "Penny", json!(0.01)),
    ] {
        command(
            app,
            "/commands/products",
            json!({"id": id, "name": name, "price": price}),
            &format!("req-{id}"),
        )
        .await;
    }
}

/// An order through the API; returns its acceptance.
async fn order(app: &TestApp, id: &str, customer: &str, items: Value) -> Value {
    command(
        app,
        "/commands/orders",
        json!({"order_id": id, "customer_id": customer, "items": items}),
        &format!("req-{id}"),
    )
    .await
}

/// `count` orders of `customer` at the largest total (one line of p-max),
/// ids `{prefix}-1...`, created `step` apart from `first`, with the
/// triggers of the write tables (events, checks) as the API would.
async fn insert_max_orders(
    client: &tokio_postgres::Client,
    prefix: &str,
    customer: &str,
    count: i64,
    first: &str,
    step: &str,
) {
    let sql = format!(
        "BEGIN;
         INSERT INTO write.orders (id, customer_id, total, created_at)
         SELECT '{prefix}-' || g, '{customer}', {MAX_MONEY}, '{first}'::timestamptz + (g - 1) * '{step}'::interval
         FROM generate_series(1, {count}) g;
         INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
         SELECT '{prefix}-' || g, 1, 'p-max', 1, {MAX_MONEY}
         FROM generate_series(1, {count}) g;
         COMMIT;"
    );
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("insert {count} orders of {customer}: {e:?}"));
}

/// Each read model equals its own definition run directly: the declared
/// query, kept as the view `pgcqrs_defs.<name>`.
async fn assert_views_match_their_definitions(client: &tokio_postgres::Client) {
    let mut definitions = Vec::new();
    for view in [
        "customer_orders",
        "daily_sales",
        "product_sales",
        "order_summary",
        "order_lines",
    ] {
        definitions.push((view, format!("SELECT * FROM pgcqrs_defs.{view}")));
    }
    for (view, definition) in definitions {
        let sql = format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM read.{view} EXCEPT ALL ({definition})) extra),
                    (SELECT count(*) FROM (({definition}) EXCEPT ALL SELECT * FROM read.{view}) missing)"
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("read.{view}'s own definition fails: {e:?}"));
        let (extra, missing): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(
            (extra, missing),
            (0, 0),
            "read.{view} has {extra} rows its definition does not give and lacks {missing}"
        );
    }
}

/// GET a customer's orders, page by page, as the write tables say.
async fn assert_customer_pages(app: &TestApp, all: &[WriteOrder], customer: &str, pages: &[i64]) {
    let filter = Filter {
        customer_id: Some(customer.into()),
        ..Default::default()
    };
    let page_size = 100;
    for &page in pages {
        let (p, ps) = (page.to_string(), page_size.to_string());
        let reply = get_json(
            app,
            &format!("/queries/customers/{customer}/orders"),
            &[("page", &p), ("page_size", &ps)],
        )
        .await;
        let label = format!("{customer}'s orders, page {page}");
        assert_eq!(reply.status, 200, "{label}: {}", reply.text);
        assert_same_page(
            &label,
            &reply.body,
            &expected_page(all, &filter, page, page_size),
        );
    }
}

#[tokio::test]
async fn the_largest_amounts_at_volume_go_through_every_read_model() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    register(&app).await;
    let client = app.client().await;

    // Through the API: the largest price, the largest quantity, the most
    // lines, and a total of exactly the largest amount over two lines.
    let accepted = order(
        &app,
        "h-max",
        "c-whale",
        json!([{"product_id": "p-max", "quantity": 1}]),
    )
    .await;
    assert_eq!(money_text(&accepted["total"]), MAX_MONEY);
    let accepted = order(
        &app,
        "h-qty",
        "c-whale",
        json!([{"product_id": "p-million", "quantity": MAX_QUANTITY}]),
    )
    .await;
    assert_eq!(money_text(&accepted["total"]), "999999990000");
    let accepted = order(
        &app,
        "h-exact",
        "c-spread",
        json!([
            {"product_id": "p-million", "quantity": MAX_QUANTITY},
            {"product_id": "p-cent", "quantity": 999_999},
        ]),
    )
    .await;
    assert_eq!(money_text(&accepted["total"]), MAX_MONEY);
    let lines: Vec<Value> = (0..MAX_LINES)
        .map(|_| json!({"product_id": "p-cent", "quantity": MAX_QUANTITY}))
        .collect();
    let accepted = order(&app, "h-lines", "c-lines", json!(lines)).await;
    assert_eq!(money_text(&accepted["total"]), "10000000");
    command(
        &app,
        "/commands/orders/h-max/confirm",
        json!({}),
        "req-confirm",
    )
    .await;
    command(
        &app,
        "/commands/orders/h-qty/cancel",
        json!({"reason": "too dear"}),
        "req-cancel",
    )
    .await;

    // With SQL, through the write tables' triggers: thousands of orders at
    // the largest total of one customer on one day, and 150 of another
    // customer on as many days.
    insert_max_orders(
        client,
        "bulk",
        "c-whale",
        BULK,
        "2024-02-29T00:00:00Z",
        "1 second",
    )
    .await;
    insert_max_orders(
        client,
        "spread",
        "c-spread",
        SPREAD,
        "2023-06-01T12:00:00Z",
        "1 day",
    )
    .await;
    client
        .batch_execute(&format!(
            "UPDATE write.orders SET status = 'confirmed'
              WHERE id IN (SELECT 'bulk-' || g FROM generate_series(1, {BULK_CONFIRMED}) g);
             UPDATE write.orders SET status = 'cancelled', cancel_reason = 'changed their mind'
              WHERE id IN (SELECT 'bulk-' || g FROM generate_series({BULK} - {BULK_CANCELLED} + 1, {BULK}) g);"
        ))
        .await
        .expect("change statuses");
    // One more through the API after the bulk: its token covers everything.
    let last = order(
        &app,
        "h-last",
        "c-whale",
        json!([{"product_id": "p-max", "quantity": 1}]),
    )
    .await;

    // A read that waits for the token refreshes what it reads: it answers.
    let reply = get_json(
        &app,
        "/queries/customers/c-whale/orders",
        &[("min_token", &token_of(&last)), ("wait", "20s")],
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "a min_token read after the bulk: {}",
        reply.text
    );

    // Every read model refreshes.
    let refresher = app.refresher.as_ref().expect("refresher");
    let mut failed = Vec::new();
    for m in refresher.models() {
        let name = m.model.name.clone();
        let outcome = poll_until(
            &format!("{name} to be free to refresh"),
            Duration::from_secs(30),
            || async {
                match refresher.refresh_once(&m, true).await {
                    Ok(RefreshOutcome::Busy) => None,
                    other => Some(other),
                }
            },
        )
        .await;
        match outcome {
            Ok(RefreshOutcome::Refreshed { .. }) => {}
            Ok(other) => failed.push(format!("{name}: {other:?}")),
            Err(e) => failed.push(format!("{name}: {e:#}")),
        }
    }
    assert!(failed.is_empty(), "refreshes that failed: {failed:#?}");
    let status = client
        .query(
            "SELECT view_name, last_error FROM read.read_model_status
              WHERE consecutive_failures > 0 ORDER BY view_name",
            &[],
        )
        .await
        .expect("read_model_status");
    let failing: Vec<(String, Option<String>)> =
        status.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(failing.is_empty(), "read models failing: {failing:?}");

    // Every read model holds exactly what its definition gives.
    assert_views_match_write_tables(client, "the extreme orders").await;
    assert_views_match_their_definitions(client).await;

    // The sums, exactly.
    let max_times = |n: i64| format!("{n} * {MAX_MONEY}");
    let active_whale = BULK - BULK_CANCELLED + 2; // h-max, h-last; h-qty is cancelled
    for (what, sql, expected) in [
        (
            "c-whale's lifetime value",
            "SELECT lifetime_value::text FROM read.customer_orders WHERE customer_id = 'c-whale'",
            max_times(active_whale),
        ),
        (
            "c-spread's lifetime value",
            "SELECT lifetime_value::text FROM read.customer_orders WHERE customer_id = 'c-spread'",
            max_times(SPREAD + 1),
        ),
        (
            "revenue of pending orders on the bulk day",
            "SELECT revenue::text FROM read.daily_sales WHERE day = '2024-02-29' AND status = 'pending'",
            max_times(BULK - BULK_CONFIRMED - BULK_CANCELLED),
        ),
        (
            "p-max's revenue",
            "SELECT revenue::text FROM read.product_sales WHERE product_id = 'p-max'",
            max_times(active_whale + SPREAD),
        ),
        (
            "p-cent's units",
            "SELECT units::text FROM read.product_sales WHERE product_id = 'p-cent'",
            format!("{MAX_LINES} * {MAX_QUANTITY} + 999999"),
        ),
    ] {
        let got: String = client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
            .get(0);
        let want: String = client
            .query_one(&format!("SELECT ({expected})::text"), &[])
            .await
            .expect("expected value")
            .get(0);
        assert_eq!(got, want, "{what}");
    }

    // The queries answer 200 with exact amounts.
    for id in [
        "h-max",
        "h-qty",
        "h-exact",
        "h-lines",
        "h-last",
        "bulk-1",
        "spread-150",
    ] {
        let reply = get_json(&app, &format!("/queries/orders/{id}"), &[]).await;
        assert_eq!(reply.status, 200, "order {id}: {}", reply.text);
        let expected = expected_order(client, id).await;
        assert_same(&format!("order {id}"), &reply.body, &expected);
    }
    let all = write_orders(client).await;
    let whale_pages = (BULK + 3 + 99) / 100;
    assert_customer_pages(&app, &all, "c-whale", &[1, 2, whale_pages]).await;
    assert_customer_pages(&app, &all, "c-spread", &[1, 2]).await;
    assert_customer_pages(&app, &all, "c-lines", &[1]).await;

    let tomorrow = rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(1));
    let cases: &[(&str, &str, &str)] = &[
        ("every order", "2023-01-01T00:00:00Z", &tomorrow),
        (
            "the bulk day, whole",
            "2024-02-29T00:00:00Z",
            "2024-03-01T00:00:00Z",
        ),
        (
            "the bulk day, in part",
            "2024-02-29T00:30:00Z",
            "2024-03-01T00:00:00Z",
        ),
        (
            "around the bulk day",
            "2024-02-28T23:00:00Z",
            "2024-03-01T01:00:00Z",
        ),
        ("the spread", "2023-06-01T11:00:00Z", "2023-12-31T00:00:00Z"),
    ];
    for (name, from, to) in cases {
        let reply = get_json(
            &app,
            "/queries/order-statistics",
            &[("from", from), ("to", to)],
        )
        .await;
        assert_eq!(reply.status, 200, "statistics of {name}: {}", reply.text);
        let expected = expected_statistics(client, parse_time(from), parse_time(to)).await;
        let mut actual = reply.body.clone();
        if let Some(o) = actual.as_object_mut() {
            o.remove("from");
            o.remove("to");
        }
        assert_same(&format!("statistics of {name}"), &actual, &expected);
    }
    let whole_day = get_json(
        &app,
        "/queries/order-statistics",
        &[
            ("from", "2024-02-29T00:00:00Z"),
            ("to", "2024-03-01T00:00:00Z"),
        ],
    )
    .await;
    assert_eq!(
        money_text(&whole_day.body["total_revenue"]),
        "10099999999999899",
        "{BULK} orders of {MAX_MONEY}"
    );
    assert_eq!(
        money_text(&whole_day.body["average_order_value"]),
        MAX_MONEY
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_beyond_the_largest_total_is_a_422_and_writes_nothing() {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    register(&app).await;
    let cases = [
        (
            "the largest price twice",
            json!([{"product_id": "p-max", "quantity": 2}]),
            "items[0].quantity",
        ),
        (
            "the largest price and a cent",
            json!([{"product_id": "p-max", "quantity": 1}, {"product_id": "p-cent", "quantity": 1}]),
            "items[1].quantity",
        ),
        (
            "a cent past the largest total over two lines",
            json!([
                {"product_id": "p-million", "quantity": MAX_QUANTITY},
                {"product_id": "p-cent", "quantity": 1_000_000},
            ]),
            "items[1].quantity",
        ),
        (
            "a quantity past the largest",
            json!([{"product_id": "p-cent", "quantity": MAX_QUANTITY + 1}]),
            "items[0].quantity",
        ),
    ];
    for (case, items, field) in cases {
        let problem = assert_rejected(
            &app,
            case,
            422,
            app.post(
                "/commands/orders",
                json!({"order_id": "o-too-big", "customer_id": "c-whale", "items": items}),
            ),
        )
        .await;
        assert_names_field(&problem, field, case);
    }
    let case = "a price past the largest";
    let problem = assert_rejected(
        &app,
        case,
        422,
        app.post(
            "/commands/products",
            json!({"id": "p-over", "name": "Too dear", "price": "1000000000000"}),
        ),
    )
    .await;
    assert_names_field(&problem, "price", case);
    app.stop().await;
}
