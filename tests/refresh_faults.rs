//! A refresh that fails (here: its statement timeout) leaves the old view
//! readable, is reported, and stops nothing else.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pgcqrs::config::ServeArgs;

#[tokio::test]
async fn a_refresh_that_times_out_leaves_the_old_view_readable_and_is_reported() {
    let db = TestDb::create().await;
    // product_sales may run for 1 ms only: every refresh of it times out.
    // SAFETY of the test: the variable is read once, when the settings are built.
    std::env::set_var("PGCQRS_REFRESH_TIMEOUT_MS_PRODUCT_SALES", "1");
    let app = spawn_app_on(db, ServeArgs::default(), Refreshing::OnRequest).await;
    std::env::remove_var("PGCQRS_REFRESH_TIMEOUT_MS_PRODUCT_SALES");
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    let token = placed["token"].as_str().unwrap().to_owned();

    let refresher = app.refresher.clone().expect("refresher");
    let model = refresher
        .models()
        .iter()
        .find(|m| m.model.name == "product_sales")
        .expect("product_sales")
        .clone();
    assert_eq!(model.timeout_ms, 1);
    // Make the refresh slow enough to hit the timeout reliably.
    let client = app.db.client().await;
    client
        .batch_execute(
            "INSERT INTO write.products (id, name, price) SELECT 'bulk-' || g, 'Bulk ' || g, 1 FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
    let before: i64 = client
        .query_one("SELECT count(*) FROM read.product_sales", &[])
        .await
        .unwrap()
        .get(0);
    assert!(refresher.request("product_sales", true));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let r = app.get("/queries/read-models").await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let body: serde_json::Value = r.json().await.unwrap();
        let ps = body["read_models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "product_sales")
            .cloned()
            .unwrap();
        if ps["last_error"].is_string() {
            break ps;
        }
        assert!(Instant::now() < deadline, "no error recorded: {ps}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("statement timeout"),
        "{status}"
    );
    assert!(status["consecutive_failures"].as_i64().unwrap() >= 1);
    // The old contents are still there and readable; other queries work.
    let after: i64 = client
        .query_one("SELECT count(*) FROM read.product_sales", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, before, "a failed refresh changed the view");
    let r = app
        .get(&format!("/queries/orders/o-1?min_token={token}"))
        .await;
    assert_eq!(r.status(), 200, "the other read models still answer");
    let _ = model;
}
