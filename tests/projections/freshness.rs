//! Read-your-writes: a write is invisible to the read models until a refresh
//! covers it; `min_token` (or `X-Min-Token`) makes the first answer include
//! it. Every service here refreshes only on request, so the only refresh
//! that can make a write visible is the one the test or the `min_token`
//! read asks for.

use std::time::{Duration, Instant};

use crate::support::read::*;
use crate::support::*;
use serde_json::json;
use time::OffsetDateTime;

/// `X-Read-Model-Refreshed-At` is RFC 3339 and no earlier than `not_before`;
/// `Age` is whole seconds since then.
#[track_caller]
fn assert_freshness_headers(case: &str, reply: &Reply, not_before: OffsetDateTime) {
    let at = reply
        .header("x-read-model-refreshed-at")
        .unwrap_or_else(|| {
            panic!(
                "{case}: no X-Read-Model-Refreshed-At in {:?}",
                reply.headers
            )
        });
    let at = parse_time(at);
    assert!(
        at >= not_before,
        "{case}: refreshed at {at}, before the write at {not_before}"
    );
    assert!(
        at <= OffsetDateTime::now_utc(),
        "{case}: refreshed in the future: {at}"
    );
    let age: u64 = reply
        .header("age")
        .unwrap_or_else(|| panic!("{case}: no Age header"))
        .parse()
        .unwrap_or_else(|e| panic!("{case}: Age is not whole seconds: {e}"));
    assert!(age <= 5, "{case}: Age {age} for a view refreshed just now");
}

fn updated_at(accepted: &serde_json::Value) -> OffsetDateTime {
    parse_time(accepted["updated_at"].as_str().expect("updated_at"))
}

async fn get_with_header(app: &TestApp, path: &str, token: &str) -> Reply {
    Reply::read(
        app.http
            .get(app.url(path))
            .header("x-min-token", token)
            .send()
            .await
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn a_new_order_is_invisible_before_a_refresh_and_visible_after_one() {
    let app = seeded_app_on_request().await;
    app.place_simple_order("o-1").await;

    let before = get_json(&app, "/queries/orders/o-1", &[]).await;
    assert_eq!(
        before.status, 404,
        "visible before any refresh: {}",
        before.text
    );
    let list = get_json(&app, "/queries/orders", &[]).await;
    assert_eq!(
        list.body["total"], 0,
        "listed before any refresh: {}",
        list.text
    );

    refresh_settled(&app).await;
    let after = get_json(&app, "/queries/orders/o-1", &[]).await;
    assert_eq!(after.status, 200, "{}", after.text);
    let expected = expected_order(app.client().await, "o-1").await;
    assert_same("o-1 after a refresh", &after.body, &expected);
    app.stop().await;
}

#[tokio::test]
async fn min_token_in_the_query_makes_the_first_response_include_the_write() {
    let app = seeded_app_on_request().await;
    let placed = app.place_simple_order("o-1").await;
    let token = token_of(&placed);

    let reply = get_json(&app, "/queries/orders/o-1", &[("min_token", &token)]).await;
    assert_eq!(
        reply.status, 200,
        "first response with min_token: {}",
        reply.text
    );
    let expected = expected_order(app.client().await, "o-1").await;
    assert_same("o-1 with min_token", &reply.body, &expected);
    assert_freshness_headers("o-1 with min_token", &reply, updated_at(&placed));
    app.stop().await;
}

#[tokio::test]
async fn the_x_min_token_header_makes_the_first_response_include_the_write() {
    let app = seeded_app_on_request().await;
    let placed = app.place_simple_order("o-1").await;
    let token = token_of(&placed);

    let reply = get_with_header(&app, "/queries/orders/o-1", &token).await;
    assert_eq!(
        reply.status, 200,
        "first response with X-Min-Token: {}",
        reply.text
    );
    assert_eq!(reply.body["order_id"], "o-1");
    assert_eq!(reply.body["items"][0]["product_id"], "p-1");
    assert_freshness_headers("o-1 with X-Min-Token", &reply, updated_at(&placed));
    app.stop().await;
}

#[tokio::test]
async fn a_confirmation_with_its_token_is_visible_in_the_first_response() {
    let app = seeded_app_on_request().await;
    app.place_simple_order("o-1").await;
    refresh_settled(&app).await;
    let pending = get_json(&app, "/queries/orders/o-1", &[]).await;
    assert_eq!(pending.body["status"], "pending", "{}", pending.text);

    let confirmed = command(
        &app,
        "/commands/orders/o-1/confirm",
        json!({}),
        "req-confirm",
    )
    .await;
    let stale = get_json(&app, "/queries/orders/o-1", &[]).await;
    assert_eq!(
        stale.body["status"], "pending",
        "changed without a refresh: {}",
        stale.text
    );

    let reply = get_json(
        &app,
        "/queries/orders/o-1",
        &[("min_token", &token_of(&confirmed))],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["status"], "confirmed", "{}", reply.text);
    assert_eq!(reply.body["status_display"], "Confirmed");
    assert_eq!(reply.body["version"], 2);
    assert_freshness_headers("confirmed o-1", &reply, updated_at(&confirmed));
    app.stop().await;
}

#[tokio::test]
async fn min_token_makes_every_query_route_include_the_write() {
    let app = seeded_app_on_request().await;

    // A new customer: unknown to the read side until a refresh covers it.
    let registered = command(
        &app,
        "/commands/customers",
        json!({"id": "c-new", "name": "New Customer", "email": "new@example.com"}),
        "req-c-new",
    )
    .await;
    let unknown = get_json(&app, "/queries/customers/c-new/orders", &[]).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let known = get_json(
        &app,
        "/queries/customers/c-new/orders",
        &[("min_token", &token_of(&registered))],
    )
    .await;
    assert_eq!(
        known.status, 200,
        "customer's orders with min_token: {}",
        known.text
    );
    assert_eq!(known.body["total"], 0);

    let placed = command(
        &app,
        "/commands/orders",
        json!({"order_id": "o-new", "customer_id": "c-new", "items": [{"product_id": "p-2", "quantity": 3}]}),
        "req-o-new",
    )
    .await;
    let token = token_of(&placed);
    let list = get_json(
        &app,
        "/queries/orders",
        &[("customer_id", "c-new"), ("min_token", &token)],
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["total"], 1, "list with min_token: {}", list.text);
    assert_freshness_headers("list", &list, updated_at(&placed));

    let theirs = get_with_header(&app, "/queries/customers/c-new/orders", &token).await;
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    assert_eq!(
        theirs.body["orders"][0]["order_id"], "o-new",
        "{}",
        theirs.text
    );
    assert_freshness_headers("customer's orders", &theirs, updated_at(&placed));

    let now = OffsetDateTime::now_utc();
    let (from, to) = (
        rfc3339(now - time::Duration::hours(1)),
        rfc3339(now + time::Duration::hours(1)),
    );
    let stats = get_json(
        &app,
        "/queries/order-statistics",
        &[("from", &from), ("to", &to), ("min_token", &token)],
    )
    .await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(
        stats.body["total_orders"], 1,
        "statistics with min_token: {}",
        stats.text
    );
    assert_eq!(money_text(&stats.body["total_revenue"]), "15");
    assert_freshness_headers("statistics", &stats, updated_at(&placed));

    // A rename shows in the order with the rename's token.
    let renamed = command(
        &app,
        "/commands/customers/c-new/change-details",
        json!({"name": "Renamed Customer"}),
        "req-rename",
    )
    .await;
    let order = get_json(
        &app,
        "/queries/orders/o-new",
        &[("min_token", &token_of(&renamed))],
    )
    .await;
    assert_eq!(
        order.body["customer_name"], "Renamed Customer",
        "{}",
        order.text
    );
    app.stop().await;
}

#[tokio::test]
async fn min_token_reads_a_write_made_through_another_instance() {
    let writer = TestApp::builder().refreshing(Refreshing::Off).start().await;
    writer.seed_catalog().await;
    let reader = TestApp::builder()
        .on(writer.db.share())
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    wait_for_startup_checks(&reader).await;
    let placed = writer.place_simple_order("o-1").await;
    let reply = get_json(
        &reader,
        "/queries/orders/o-1",
        &[("min_token", &token_of(&placed))],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["order_id"], "o-1");
    reader.stop().await;
    writer.stop().await;
}

#[tokio::test]
async fn a_token_no_refresh_covers_in_time_gets_a_503_with_retry_after() {
    // No refresher in this instance: nothing will cover the write.
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    let token = placed["token"].as_str().expect("token").to_owned();
    for path in [
        "/queries/orders/o-1",
        "/queries/orders",
        "/queries/customers/c-1/orders",
        "/queries/order-statistics",
    ] {
        let started = Instant::now();
        let response = app
            .http
            .get(app.url(path))
            .query(&[("min_token", token.as_str()), ("wait", "0.3")])
            .send()
            .await
            .expect("request");
        let elapsed = started.elapsed();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let problem = assert_problem(response, 503).await;
        assert!(
            retry_after
                .as_deref()
                .and_then(|r| r.parse::<u64>().ok())
                .is_some(),
            "{path}: Retry-After is {retry_after:?}"
        );
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
            "{path}: answered after {elapsed:?} for wait=0.3"
        );
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&token), "{path}: {detail}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_token_of_no_transaction_yet_is_a_400_without_waiting() {
    let app = seeded_app_on_request().await;
    app.place_simple_order("o-1").await;
    refresh_settled(&app).await;
    for path in [
        "/queries/orders/o-1",
        "/queries/orders",
        "/queries/customers/c-1/orders",
        "/queries/order-statistics",
    ] {
        let started = Instant::now();
        let response = app
            .http
            .get(app.url(path))
            .query(&[("min_token", "999999999"), ("wait", "20")])
            .send()
            .await
            .expect("request");
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(5),
            "{path}: a token the database has not assigned is refused at once, not after {elapsed:?}"
        );
        let problem = assert_problem(response, 400).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("999999999"), "{path}: {detail}");
    }
    app.stop().await;
}

/// Another instance is mid-refresh of order_summary (it holds the view's
/// advisory lock; its snapshot predates our write). When it is done, the
/// `min_token` read must still get a refresh that covers its write within
/// the wait, rather than wait for the next scheduled tick (here: never).
#[tokio::test]
async fn a_min_token_read_is_answered_after_another_instance_releases_the_refresh_lock() {
    let app = seeded_app_on_request().await;
    refresh_settled(&app).await;
    let mut other_instance = app.db.client().await;
    let refreshing = other_instance.transaction().await.expect("begin");
    refreshing
        .query_one(
            "SELECT pg_advisory_xact_lock(hashtext('pgcqrs.refresh'), hashtext('order_summary'))",
            &[],
        )
        .await
        .expect("take the refresh lock");

    let placed = app.place_simple_order("o-1").await;
    let token = token_of(&placed);
    let read = {
        let http = app.http.clone();
        let url = app.url("/queries/orders/o-1");
        tokio::spawn(async move {
            let started = Instant::now();
            let response = http
                .get(url)
                .query(&[("min_token", token.as_str()), ("wait", "3")])
                .send()
                .await
                .expect("request");
            (Reply::read(response).await, started.elapsed())
        })
    };
    // Not a wait for anything: the lock is held 0.3 s into the read on
    // purpose, so that the read waits for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    refreshing.commit().await.expect("release the lock");

    let (reply, elapsed) = read.await.expect("read task");
    assert_eq!(
        reply.status, 200,
        "after {elapsed:?}, the lock released at 0.3 s: {}",
        reply.text
    );
    assert_eq!(reply.body["order_id"], "o-1");
    assert!(
        elapsed < Duration::from_secs(2),
        "answered {elapsed:?} after the read, the lock released at 0.3 s"
    );
    app.stop().await;
}

/// `stale` is documented as "true when a change is waiting to be refreshed
/// into the view". Here the refresher does not tick (as when it stalls):
/// the write waits, and the views that read it must say so.
#[tokio::test]
async fn read_models_report_a_write_waiting_for_a_refresh_as_stale() {
    let app = seeded_app_on_request().await;
    refresh_settled(&app).await;
    app.place_simple_order("o-1").await;
    let reply = poll_until(
        "every view to report a lag of a second",
        Duration::from_secs(10),
        || async {
            let reply = get_json(&app, "/queries/read-models", &[]).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let models = reply.body["read_models"].as_array()?;
            models
                .iter()
                .all(|m| m["lag_seconds"].as_f64() >= Some(1.0))
                .then_some(reply)
        },
    )
    .await;
    for model in reply.body["read_models"].as_array().expect("read_models") {
        let name = model["name"].as_str().unwrap_or_default();
        assert_eq!(model["stale"], true, "{name} has a write waiting: {model}");
        assert!(
            model["lag_seconds"].as_f64() >= Some(1.0),
            "{name}: the write has waited over a second: {model}"
        );
    }
    app.stop().await;
}

/// A `min_token` read that runs out of time says when a retry is likely to
/// find the views caught up: the refresh it asked for takes about as long
/// as the slowest lagging view's last refresh; a view whose refreshes fail
/// is retried later still. Never a flat 1 s.
#[tokio::test]
async fn a_min_token_timeout_estimates_retry_after_from_the_lagging_views() {
    // No refresher: nothing covers the write, and nothing rewrites the
    // recorded durations below.
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    let token = placed["token"].as_str().expect("token").to_owned();
    let client = app.db.client().await;
    client
        .batch_execute(
            "UPDATE read.read_model_status SET last_duration_ms = 12400, consecutive_failures = 0
                 WHERE view_name = 'order_summary';
             UPDATE read.read_model_status SET last_duration_ms = 300, consecutive_failures = 0
                 WHERE view_name IN ('order_lines', 'customer_orders');
             UPDATE read.read_model_status SET last_duration_ms = 40, consecutive_failures = 4
                 WHERE view_name = 'daily_sales';",
        )
        .await
        .expect("set durations");
    // (route, the Retry-After it should give)
    let cases = [
        // order_summary's refresh takes 12.4 s: retry in 13.
        ("/queries/orders", 13),
        ("/queries/orders/o-1", 13),
        // daily_sales failed 4 times in a row: 5 s per failure.
        ("/queries/order-statistics", 20),
    ];
    for (path, expected) in cases {
        let response = app
            .http
            .get(app.url(path))
            .query(&[("min_token", token.as_str()), ("wait", "0.2")])
            .send()
            .await
            .expect("request");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok());
        let problem = assert_problem(response, 503).await;
        assert_eq!(retry_after, Some(expected), "{path}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("{expected} s")),
            "{path}: the detail says when to retry: {detail}"
        );
    }
    app.stop().await;
}
