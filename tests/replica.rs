//! Queries on a streaming replica: `min_token` still means read-your-writes,
//! because the freshness bookkeeping replicates with the read models.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn min_token_reads_its_write_from_a_replica() {
    let db = TestDb::create().await;
    let replica = tokio::task::spawn_blocking(start_replica)
        .await
        .expect("replica task");
    let read_url = replica.url(&db.name);
    let app = spawn_app_reading(db, &read_url, Refreshing::Scheduled).await;

    // The query side really reads the standby.
    let standby = pgcqrs::db::connect(&read_url)
        .await
        .expect("connect replica");
    let in_recovery: bool = standby
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the read URL is not a standby");

    app.seed_catalog().await;
    for i in 0..5 {
        let id = format!("o-{i}");
        let placed = app.place_simple_order(&id).await;
        let token = placed["token"].as_str().unwrap();
        let r = app
            .get(&format!("/queries/orders/{id}?min_token={token}"))
            .await;
        assert_eq!(
            r.status(),
            200,
            "{id} was not visible on the replica with its token"
        );
        let confirmed = app
            .post(&format!("/commands/orders/{id}/confirm"), json!({}))
            .await;
        let token: serde_json::Value = confirmed.json().await.unwrap();
        let r = app
            .get(&format!(
                "/queries/orders/{id}?min_token={}",
                token["token"].as_str().unwrap()
            ))
            .await;
        let order: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            order["status"], "confirmed",
            "{id}: the replica answered before replaying the confirmation"
        );
    }
    drop(standby);
    app.stop().await;
    let _ = replica.stop();
}
