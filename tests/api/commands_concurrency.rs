//! Commands racing each other over real, concurrent HTTP connections.

use crate::support::write::*;
use crate::support::*;
use serde_json::{json, Value};

/// What one concurrent request came back with.
#[derive(Debug)]
struct Answer {
    status: u16,
    replayed: bool,
    content_type: String,
    body: Value,
}

/// Send `n` POSTs at once, each on its own task and its own connection, and
/// wait for all of them.
async fn race(
    app: &TestApp,
    n: usize,
    path: &str,
    body: Value,
    headers: Vec<(&'static str, String)>,
) -> Vec<Answer> {
    let url = app.url(path);
    // Every request starts as soon as all tasks are spawned and ready.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            // A client each: no connection reuse, so the requests really overlap.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let url = url.clone();
            let body = body.clone();
            let headers = headers.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut request = client.post(url).json(&body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                barrier.wait().await;
                let response = request.send().await.expect("request failed");
                let status = response.status().as_u16();
                let replayed = header(&response, "idempotent-replayed").as_deref() == Some("true");
                let content_type = header(&response, "content-type").unwrap_or_default();
                let text = response.text().await.expect("body");
                let body = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
                Answer {
                    status,
                    replayed,
                    content_type,
                    body,
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for task in tasks {
        answers.push(task.await.expect("request task panicked"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_with_one_idempotency_key_place_exactly_one_order() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    // No order_id: the server generates one, so equal ids prove a replay.
    let body = json!({"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 3}]});
    let answers = race(
        &app,
        20,
        "/commands/orders",
        body,
        vec![("idempotency-key", "concurrent-key-1".to_string())],
    )
    .await;

    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 202, "request {i}: {:?}", a.body);
    }
    let first = &answers[0].body;
    let order_id = first["order_id"].as_str().expect("order_id").to_owned();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(&a.body, first, "request {i} got the same answer");
    }
    let fresh = answers.iter().filter(|a| !a.replayed).count();
    assert_eq!(fresh, 1, "exactly one answer is not a replay");
    assert_eq!(app.count("write.orders").await, 1, "exactly one order row");
    assert_eq!(
        app.count("write.order_items").await,
        1,
        "exactly one line was written"
    );
    assert_eq!(
        event_count(&app, &order_id).await,
        1,
        "exactly one OrderCreated"
    );
    assert_eq!(app.count("write.idempotency_keys").await, 1);
    assert_eq!(order_state(&app, &order_id).await, ("pending".into(), 1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_confirms_of_one_order_succeed_exactly_once() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-race").await;
    let before = write_counts(&app).await;

    let answers = race(
        &app,
        50,
        "/commands/orders/o-race/confirm",
        json!({}),
        vec![],
    )
    .await;

    let accepted: Vec<&Answer> = answers.iter().filter(|a| a.status == 202).collect();
    let conflicts: Vec<&Answer> = answers.iter().filter(|a| a.status == 409).collect();
    let others: Vec<(u16, &Value)> = answers
        .iter()
        .filter(|a| a.status != 202 && a.status != 409)
        .map(|a| (a.status, &a.body))
        .collect();
    assert!(others.is_empty(), "only 202 and 409 answers: {others:?}");
    assert_eq!(accepted.len(), 1, "exactly one confirm wins");
    assert_eq!(conflicts.len(), 49, "every other confirm is a conflict");
    assert_eq!(accepted[0].body["status"], "confirmed");
    assert_eq!(accepted[0].body["version"], 2);
    for c in &conflicts {
        assert_eq!(c.content_type, "application/problem+json", "{:?}", c.body);
        assert_eq!(c.body["status"], 409, "{:?}", c.body);
    }

    assert_eq!(order_state(&app, "o-race").await, ("confirmed".into(), 2));
    let client = app.client().await;
    let events: Vec<(i32, String)> = client
        .query(
            "SELECT order_version, event_type FROM write.order_events
              WHERE order_id = 'o-race' ORDER BY order_version",
            &[],
        )
        .await
        .expect("events")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        events,
        vec![
            (1, "OrderCreated".to_string()),
            (2, "OrderStatusChanged".to_string())
        ]
    );
    let after = write_counts(&app).await;
    assert_eq!(
        after.get("write.order_events"),
        before.get("write.order_events") + 1,
        "the race added exactly one event"
    );
    assert_eq!(after.get("write.orders"), before.get("write.orders"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_with_the_same_client_id_create_one_order_and_409_the_rest() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let body = json!({"order_id": "o-dup", "customer_id": "c-1", "items": [{"product_id": "p-2", "quantity": 1}]});
    let answers = race(&app, 20, "/commands/orders", body, vec![]).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "one wins: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "the rest are conflicts, never a 500: {statuses:?}"
    );
    assert_eq!(app.count("write.orders").await, 1);
    assert_eq!(app.count("write.order_items").await, 1);
    assert_eq!(event_count(&app, "o-dup").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_price_changes_each_bump_the_version_once() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let answers = race(
        &app,
        10,
        "/commands/products/p-2/change-price",
        json!({"price": "6.00"}),
        vec![],
    )
    .await;
    let mut versions: Vec<i64> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 202, "{:?}", a.body);
            a.body["version"].as_i64().expect("version")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=11).collect::<Vec<_>>(),
        "each change got its own version"
    );
    assert_eq!(
        sql_text(
            &app,
            "SELECT version::text FROM write.products WHERE id = 'p-2'"
        )
        .await,
        Some("11".into())
    );
    app.stop().await;
}
