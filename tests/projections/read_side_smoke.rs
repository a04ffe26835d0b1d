use crate::support::*;

#[tokio::test]
async fn a_manual_refresh_makes_an_order_visible() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let outcomes = app.refresh().await;
    println!("{outcomes:?}");
    let r = app.get("/queries/orders/o-1").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn statistics_up_to_now_count_todays_orders_from_the_daily_rollup() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    app.place_simple_order("o-2").await;
    app.refresh().await;
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for query in [
        format!("/queries/order-statistics?from={from}"),
        "/queries/order-statistics".to_string(),
    ] {
        let r = app.get(&query).await;
        assert_eq!(r.status(), 200);
        let stats: serde_json::Value = r.json().await.unwrap();
        assert_eq!(stats["total_orders"], 2, "{query}: {stats}");
        assert_eq!(
            stats["total_revenue"],
            serde_json::json!(39.98),
            "{query}: {stats}"
        );
    }
    // An end before the orders were placed excludes them.
    let before = (time::OffsetDateTime::now_utc() - time::Duration::minutes(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = app
        .get(&format!(
            "/queries/order-statistics?from={from}&to={before}"
        ))
        .await;
    let stats: serde_json::Value = r.json().await.unwrap();
    assert_eq!(stats["total_orders"], 0, "{stats}");
}
