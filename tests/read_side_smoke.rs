mod common;

use common::*;

#[tokio::test]
async fn a_manual_refresh_makes_an_order_visible() {
    let app = spawn_app_with(Default::default(), Refreshing::OnRequest).await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let outcomes = app.refresh().await;
    println!("{outcomes:?}");
    let r = app.get("/queries/orders/o-1").await;
    assert_eq!(r.status(), 200);
}
