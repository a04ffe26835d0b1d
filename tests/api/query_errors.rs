//! Bad query parameters are 400 problems that say what to fix; unknown ids
//! are 404 problems. Never a 500, never a silently ignored parameter.

use crate::support::*;

/// (case, path, query parameters, words the detail must contain)
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

const BAD_PARAMETERS: &[Case] = &[
    // GET /queries/orders
    (
        "unknown status",
        "/queries/orders",
        &[("status", "bogus")],
        &["status", "bogus", "pending"],
    ),
    (
        "empty status",
        "/queries/orders",
        &[("status", "")],
        &["status"],
    ),
    (
        "from is not a time",
        "/queries/orders",
        &[("from", "yesterday")],
        &["from", "RFC 3339"],
    ),
    (
        "from is a date without a time",
        "/queries/orders",
        &[("from", "2024-01-01")],
        &["from"],
    ),
    (
        "to has month 13",
        "/queries/orders",
        &[("to", "2024-13-01T00:00:00Z")],
        &["to", "RFC 3339"],
    ),
    (
        "from after to",
        "/queries/orders",
        &[
            ("from", "2024-03-02T00:00:00Z"),
            ("to", "2024-03-01T00:00:00Z"),
        ],
        &["from", "to"],
    ),
    (
        "from equal to to",
        "/queries/orders",
        &[
            ("from", "2024-03-01T00:00:00Z"),
            ("to", "2024-03-01T00:00:00Z"),
        ],
        &["from", "to"],
    ),
    (
        "page 0",
        "/queries/orders",
        &[("page", "0")],
        &["page", "1"],
    ),
    ("page -1", "/queries/orders", &[("page", "-1")], &["page"]),
    ("page x", "/queries/orders", &[("page", "x")], &["page"]),
    ("page 1.5", "/queries/orders", &[("page", "1.5")], &["page"]),
    (
        "page_size 101",
        "/queries/orders",
        &[("page_size", "101")],
        &["page_size", "100"],
    ),
    (
        "page_size 0",
        "/queries/orders",
        &[("page_size", "0")],
        &["page_size"],
    ),
    (
        "page_size ten",
        "/queries/orders",
        &[("page_size", "ten")],
        &["page_size"],
    ),
    (
        "unknown parameter",
        "/queries/orders",
        &[("colour", "red")],
        &["colour"],
    ),
    (
        "a parameter given twice",
        "/queries/orders",
        &[("page", "1"), ("page", "2")],
        &["page"],
    ),
    (
        "customer_id that cannot be an id",
        "/queries/orders",
        &[("customer_id", "not an id!")],
        &["customer_id"],
    ),
    (
        "min_token abc",
        "/queries/orders",
        &[("min_token", "abc")],
        &["min_token"],
    ),
    (
        "wait 31",
        "/queries/orders",
        &[("wait", "31")],
        &["wait", "30"],
    ),
    // GET /queries/orders/{id}
    (
        "min_token abc on one order",
        "/queries/orders/o-1",
        &[("min_token", "abc")],
        &["min_token", "abc"],
    ),
    (
        "min_token -1 on one order",
        "/queries/orders/o-1",
        &[("min_token", "-1")],
        &["min_token"],
    ),
    (
        "min_token beyond 64 bits",
        "/queries/orders/o-1",
        &[("min_token", "99999999999999999999")],
        &["min_token"],
    ),
    (
        "wait 31 on one order",
        "/queries/orders/o-1",
        &[("min_token", "5"), ("wait", "31")],
        &["wait"],
    ),
    (
        "wait soon on one order",
        "/queries/orders/o-1",
        &[("wait", "soon")],
        &["wait"],
    ),
    (
        "wait -1 on one order",
        "/queries/orders/o-1",
        &[("wait", "-1")],
        &["wait"],
    ),
    (
        "unknown parameter on one order",
        "/queries/orders/o-1",
        &[("verbose", "1")],
        &["verbose"],
    ),
    // GET /queries/customers/{id}/orders
    (
        "page 0 of a customer's orders",
        "/queries/customers/c-1/orders",
        &[("page", "0")],
        &["page"],
    ),
    (
        "page_size 101 of a customer's orders",
        "/queries/customers/c-1/orders",
        &[("page_size", "101")],
        &["page_size"],
    ),
    (
        "a list filter on a customer's orders",
        "/queries/customers/c-1/orders",
        &[("status", "pending")],
        &["status"],
    ),
    (
        "min_token abc on a customer's orders",
        "/queries/customers/c-1/orders",
        &[("min_token", "abc")],
        &["min_token"],
    ),
    // GET /queries/order-statistics
    (
        "statistics from is not a time",
        "/queries/order-statistics",
        &[("from", "last week"), ("to", "2024-03-01T00:00:00Z")],
        &["from"],
    ),
    (
        "statistics to is not a time",
        "/queries/order-statistics",
        &[("from", "2024-03-01T00:00:00Z"), ("to", "2024-03-01")],
        &["to"],
    ),
    (
        "statistics from equal to to",
        "/queries/order-statistics",
        &[
            ("from", "2024-03-01T00:00:00Z"),
            ("to", "2024-03-01T00:00:00Z"),
        ],
        &["from", "to"],
    ),
    (
        "statistics from after to",
        "/queries/order-statistics",
        &[
            ("from", "2024-03-02T00:00:00Z"),
            ("to", "2024-03-01T00:00:00Z"),
        ],
        &["from", "to"],
    ),
    (
        "statistics from in the future without to",
        "/queries/order-statistics",
        &[("from", "2999-01-01T00:00:00Z")],
        &["from", "to"],
    ),
    (
        "statistics unknown parameter",
        "/queries/order-statistics",
        &[("status", "pending")],
        &["status"],
    ),
    (
        "statistics min_token abc",
        "/queries/order-statistics",
        &[("min_token", "abc")],
        &["min_token"],
    ),
    (
        "statistics wait 31",
        "/queries/order-statistics",
        &[("wait", "31")],
        &["wait"],
    ),
];

#[tokio::test]
async fn bad_query_parameters_are_400_problems_that_say_what_to_fix() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    app.refresh().await;
    for (case, path, params, words) in BAD_PARAMETERS {
        let response = app
            .http
            .get(app.url(path))
            .query(params)
            .send()
            .await
            .expect("request");
        let got = response.status().as_u16();
        assert_eq!(got, 400, "{case}: {path} {params:?} answered {got}");
        let problem = assert_problem(response, 400).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        for word in *words {
            assert!(
                detail.contains(word),
                "{case}: the detail {detail:?} does not mention {word:?}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_bad_x_min_token_header_is_a_400_problem() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    for path in [
        "/queries/orders/o-1",
        "/queries/orders",
        "/queries/customers/c-1/orders",
        "/queries/order-statistics",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("x-min-token", "abc")
            .send()
            .await
            .expect("request");
        let problem = assert_problem(response, 400).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("min_token"),
            "{path}: {problem}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_parameters_on_history_and_read_models_are_400_problems() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    for path in [
        "/queries/orders/o-1/history?colour=red",
        "/queries/read-models?colour=red",
    ] {
        let problem = assert_problem(app.get(path).await, 400).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("colour"),
            "{path}: {problem}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_orders_customers_and_read_models_are_404_problems() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    app.refresh().await;
    let cases: &[(&str, &str, &str)] = &[
        ("unknown order", "/queries/orders/o-404", "o-404"),
        (
            "an id that cannot exist",
            "/queries/orders/has%20space",
            "order",
        ),
        (
            "unknown order's history",
            "/queries/orders/o-404/history",
            "o-404",
        ),
        (
            "unknown customer's orders",
            "/queries/customers/c-404/orders",
            "c-404",
        ),
        (
            "unknown route",
            "/queries/nothing-here",
            "/queries/nothing-here",
        ),
    ];
    for (case, path, word) in cases {
        let problem = assert_problem(app.get(path).await, 404).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(word),
            "{case}: {detail:?} does not name {word:?}"
        );
    }

    let response = app
        .http
        .post(app.url("/admin/read-models/no_such_view/refresh"))
        .send()
        .await
        .expect("request");
    let problem = assert_problem(response, 404).await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("no_such_view"), "{detail}");
    assert!(
        detail.contains("order_summary") && detail.contains("daily_sales"),
        "the 404 lists the known read models: {detail}"
    );
    app.stop().await;
}

/// `Retry-After` comes from the reason for a 503: a database that cannot
/// be reached is worth retrying in a few seconds, `/readyz` asks load
/// balancers to come back in 5.
#[tokio::test]
async fn retry_after_follows_the_reason_the_service_is_unavailable() {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    app.seed_catalog().await;
    // The database refuses new connections and drops the service's.
    let (server, _) = app.db.url.rsplit_once('/').expect("a database URL");
    let client = pgcqrs::db::connect(&format!("{server}/postgres"))
        .await
        .expect("connect as admin");
    client
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';",
            name = app.db.name
        ))
        .await
        .expect("close the database");
    let retry_after = |r: &reqwest::Response| {
        r.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };

    let read = app.get("/queries/orders").await;
    let seconds = retry_after(&read);
    let problem = assert_problem(read, 503).await;
    assert_eq!(seconds, Some(3), "a read with the database down: {problem}");

    let write = app
        .post(
            "/commands/customers",
            serde_json::json!({"name": "Ada", "email": "ada@example.org"}),
        )
        .await;
    let seconds = retry_after(&write);
    let problem = assert_problem(write, 503).await;
    assert_eq!(
        seconds,
        Some(3),
        "a command with the database down: {problem}"
    );

    let ready = app.get("/readyz").await;
    let seconds = retry_after(&ready);
    let problem = assert_problem(ready, 503).await;
    assert_eq!(seconds, Some(5), "/readyz while not ready: {problem}");

    client
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            app.db.name
        ))
        .await
        .expect("reopen the database");
    app.stop().await;
}
