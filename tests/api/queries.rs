//! The query routes answer what the write tables hold, once refreshed.
//!
//! Each test places a varied set of orders through the command API (see
//! `crate::support::read::build_world`), refreshes the read models, and compares
//! every answer with what an independent query on the WRITE tables says.

use std::time::Duration;

use crate::support::read::*;
use crate::support::*;
use serde_json::{json, Value};
use time::OffsetDateTime;

async fn app_on_request() -> TestApp {
    TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await
}

/// Orders placed on past days (raw SQL: created_at can be chosen at insert),
/// then moved through every status with the command API.
/// (order, customer, created_at, items, steps)
type Historic = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, i32)],
    &'static [Step],
);

const HISTORIC: &[Historic] = &[
    (
        "h-01",
        "c-1",
        "2024-03-01T08:59:59.999999Z",
        &[("p-1", 1)],
        &[Step::Confirm, Step::Ship, Step::Deliver],
    ),
    ("h-02", "c-2", "2024-03-01T09:00:00Z", &[("p-2", 3)], &[]),
    (
        "h-03",
        "c-3",
        "2024-03-01T23:59:59.999999Z",
        &[("p-4", 2)],
        &[Step::Cancel("duplicate order")],
    ),
    (
        "h-04",
        "c-1",
        "2024-03-02T00:00:00Z",
        &[("p-5", 1), ("p-3", 5)],
        &[Step::Confirm],
    ),
    (
        "h-05",
        "c-2",
        "2024-03-02T12:00:00Z",
        &[("p-1", 2)],
        &[Step::Confirm, Step::Ship],
    ),
    ("h-06", "c-3", "2024-03-03T00:00:00Z", &[("p-3", 9)], &[]),
    (
        "h-07",
        "c-1",
        "2024-03-03T17:30:00Z",
        &[("p-4", 1)],
        &[Step::Confirm, Step::Ship, Step::Deliver],
    ),
    (
        "h-08",
        "c-2",
        "2024-03-04T09:59:59.999999Z",
        &[("p-2", 2)],
        &[Step::Confirm, Step::Cancel("address unknown")],
    ),
    (
        "h-09",
        "c-3",
        "2024-03-04T10:00:00Z",
        &[("p-5", 2)],
        &[Step::Confirm],
    ),
    (
        "h-10",
        "c-1",
        "2024-03-05T00:00:00Z",
        &[("p-1", 3)],
        &[Step::Confirm, Step::Ship],
    ),
    ("h-11", "c-2", "2024-03-05T12:00:00Z", &[("p-2", 1)], &[]),
];

async fn add_historic_orders(app: &TestApp) {
    let client = app.client().await;
    for (id, customer, at, items, steps) in HISTORIC {
        insert_order_at(client, id, customer, at, items).await;
        for (n, step) in steps.iter().enumerate() {
            let (path, body) = match step {
                Step::Confirm => ("confirm", json!({})),
                Step::Ship => ("ship", json!({})),
                Step::Deliver => ("deliver", json!({})),
                Step::Cancel(reason) => ("cancel", json!({ "reason": reason })),
                Step::Status(s) => ("status", json!({ "status": s })),
            };
            command(
                app,
                &format!("/commands/orders/{id}/{path}"),
                body,
                &format!("req-{id}-{n}"),
            )
            .await;
        }
    }
}

async fn created_at(app: &TestApp, id: &str) -> OffsetDateTime {
    app.db
        .client()
        .await
        .query_one("SELECT created_at FROM write.orders WHERE id = $1", &[&id])
        .await
        .expect("created_at")
        .get(0)
}

#[tokio::test]
async fn every_order_reads_as_the_write_tables_say_with_its_items_and_exact_totals() {
    let app = app_on_request().await;
    let world = build_world(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;

    for id in &world.order_ids {
        let reply = get_json(&app, &format!("/queries/orders/{id}"), &[]).await;
        assert_eq!(reply.status, 200, "order {id}: {}", reply.text);
        let expected = expected_order(client, id).await;
        assert_same(&format!("order {id}"), &reply.body, &expected);
    }

    // Money is a JSON number with its exact decimal value.
    let o01 = get_json(&app, "/queries/orders/o-01", &[]).await.body;
    assert_eq!(money_text(&o01["total"]), "40.68", "2 × 19.99 + 7 × 0.10");
    assert_eq!(money_text(&o01["items"][0]["unit_price"]), "19.99");
    assert_eq!(money_text(&o01["items"][0]["subtotal"]), "39.98");
    assert_eq!(money_text(&o01["items"][1]["subtotal"]), "0.7");
    let o04 = get_json(&app, "/queries/orders/o-04", &[]).await.body;
    assert_eq!(money_text(&o04["total"]), "1274.55");
    assert_eq!(o04["item_count"], 3);
    assert_eq!(
        o04["customer_name"], "Alan M. Turing",
        "the customer's current name"
    );
    // Placed after p-1's price change: the new price; o-01 kept the old one.
    let o11 = get_json(&app, "/queries/orders/o-11", &[]).await.body;
    assert_eq!(money_text(&o11["items"][0]["unit_price"]), "21.5");
    assert_eq!(money_text(&o11["total"]), "21.8");
    let o03 = get_json(&app, "/queries/orders/o-03", &[]).await.body;
    assert_eq!(o03["status"], "cancelled");
    assert_eq!(o03["status_display"], "Cancelled");
    assert_eq!(o03["cancel_reason"], "customer changed their mind");
    assert_eq!(o01["cancel_reason"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_order_is_a_404_problem() {
    let app = app_on_request().await;
    build_world(&app).await;
    refresh_settled(&app).await;
    for path in [
        "/queries/orders/no-such-order",
        "/queries/orders/no-such-order/history",
        "/queries/orders/-not-an-id",
    ] {
        let problem = assert_problem(app.get(path).await, 404).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("order"),
            "{path}: {problem}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_order_list_matches_the_write_tables_for_every_filter_and_page() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let all = write_orders(app.client().await).await;
    let o03 = rfc3339(created_at(&app, "o-03").await);
    let o07 = rfc3339(created_at(&app, "o-07").await);
    let t = |s: &str| Some(parse_time(s));

    struct Case {
        name: &'static str,
        params: Vec<(&'static str, String)>,
        filter: Filter,
    }
    let f = |customer: Option<&str>, status: Option<&str>, from, to| Filter {
        customer_id: customer.map(String::from),
        status: status.map(String::from),
        from,
        to,
    };
    let cases = vec![
        Case {
            name: "no filter",
            params: vec![],
            filter: f(None, None, None, None),
        },
        Case {
            name: "customer c-1",
            params: vec![("customer_id", "c-1".into())],
            filter: f(Some("c-1"), None, None, None),
        },
        Case {
            name: "customer c-4, who has no orders",
            params: vec![("customer_id", "c-4".into())],
            filter: f(Some("c-4"), None, None, None),
        },
        Case {
            name: "status in mixed case CoNfIrMeD",
            params: vec![("status", "CoNfIrMeD".into())],
            filter: f(None, Some("confirmed"), None, None),
        },
        Case {
            name: "status CANCELLED",
            params: vec![("status", "CANCELLED".into())],
            filter: f(None, Some("cancelled"), None, None),
        },
        Case {
            name: "status pending",
            params: vec![("status", "pending".into())],
            filter: f(None, Some("pending"), None, None),
        },
        Case {
            name: "from o-03's creation, inclusive",
            params: vec![("from", o03.clone())],
            filter: f(None, None, t(&o03), None),
        },
        Case {
            name: "to o-07's creation, exclusive",
            params: vec![("to", o07.clone())],
            filter: f(None, None, None, t(&o07)),
        },
        Case {
            name: "from o-03 to o-07",
            params: vec![("from", o03.clone()), ("to", o07.clone())],
            filter: f(None, None, t(&o03), t(&o07)),
        },
        Case {
            name: "past days 2024-03-02 to 2024-03-04 (midnight bounds)",
            params: vec![
                ("from", "2024-03-02T00:00:00Z".into()),
                ("to", "2024-03-04T00:00:00Z".into()),
            ],
            filter: f(
                None,
                None,
                t("2024-03-02T00:00:00Z"),
                t("2024-03-04T00:00:00Z"),
            ),
        },
        Case {
            name: "bounds with a +02:00 offset",
            params: vec![
                ("from", "2024-03-02T01:00:00+02:00".into()),
                ("to", "2024-03-04T12:00:00+02:00".into()),
            ],
            filter: f(
                None,
                None,
                t("2024-03-01T23:00:00Z"),
                t("2024-03-04T10:00:00Z"),
            ),
        },
        Case {
            name: "customer c-2 and status delivered",
            params: vec![
                ("customer_id", "c-2".into()),
                ("status", "Delivered".into()),
            ],
            filter: f(Some("c-2"), Some("delivered"), None, None),
        },
        Case {
            name: "customer c-1, status confirmed, from 2024-01-01",
            params: vec![
                ("customer_id", "c-1".into()),
                ("status", "confirmed".into()),
                ("from", "2024-01-01T00:00:00Z".into()),
                ("to", "2030-01-01T00:00:00Z".into()),
            ],
            filter: f(
                Some("c-1"),
                Some("confirmed"),
                t("2024-01-01T00:00:00Z"),
                t("2030-01-01T00:00:00Z"),
            ),
        },
    ];

    for case in &cases {
        let mut nonempty = false;
        for page_size in [3i64, 20, 100] {
            let expected_total = expected_page(&all, &case.filter, 1, page_size)["total"]
                .as_i64()
                .unwrap_or_default();
            let pages = (expected_total + page_size - 1) / page_size;
            // Every page, and one past the end (empty, same total).
            for page in 1..=pages + 1 {
                let mut params: Vec<(&str, &str)> =
                    case.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (p, ps) = (page.to_string(), page_size.to_string());
                params.push(("page", &p));
                params.push(("page_size", &ps));
                // exact whatever the filters (the default counts exactly
                // only where a read model keeps the count)
                params.push(("count", "exact"));
                let reply = get_json(&app, "/queries/orders", &params).await;
                let label = format!("{} (page {page}, page_size {page_size})", case.name);
                assert_eq!(reply.status, 200, "{label}: {}", reply.text);
                let expected = expected_page(&all, &case.filter, page, page_size);
                assert_same_page(&label, &reply.body, &expected);
                if page > pages {
                    assert_eq!(reply.body["orders"], json!([]), "{label}: beyond the end");
                }
                nonempty |= !reply.body["orders"]
                    .as_array()
                    .is_some_and(|o| o.is_empty());
            }
        }
        if case.name != "customer c-4, who has no orders" {
            assert!(
                nonempty,
                "{}: the case selects no orders; it tests nothing",
                case.name
            );
        }
    }

    // Defaults: page 1 of 20.
    let reply = get_json(&app, "/queries/orders", &[]).await;
    assert_same_page(
        "defaults",
        &reply.body,
        &expected_page(&all, &Filter::default(), 1, 20),
    );
    assert_eq!(reply.body["total"], all.len() as i64);
    assert_eq!(reply.body["total_pages"], (all.len() as i64 + 19) / 20);
    app.stop().await;
}

#[tokio::test]
async fn a_customers_orders_match_the_write_tables_and_an_unknown_customer_is_404() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let all = write_orders(app.client().await).await;

    for customer in ["c-1", "c-2", "c-3", "c-4"] {
        let filter = Filter {
            customer_id: Some(customer.into()),
            ..Default::default()
        };
        let page_size = 4i64;
        let total = expected_page(&all, &filter, 1, page_size)["total"]
            .as_i64()
            .unwrap_or_default();
        let pages = (total + page_size - 1) / page_size;
        for page in 1..=pages + 1 {
            let (p, ps) = (page.to_string(), page_size.to_string());
            let reply = get_json(
                &app,
                &format!("/queries/customers/{customer}/orders"),
                &[("page", &p), ("page_size", &ps)],
            )
            .await;
            let label = format!("customer {customer} page {page}");
            assert_eq!(reply.status, 200, "{label}: {}", reply.text);
            assert_same_page(
                &label,
                &reply.body,
                &expected_page(&all, &filter, page, page_size),
            );
        }
    }
    let c4 = get_json(&app, "/queries/customers/c-4/orders", &[]).await;
    assert_eq!(c4.status, 200, "a customer without orders: {}", c4.text);
    assert_eq!(c4.body["total"], 0);
    assert_eq!(c4.body["total_pages"], 0);

    let problem = assert_problem(app.get("/queries/customers/c-999/orders").await, 404).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("c-999"),
        "the 404 names the customer: {problem}"
    );
    app.stop().await;
}

/// `customer_orders` (existence) and `order_summary` (the list) are
/// refreshed on different schedules: a new customer whose order already
/// shows in `/queries/orders` must not be a 404 on their own list.
#[tokio::test]
async fn a_customer_whose_orders_show_is_never_404_while_customer_orders_lags() {
    let app = app_on_request().await;
    app.seed_catalog().await;
    wait_for_startup_checks(&app).await;
    refresh_settled(&app).await;
    command(
        &app,
        "/commands/customers",
        json!({"id": "c-new", "name": "Grace Hopper", "email": "grace@example.com"}),
        "r-new-customer",
    )
    .await;
    command(
        &app,
        "/commands/orders",
        json!({"order_id": "o-new", "customer_id": "c-new", "items": [{"product_id": "p-1", "quantity": 2}]}),
        "r-new-order",
    )
    .await;
    // Only order_summary is refreshed: customer_orders never ticks.
    let refresher = app.refresher.as_ref().expect("refresher");
    let summary = refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == "order_summary")
        .expect("order_summary is scheduled");
    refresher
        .refresh_once(&summary, false)
        .await
        .expect("refresh order_summary");
    let client = app.db.client().await;
    let listed: i64 = client
        .query_one(
            "SELECT count(*) FROM read.customer_orders WHERE customer_id = 'c-new'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        listed, 0,
        "customer_orders must lag for this test to mean anything"
    );

    let all = get_json(&app, "/queries/orders", &[("customer_id", "c-new")]).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body["total"], 1, "the order shows in /queries/orders");
    let own = get_json(&app, "/queries/customers/c-new/orders", &[]).await;
    assert_eq!(own.status, 200, "the customer's own list: {}", own.text);
    assert_eq!(own.body["total"], 1);
    assert_eq!(own.body["orders"][0]["order_id"], "o-new");
    // A customer unknown to both models is still a 404.
    assert_problem(app.get("/queries/customers/c-nobody/orders").await, 404).await;
    app.stop().await;
}

#[tokio::test]
async fn statistics_match_the_write_tables_for_every_range() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;
    let o03 = rfc3339(created_at(&app, "o-03").await);
    let o07 = rfc3339(created_at(&app, "o-07").await);
    let now = OffsetDateTime::now_utc();
    let hour_ago = rfc3339(now - time::Duration::hours(1));
    let in_an_hour = rfc3339(now + time::Duration::hours(1));

    let cases: Vec<(&str, String, String)> = vec![
        (
            "all time",
            "2000-01-01T00:00:00Z".into(),
            "2100-01-01T00:00:00Z".into(),
        ),
        ("around now", hour_ago, in_an_hour),
        ("from o-03 to o-07 (exact creation times)", o03, o07),
        (
            "whole UTC days only",
            "2024-03-01T00:00:00Z".into(),
            "2024-03-04T00:00:00Z".into(),
        ),
        (
            "partial days at both edges",
            "2024-03-01T09:00:00.000001Z".into(),
            "2024-03-04T10:00:00Z".into(),
        ),
        (
            "edges that include the orders on them",
            "2024-03-01T09:00:00Z".into(),
            "2024-03-04T10:00:00.000001Z".into(),
        ),
        (
            "within one day",
            "2024-03-02T06:00:00Z".into(),
            "2024-03-02T18:00:00Z".into(),
        ),
        (
            "one whole day",
            "2024-03-02T00:00:00Z".into(),
            "2024-03-03T00:00:00Z".into(),
        ),
        (
            "across one midnight",
            "2024-03-01T23:00:00Z".into(),
            "2024-03-02T01:00:00Z".into(),
        ),
        (
            "one microsecond before to one after midnight",
            "2024-03-01T23:59:59.999999Z".into(),
            "2024-03-02T00:00:00.000001Z".into(),
        ),
        (
            "a +02:00 offset",
            "2024-03-02T01:00:00+02:00".into(),
            "2024-03-05T01:00:00+02:00".into(),
        ),
        (
            "a -05:00 offset",
            "2024-03-01T20:00:00-05:00".into(),
            "2024-03-03T19:00:00-05:00".into(),
        ),
        (
            "an empty range",
            "2023-01-01T00:00:00Z".into(),
            "2023-01-02T00:00:00Z".into(),
        ),
    ];

    for (name, from, to) in &cases {
        let reply = get_json(
            &app,
            "/queries/order-statistics",
            &[("from", from.as_str()), ("to", to.as_str())],
        )
        .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text);
        let (from_t, to_t) = (parse_time(from), parse_time(to));
        let expected = expected_statistics(client, from_t, to_t).await;
        let mut actual = reply.body.clone();
        let echoed_from = actual.as_object_mut().and_then(|o| o.remove("from"));
        let echoed_to = actual.as_object_mut().and_then(|o| o.remove("to"));
        assert_same(name, &actual, &expected);
        assert_same(
            &format!("{name}: from and to are echoed"),
            &json!([echoed_from, echoed_to]),
            &json!([from, to]),
        );
        assert!(
            reply.body["total_revenue"].is_number()
                && reply.body["average_order_value"].is_number(),
            "{name}: money is a number: {}",
            reply.text
        );
    }

    // The data exercises every status, and the average needs rounding.
    let all = get_json(
        &app,
        "/queries/order-statistics",
        &[
            ("from", "2000-01-01T00:00:00Z"),
            ("to", "2100-01-01T00:00:00Z"),
        ],
    )
    .await
    .body;
    for (status, count) in all["orders_by_status"]
        .as_object()
        .expect("orders_by_status")
    {
        assert!(
            count.as_i64() > Some(0),
            "no {status} order in the data: {all}"
        );
    }
    let dec = |v: &Value| rust_decimal::Decimal::from_str_exact(&money_text(v)).expect("decimal");
    let (revenue, average) = (dec(&all["total_revenue"]), dec(&all["average_order_value"]));
    let orders = rust_decimal::Decimal::from(all["total_orders"].as_i64().expect("total_orders"));
    assert_ne!(
        average * orders,
        revenue,
        "the average of this data needs no rounding; it tests less: {all}"
    );
    assert!(
        (revenue / orders - average).abs() <= rust_decimal::Decimal::new(5, 3),
        "the average is not total_revenue / total_orders to the cent: {all}"
    );
    assert_eq!(
        all["orders_by_status"].as_object().map(|o| o.len()),
        Some(5)
    );
    let empty = get_json(
        &app,
        "/queries/order-statistics",
        &[
            ("from", "2023-01-01T00:00:00Z"),
            ("to", "2023-01-02T00:00:00Z"),
        ],
    )
    .await
    .body;
    assert_eq!(money_text(&empty["average_order_value"]), "0");
    assert_eq!(money_text(&empty["total_revenue"]), "0");
    assert_eq!(empty["orders_by_status"]["cancelled"], 0);
    app.stop().await;
}

#[tokio::test]
async fn statistics_without_a_range_cover_the_last_thirty_days() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let reply = get_json(&app, "/queries/order-statistics", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let to = parse_time(reply.body["to"].as_str().expect("to"));
    let from = parse_time(reply.body["from"].as_str().expect("from"));
    assert_eq!(to - from, time::Duration::days(30));
    assert!((OffsetDateTime::now_utc() - to).abs() < time::Duration::seconds(10));
    let expected = expected_statistics(app.client().await, from, to).await;
    let mut actual = reply.body.clone();
    if let Some(o) = actual.as_object_mut() {
        o.remove("from");
        o.remove("to");
    }
    assert_same("the last 30 days", &actual, &expected);
    assert_eq!(
        reply.body["total_orders"], 12,
        "o-01..o-11 and one generated; no past orders"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_orders_history_lists_every_event_with_its_correlation_id_without_a_refresh() {
    let app = app_on_request().await;
    let world = build_world(&app).await;
    let client = app.client().await;
    // No refresh: the history is kept by trigger in the writing transaction.
    for (id, request_ids) in &world.request_ids {
        let reply = get_json(&app, &format!("/queries/orders/{id}/history"), &[]).await;
        assert_eq!(reply.status, 200, "history of {id}: {}", reply.text);
        assert_eq!(reply.body["order_id"], id.as_str());
        let events = &reply.body["events"];
        assert_same(
            &format!("history of {id}"),
            events,
            &expected_history(client, id).await,
        );
        let correlation: Vec<&str> = events
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["correlation_id"].as_str().unwrap_or("<none>"))
            .collect();
        assert_eq!(
            &correlation, request_ids,
            "history of {id}: one event per command"
        );
        let versions: Vec<i64> = events
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["version"].as_i64())
            .collect();
        assert_eq!(versions, (1..=request_ids.len() as i64).collect::<Vec<_>>());
        assert!(reply.header("x-read-model-refreshed-at").is_some());
    }
    let o09 = get_json(&app, "/queries/orders/o-09/history", &[])
        .await
        .body;
    let kinds: Vec<&str> = o09["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "OrderCreated",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "OrderCancelled"
        ]
    );
    assert_eq!(o09["events"][3]["reason"], "lost in transit");
    assert_eq!(o09["events"][3]["status"], "cancelled");
    app.stop().await;
}

#[tokio::test]
async fn the_statistics_query_reads_daily_sales_and_order_summary_never_the_write_tables() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;
    client.batch_execute("ANALYZE").await.expect("analyze");
    let sql = include_str!("../../sql/queries/order_statistics.sql");
    for (from, to) in [
        ("2024-03-01T09:00:00Z", "2024-03-04T10:00:00Z"),
        ("2024-03-02T06:00:00Z", "2024-03-02T18:00:00Z"),
        ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"),
    ] {
        let plan: Vec<String> = client
            .query(
                &format!("EXPLAIN (VERBOSE, COSTS OFF)\n{sql}"),
                &[&parse_time(from), &parse_time(to)],
            )
            .await
            .expect("explain the statistics query")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        let range = format!("[{from}, {to})");
        assert!(
            plan.contains("read.daily_sales"),
            "{range}: no daily_sales in\n{plan}"
        );
        assert!(
            plan.contains("read.order_summary"),
            "{range}: no order_summary in\n{plan}"
        );
        assert!(
            !plan.contains("write."),
            "{range}: reads the write schema:\n{plan}"
        );
        assert!(
            !plan.contains(" orders "),
            "{range}: reads an orders table:\n{plan}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn read_models_lists_every_view_with_its_last_refresh() {
    let app = app_on_request().await;
    build_world(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;
    let reply = get_json(&app, "/queries/read-models", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let models = reply.body["read_models"].as_array().expect("read_models");
    let mut names: Vec<&str> = models.iter().filter_map(|m| m["name"].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "customer_orders",
            "daily_sales",
            "order_lines",
            "order_summary",
            "product_sales"
        ]
    );
    for m in models {
        let name = m["name"].as_str().unwrap_or_default();
        // Exact for a refreshed view, possibly a planner estimate for a
        // large table: always what the last refresh logged.
        let logged: i64 = client
            .query_one(
                "SELECT rows FROM read.refresh_log WHERE view_name = $1
                 ORDER BY refresh_id DESC LIMIT 1",
                &[&name],
            )
            .await
            .expect("last refresh")
            .get(0);
        assert_eq!(
            m["rows"], logged,
            "{name}: rows, as its last refresh logged"
        );
        assert!(m["rows"].as_i64() >= Some(0), "{name}: {m}");
        assert_eq!(m["stale"], false, "{name}: {m}");
        assert_eq!(m["lag_seconds"].as_f64(), Some(0.0), "{name}: {m}");
        assert_eq!(m["last_error"], Value::Null, "{name}: {m}");
        assert_eq!(m["consecutive_failures"], 0, "{name}: {m}");
        assert!(m["schedule"].is_string(), "{name}: {m}");
        assert!(m["last_duration_ms"].is_number(), "{name}: {m}");
        let at = parse_time(m["last_refresh_at"].as_str().unwrap_or("none"));
        assert!(
            OffsetDateTime::now_utc() - at < time::Duration::seconds(60),
            "{name}: last refreshed at {at}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_admin_refresh_refreshes_a_view_even_when_nothing_changed() {
    let app = app_on_request().await;
    build_world(&app).await;
    wait_for_startup_checks(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;
    let before = refresh_counts(client).await;

    let reply = Reply::read(
        app.http
            .post(app.url("/admin/read-models/order_summary/refresh"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);

    let after = poll_until("the forced refresh", Duration::from_secs(10), || async {
        let now = refresh_counts(client).await;
        (now != before).then_some(now)
    })
    .await;
    for ((view, b), (_, a)) in before.iter().zip(&after) {
        let grew = if view == "order_summary" { 1 } else { 0 };
        assert_eq!(
            *a,
            b + grew,
            "{view}: refresh_log rows before {b}, after {a}"
        );
    }
    app.stop().await;
}

/// Times with more than microsecond precision (RFC 3339 allows any): the
/// range is still [from, to) exactly, though PostgreSQL keeps microseconds.
#[tokio::test]
async fn bounds_finer_than_a_microsecond_keep_the_range_half_open() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    // h-01 at 08:59:59.999999, h-02 at 09:00:00 exactly.
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "from a tenth of a microsecond after h-02",
            "2024-03-01T09:00:00.0000001Z",
            "2024-03-01T10:00:00Z",
            &[],
        ),
        (
            "to a tenth of a microsecond after h-02",
            "2024-03-01T08:30:00Z",
            "2024-03-01T09:00:00.0000001Z",
            &["h-02", "h-01"],
        ),
    ];
    for (case, from, to, ids) in cases {
        let list = get_json(&app, "/queries/orders", &[("from", from), ("to", to)]).await;
        assert_eq!(list.status, 200, "{case}: {}", list.text);
        let got: Vec<&str> = list.body["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .filter_map(|o| o["order_id"].as_str())
            .collect();
        assert_eq!(&got, ids, "{case}: list [{from}, {to})");
        let stats = get_json(
            &app,
            "/queries/order-statistics",
            &[("from", from), ("to", to)],
        )
        .await;
        assert_eq!(stats.status, 200, "{case}: {}", stats.text);
        assert_eq!(
            stats.body["total_orders"],
            ids.len(),
            "{case}: statistics [{from}, {to})"
        );
    }
    app.stop().await;
}

/// Follow `next` from the first page to the end; the orders in the order
/// shown. `between` runs after each page (to write while the walk goes on).
async fn walk(
    app: &TestApp,
    path: &str,
    params: &[(&str, &str)],
    mut between: impl AsyncFnMut(usize),
) -> Vec<Value> {
    let (mut seen, mut after) = (Vec::new(), None::<String>);
    for step in 0.. {
        let mut query = params.to_vec();
        if let Some(a) = &after {
            query.push(("after", a));
        }
        let reply = get_json(app, path, &query).await;
        assert_eq!(reply.status, 200, "{path} step {step}: {}", reply.text);
        seen.extend(reply.body["orders"].as_array().cloned().unwrap_or_default());
        match reply.body["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        between(step).await;
        assert!(step < 1000, "{path}: the walk does not end");
    }
    seen
}

#[tokio::test]
async fn following_next_lists_every_order_once_even_while_new_orders_arrive() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let cases = [
        ("/queries/orders", vec![], Filter::default()),
        (
            "/queries/orders",
            vec![("status", "delivered")],
            Filter {
                status: Some("delivered".into()),
                ..Default::default()
            },
        ),
        (
            "/queries/customers/c-1/orders",
            vec![],
            Filter {
                customer_id: Some("c-1".into()),
                ..Default::default()
            },
        ),
    ];
    for (case, (path, params, filter)) in cases.iter().enumerate() {
        // What the write tables hold when the walk starts.
        let all = write_orders(app.client().await).await;
        let expected = expected_page(&all, filter, 1, 10_000)["orders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            expected.len() > 3,
            "{path} {params:?}: too few orders to page"
        );
        let mut params = params.clone();
        params.push(("page_size", "3"));
        // While the walk goes on, new orders arrive and the read models
        // take them: newer than every cursor, they never shift a page.
        let placed = std::cell::Cell::new(0);
        let seen = walk(&app, path, &params, async |step| {
            if step % 2 == 0 {
                placed.set(placed.get() + 1);
                let r = app
                    .post(
                        "/commands/orders",
                        json!({"order_id": format!("o-walk-{case}-{}", placed.get()), "customer_id": "c-1",
                               "items": [{"product_id": "p-2", "quantity": 1}]}),
                    )
                    .await;
                let status = r.status();
                assert_eq!(status, 202, "{}", r.text().await.unwrap_or_default());
                refresh_settled(&app).await;
            }
        })
        .await;
        assert!(
            placed.get() > 0,
            "{path}: nothing was written during the walk"
        );
        assert_same(
            &format!("{path} {params:?} by next"),
            &json!(seen),
            &json!(expected),
        );
    }
}

#[tokio::test]
async fn a_default_total_counts_a_few_orders_and_estimates_many() {
    let app = app_on_request().await;
    app.seed_catalog().await;
    // 1,500 orders a minute apart on one day, none kept by a count that
    // fits a filter from the middle of a day.
    app.client()
        .await
        .batch_execute(
            "BEGIN;
             INSERT INTO write.orders (id, customer_id, total, created_at)
             SELECT format('o-many-%s', i), 'c-1', 2 * p.price,
                    timestamptz '2023-06-01 00:00:00+00' + i * interval '1 minute'
               FROM generate_series(1, 1500) i, write.products p WHERE p.id = 'p-1';
             INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             SELECT format('o-many-%s', i), 1, 'p-1', 2, p.price
               FROM generate_series(1, 1500) i, write.products p WHERE p.id = 'p-1';
             COMMIT;",
        )
        .await
        .expect("1,500 orders");
    refresh_settled(&app).await;
    app.client()
        .await
        .batch_execute("ANALYZE read.order_summary")
        .await
        .expect("analyze");
    let all = write_orders(app.client().await).await;
    let (from, to) = ("2023-06-01T00:30:00Z", "2023-06-01T12:30:00Z");
    let few = Filter {
        from: Some(parse_time(from)),
        to: Some(parse_time(to)),
        ..Default::default()
    };
    let exact = expected_page(&all, &few, 1, 20)["total"].clone();
    assert_eq!(
        exact,
        json!(720),
        "the filter's orders, from the write tables"
    );

    // 720 expected and 720 counted: exact, and says so.
    let reply = get_json(&app, "/queries/orders", &[("from", from), ("to", to)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        (
            &reply.body["count"],
            &reply.body["total"],
            &reply.body["total_pages"]
        ),
        (&json!("exact"), &exact, &json!(36)),
        "{}",
        reply.text
    );
    // Asked for the estimate, the estimate alone.
    let planned = get_json(
        &app,
        "/queries/orders",
        &[("from", from), ("to", to), ("count", "planned")],
    )
    .await;
    assert_eq!(planned.body["count"], "planned", "{}", planned.text);
    // 1,471 from the middle of the day on: the planner's estimate.
    let many = get_json(&app, "/queries/orders", &[("from", from)]).await;
    assert_eq!(many.status, 200, "{}", many.text);
    assert_eq!(many.body["count"], "planned", "{}", many.text);
    let total = many.body["total"].as_i64().unwrap_or_default();
    assert!(
        (1_000..=3_000).contains(&total),
        "an estimate near 1,471: {}",
        many.text
    );
}

#[tokio::test]
async fn a_list_says_how_its_total_was_counted() {
    let app = app_on_request().await;
    build_world(&app).await;
    add_historic_orders(&app).await;
    refresh_settled(&app).await;
    let all = write_orders(app.client().await).await;
    let exact = |filter: &Filter| expected_page(&all, filter, 1, 20)["total"].clone();
    let delivered = Filter {
        status: Some("delivered".into()),
        ..Default::default()
    };
    let c2_delivered = Filter {
        customer_id: Some("c-2".into()),
        status: Some("delivered".into()),
        ..Default::default()
    };

    // By default: exact where a read model keeps the count (all orders, a
    // status, whole days; a customer alone), for one customer's orders,
    // or where few orders match (all of them here; the planner's estimate
    // for many is the next test).
    for (params, filter, how) in [
        (vec![], Filter::default(), "exact"),
        (vec![("status", "delivered")], delivered.clone(), "exact"),
        (
            vec![("from", "2024-01-01T00:00:00Z")],
            Filter {
                from: Some(parse_time("2024-01-01T00:00:00Z")),
                ..Default::default()
            },
            "exact",
        ),
        (
            vec![("from", "2024-01-01T12:00:00Z")],
            Filter {
                from: Some(parse_time("2024-01-01T12:00:00Z")),
                ..Default::default()
            },
            "exact",
        ),
        (
            vec![("customer_id", "c-2"), ("status", "delivered")],
            c2_delivered.clone(),
            "exact",
        ),
        (
            vec![
                ("count", "exact"),
                ("customer_id", "c-2"),
                ("status", "delivered"),
            ],
            c2_delivered.clone(),
            "exact",
        ),
        (
            vec![("count", "planned"), ("status", "delivered")],
            delivered.clone(),
            "planned",
        ),
    ] {
        let reply = get_json(&app, "/queries/orders", &params).await;
        assert_eq!(reply.status, 200, "{params:?}: {}", reply.text);
        assert_eq!(reply.body["count"], how, "{params:?}: {}", reply.text);
        if how == "exact" {
            assert_eq!(reply.body["total"], exact(&filter), "{params:?}");
        } else {
            assert!(
                reply.body["total"].as_i64().is_some_and(|t| t >= 0),
                "{params:?}: {}",
                reply.text
            );
        }
    }
    let mine = get_json(&app, "/queries/customers/c-2/orders", &[]).await;
    assert_eq!(mine.body["count"], "exact", "{}", mine.text);
    assert_eq!(
        mine.body["total"],
        exact(&Filter {
            customer_id: Some("c-2".into()),
            ..Default::default()
        })
    );

    // none: no total at all; the page and its cursor are still there.
    let none = get_json(
        &app,
        "/queries/orders",
        &[("count", "none"), ("page_size", "2")],
    )
    .await;
    assert_eq!(none.status, 200, "{}", none.text);
    assert_eq!(
        (
            &none.body["count"],
            &none.body["total"],
            &none.body["total_pages"]
        ),
        (&json!("none"), &Value::Null, &Value::Null)
    );
    assert!(none.body["next"].is_string(), "{}", none.text);
    // An unknown customer is a 404 however the total is counted.
    for count in ["exact", "planned", "none"] {
        assert_problem(
            app.get(&format!("/queries/customers/c-999/orders?count={count}"))
                .await,
            404,
        )
        .await;
    }

    // Mistakes are 400s that say what to send.
    for (query, says) in [
        ("count=some", "exact, planned or none"),
        ("after=not-a-cursor", "not a cursor"),
        ("after=bm9wZQ", "not a cursor"),
        ("page=2&after=MTIz", "page or after"),
    ] {
        let problem = assert_problem(app.get(&format!("/queries/orders?{query}")).await, 400).await;
        let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
        assert!(detail.contains(says), "{query}: {detail}");
    }
    app.stop().await;
}

/// A list's page is one statement its connection keeps per set of filters
/// and page size, whatever the values (the size written into it, so that
/// PostgreSQL can keep one plan); each page equals the same page of the
/// write tables, newest first, for every status and size.
#[tokio::test]
async fn a_list_page_is_one_statement_per_filters_and_page_size() {
    use pgcqrs::domain::OrderStatus;
    use pgcqrs::queries::orders::{list_orders, ListRequest, OrderFilter, Page};

    let app = app_on_request().await;
    build_world(&app).await;
    refresh_settled(&app).await;
    let client = app.client().await;
    let pool = app.pool_of_one();
    let kept = || kept_statements(&pool);
    let page = |status: &'static str, size: i64| {
        let pool = &pool;
        async move {
            let request = ListRequest {
                filter: OrderFilter {
                    status: Some(OrderStatus::parse(status).expect("a status")),
                    ..OrderFilter::default()
                },
                page: Page { number: 1, size },
                after: None,
                count: None,
            };
            let got: Vec<String> = list_orders(pool, &request)
                .await
                .expect("a page")
                .orders
                .into_iter()
                .map(|o| o.order_id)
                .collect();
            let want: Vec<String> = client
                .query(
                    "SELECT id::text FROM write.orders WHERE status = $1
                      ORDER BY created_at DESC, id DESC LIMIT $2",
                    &[&status, &size],
                )
                .await
                .expect("the page in SQL")
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(got, want, "{status}, {size} a page");
            got.len()
        }
    };
    const STATUSES: [&str; 5] = ["pending", "confirmed", "shipped", "delivered", "cancelled"];
    let mut listed = 0;
    for status in STATUSES {
        listed += page(status, 2).await;
    }
    assert!(listed > 5, "the world has orders in several statuses");
    let one_size = kept().await;
    for status in STATUSES {
        page(status, 2).await;
    }
    assert_eq!(kept().await, one_size, "other values, the same statement");
    for status in STATUSES {
        page(status, 3).await;
    }
    assert_eq!(kept().await, one_size + 1, "another page size, one more");
}

/// Rows are read by position, each column found once by its name: a
/// statement that lists the columns in another order than the struct still
/// fills each field from the column of its name, and so do rows of two
/// statements with two orders, read together, and a column whose name
/// differs only in case. A missing column is an error that names it.
#[tokio::test]
async fn result_rows_fill_each_field_from_the_column_of_its_name() {
    use pgcqrs::db::FromRow;
    use pgcqrs::queries::orders::OrderLine;
    use rust_decimal::Decimal;

    let db = TestDb::create().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT * FROM (VALUES ('4.75'::numeric, 'p-2', 2, 'Pen', '9.50'::numeric),
                                   ('0.99'::numeric, 'p-3', 1, 'Ink', '0.99'::numeric))
                      AS v (unit_price, product_id, quantity, product_name, subtotal)",
            &[],
        )
        .await
        .expect("rows");
    let lines = OrderLine::from_rows(&rows).expect("every column is there");
    let seen: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l.product_id.as_str(),
                l.product_name.as_str(),
                l.quantity,
                l.unit_price,
                l.subtotal,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("p-2", "Pen", 2, Decimal::new(475, 2), Decimal::new(950, 2)),
            ("p-3", "Ink", 1, Decimal::new(99, 2), Decimal::new(99, 2)),
        ]
    );
    // the same as reading each row by name
    let one_by_one = rows
        .iter()
        .map(OrderLine::from_row)
        .collect::<Result<Vec<_>, _>>()
        .expect("by name");
    assert_eq!(format!("{lines:?}"), format!("{one_by_one:?}"));
    assert!(OrderLine::from_rows(&[]).expect("no rows").is_empty());

    // rows of two statements, each with its own order of columns
    let mut mixed = client
        .query(
            "SELECT 'p-4'::text AS product_id, 'Cap'::text AS product_name, 3 AS quantity,
                    '2.00'::numeric AS unit_price, '6.00'::numeric AS subtotal",
            &[],
        )
        .await
        .expect("rows");
    mixed.extend(rows);
    mixed.extend(
        client
            .query(
                r#"SELECT '1.25'::numeric AS subtotal, 'Nib'::text AS "Product_Name",
                          1 AS quantity, '1.25'::numeric AS unit_price, 'p-5'::text AS product_id"#,
                &[],
            )
            .await
            .expect("rows"),
    );
    let read = OrderLine::from_rows(&mixed).expect("every column is there");
    let seen: Vec<_> = read
        .iter()
        .map(|l| (l.product_id.as_str(), l.product_name.as_str(), l.subtotal))
        .collect();
    assert_eq!(
        seen,
        [
            ("p-4", "Cap", Decimal::new(600, 2)),
            ("p-2", "Pen", Decimal::new(950, 2)),
            ("p-3", "Ink", Decimal::new(99, 2)),
            ("p-5", "Nib", Decimal::new(125, 2)),
        ]
    );

    let without_subtotal = client
        .query(
            "SELECT 'p-2'::text AS product_id, 'Pen'::text AS product_name,
                    2 AS quantity, '4.75'::numeric AS unit_price",
            &[],
        )
        .await
        .expect("rows");
    let missing = OrderLine::from_rows(&without_subtotal).expect_err("a column is missing");
    assert!(
        missing.to_string().contains("subtotal"),
        "the error names the missing column: {missing}"
    );
}
