//! `--role`: instances that serve one side, on one database.

use std::time::{Duration, Instant};

use crate::support::read::wait_for_startup_checks;
use crate::support::*;
use pgcqrs::config::{Role, ServeArgs};
use serde_json::json;

fn with_role(role: Role) -> ServeArgs {
    ServeArgs {
        role,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_command_instance_and_a_query_instance_each_serve_their_side() {
    let commands = TestApp::builder()
        .settings(with_role(Role::Commands))
        .refreshing(Refreshing::Off)
        .start()
        .await;
    let queries = TestApp::builder()
        .on(commands.db.share())
        .settings(with_role(Role::Queries))
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;

    commands.seed_catalog().await;
    let placed = commands.place_simple_order("o-1").await;
    let token = placed["token"].as_str().unwrap().to_owned();

    // Each refuses the other side with a 404 that says why.
    let problem = assert_problem(commands.get("/queries/orders/o-1").await, 404).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--role commands"),
        "{problem}"
    );
    assert_problem(
        queries
            .post("/commands/orders/o-1/confirm", json!({}))
            .await,
        404,
    )
    .await;
    assert_eq!(
        commands.count("write.order_events").await,
        1,
        "the refused command wrote"
    );

    // Read-your-writes across instances: the query instance's refresher covers the token.
    let r = queries
        .get(&format!("/queries/orders/o-1?min_token={token}"))
        .await;
    assert_eq!(r.status(), 200);
    for instance in [&commands, &queries] {
        assert_eq!(instance.get("/healthz").await.status(), 200);
        assert_eq!(instance.get("/metrics").await.status(), 200);
    }
}

#[tokio::test]
async fn a_refresher_instance_serves_neither_side_but_keeps_the_views_current() {
    let refresher = TestApp::builder()
        .settings(with_role(Role::Refresher))
        .refreshing(Refreshing::Scheduled)
        .start()
        .await;
    assert_problem(refresher.get("/queries/orders").await, 404).await;
    assert_problem(
        refresher
            .post(
                "/commands/customers",
                json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"}),
            )
            .await,
        404,
    )
    .await;
    assert_eq!(refresher.get("/readyz").await.status(), 200);

    // A write by any other writer (here: SQL) reaches the read model.
    let client = refresher.client().await;
    client
        .batch_execute(
            "BEGIN;
             INSERT INTO write.customers (id, name, email) VALUES ('c-1', 'Ada', 'ada@example.com');
             INSERT INTO write.products (id, name, price) VALUES ('p-1', 'Widget', 2.50);
             INSERT INTO write.orders (id, customer_id, total) VALUES ('o-1', 'c-1', 5.00);
             INSERT INTO write.order_items VALUES ('o-1', 1, 'p-1', 2, 2.50);
             COMMIT;",
        )
        .await
        .expect("write by SQL");
    poll_until(
        "the refresher instance to bring o-1 in",
        Duration::from_secs(10),
        || async {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM read.order_summary WHERE order_id = 'o-1'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (n == 1).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn an_instance_without_a_refresher_passes_an_operators_refresh_on() {
    let queries = TestApp::builder()
        .settings(with_role(Role::Queries))
        .refreshing(Refreshing::Off)
        .start()
        .await;
    let refresher = TestApp::builder()
        .on(queries.db.share())
        .settings(with_role(Role::Refresher))
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let client = queries.client().await;
    let refreshes = || async {
        client
            .query_one(
                "SELECT count(*) FROM read.refresh_log WHERE view_name = 'daily_sales'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // Let the refresher's start-up check pass.
    wait_for_startup_checks(&refresher).await;
    let before = refreshes().await;
    // Nothing changed, so only a forced refresh refreshes: it must have
    // travelled from the query instance to the refresher instance. (Asked
    // again each second: a request sent before the refresher listens is
    // lost, as the design allows.)
    let (asked_of, refreshes) = (&queries, &refreshes);
    let mut asked: Option<Instant> = None;
    poll_until(
        "the refresher to run the refresh asked of the query instance",
        Duration::from_secs(10),
        || {
            let ask = asked.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
            if ask {
                asked = Some(Instant::now());
            }
            async move {
                if ask {
                    let r = asked_of
                        .http
                        .post(asked_of.url("/admin/read-models/daily_sales/refresh"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202);
                }
                (refreshes().await > before).then_some(())
            }
        },
    )
    .await;
    refresher.stop().await;
    queries.stop().await;
}

#[tokio::test]
async fn a_query_instance_whose_replica_answers_stays_ready_without_the_primary() {
    let app = TestApp::builder()
        .refreshing(Refreshing::Scheduled)
        .start()
        .await;
    app.seed_catalog().await;
    let token = app.place_simple_order("o-1").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .get(&format!("/queries/orders/o-1?min_token={token}"))
        .await;
    assert_eq!(r.status(), 200);

    // A primary nobody answers at; the database itself listed as the
    // replica to read.
    let unreachable = |db: &TestDb| {
        let mut db = db.share();
        db.url = "postgres://postgres@127.0.0.1:1/nowhere".into();
        db
    };
    let queries = TestApp::builder()
        .on(unreachable(&app.db))
        .reading(&app.db.url)
        .settings(with_role(Role::Queries))
        .refreshing(Refreshing::Off)
        .start()
        .await;
    // Once the monitor has probed the listed database (so "degraded" rests
    // on an answer, not on the initial assumption)...
    let ready = poll_until(
        "the monitor to probe the listed database",
        Duration::from_secs(10),
        || async {
            let r = queries.get("/readyz").await;
            assert_eq!(
                r.status(),
                200,
                "a query instance with a replica left the pool"
            );
            let ready: serde_json::Value = r.json().await.unwrap();
            (!ready["reads"]["targets"][0]["standby"].is_null()).then_some(ready)
        },
    )
    .await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["primary"]
            .as_str()
            .is_some_and(|p| p.contains("unreachable")),
        "{ready}"
    );
    let order = queries.get("/queries/orders/o-1").await;
    assert_eq!(order.status(), 200, "the replica did not answer");

    // Any other instance without its primary is not ready.
    let all = TestApp::builder()
        .on(unreachable(&app.db))
        .reading(&app.db.url)
        .refreshing(Refreshing::Off)
        .start()
        .await;
    assert_problem(all.get("/readyz").await, 503).await;
    for instance in [all, queries, app] {
        instance.stop().await;
    }
}
