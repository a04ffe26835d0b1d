//! The event log: exactly one event per state change, numbered like the
//! order's versions, with a typed payload, the command's transaction id and
//! the request id of the command that caused it.

use crate::support::write::*;
use crate::support::*;
use serde_json::{json, Value};

/// One row of `write.order_events`.
#[derive(Debug)]
struct Event {
    order_version: i32,
    event_type: String,
    schema_version: i16,
    payload: Value,
    correlation_id: Option<String>,
    txid: String,
}

async fn events(app: &TestApp, order_id: &str) -> Vec<Event> {
    let client = app.client().await;
    client
        .query(
            "SELECT order_version, event_type, schema_version, payload, correlation_id, txid::text
               FROM write.order_events WHERE order_id = $1 ORDER BY event_id",
            &[&order_id],
        )
        .await
        .expect("events")
        .iter()
        .map(|r| Event {
            order_version: r.get(0),
            event_type: r.get(1),
            schema_version: r.get(2),
            payload: r.get(3),
            correlation_id: r.get(4),
            txid: r.get(5),
        })
        .collect()
}

/// POST with an `X-Request-Id` of our own; assert the status and the echo.
async fn command(
    app: &TestApp,
    path: &str,
    body: Value,
    request_id: &str,
    status: u16,
) -> Accepted {
    let r = post_with(app, path, body, &[("x-request-id", request_id)]).await;
    let a = accepted(r, status, request_id).await;
    assert_eq!(
        a.request_id.as_deref(),
        Some(request_id),
        "[{request_id}] the response echoes X-Request-Id"
    );
    a
}

#[tokio::test]
async fn an_order_delivered_has_one_event_per_version_with_payload_token_and_correlation_id() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let placed = command(
        &app,
        "/commands/orders",
        json!({"order_id": "o-1", "customer_id": "c-1", "items": [
            {"product_id": "p-1", "quantity": 2},
            {"product_id": "p-3", "quantity": 5}
        ]}),
        "req-place-o-1",
        202,
    )
    .await;
    let mut answers = vec![("req-place-o-1", placed)];
    for (route, request_id) in [
        ("confirm", "req-confirm-o-1"),
        ("ship", "req-ship-o-1"),
        ("deliver", "req-deliver-o-1"),
    ] {
        let a = command(
            &app,
            &format!("/commands/orders/o-1/{route}"),
            json!({}),
            request_id,
            202,
        )
        .await;
        answers.push((request_id, a));
    }

    let log = events(&app, "o-1").await;
    assert_eq!(log.len(), 4, "one event per state change: {log:?}");
    let expected = [
        (1, "OrderCreated", None),
        (2, "OrderStatusChanged", Some(("pending", "confirmed"))),
        (3, "OrderStatusChanged", Some(("confirmed", "shipped"))),
        (4, "OrderStatusChanged", Some(("shipped", "delivered"))),
    ];
    for ((event, (version, kind, change)), (request_id, answer)) in
        log.iter().zip(expected).zip(&answers)
    {
        let case = format!("event {version} ({kind})");
        assert_eq!(event.order_version, version, "[{case}] order_version");
        assert_eq!(
            i64::from(event.order_version),
            answer.body["version"].as_i64().unwrap_or_default(),
            "[{case}] matches the version the command answered"
        );
        assert_eq!(event.event_type, kind, "[{case}] event_type");
        assert_eq!(event.schema_version, 1, "[{case}] schema_version");
        assert_eq!(
            event.correlation_id.as_deref(),
            Some(*request_id),
            "[{case}] correlation_id is the X-Request-Id of the command"
        );
        assert_eq!(
            Some(event.txid.as_str()),
            answer.body["token"].as_str(),
            "[{case}] written in the transaction whose id the command answered as token"
        );
        match change {
            None => {
                assert_eq!(
                    event.payload["customer_id"], "c-1",
                    "[{case}] {}",
                    event.payload
                );
                assert_eq!(
                    number_text(&event.payload["total"], &case),
                    "40.48",
                    "[{case}] total 2 × 19.99 + 5 × 0.10"
                );
                let items = event.payload["items"].as_array().expect("items");
                assert_eq!(items.len(), 2, "[{case}] {}", event.payload);
                assert_eq!(items[0]["line_no"], 1);
                assert_eq!(items[0]["product_id"], "p-1");
                assert_eq!(items[0]["quantity"], 2);
                assert_eq!(number_text(&items[0]["unit_price"], &case), "19.99");
                assert_eq!(items[1]["line_no"], 2);
                assert_eq!(items[1]["product_id"], "p-3");
                assert_eq!(items[1]["quantity"], 5);
                assert_eq!(number_text(&items[1]["unit_price"], &case), "0.10");
            }
            Some((from, to)) => {
                assert_eq!(
                    event.payload,
                    json!({"from": from, "to": to}),
                    "[{case}] payload"
                );
            }
        }
    }
    assert_eq!(order_state(&app, "o-1").await, ("delivered".into(), 4));
    app.stop().await;
}

#[tokio::test]
async fn a_cancellation_is_an_order_cancelled_event_carrying_its_reason() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let cases = [
        ("pending", "o-p", &[][..]),
        ("confirmed", "o-c", &["confirm"][..]),
        ("shipped", "o-s", &["confirm", "ship"][..]),
    ];
    for (from, order_id, steps) in cases {
        app.place_simple_order(order_id).await;
        for step in steps {
            let r = app
                .post(&format!("/commands/orders/{order_id}/{step}"), json!({}))
                .await;
            accepted(r, 202, step).await;
        }
        let reason = format!("out of stock while {from}");
        let request_id = format!("req-cancel-{order_id}");
        let a = command(
            &app,
            &format!("/commands/orders/{order_id}/cancel"),
            json!({"reason": reason}),
            &request_id,
            202,
        )
        .await;
        let log = events(&app, order_id).await;
        let case = format!("cancel from {from}");
        assert_eq!(log.len(), steps.len() + 2, "[{case}] {log:?}");
        let last = log.last().expect("an event");
        assert_eq!(last.event_type, "OrderCancelled", "[{case}]");
        assert_eq!(
            i64::from(last.order_version),
            a.body["version"].as_i64().unwrap_or_default(),
            "[{case}] version"
        );
        assert_eq!(
            last.payload,
            json!({"from": from, "to": "cancelled", "reason": reason}),
            "[{case}] payload"
        );
        assert_eq!(
            last.correlation_id.as_deref(),
            Some(request_id.as_str()),
            "[{case}]"
        );
        assert_eq!(last.schema_version, 1, "[{case}]");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_cancellation_through_the_status_route_records_the_same_event() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    command(
        &app,
        "/commands/orders/o-1/status",
        json!({"status": "CANCELLED", "reason": "duplicate order"}),
        "req-status-cancel",
        202,
    )
    .await;
    let log = events(&app, "o-1").await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].event_type, "OrderCancelled");
    assert_eq!(
        log[1].payload,
        json!({"from": "pending", "to": "cancelled", "reason": "duplicate order"})
    );
    assert_eq!(log[1].correlation_id.as_deref(), Some("req-status-cancel"));
    app.stop().await;
}

#[tokio::test]
async fn without_an_x_request_id_the_generated_one_is_answered_and_recorded() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let r = app
        .post(
            "/commands/orders",
            json!({"order_id": "o-1", "customer_id": "c-1", "items": [{"product_id": "p-2", "quantity": 1}]}),
        )
        .await;
    let a = accepted(r, 202, "place without X-Request-Id").await;
    let generated = a
        .request_id
        .clone()
        .expect("the response carries an X-Request-Id");
    assert!(!generated.is_empty());
    let log = events(&app, "o-1").await;
    assert_eq!(log[0].correlation_id.as_deref(), Some(generated.as_str()));

    let r = app.post("/commands/orders/o-1/confirm", json!({})).await;
    let b = accepted(r, 202, "confirm without X-Request-Id").await;
    let second = b.request_id.expect("X-Request-Id");
    assert_ne!(second, generated, "each request gets its own id");
    let log = events(&app, "o-1").await;
    assert_eq!(log[1].correlation_id.as_deref(), Some(second.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn rejected_commands_and_idempotent_replays_append_no_event() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let key = [
        ("idempotency-key", "confirm-once"),
        ("x-request-id", "req-first"),
    ];
    accepted(
        post_with(&app, "/commands/orders/o-1/confirm", json!({}), &key).await,
        202,
        "confirm",
    )
    .await;
    let key = [
        ("idempotency-key", "confirm-once"),
        ("x-request-id", "req-retry"),
    ];
    let replay = accepted(
        post_with(&app, "/commands/orders/o-1/confirm", json!({}), &key).await,
        202,
        "replay",
    )
    .await;
    assert_eq!(replay.replayed.as_deref(), Some("true"));
    assert_eq!(
        replay.request_id.as_deref(),
        Some("req-retry"),
        "the replay echoes its own request id"
    );
    for (case, path, body) in [
        (
            "illegal transition",
            "/commands/orders/o-1/deliver",
            json!({}),
        ),
        ("stale version", "/commands/orders/o-1/ship", json!({})),
        (
            "invalid status",
            "/commands/orders/o-1/status",
            json!({"status": "lost"}),
        ),
    ] {
        let headers: &[(&str, &str)] = if case == "stale version" {
            &[("if-match", "\"1\"")]
        } else {
            &[]
        };
        let status = match case {
            "illegal transition" => 409,
            "stale version" => 412,
            _ => 422,
        };
        assert_rejected(&app, case, status, post_with(&app, path, body, headers)).await;
    }
    let log = events(&app, "o-1").await;
    let kinds: Vec<(i32, &str)> = log
        .iter()
        .map(|e| (e.order_version, e.event_type.as_str()))
        .collect();
    assert_eq!(kinds, vec![(1, "OrderCreated"), (2, "OrderStatusChanged")]);
    assert_eq!(
        log[1].correlation_id.as_deref(),
        Some("req-first"),
        "the event belongs to the first request, not the replay"
    );
    app.stop().await;
}

#[tokio::test]
async fn across_many_orders_the_log_holds_exactly_one_event_per_version() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let plans: [(&str, &[&str]); 5] = [
        ("o-a", &[]),
        ("o-b", &["confirm"]),
        ("o-c", &["confirm", "ship"]),
        ("o-d", &["confirm", "ship", "deliver"]),
        ("o-e", &["confirm", "cancel"]),
    ];
    for (order_id, steps) in plans {
        app.place_simple_order(order_id).await;
        for step in steps {
            let body = if *step == "cancel" {
                json!({"reason": "r"})
            } else {
                json!({})
            };
            let r = app
                .post(&format!("/commands/orders/{order_id}/{step}"), body)
                .await;
            accepted(r, 202, &format!("{step} {order_id}")).await;
        }
    }
    // For every order: versions 1..=version, each exactly once, nothing more.
    let mismatches = sql_text(
        &app,
        "SELECT string_agg(o.id, ',') FROM write.orders o
          WHERE (SELECT array_agg(e.order_version ORDER BY e.order_version)
                   FROM write.order_events e WHERE e.order_id = o.id)
                IS DISTINCT FROM (SELECT array_agg(v) FROM generate_series(1, o.version) v)",
    )
    .await;
    assert_eq!(
        mismatches, None,
        "orders whose events do not match their versions"
    );
    assert_eq!(app.count("write.order_events").await, 1 + 2 + 3 + 4 + 3);
    app.stop().await;
}
