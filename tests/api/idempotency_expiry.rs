//! Idempotency keys expire after a day, whatever the command rate: one
//! prune pass forgets every expired key, in short batches, and keeps the
//! rest.

use crate::support::*;
use pgcqrs::commands::idempotency::prune_expired;

#[tokio::test]
async fn one_prune_pass_forgets_every_expired_key_and_keeps_the_fresh_ones() {
    let db = TestDb::create().await;
    let client = db.client().await;
    // 50,000 keys from two days ago (more than any single batch), and
    // 200 from the last hour.
    client
        .batch_execute(
            "INSERT INTO write.idempotency_keys
                 (idempotency_key, request_fingerprint, status_code, response_body, created_at)
             SELECT 'old-' || g, '\\x00'::bytea, 202, '{}'::jsonb,
                    now() - interval '2 days' + g * interval '1 ms'
             FROM generate_series(1, 50000) AS g;
             INSERT INTO write.idempotency_keys
                 (idempotency_key, request_fingerprint, status_code, response_body, created_at)
             SELECT 'new-' || g, '\\x00'::bytea, 202, '{}'::jsonb,
                    now() - g * interval '10 s'
             FROM generate_series(1, 200) AS g;",
        )
        .await
        .expect("insert keys");
    let pool = pgcqrs::db::pool(&db.url, 2, "pgcqrs-test-prune").expect("pool");

    let forgotten = prune_expired(&pool, 24).await.expect("prune");

    let count = |like: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT count(*) FROM write.idempotency_keys WHERE idempotency_key LIKE $1",
                    &[&like],
                )
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("old-%").await, 0, "every expired key is gone");
    assert_eq!(count("new-%").await, 200, "every fresh key is kept");
    assert_eq!(forgotten, 50_000);
    // A second pass finds nothing to do.
    assert_eq!(prune_expired(&pool, 24).await.expect("prune again"), 0);
    pool.close();
}
