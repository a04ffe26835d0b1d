//! A refresh that fails (here: its statement timeout) leaves the old view
//! readable, is reported, and stops nothing else.

use std::time::Duration;

use pgcqrs::db::tokio_postgres;

use crate::support::read::last_refresh_mode;
use crate::support::*;

#[tokio::test]
async fn a_refresh_that_times_out_leaves_the_old_view_readable_and_is_reported() {
    let db = TestDb::create().await;
    // product_sales may run for 1 ms only: every refresh of it times out.
    let mut settings = on_request();
    settings.models.set_timeout("product_sales", 1);
    let app = TestApp::builder()
        .on(db)
        .refreshing(Refreshing::With(settings))
        .start()
        .await;
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    let token = placed["token"].as_str().unwrap().to_owned();

    let refresher = app.refresher.clone().expect("refresher");
    let model = refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == "product_sales")
        .expect("product_sales")
        .clone();
    assert_eq!(model.timeout_ms, 1);
    // Make the refresh slow enough to hit the timeout reliably.
    let client = app.client().await;
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
    let status = poll_until(
        "product_sales to record an error",
        Duration::from_secs(10),
        || async {
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
            ps["last_error"].is_string().then_some(ps)
        },
    )
    .await;
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

#[tokio::test]
async fn a_refresh_killed_mid_way_leaves_the_old_view_readable_and_is_retried() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let refresher = app.refresher.clone().expect("refresher");
    let admin = app.client().await;
    let before: i64 = admin
        .query_one("SELECT count(*) FROM read.daily_sales", &[])
        .await
        .unwrap()
        .get(0);

    // Hold what the view reads so that its refresh waits, then kill the
    // refreshing backend (the only one waiting for a lock).
    let mut blocker = app.db.client().await;
    let hold = blocker.transaction().await.unwrap();
    hold.batch_execute("LOCK TABLE write.orders IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    assert!(refresher.request("daily_sales", true));
    let killed = poll_until("the refresh to start", Duration::from_secs(10), || async {
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                   AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, i64>(0) > 0).then_some(true)
    })
    .await;
    assert!(killed);
    hold.rollback().await.unwrap();

    // Reported, and the old view still answers.
    poll_until(
        "daily_sales to record an error",
        Duration::from_secs(10),
        || async {
            let r = app.get("/queries/read-models").await;
            let body: serde_json::Value = r.json().await.unwrap();
            let ds = body["read_models"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == "daily_sales")
                .cloned()
                .unwrap();
            ds["last_error"].is_string().then_some(())
        },
    )
    .await;
    let during: i64 = admin
        .query_one("SELECT count(*) FROM read.daily_sales", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(during, before, "the killed refresh changed the view");
    let r = app.get("/queries/order-statistics").await;
    assert_eq!(r.status(), 200, "queries never see a refresh failure");

    // Retried: the pool drops the dead connection and the next refresh lands.
    poll_until(
        "daily_sales to be refreshed again",
        Duration::from_secs(15),
        || async {
        refresher.request("daily_sales", true);
        let logged: i64 = admin
            .query_one(
                "SELECT count(*) FROM read.refresh_log WHERE view_name = 'daily_sales'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let failures: i32 = admin
            .query_one(
                "SELECT consecutive_failures FROM read.read_model_status WHERE view_name = 'daily_sales'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (logged > 0 && failures == 0).then_some(())
        },
    )
    .await;
    let after: i64 = admin
        .query_one("SELECT count(*) FROM read.daily_sales", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        after > before,
        "the retried refresh did not bring the new order in"
    );
}

/// Batches that fail again and again for a reason of their own (here: the
/// model's delta working table refuses every row) do not stop the model:
/// after two failures it is recomputed whole, and it equals its query. A
/// whole recomputation that fails as well does not keep the model from
/// going back to batches.
#[tokio::test]
async fn batches_that_keep_failing_give_way_to_a_whole_recomputation() {
    let app = TestApp::builder()
        .refreshing(Refreshing::Scheduled)
        .start()
        .await;
    let client = app.client().await;
    declare_meter_sums(client).await;
    let last_mode = || last_refresh_mode(client, "meter_sums");
    let equal = || async { meter_sums_differ(client).await == 0 };
    // kept by delta first
    let mut i = 0;
    poll_until("a batch by delta", Duration::from_secs(30), || {
        i += 1;
        let client = &client;
        async move {
            client
                .batch_execute(&format!(
                    "UPDATE public.meters SET v = v + {i} WHERE id = 1"
                ))
                .await
                .expect("write");
            tokio::time::sleep(Duration::from_millis(500)).await;
            (last_mode().await.as_deref() == Some("delta")).then_some(())
        }
    })
    .await;
    fail_every_batch(client).await;
    poll_until(
        "the model recomputed whole",
        Duration::from_secs(30),
        || async { (last_mode().await.as_deref() == Some("full") && equal().await).then_some(()) },
    )
    .await;

    // Now the whole recomputation fails too (its query divides by zero,
    // the batches' copy of it does not): the attempt after a failed one is
    // a batch again, and once batches can be applied the model is current
    // by delta, not stuck recomputing whole.
    fail_whole_recomputations(client).await;
    let refresher = app.refresher.clone().expect("refresher");
    poll_until("a whole recomputation failed", Duration::from_secs(60), || {
        let client = &client;
        let refresher = &refresher;
        async move {
            refresher.request("meter_sums", true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let error: Option<String> = client
                .query_one("SELECT last_error FROM read.read_model_status WHERE view_name = 'meter_sums'", &[])
                .await
                .expect("status")
                .get(0);
            error.filter(|e| e.contains("recomputing")).map(|_| ())
        }
    })
    .await;
    client
        .batch_execute(
            "ALTER TABLE pgcqrs_delta.meter_sums DROP CONSTRAINT refuses_every_row;
             UPDATE public.meters SET v = v + 1 WHERE id = 21",
        )
        .await
        .expect("batches that can be applied again");
    poll_until("a batch by delta again", Duration::from_secs(60), || {
        let refresher = &refresher;
        async move {
            refresher.request("meter_sums", true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            (last_mode().await.as_deref() == Some("delta") && equal().await).then_some(())
        }
    })
    .await;
}

/// `pgcqrs refresh` (`Refresher::catch_up`, no worker behind it) does what
/// the service does with batches that keep failing for a reason of their
/// own: the attempt after the second failure recomputes the model whole,
/// and the model equals its query. A whole recomputation that fails too
/// ends the call with its error instead of trying forever.
#[tokio::test]
async fn refreshing_by_hand_recomputes_whole_when_batches_keep_failing() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = app.client().await;
    declare_meter_sums(client).await;
    let refresher = app.refresher.clone().expect("refresher");
    refresher.load(false).await.expect("load the catalog");
    let model = refresher
        .models()
        .into_iter()
        .find(|m| m.model.name == "meter_sums")
        .expect("meter_sums loaded");
    let last_mode = || last_refresh_mode(client, "meter_sums");
    // kept by delta first (mode auto may recompute a model this small
    // whole until it has measured both)
    for i in 1..=20 {
        client
            .batch_execute(&format!(
                "UPDATE public.meters SET v = v + {i} WHERE id = 1"
            ))
            .await
            .expect("write");
        by_hand(&refresher, &model).await.expect("a batch");
        if last_mode().await.as_deref() == Some("delta") {
            break;
        }
    }
    assert_eq!(
        last_mode().await.as_deref(),
        Some("delta"),
        "never by delta"
    );

    // Every batch now fails: its delta working table refuses every row.
    fail_every_batch(client).await;
    let outcome = by_hand(&refresher, &model)
        .await
        .expect("caught up by a whole recomputation");
    assert!(
        matches!(
            outcome,
            pgcqrs::read_models::RefreshOutcome::Refreshed { .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(last_mode().await.as_deref(), Some("full"));
    assert_eq!(
        meter_sums_differ(client).await,
        0,
        "the model differs from its query"
    );

    // The whole recomputation fails as well (its query divides by zero,
    // the batches' copy of it does not): the call ends with that error.
    fail_whole_recomputations(client).await;
    let error = by_hand(&refresher, &model)
        .await
        .expect_err("every attempt fails");
    assert!(
        format!("{error:#}").contains("division by zero"),
        "{error:#}"
    );
}

/// A table and a grouped model over it, kept by delta once measured.
async fn declare_meter_sums(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE public.meters (id int PRIMARY KEY, g text NOT NULL, v int NOT NULL);
             INSERT INTO public.meters SELECT g, 'g' || (g % 3), g FROM generate_series(1, 30) g;
             SELECT pgcqrs.define_read_model(
                 name => 'meter_sums',
                 query => $$SELECT g, count(*) AS n, sum(v) AS v FROM public.meters GROUP BY g$$,
                 key => ARRAY['g']);",
        )
        .await
        .expect("declare");
}

/// Rows read.meter_sums and its query (written out: the tests break the
/// model's own view of it) do not share, both ways.
async fn meter_sums_differ(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "WITH q AS (SELECT g, count(*) AS n, sum(v) AS v FROM public.meters GROUP BY g)
             SELECT (SELECT count(*) FROM (SELECT * FROM read.meter_sums EXCEPT SELECT * FROM q) a)
                  + (SELECT count(*) FROM (SELECT * FROM q EXCEPT SELECT * FROM read.meter_sums) b)",
            &[],
        )
        .await
        .expect("compare")
        .get(0)
}

/// From now on every batch of meter_sums fails (its delta working table
/// refuses every row), and changes wait.
async fn fail_every_batch(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "ALTER TABLE pgcqrs_delta.meter_sums ADD CONSTRAINT refuses_every_row CHECK (false) NOT VALID;
             UPDATE public.meters SET v = v * 2, g = 'g9' WHERE id < 10",
        )
        .await
        .expect("a batch that cannot be applied by delta");
}

/// From now on a whole recomputation of meter_sums fails (its query
/// divides by zero; the batches' copy of it does not), and a change waits.
async fn fail_whole_recomputations(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE OR REPLACE VIEW pgcqrs_defs.meter_sums AS
             SELECT g, count(*) AS n, sum(v) AS v FROM public.meters GROUP BY g HAVING 1 / (count(*) - count(*)) = 0;
             UPDATE public.meters SET v = v + 1 WHERE id = 20",
        )
        .await
        .expect("a whole recomputation that fails");
}

/// `pgcqrs refresh` of one model: `Refresher::catch_up`, again while the
/// instance's own worker holds the model (busy).
async fn by_hand(
    refresher: &pgcqrs::read_models::Refresher,
    model: &pgcqrs::read_models::ScheduledModel,
) -> anyhow::Result<pgcqrs::read_models::RefreshOutcome> {
    for _ in 0..100 {
        match refresher.catch_up(model, false, |_| {}).await {
            Ok(pgcqrs::read_models::RefreshOutcome::Busy) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            outcome => return outcome,
        }
    }
    anyhow::bail!("{} busy for 10 s", model.model.name)
}
