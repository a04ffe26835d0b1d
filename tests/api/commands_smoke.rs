use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_customer_can_be_registered_and_an_order_placed_and_confirmed() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    assert_eq!(placed["status"], "pending");
    assert_eq!(placed["total"], json!(19.99));
    let r = app.post("/commands/orders/o-1/confirm", json!({})).await;
    assert_eq!(r.status(), 202);
    assert_eq!(app.count("write.order_events").await, 2);
    app.stop().await;
}
