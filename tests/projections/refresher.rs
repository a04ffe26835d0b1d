//! The refresher: a view is refreshed only when its sources changed, by one
//! instance at a time, never twice for the same change; a broken view
//! fails alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::read::*;
use crate::support::*;
use pgcqrs::db::tokio_postgres;
use pgcqrs::read_models::RefreshOutcome;
use serde_json::{json, Value};

const VIEWS: [&str; 5] = [
    "order_summary",
    "order_lines",
    "customer_orders",
    "daily_sales",
    "product_sales",
];

fn refreshed(outcomes: &[(String, RefreshOutcome)]) -> BTreeSet<&str> {
    outcomes
        .iter()
        .filter(|(_, o)| matches!(o, RefreshOutcome::Refreshed { .. }))
        .map(|(v, _)| v.as_str())
        .collect()
}

async fn verified_at(client: &tokio_postgres::Client) -> Vec<(String, time::OffsetDateTime)> {
    client
        .query(
            "SELECT view_name, verified_at FROM read.read_model_status ORDER BY view_name",
            &[],
        )
        .await
        .expect("read_model_status")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn a_view_is_refreshed_only_when_its_sources_changed() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    app.place_simple_order("o-2").await;
    wait_for_startup_checks(&app).await;
    let client = app.client().await;

    let first = refresh_settled(&app).await;
    assert_eq!(
        refreshed(&first),
        VIEWS.into_iter().collect(),
        "every view reads what changed: {first:?}"
    );
    assert_views_match_write_tables(client, "the first refresh").await;

    // Nothing changed since: every view is current, none is refreshed, and
    // each is known current as of a newer snapshot.
    let counts = refresh_counts(client).await;
    let verified = verified_at(client).await;
    let again = refresh_settled(&app).await;
    for (view, outcome) in &again {
        assert_eq!(*outcome, RefreshOutcome::Current, "{view} without a change");
    }
    assert_eq!(
        refresh_counts(client).await,
        counts,
        "refresh_log grew without a change"
    );
    for ((view, before), (_, after)) in verified.iter().zip(verified_at(client).await) {
        assert!(
            after > *before,
            "{view}: verified_at did not move on ({before} -> {after})"
        );
    }

    // A change refreshes the views whose content it changes, never a view
    // that does not read what changed. A view that reads what changed but
    // whose rows are the same (order_lines after a price change: it holds
    // the price paid) may be refreshed, or found current by a model that
    // maintains it row by row.
    // (case, a command route or the SQL another writer runs, body, views
    // that must be refreshed, views that may be)
    type Case = (
        &'static str,
        &'static str,
        Value,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "a product price change",
            "/commands/products/p-1/change-price",
            json!({"price": "6.25"}),
            &["product_sales"],
            &["order_lines"],
        ),
        (
            "a customer rename",
            "/commands/customers/c-1/change-details",
            json!({"name": "Ada King"}),
            &["order_summary", "customer_orders"],
            &[],
        ),
        (
            "an order confirmation",
            "/commands/orders/o-1/confirm",
            json!({}),
            &[
                "order_summary",
                "customer_orders",
                "daily_sales",
                "product_sales",
            ],
            &["order_lines"],
        ),
        (
            "a cancellation",
            "/commands/orders/o-2/cancel",
            json!({"reason": "changed my mind"}),
            &[
                "order_summary",
                "customer_orders",
                "daily_sales",
                "product_sales",
            ],
            &["order_lines"],
        ),
        (
            "a new product",
            "/commands/products",
            json!({"id": "p-9", "name": "Sprocket", "price": "2.00"}),
            &["product_sales"],
            &["order_lines"],
        ),
        (
            "a new order",
            "/commands/orders",
            json!({"order_id": "o-3", "customer_id": "c-1", "items": [{"product_id": "p-9", "quantity": 2}]}),
            &VIEWS,
            &[],
        ),
        (
            "a product renamed by another writer",
            "UPDATE write.products SET name = 'Widget Pro' WHERE id = 'p-1'",
            Value::Null,
            &["order_lines", "product_sales"],
            &[],
        ),
        (
            "a customer's e-mail changed by another writer",
            "UPDATE write.customers SET email = 'ada@example.net' WHERE id = 'c-1'",
            Value::Null,
            &["order_summary", "customer_orders"],
            &[],
        ),
        (
            "two products renamed in one statement",
            "UPDATE write.products SET name = name || ' II' WHERE id IN ('p-1', 'p-9')",
            Value::Null,
            &["order_lines", "product_sales"],
            &[],
        ),
        (
            "a customer added by another writer",
            "INSERT INTO write.customers (id, name, email) VALUES ('c-sql', 'Batch Job', 'batch@example.com')",
            Value::Null,
            &["customer_orders"],
            &["order_summary"],
        ),
    ];
    for (case, path, body, must, may) in cases {
        if path.starts_with('/') {
            command(&app, path, body, "req").await;
        } else {
            client.batch_execute(path).await.expect(case);
        }
        let before = refresh_counts(client).await;
        let outcomes = refresh_settled(&app).await;
        let done = refreshed(&outcomes);
        for view in VIEWS {
            if must.contains(&view) {
                assert!(
                    done.contains(view),
                    "{view} not refreshed after {case}: {outcomes:?}"
                );
            } else if !may.contains(&view) {
                assert!(
                    !done.contains(view),
                    "{view} refreshed after {case}, which it does not read: {outcomes:?}"
                );
            }
        }
        for (view, outcome) in &outcomes {
            if !done.contains(view.as_str()) {
                assert_eq!(*outcome, RefreshOutcome::Current, "{view} after {case}");
            }
        }
        for ((view, b), (_, a)) in before.iter().zip(refresh_counts(client).await) {
            let grew = i64::from(done.contains(view.as_str()));
            assert_eq!(a, b + grew, "{view}: refresh_log rows after {case}");
        }
        assert_views_match_write_tables(client, case).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn two_instances_never_refresh_a_view_twice_for_the_same_change() {
    let host = TestApp::builder().refreshing(Refreshing::Off).start().await;
    host.seed_catalog().await;
    let a = TestApp::builder()
        .on(host.db.share())
        .refreshing(Refreshing::Scheduled)
        .start()
        .await;
    let b = TestApp::builder()
        .on(host.db.share())
        .refreshing(Refreshing::Scheduled)
        .start()
        .await;
    let client = host.client().await;

    // Writes through both instances over a few refresh ticks.
    let mut last = Value::Null;
    for n in 0..12 {
        let app = if n % 2 == 0 { &a } else { &b };
        let id = format!("o-{n}");
        last = command(
            app,
            "/commands/orders",
            json!({"order_id": id, "customer_id": "c-1", "items": [{"product_id": "p-2", "quantity": n + 1}]}),
            &format!("req-{n}"),
        )
        .await;
        if n % 3 == 1 {
            last = command(
                app,
                &format!("/commands/orders/{id}/confirm"),
                json!({}),
                "req",
            )
            .await;
        }
        if n == 5 {
            last = command(
                app,
                "/commands/products/p-3/change-price",
                json!({"price": "0.15"}),
                "req",
            )
            .await;
        }
        if n == 8 {
            last = command(
                app,
                "/commands/customers/c-1/change-details",
                json!({"email": "ada@example.org"}),
                "req",
            )
            .await;
        }
        // Not a wait for anything: the writes are spread over time so that
        // the two instances' ticks fall between them.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let token = token_of(&last);

    // Every view catches up with the last write...
    poll_until(
        "every view to cover the last write",
        Duration::from_secs(15),
        || async {
            let behind: i64 = client
                .query_one(
                    "SELECT count(*) FROM read.read_model_status
                 WHERE NOT pg_visible_in_snapshot($1::text::xid8, current_as_of)",
                    &[&token],
                )
                .await
                .expect("coverage")
                .get(0);
            (behind == 0).then_some(())
        },
    )
    .await;
    // ...then both instances tick a few more times with nothing to do.
    let counts = refresh_counts(client).await;
    let ticks = |app: &TestApp| {
        let refresher = app.refresher.as_ref().expect("refresher");
        (refresher.subscribe(), refresher.models().len() as u64)
    };
    let (ticks_a, ticks_b) = (ticks(&a), ticks(&b));
    let (start_a, start_b) = (*ticks_a.0.borrow(), *ticks_b.0.borrow());
    poll_until(
        "both instances to tick once per view",
        Duration::from_secs(15),
        || {
            let done = *ticks_a.0.borrow() >= start_a + ticks_a.1
                && *ticks_b.0.borrow() >= start_b + ticks_b.1;
            async move { done.then_some(()) }
        },
    )
    .await;
    assert_eq!(
        refresh_counts(client).await,
        counts,
        "idle ticks refreshed a view"
    );

    assert_each_refresh_covers_a_new_change(client).await;
    assert_views_match_write_tables(client, "writes through two instances").await;
    let reply = get_json(&b, "/queries/orders", &[("page_size", "100")]).await;
    assert_eq!(reply.body["total"], 12, "{}", reply.text);
    a.stop().await;
    b.stop().await;
    host.stop().await;
}

async fn refreshes_of(client: &tokio_postgres::Client, view: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM read.refresh_log WHERE view_name = $1",
            &[&view],
        )
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn concurrent_refreshes_of_one_view_refresh_it_once_per_change() {
    let a = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    a.seed_catalog().await;
    let b = TestApp::builder()
        .on(a.db.share())
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    wait_for_startup_checks(&a).await;
    wait_for_startup_checks(&b).await;
    refresh_settled(&a).await;
    let client = a.client().await;
    for round in 0..16 {
        // Both kinds of read model: the one refreshed per order and an aggregate.
        let view = if round % 4 < 2 {
            "order_summary"
        } else {
            "daily_sales"
        };
        a.place_simple_order(&format!("o-{round}")).await;
        let before = refreshes_of(client, view).await;
        // Two instances (or, every other round, two tasks of one instance).
        let first = a.refresher.clone().expect("refresher");
        let second = if round % 2 == 0 {
            b.refresher.clone().expect("refresher")
        } else {
            first.clone()
        };
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = [first, second]
            .into_iter()
            .map(|refresher| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let model = refresher
                        .models()
                        .into_iter()
                        .find(|m| m.model.name == view)
                        .expect("a view of the catalog")
                        .clone();
                    barrier.wait().await;
                    refresher
                        .refresh_once(&model, false)
                        .await
                        .expect("refresh")
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        let refreshes = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Refreshed { .. }))
            .count();
        assert_eq!(
            refreshes, 1,
            "round {round}, {view}: one change, outcomes {outcomes:?}"
        );
        assert_eq!(
            refreshes_of(client, view).await,
            before + 1,
            "round {round}, {view}: refresh_log rows"
        );
    }
    refresh_settled(&a).await;
    assert_each_refresh_covers_a_new_change(client).await;
    b.stop().await;
    a.stop().await;
}

async fn read_model(app: &TestApp, name: &str) -> Value {
    let reply = get_json(app, "/queries/read-models", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["read_models"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {}", reply.text))
}

/// Views that cover `token`, as a `min_token` read asks: by the snapshot
/// each is current as of. (Not by a logged refresh: a view none of whose
/// tables the transaction wrote logs no refresh for it, and is marked
/// current past it at its next look; a test that waited for a log of it
/// waited in vain whenever the view's last batch ran before the
/// transaction committed.)
async fn views_covering(client: &tokio_postgres::Client, token: &str) -> BTreeSet<String> {
    client
        .query(
            "SELECT view_name FROM read.read_model_status
             WHERE pg_visible_in_snapshot($1::text::xid8, current_as_of)",
            &[&token],
        )
        .await
        .expect("covering refreshes")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_broken_view_fails_alone_and_reports_its_error() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let placed = app.place_simple_order("o-3").await;
    let client = app.client().await;
    let all: BTreeSet<String> = VIEWS.iter().map(|v| v.to_string()).collect();
    poll_until("the first refreshes", Duration::from_secs(10), || async {
        (views_covering(client, &token_of(&placed)).await == all).then_some(())
    })
    .await;

    client
        .batch_execute("ALTER TABLE read.daily_sales DROP CONSTRAINT daily_sales_pkey")
        .await
        .expect("break daily_sales");
    let before = refresh_counts(client).await;
    app.place_simple_order("o-2").await;
    command(&app, "/commands/orders/o-3/confirm", json!({}), "req-3").await;
    let confirmed = command(&app, "/commands/orders/o-1/confirm", json!({}), "req").await;
    let token = token_of(&confirmed);

    let others: BTreeSet<String> = all
        .iter()
        .filter(|v| *v != "daily_sales")
        .cloned()
        .collect();
    // (what was seen last goes into the failure: this wait once ran out on
    // a loaded machine, for a reason its message did not say)
    let broken = poll_until_seen(
        "the other views to refresh and daily_sales to fail",
        Duration::from_secs(60),
        || async {
            let covered = views_covering(client, &token).await;
            let status = read_model(&app, "daily_sales").await;
            if covered == others && status["consecutive_failures"].as_i64() >= Some(1) {
                return Ok(status);
            }
            let every = app.get("/queries/read-models").await.text().await;
            Err(format!(
                "covered {covered:?}, daily_sales {status}, every model {}",
                every.unwrap_or_default()
            ))
        },
    )
    .await;

    let after = refresh_counts(client).await;
    for ((view, b), (_, a)) in before.iter().zip(&after) {
        if view == "daily_sales" {
            assert_eq!(a, b, "daily_sales cannot refresh without its unique index");
        } else {
            assert!(a > b, "{view} did not refresh while daily_sales was broken");
        }
    }
    let error = broken["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("daily_sales"),
        "last_error names the view: {broken}"
    );
    assert!(broken["last_error_at"].is_string(), "{broken}");
    assert_eq!(broken["stale"], true, "a failing view is behind: {broken}");
    for view in &others {
        let status = read_model(&app, view).await;
        assert_eq!(status["last_error"], Value::Null, "{view}: {status}");
        assert_eq!(status["consecutive_failures"], 0, "{view}: {status}");
    }

    // Queries on the other views answer, and include the new writes.
    let o2 = get_json(&app, "/queries/orders/o-2", &[("min_token", &token)]).await;
    assert_eq!(o2.status, 200, "{}", o2.text);
    let list = get_json(&app, "/queries/orders", &[("min_token", &token)]).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["orders"].as_array().map(Vec::len), Some(3));
    // daily_sales keeps the count, but is behind (two orders pending where
    // one is): the total is not its count but the orders' own, counted
    // here (few match), estimated on request.
    for (count, total) in [
        (None, Some(1)),
        (Some("exact"), Some(1)),
        (Some("planned"), None),
    ] {
        let mut params = vec![("min_token", token.as_str()), ("status", "pending")];
        params.extend(count.map(|c| ("count", c)));
        let pending = get_json(&app, "/queries/orders", &params).await;
        assert_eq!(pending.status, 200, "{}", pending.text);
        assert_eq!(
            pending.body["count"],
            count.unwrap_or("exact"),
            "{count:?}: {}",
            pending.text
        );
        if let Some(total) = total {
            assert_eq!(pending.body["total"], total, "{count:?}: {}", pending.text);
        }
    }
    let theirs = get_json(
        &app,
        "/queries/customers/c-1/orders",
        &[("min_token", &token)],
    )
    .await;
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    assert_eq!(
        theirs.body["orders"][1]["status"], "confirmed",
        "{}",
        theirs.text
    );
    // Statistics read daily_sales: they answer, stale, but cannot promise the write.
    let stats = get_json(&app, "/queries/order-statistics", &[]).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let response = app
        .http
        .get(app.url("/queries/order-statistics"))
        .query(&[("min_token", token.as_str()), ("wait", "0.5")])
        .send()
        .await
        .expect("request");
    let problem = assert_problem(response, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("daily_sales"),
        "{problem}"
    );

    // Repaired, and asked to refresh now (despite its back-off), it recovers.
    client
        .batch_execute("ALTER TABLE read.daily_sales ADD CONSTRAINT daily_sales_pkey PRIMARY KEY (day, status)")
        .await
        .expect("repair daily_sales");
    let reply = Reply::read(
        app.http
            .post(app.url("/admin/read-models/daily_sales/refresh"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let healed = poll_until(
        "daily_sales to recover",
        Duration::from_secs(10),
        || async {
            let status = read_model(&app, "daily_sales").await;
            (status["consecutive_failures"] == 0).then_some(status)
        },
    )
    .await;
    assert_eq!(healed["last_error"], Value::Null, "{healed}");
    assert_eq!(healed["stale"], false, "{healed}");
    let stats = get_json(&app, "/queries/order-statistics", &[("min_token", &token)]).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["total_orders"], 3, "{}", stats.text);
    assert_eq!(
        stats.body["orders_by_status"]["confirmed"], 2,
        "{}",
        stats.text
    );
    app.stop().await;
}
