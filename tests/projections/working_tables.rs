//! The working tables batches fill and empty (`pgcqrs.batch`, the keys,
//! the deltas, the old versions of changed rows) are vacuumed between
//! batches: left to autovacuum, which looks at most once a minute, their
//! dead rows pile up under command load and every batch scans them.

use std::time::Duration;

use crate::support::read::*;
use crate::support::*;
use pgcqrs::read_models::{vacuum_working_tables, RefreshOutcome, Refresher};

/// 300 orders of three lines each, in one transaction.
async fn place_round(client: &pgcqrs::db::tokio_postgres::Client, round: u32) {
    client
        .batch_execute(&format!(
            "BEGIN;
             INSERT INTO write.orders (id, customer_id, total)
             SELECT format('r{round}-%s', g), 'c-1', 25.09 FROM generate_series(1, 300) g;
             INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
             SELECT format('r{round}-%s', g), l.n, l.p, 1, p.price
               FROM generate_series(1, 300) g
              CROSS JOIN (VALUES (1, 'p-1'), (2, 'p-2'), (3, 'p-3')) AS l(n, p)
               JOIN write.products p ON p.id = l.p;
             COMMIT;"
        ))
        .await
        .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
}

async fn batch_pages(client: &pgcqrs::db::tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT pg_relation_size('pgcqrs.batch') / current_setting('block_size')::bigint",
            &[],
        )
        .await
        .expect("size of pgcqrs.batch")
        .get(0)
}

/// Every model's batch, one after the other, with no scheduler (and so no
/// vacuum) of the refresher's own.
async fn settle(refresher: &Refresher) {
    for m in refresher.models() {
        let outcome = refresher
            .refresh_once(&m, false)
            .await
            .unwrap_or_else(|e| panic!("refresh of {} failed: {e:#}", m.model.name));
        assert_ne!(outcome, RefreshOutcome::Busy, "{}", m.model.name);
    }
}

#[tokio::test]
async fn vacuumed_between_batches_the_working_tables_stop_growing() {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    app.seed_catalog().await;
    let pool = pgcqrs::db::pool(&app.db.url, 2, "pgcqrs-test-batches").expect("pool");
    let refresher = Refresher::new(pool.clone(), on_request());
    refresher.load(true).await.expect("catalog");
    settle(&refresher).await;
    let client = app.client().await;
    // Only what the test does vacuums them.
    client
        .batch_execute(
            "ALTER TABLE pgcqrs.batch SET (autovacuum_enabled = false);
             ALTER TABLE pgcqrs.batch_keys SET (autovacuum_enabled = false);",
        )
        .await
        .expect("autovacuum off");

    // Without a vacuum, every round's batches take new pages.
    let mut unvacuumed = vec![batch_pages(client).await];
    for round in 1..=3 {
        place_round(client, round).await;
        settle(&refresher).await;
        unvacuumed.push(batch_pages(client).await);
    }
    assert!(
        unvacuumed.windows(2).all(|w| w[1] > w[0]),
        "pgcqrs.batch should grow round by round without a vacuum: {unvacuumed:?} pages"
    );

    // Vacuumed after each round (and never truncated), the space the
    // rounds before left is taken again.
    let tables = vacuum_working_tables(&pool).await.expect("vacuum");
    let unlogged: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND c.relpersistence = 'u' AND n.nspname LIKE 'pgcqrs%'",
            &[],
        )
        .await
        .expect("working tables")
        .get(0);
    assert_eq!(
        tables as i64, unlogged,
        "every working table of the models is vacuumed"
    );
    let before = batch_pages(client).await;
    assert_eq!(before, unvacuumed[3], "a vacuum here truncates nothing");
    let mut vacuumed = Vec::new();
    for round in 4..=9 {
        place_round(client, round).await;
        settle(&refresher).await;
        vacuum_working_tables(&pool).await.expect("vacuum");
        vacuumed.push(batch_pages(client).await);
    }
    let round = (unvacuumed[3] - unvacuumed[0]) / 3;
    assert!(
        vacuumed.iter().all(|&p| p <= before + round / 2),
        "pgcqrs.batch kept growing although vacuumed: {vacuumed:?} pages after {before} \
         (a round takes {round})"
    );
    assert_views_match_write_tables(client, "nine rounds of 300 orders").await;
}

#[tokio::test]
async fn the_service_vacuums_the_working_tables_after_its_batches() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let client = app.client().await;
    let vacuums = || async {
        client
            .query_one(
                "SELECT coalesce(sum(vacuum_count), 0)::bigint FROM pg_stat_all_tables
                  WHERE relid = 'pgcqrs.batch'::regclass",
                &[],
            )
            .await
            .expect("vacuum count")
            .get::<_, i64>(0)
    };
    let before = vacuums().await;
    for n in 1..=3 {
        app.place_simple_order(&format!("o-{n}")).await;
    }
    poll_until(
        "the working tables to be vacuumed",
        Duration::from_secs(20),
        || async {
            client
                .batch_execute("SELECT pg_stat_clear_snapshot()")
                .await
                .ok();
            (vacuums().await > before).then_some(())
        },
    )
    .await;
}
