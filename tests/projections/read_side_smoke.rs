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

/// A seed loads the write tables in bulk and then rebuilds every model
/// from scratch, dropping a kept table's secondary indexes while it fills
/// it: afterwards every model equals its query, every index is back as
/// declared, and the load leaves no captured change behind.
#[tokio::test]
async fn a_seed_rebuilds_every_model_to_its_query_and_keeps_every_index() {
    let db = TestDb::create().await;
    let client = db.client().await;
    // A comment on an index is the index's too: made again with it.
    client
        .batch_execute("COMMENT ON INDEX read.order_summary_status_idx IS 'lists by status'")
        .await
        .expect("comment on an index");
    let indexes = "SELECT indexname::text,
                          indexdef || coalesce(' -- ' || obj_description(format('read.%I', indexname)::regclass, 'pg_class'), '')
                     FROM pg_indexes
                    WHERE schemaname = 'read' ORDER BY 1";
    let listed = |rows: Vec<pgcqrs::db::tokio_postgres::Row>| {
        rows.iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    let before = listed(client.query(indexes, &[]).await.expect("list indexes"));
    let secondary: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_index i
               JOIN pgcqrs.read_models m ON i.indrelid = format('read.%I', m.name)::regclass
              WHERE NOT i.indisunique",
            &[],
        )
        .await
        .expect("count secondary indexes")
        .get(0);
    assert!(
        secondary > 0,
        "no secondary index on a model's table to check"
    );

    pgcqrs::seed::seed(
        &db.url,
        &pgcqrs::seed::SeedPlan {
            orders: 400,
            customers: 30,
            products: 25,
            progress: false,
            ..Default::default()
        },
    )
    .await
    .expect("seed");

    let after = listed(client.query(indexes, &[]).await.expect("list indexes"));
    assert_eq!(after, before, "a rebuild leaves the indexes as declared");
    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM read.order_summary),
                    (SELECT count(*) FROM pgcqrs.changes)",
            &[],
        )
        .await
        .expect("count orders and changes");
    let (orders, left): (i64, i64) = (counts.get(0), counts.get(1));
    assert_eq!(orders, 400);
    // Every model covers the load: none of its captured changes is left
    // for a running service to prune.
    assert_eq!(left, 0, "the load's captured changes are forgotten");
    read::assert_views_match_write_tables(&client, "a seed").await;
}
