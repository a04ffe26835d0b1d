//! The order commands: place an order, and move it through its status machine
//! with /confirm, /ship, /deliver, /cancel and /status. Success shapes, every
//! validation error, exact money, every legal and illegal transition, If-Match
//! and Idempotency-Key.

use crate::support::write::*;
use crate::support::*;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

/// The five statuses, in the order of the machine.
const STATUSES: [&str; 5] = ["pending", "confirmed", "shipped", "delivered", "cancelled"];

/// The legal moves, exactly as the design states them.
const LEGAL: [(&str, &str); 6] = [
    ("pending", "confirmed"),
    ("pending", "cancelled"),
    ("confirmed", "shipped"),
    ("confirmed", "cancelled"),
    ("shipped", "delivered"),
    ("shipped", "cancelled"),
];

/// The same status in another case: input is case-insensitive.
fn mixed_case(status: &str) -> String {
    match status {
        "pending" => "Pending".into(),
        "confirmed" => "Confirmed".into(),
        "shipped" => "SHIPPED".into(),
        "delivered" => "deLivered".into(),
        "cancelled" => "CanCelled".into(),
        other => other.into(),
    }
}

fn order_body(order_id: &str, items: Value) -> Value {
    json!({"order_id": order_id, "customer_id": "c-1", "items": items})
}

/// Place `order_id` (one Widget) and move it along the legal path to `status`
/// with the dedicated routes; returns the version it is at.
async fn order_in(app: &TestApp, order_id: &str, status: &str) -> i64 {
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
        accepted(r, 202, &format!("set-up: {step} {order_id}")).await;
    }
    let (stored, version) = order_state(app, order_id).await;
    assert_eq!(stored, status, "set-up of {order_id}");
    i64::from(version)
}

fn assert_rfc3339_utc(value: &Value, case: &str) {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("[{case}] updated_at is a string: {value}"));
    time::OffsetDateTime::parse(s, &Rfc3339)
        .unwrap_or_else(|e| panic!("[{case}] updated_at {s:?} is RFC 3339: {e}"));
    assert!(s.ends_with('Z'), "[{case}] updated_at {s:?} is UTC");
}

/// The common shape of an order command's answer.
fn assert_order_answer(a: &Accepted, order_id: &str, status: &str, version: i64, case: &str) {
    assert_eq!(
        a.body["order_id"], order_id,
        "[{case}] order_id in {}",
        a.body
    );
    assert_eq!(a.body["status"], status, "[{case}] status in {}", a.body);
    assert_versioned(a, version, case);
    assert_rfc3339_utc(&a.body["updated_at"], case);
}

// -------------------------------------------------------------- place order

#[tokio::test]
async fn placing_an_order_answers_202_with_order_id_status_total_version_and_token() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let r = app
        .post(
            "/commands/orders",
            order_body(
                "order-001",
                json!([
                    {"product_id": "p-1", "quantity": 2},
                    {"product_id": "p-2", "quantity": 3, "price": "5.00"},
                    {"product_id": "p-3", "quantity": 7, "price": 0.1}
                ]),
            ),
        )
        .await;
    let a = accepted(r, 202, "place order").await;
    assert_order_answer(&a, "order-001", "pending", 1, "place order");
    // 2 × 19.99 + 3 × 5.00 + 7 × 0.10
    assert_eq!(number_text(&a.body["total"], "place order"), "55.68");

    let client = app.client().await;
    let order = client
        .query_one(
            "SELECT customer_id, status, total::text, version, cancel_reason FROM write.orders WHERE id = 'order-001'",
            &[],
        )
        .await
        .expect("order row");
    assert_eq!(order.get::<_, String>(0), "c-1");
    assert_eq!(order.get::<_, String>(1), "pending");
    assert_eq!(order.get::<_, String>(2), "55.68");
    assert_eq!(order.get::<_, i32>(3), 1);
    assert_eq!(order.get::<_, Option<String>>(4), None);
    let items: Vec<(i16, String, i32, String)> = client
        .query(
            "SELECT line_no, product_id, quantity, unit_price::text FROM write.order_items
              WHERE order_id = 'order-001' ORDER BY line_no",
            &[],
        )
        .await
        .expect("items")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        items,
        vec![
            (1, "p-1".into(), 2, "19.99".into()),
            (2, "p-2".into(), 3, "5.00".into()),
            (3, "p-3".into(), 7, "0.10".into()),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_without_an_id_gets_a_server_generated_uuid_v7() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let r = app
        .post(
            "/commands/orders",
            json!({"customer_id": "c-1", "items": [{"product_id": "p-2", "quantity": 1}]}),
        )
        .await;
    let a = accepted(r, 202, "order without id").await;
    let id = a.body["order_id"].as_str().expect("order_id");
    let uuid = uuid::Uuid::parse_str(id).expect("generated order id is a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(order_state(&app, id).await, ("pending".into(), 1));
    app.stop().await;
}

#[tokio::test]
async fn money_is_exact_whether_prices_come_as_numbers_or_strings() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    for (id, price) in [
        ("p-33", json!(33.33)),
        ("p-tenth", json!(0.1)),
        ("p-fifth", json!("0.2")),
    ] {
        let r = app
            .post(
                "/commands/products",
                json!({"id": id, "name": id, "price": price}),
            )
            .await;
        accepted(r, 201, id).await;
    }
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "3 × 33.33 is 99.99",
            "o-thirds",
            json!([{"product_id": "p-33", "quantity": 3}]),
            "99.99",
            "99.99",
        ),
        (
            "0.1 + 0.2 is 0.3",
            "o-float-trap",
            json!([{"product_id": "p-tenth", "quantity": 1}, {"product_id": "p-fifth", "quantity": 1}]),
            "0.3",
            "0.30",
        ),
        (
            "expected price as a number equal to the catalog price",
            "o-price-number",
            json!([{"product_id": "p-1", "quantity": 1, "price": 19.99}]),
            "19.99",
            "19.99",
        ),
        (
            "expected price as a string equal to the catalog price",
            "o-price-string",
            json!([{"product_id": "p-1", "quantity": 1, "price": "19.99"}]),
            "19.99",
            "19.99",
        ),
        (
            "expected price with a trailing zero",
            "o-price-trailing",
            json!([{"product_id": "p-3", "quantity": 10, "price": "0.100"}]),
            "1",
            "1.00",
        ),
        (
            "expected price null means none",
            "o-price-null",
            json!([{"product_id": "p-2", "quantity": 1, "price": null}]),
            "5",
            "5.00",
        ),
    ];
    for (case, order_id, items, answered, stored) in cases {
        let r = app
            .post("/commands/orders", order_body(order_id, items))
            .await;
        let a = accepted(r, 202, case).await;
        assert_eq!(
            number_text(&a.body["total"], case),
            answered,
            "[{case}] total answered"
        );
        assert_eq!(
            sql_text(
                &app,
                &format!("SELECT total::text FROM write.orders WHERE id = '{order_id}'")
            )
            .await
            .as_deref(),
            Some(stored),
            "[{case}] total stored"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_order_is_rejected_naming_the_field_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let line = |q: Value| json!([{"product_id": "p-1", "quantity": q}]);
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"product_id": "p-1", "quantity": 1}))
        .collect();
    let cases: Vec<(&str, Value, &[&str])> = vec![
        ("empty items", order_body("o-x", json!([])), &["items"]),
        (
            "1001 items",
            order_body("o-x", Value::Array(too_many)),
            &["items"],
        ),
        (
            "quantity 0",
            order_body("o-x", line(json!(0))),
            &["items[0].quantity"],
        ),
        (
            "quantity -3",
            order_body("o-x", line(json!(-3))),
            &["items[0].quantity"],
        ),
        (
            "quantity over a million",
            order_body("o-x", line(json!(1_000_001))),
            &["items[0].quantity"],
        ),
        (
            "quantity \"three\"",
            order_body("o-x", line(json!("three"))),
            &["items[0].quantity"],
        ),
        (
            "quantity 1.5",
            order_body("o-x", line(json!(1.5))),
            &["items[0].quantity"],
        ),
        (
            "quantity null",
            order_body("o-x", line(Value::Null)),
            &["items[0].quantity"],
        ),
        (
            "unknown customer",
            json!({"order_id": "o-x", "customer_id": "c-404", "items": [{"product_id": "p-1", "quantity": 1}]}),
            &["customer_id"],
        ),
        (
            "unknown product on the second line",
            order_body(
                "o-x",
                json!([{"product_id": "p-1", "quantity": 1}, {"product_id": "p-404", "quantity": 1}]),
            ),
            &["items[1].product_id"],
        ),
        (
            "wrong price",
            order_body(
                "o-x",
                json!([{"product_id": "p-1", "quantity": 1, "price": 18.99}]),
            ),
            &["items[0].price"],
        ),
        (
            "price true",
            order_body(
                "o-x",
                json!([{"product_id": "p-1", "quantity": 1, "price": true}]),
            ),
            &["items[0].price"],
        ),
        (
            "price with three decimals",
            order_body(
                "o-x",
                json!([{"product_id": "p-1", "quantity": 1, "price": 1.005}]),
            ),
            &["items[0].price"],
        ),
        (
            "negative price",
            order_body(
                "o-x",
                json!([{"product_id": "p-1", "quantity": 1, "price": "-19.99"}]),
            ),
            &["items[0].price"],
        ),
        (
            "order_id \"bad id!\"",
            order_body("bad id!", line(json!(1))),
            &["order_id"],
        ),
        (
            "order_id of 65 characters",
            order_body(&"o".repeat(65), line(json!(1))),
            &["order_id"],
        ),
        (
            "empty order_id",
            order_body("", line(json!(1))),
            &["order_id"],
        ),
        (
            "customer_id \"bad id!\"",
            json!({"customer_id": "bad id!", "items": [{"product_id": "p-1", "quantity": 1}]}),
            &["customer_id"],
        ),
        (
            "empty product_id",
            order_body("o-x", json!([{"product_id": "", "quantity": 1}])),
            &["items[0].product_id"],
        ),
        (
            "unknown field in the order",
            json!({"customer_id": "c-1", "coupon": "FREE", "items": [{"product_id": "p-1", "quantity": 1}]}),
            &["coupon"],
        ),
        (
            "unknown field in a line",
            order_body(
                "o-x",
                json!([{"product_id": "p-1", "quantity": 1, "discount": 5}]),
            ),
            &["items[0].discount"],
        ),
        (
            "items not an array",
            json!({"customer_id": "c-1", "items": {"product_id": "p-1", "quantity": 1}}),
            &["items"],
        ),
        (
            "customer_id of the wrong type",
            json!({"customer_id": 1, "items": [{"product_id": "p-1", "quantity": 1}]}),
            &["customer_id"],
        ),
        (
            "bad order id and quantity 0 together",
            order_body("bad id!", line(json!(0))),
            &["order_id", "items[0].quantity"],
        ),
        (
            "unknown customer and unknown product together",
            json!({"customer_id": "c-404", "items": [{"product_id": "p-404", "quantity": 1}]}),
            &["customer_id", "items[0].product_id"],
        ),
    ];
    for (case, body, fields) in cases {
        let problem = assert_rejected(&app, case, 422, app.post("/commands/orders", body)).await;
        for field in fields {
            assert_names_field(&problem, field, case);
        }
    }
    for (case, body) in [
        ("missing items", json!({"customer_id": "c-1"})),
        (
            "missing customer_id",
            json!({"items": [{"product_id": "p-1", "quantity": 1}]}),
        ),
        (
            "missing quantity",
            json!({"customer_id": "c-1", "items": [{"product_id": "p-1"}]}),
        ),
    ] {
        let problem = assert_rejected(&app, case, 422, app.post("/commands/orders", body)).await;
        assert!(
            problem["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "[{case}] a 422 lists its errors: {problem}"
        );
    }
    assert_eq!(app.count("write.orders").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_price_is_rejected_naming_the_product_and_its_catalog_price() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let problem = assert_rejected(
        &app,
        "wrong price on the second line",
        422,
        app.post(
            "/commands/orders",
            order_body(
                "o-1",
                json!([{"product_id": "p-2", "quantity": 1, "price": "5"}, {"product_id": "p-1", "quantity": 1, "price": "9.99"}]),
            ),
        ),
    )
    .await;
    let entry = field_error(&problem, "items[1].price", "wrong price");
    let message = entry["message"].as_str().unwrap_or_default();
    assert!(message.contains("p-1"), "names the product: {message}");
    assert!(
        message.contains("19.99"),
        "states the catalog price: {message}"
    );
    assert_eq!(
        problem["errors"].as_array().map(Vec::len),
        Some(1),
        "the matching first line is not an error: {problem}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_whose_total_leaves_the_money_range_is_rejected_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let r = app
        .post(
            "/commands/products",
            json!({"id": "p-max", "name": "Very expensive", "price": "999999999999.99"}),
        )
        .await;
    accepted(r, 201, "expensive product").await;
    let problem = assert_rejected(
        &app,
        "total above the money range",
        422,
        app.post(
            "/commands/orders",
            order_body("o-big", json!([{"product_id": "p-max", "quantity": 2}])),
        ),
    )
    .await;
    assert_names_field(&problem, "items[0].quantity", "total above the money range");
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_a_413_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let body = json!({"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1}], "padding": "x".repeat(70 * 1024)});
    assert_rejected(&app, "70 KiB body", 413, app.post("/commands/orders", body)).await;
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_order_id_is_a_409_and_leaves_the_first_order_unchanged() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let problem = assert_rejected(
        &app,
        "duplicate order id",
        409,
        app.post(
            "/commands/orders",
            order_body("o-1", json!([{"product_id": "p-2", "quantity": 5}])),
        ),
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("o-1"),
        "names the id: {problem}"
    );
    assert_eq!(
        sql_text(
            &app,
            "SELECT string_agg(product_id || ' x' || quantity, ',') FROM write.order_items WHERE order_id = 'o-1'"
        )
        .await,
        Some("p-1 x1".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_get_on_a_command_route_is_a_405_problem() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    for path in [
        "/commands/customers",
        "/commands/products",
        "/commands/orders",
        "/commands/orders/o-1/confirm",
        "/commands/orders/o-1/status",
    ] {
        let before = write_counts(&app).await;
        let r = app.get(path).await;
        problem_of(r, 405, &format!("GET {path}")).await;
        assert_nothing_written(&app, &before, path).await;
    }
    app.stop().await;
}

// -------------------------------------------------------------- transitions

#[tokio::test]
async fn an_order_goes_from_pending_to_confirmed_to_shipped_to_delivered_one_version_at_a_time() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let mut tokens = Vec::new();
    for (route, status, version) in [
        ("confirm", "confirmed", 2),
        ("ship", "shipped", 3),
        ("deliver", "delivered", 4),
    ] {
        let case = format!("{route} o-1");
        let r = app
            .post(&format!("/commands/orders/o-1/{route}"), json!({}))
            .await;
        let a = accepted(r, 202, &case).await;
        assert_order_answer(&a, "o-1", status, version, &case);
        assert!(
            a.body.get("total").is_none(),
            "[{case}] no total: {}",
            a.body
        );
        assert_eq!(
            order_state(&app, "o-1").await,
            (status.to_string(), version as i32),
            "[{case}] stored"
        );
        tokens.push(a.body["token"].as_str().unwrap_or_default().to_owned());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "each command runs in its own transaction");
    app.stop().await;
}

#[tokio::test]
async fn the_status_routes_accept_no_body_or_an_empty_object_but_not_other_fields() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let problem = assert_rejected(
        &app,
        "confirm with a field",
        422,
        app.post("/commands/orders/o-1/confirm", json!({"force": true})),
    )
    .await;
    assert_names_field(&problem, "force", "confirm with a field");
    assert_rejected(
        &app,
        "confirm with malformed JSON",
        400,
        app.post_raw("/commands/orders/o-1/confirm", b"{"),
    )
    .await;
    let r = post_empty(&app, "/commands/orders/o-1/confirm", &[]).await;
    let a = accepted(r, 202, "confirm without a body").await;
    assert_order_answer(&a, "o-1", "confirmed", 2, "confirm without a body");
    let r = app.post("/commands/orders/o-1/ship", json!({})).await;
    accepted(r, 202, "ship with {}").await;
    app.stop().await;
}

#[tokio::test]
async fn an_order_can_be_cancelled_from_pending_confirmed_or_shipped_with_its_reason_recorded() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    for from in ["pending", "confirmed", "shipped"] {
        let order_id = format!("o-{from}");
        let version = order_in(&app, &order_id, from).await;
        let reason = format!("customer changed their mind while {from}");
        let case = format!("cancel from {from}");
        let r = app
            .post(
                &format!("/commands/orders/{order_id}/cancel"),
                json!({"reason": reason}),
            )
            .await;
        let a = accepted(r, 202, &case).await;
        assert_order_answer(&a, &order_id, "cancelled", version + 1, &case);
        let client = app.client().await;
        let row = client
            .query_one(
                "SELECT status, cancel_reason, version FROM write.orders WHERE id = $1",
                &[&order_id],
            )
            .await
            .expect("order");
        assert_eq!(row.get::<_, String>(0), "cancelled", "[{case}]");
        assert_eq!(
            row.get::<_, Option<String>>(1),
            Some(reason),
            "[{case}] cancel_reason"
        );
        assert_eq!(
            i64::from(row.get::<_, i32>(2)),
            version + 1,
            "[{case}] version"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_dedicated_routes_refuse_impossible_transitions_with_409_and_write_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    // (status the order is in, route, body)
    let cases: Vec<(&str, &str, Value)> = vec![
        ("pending", "ship", json!({})),
        ("pending", "deliver", json!({})),
        ("confirmed", "confirm", json!({})),
        ("confirmed", "deliver", json!({})),
        ("shipped", "confirm", json!({})),
        ("shipped", "ship", json!({})),
        ("delivered", "confirm", json!({})),
        ("delivered", "ship", json!({})),
        ("delivered", "deliver", json!({})),
        ("delivered", "cancel", json!({"reason": "too late"})),
        ("cancelled", "confirm", json!({})),
        ("cancelled", "ship", json!({})),
        ("cancelled", "deliver", json!({})),
        ("cancelled", "cancel", json!({"reason": "again"})),
    ];
    for (i, (from, route, body)) in cases.into_iter().enumerate() {
        let order_id = format!("o-{i}");
        let version = order_in(&app, &order_id, from).await;
        let case = format!("{route} when {from}");
        let problem = assert_rejected(
            &app,
            &case,
            409,
            app.post(&format!("/commands/orders/{order_id}/{route}"), body),
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(from),
            "[{case}] the conflict says what status the order is in: {problem}"
        );
        assert_eq!(
            order_state(&app, &order_id).await,
            (from.to_string(), version as i32),
            "[{case}] unchanged"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_pair_of_statuses_is_allowed_or_refused_through_the_status_route_exactly_as_the_machine_says(
) {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    for from in STATUSES {
        for to in STATUSES {
            let order_id = format!("o-{from}-{to}");
            let version = order_in(&app, &order_id, from).await;
            let mut body = json!({"status": mixed_case(to)});
            if to == "cancelled" {
                body["reason"] = json!(format!("{from} to {to}"));
            }
            let path = format!("/commands/orders/{order_id}/status");
            let case = format!("{from} -> {to} (sent as {:?})", mixed_case(to));
            if LEGAL.contains(&(from, to)) {
                let r = app.post(&path, body).await;
                let a = accepted(r, 202, &case).await;
                assert_order_answer(&a, &order_id, to, version + 1, &case);
                assert_eq!(
                    order_state(&app, &order_id).await,
                    (to.to_string(), version as i32 + 1),
                    "[{case}] stored, version up by one"
                );
                assert_eq!(
                    event_count(&app, &order_id).await,
                    version + 1,
                    "[{case}] one event per version"
                );
                if to == "cancelled" {
                    assert_eq!(
                        sql_text(
                            &app,
                            &format!(
                                "SELECT cancel_reason FROM write.orders WHERE id = '{order_id}'"
                            )
                        )
                        .await,
                        Some(format!("{from} to {to}")),
                        "[{case}] cancel_reason"
                    );
                }
            } else {
                assert_rejected(&app, &case, 409, app.post(&path, body)).await;
                assert_eq!(
                    order_state(&app, &order_id).await,
                    (from.to_string(), version as i32),
                    "[{case}] unchanged"
                );
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn invalid_status_and_cancel_requests_are_422_naming_the_field_and_write_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let status = "/commands/orders/o-1/status";
    let cancel = "/commands/orders/o-1/cancel";
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "status \"lost\"",
            status,
            json!({"status": "lost"}),
            "status",
        ),
        ("empty status", status, json!({"status": ""}), "status"),
        (
            "status of the wrong type",
            status,
            json!({"status": 2}),
            "status",
        ),
        (
            "cancelled without a reason",
            status,
            json!({"status": "Cancelled"}),
            "reason",
        ),
        (
            "cancelled with a blank reason",
            status,
            json!({"status": "cancelled", "reason": " "}),
            "reason",
        ),
        (
            "a reason when not cancelling",
            status,
            json!({"status": "confirmed", "reason": "because"}),
            "reason",
        ),
        (
            "unknown field",
            status,
            json!({"status": "confirmed", "when": "now"}),
            "when",
        ),
        ("blank reason", cancel, json!({"reason": "   "}), "reason"),
        (
            "NUL byte in reason",
            cancel,
            json!({"reason": "a\u{0}b"}),
            "reason",
        ),
        (
            "reason of 501 characters",
            cancel,
            json!({"reason": "x".repeat(501)}),
            "reason",
        ),
        (
            "reason of the wrong type",
            cancel,
            json!({"reason": false}),
            "reason",
        ),
        (
            "unknown field in cancel",
            cancel,
            json!({"reason": "r", "refund": true}),
            "refund",
        ),
    ];
    for (case, path, body, field) in cases {
        let problem = assert_rejected(&app, case, 422, app.post(path, body)).await;
        assert_names_field(&problem, field, case);
    }
    for (case, path) in [
        ("status without status", status),
        ("cancel without reason", cancel),
    ] {
        let problem = assert_rejected(&app, case, 422, app.post(path, json!({}))).await;
        let wanted = if path == status { "status" } else { "reason" };
        assert!(
            problem["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e.to_string().contains(wanted))),
            "[{case}] the errors mention {wanted}: {problem}"
        );
    }
    assert_eq!(order_state(&app, "o-1").await, ("pending".into(), 1));
    app.stop().await;
}

#[tokio::test]
async fn a_command_on_an_unknown_or_impossible_order_id_is_a_404_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let long = "o".repeat(65);
    for id in ["o-404", "bad%20id!", long.as_str()] {
        for (route, body) in [
            ("confirm", json!({})),
            ("ship", json!({})),
            ("deliver", json!({})),
            ("cancel", json!({"reason": "r"})),
            ("status", json!({"status": "confirmed"})),
        ] {
            let case = format!("{route} on {id}");
            let problem = assert_rejected(
                &app,
                &case,
                404,
                app.post(&format!("/commands/orders/{id}/{route}"), body),
            )
            .await;
            assert_eq!(problem["status"], 404, "[{case}]");
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------- If-Match

#[tokio::test]
async fn order_commands_with_a_stale_if_match_are_412_and_with_the_current_one_202() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("confirm", "confirm", json!({}), "\"2\""),
        ("status", "status", json!({"status": "confirmed"}), "\"3\""),
        ("cancel", "cancel", json!({"reason": "r"}), "W/\"9\""),
    ];
    for (case, route, body, stale) in cases {
        let case = format!("{case} with stale If-Match {stale}");
        let problem = assert_rejected(
            &app,
            &case,
            412,
            post_with(
                &app,
                &format!("/commands/orders/o-1/{route}"),
                body,
                &[("if-match", stale)],
            ),
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("current version is 1"),
            "[{case}] the problem states the current version: {problem}"
        );
    }
    let r = post_with(
        &app,
        "/commands/orders/o-1/confirm",
        json!({}),
        &[("if-match", "\"1\"")],
    )
    .await;
    let a = accepted(r, 202, "confirm with current If-Match").await;
    assert_order_answer(&a, "o-1", "confirmed", 2, "confirm with current If-Match");
    let etag = a.etag.clone().expect("ETag");
    // The ETag just answered is what the next command sends.
    let r = post_with(
        &app,
        "/commands/orders/o-1/status",
        json!({"status": "shipped"}),
        &[("if-match", etag.as_str())],
    )
    .await;
    let a = accepted(r, 202, "ship with the ETag of the confirm").await;
    assert_order_answer(&a, "o-1", "shipped", 3, "ship with the ETag of the confirm");
    // Now "2" is stale, even for a transition that would be legal.
    assert_rejected(
        &app,
        "deliver with the version before the ship",
        412,
        post_with(
            &app,
            "/commands/orders/o-1/deliver",
            json!({}),
            &[("if-match", "\"2\"")],
        ),
    )
    .await;
    let r = post_with(
        &app,
        "/commands/orders/o-1/cancel",
        json!({"reason": "lost in transit"}),
        &[("if-match", "\"3\"")],
    )
    .await;
    let a = accepted(r, 202, "cancel with current If-Match").await;
    assert_order_answer(&a, "o-1", "cancelled", 4, "cancel with current If-Match");
    app.stop().await;
}

// ----------------------------------------------------------- Idempotency-Key

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_and_body_replays_the_first_answer() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let body = json!({"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 2}]});
    let key = [("idempotency-key", "place-once-1")];
    let first = accepted(
        post_with(&app, "/commands/orders", body.clone(), &key).await,
        202,
        "first",
    )
    .await;
    assert_eq!(first.replayed, None, "the first answer is not a replay");
    for attempt in 1..=3 {
        let case = format!("retry {attempt}");
        let retry = accepted(
            post_with(&app, "/commands/orders", body.clone(), &key).await,
            202,
            &case,
        )
        .await;
        assert_eq!(retry.body, first.body, "[{case}] identical body");
        assert_eq!(
            retry.replayed.as_deref(),
            Some("true"),
            "[{case}] idempotent-replayed"
        );
        assert_eq!(retry.etag, first.etag, "[{case}] same ETag");
    }
    assert_eq!(app.count("write.orders").await, 1, "exactly one order");
    assert_eq!(
        app.count("write.order_events").await,
        1,
        "exactly one event"
    );
    assert_eq!(app.count("write.idempotency_keys").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_create_keeps_its_201_and_a_replayed_confirm_its_202_instead_of_a_409() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let body = json!({"name": "Charles Babbage", "email": "charles@example.com"});
    let key = [("idempotency-key", "customer-once")];
    let first = accepted(
        post_with(&app, "/commands/customers", body.clone(), &key).await,
        201,
        "register",
    )
    .await;
    let again = accepted(
        post_with(&app, "/commands/customers", body, &key).await,
        201,
        "register again",
    )
    .await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(
        app.count("write.customers").await,
        2,
        "c-1 and one new customer"
    );

    app.place_simple_order("o-1").await;
    let key = [("idempotency-key", "confirm-o-1")];
    let first = accepted(
        post_with(&app, "/commands/orders/o-1/confirm", json!({}), &key).await,
        202,
        "confirm",
    )
    .await;
    let again = accepted(
        post_with(&app, "/commands/orders/o-1/confirm", json!({}), &key).await,
        202,
        "confirm again",
    )
    .await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(order_state(&app, "o-1").await, ("confirmed".into(), 2));
    assert_eq!(event_count(&app, "o-1").await, 2);
    // Without the key the same command is a conflict.
    assert_rejected(
        &app,
        "confirm again without the key",
        409,
        app.post("/commands/orders/o-1/confirm", json!({})),
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_request_is_a_422_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let key = [("idempotency-key", "key-1")];
    let body = json!({"order_id": "o-1", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1}]});
    accepted(
        post_with(&app, "/commands/orders", body, &key).await,
        202,
        "first use",
    )
    .await;
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "another quantity",
            "/commands/orders",
            json!({"order_id": "o-1", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 2}]}),
        ),
        (
            "another order id",
            "/commands/orders",
            json!({"order_id": "o-2", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1}]}),
        ),
        ("another route", "/commands/orders/o-1/confirm", json!({})),
        (
            "another command kind",
            "/commands/products",
            json!({"name": "W", "price": 1}),
        ),
    ];
    for (case, path, body) in cases {
        let problem = assert_rejected(&app, case, 422, post_with(&app, path, body, &key)).await;
        assert_names_field(&problem, "Idempotency-Key", case);
    }
    assert_eq!(order_state(&app, "o-1").await, ("pending".into(), 1));
    app.stop().await;
}

#[tokio::test]
async fn a_rejected_request_does_not_use_up_its_idempotency_key() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let key = [("idempotency-key", "retry-after-fix")];
    let body = order_body("o-1", json!([{"product_id": "p-new", "quantity": 1}]));
    let problem = assert_rejected(
        &app,
        "unknown product with a key",
        422,
        post_with(&app, "/commands/orders", body.clone(), &key),
    )
    .await;
    assert_names_field(
        &problem,
        "items[0].product_id",
        "unknown product with a key",
    );
    let r = app
        .post(
            "/commands/products",
            json!({"id": "p-new", "name": "New", "price": 1}),
        )
        .await;
    accepted(r, 201, "add the missing product").await;
    let a = accepted(
        post_with(&app, "/commands/orders", body, &key).await,
        202,
        "same key and body after the fix",
    )
    .await;
    assert_eq!(a.replayed, None, "runs afresh, not a replay of the failure");
    assert_eq!(a.body["order_id"], "o-1");
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_a_400_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let long = "k".repeat(256);
    for (case, key) in [
        ("key with a space", "a b"),
        ("key of 256 characters", long.as_str()),
    ] {
        assert_rejected(
            &app,
            case,
            400,
            post_with(
                &app,
                "/commands/orders",
                order_body("o-1", json!([{"product_id": "p-1", "quantity": 1}])),
                &[("idempotency-key", key)],
            ),
        )
        .await;
    }
    app.stop().await;
}
