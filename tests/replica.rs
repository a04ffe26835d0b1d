//! Queries on streaming replicas: `min_token` still means read-your-writes,
//! because the freshness bookkeeping replicates with the read models; reads
//! are spread over the listed replicas and fall back to the primary when
//! none answers; instances without a refresher ask the refreshers on the
//! primary.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use pgcqrs::config::{Role, ServeArgs};
use pgcqrs::db::embedded::{LocalCluster, StartOptions};
use serde_json::{json, Value};
use support::read::*;
use support::*;

/// One replica shared by the tests that do not stop it.
static SHARED_REPLICA: OnceLock<LocalCluster> = OnceLock::new();

async fn shared_replica() -> &'static LocalCluster {
    tokio::task::spawn_blocking(|| SHARED_REPLICA.get_or_init(start_replica))
        .await
        .expect("replica task")
}

/// The URL of `db` on `replica`, once the replica has replayed its creation.
async fn url_on(replica: &LocalCluster, db: &TestDb) -> String {
    let url = replica.url(&db.name);
    poll_until(
        "the replica to have the test database",
        Duration::from_secs(15),
        || async { pgcqrs::db::connect(&url).await.ok().map(|_| ()) },
    )
    .await;
    url
}

fn role(role: Role) -> ServeArgs {
    ServeArgs {
        role,
        ..Default::default()
    }
}

/// Connections the query side holds to `db` on the server at `url`.
async fn query_connections(url: &str, db: &str) -> i64 {
    let client = pgcqrs::db::connect(url).await.expect("connect");
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND application_name = 'pgcqrs-queries'",
            &[&db],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

async fn readyz(app: &TestApp) -> Value {
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200, "readyz");
    r.json().await.expect("readyz json")
}

/// Confirm `id` through `commands` and read it back through `queries` with
/// the confirmation's token: it must say confirmed.
async fn confirm_and_read_back(commands: &TestApp, queries: &TestApp, id: &str) {
    let placed = commands.place_simple_order(id).await;
    let r = queries
        .get(&format!(
            "/queries/orders/{id}?min_token={}",
            placed["token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status(), 200, "{id} was not readable with its token");
    let confirmed = command(
        commands,
        &format!("/commands/orders/{id}/confirm"),
        json!({}),
        "req",
    )
    .await;
    let token = token_of(&confirmed);
    let order = get_json(
        queries,
        &format!("/queries/orders/{id}"),
        &[("min_token", &token)],
    )
    .await;
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(
        order.body["status"], "confirmed",
        "{id}: the replica answered before replaying the confirmation"
    );
    let history = get_json(
        queries,
        &format!("/queries/orders/{id}/history"),
        &[("min_token", &token)],
    )
    .await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(
        history.body["events"].as_array().map(Vec::len),
        Some(2),
        "{id}: history on the replica misses the confirmation: {}",
        history.text
    );
}

#[tokio::test]
async fn a_write_through_one_instance_is_read_through_another_on_the_replica() {
    let replica = shared_replica().await;
    let commands = TestApp::builder()
        .settings(role(Role::Commands))
        .refreshing(Refreshing::Off)
        .start()
        .await;
    let read_url = url_on(replica, &commands.db).await;
    // Two refreshers that refresh only when asked: a read-your-writes on
    // the query instance works only if its requests reach them.
    let refresher_a = TestApp::builder()
        .on(commands.db.share())
        .settings(role(Role::Refresher))
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let refresher_b = TestApp::builder()
        .on(commands.db.share())
        .settings(role(Role::Refresher))
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let queries = TestApp::builder()
        .on(commands.db.share())
        .reading(&read_url)
        .settings(role(Role::Queries))
        .refreshing(Refreshing::Off)
        .start()
        .await;

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

    commands.seed_catalog().await;
    for i in 0..4 {
        confirm_and_read_back(&commands, &queries, &format!("o-{i}")).await;
    }
    // Every other question, after one more write.
    let last = token_of(&commands.place_simple_order("o-last").await);
    let mine = get_json(
        &queries,
        "/queries/customers/c-1/orders",
        &[("min_token", &last)],
    )
    .await;
    assert_eq!(mine.body["total"], 5, "{}", mine.text);
    let stats = get_json(
        &queries,
        "/queries/order-statistics",
        &[("min_token", &last)],
    )
    .await;
    assert_eq!(stats.body["total_orders"], 5, "{}", stats.text);
    // No route reads product_sales (it is for SQL reporting): ask the
    // refreshers for it the way an instance without a refresher does.
    let client = commands.client().await;
    client
        .execute("SELECT pg_notify('pgcqrs_refresh', 'product_sales')", &[])
        .await
        .unwrap();
    poll_until(
        "product_sales to cover the last write",
        Duration::from_secs(10),
        || async {
            let covered: bool = client
                .query_one(
                    "SELECT pg_visible_in_snapshot($1::text::xid8, current_as_of)
                     FROM read.read_model_status WHERE view_name = 'product_sales'",
                    &[&last],
                )
                .await
                .unwrap()
                .get(0);
            covered.then_some(())
        },
    )
    .await;
    assert!(
        query_connections(&read_url, &commands.db.name).await > 0,
        "the queries did not read the replica"
    );
    let ready = readyz(&queries).await;
    assert_eq!(ready["reads"]["reading_from"], "listed", "{ready}");
    assert_eq!(ready["reads"]["targets"][0]["standby"], true, "{ready}");

    // Two refreshers, woken by the same requests, never refreshed a view
    // twice for one change.
    assert_each_refresh_covers_a_new_change(client).await;

    drop(standby);
    for app in [queries, refresher_a, refresher_b, commands] {
        app.stop().await;
    }
}

#[tokio::test]
async fn reads_are_spread_over_the_listed_databases() {
    let replica = shared_replica().await;
    let app = TestApp::builder().start().await;
    let read_url = url_on(replica, &app.db).await;
    // The replica and the primary itself, both listed.
    let listed = format!("{read_url},{}", app.db.url);
    let spread = TestApp::builder()
        .on(app.db.share())
        .reading(&listed)
        .settings(role(Role::Queries))
        .refreshing(Refreshing::Off)
        .start()
        .await;
    app.seed_catalog().await;
    for i in 0..6 {
        confirm_and_read_back(&app, &spread, &format!("o-{i}")).await;
    }
    assert!(
        query_connections(&read_url, &app.db.name).await > 0,
        "no query read the replica"
    );
    assert!(
        query_connections(&app.db.url, &app.db.name).await > 0,
        "no query read the primary"
    );
    // A token no transaction has had is still refused, on either target.
    for _ in 0..2 {
        let r = spread
            .get("/queries/orders/o-1?min_token=900000000&wait=0.2")
            .await;
        assert_problem(r, 400).await;
    }
    let ready = readyz(&spread).await;
    let names: Vec<&str> = ready["reads"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["replica-1", "replica-2", "primary"], "{ready}");
    spread.stop().await;
    app.stop().await;
}

/// A replica of its own (for a test that stops or pauses it), a service
/// with a refresher on the primary, and a query instance reading the
/// replica; the catalog is seeded.
async fn replica_of_its_own() -> (LocalCluster, String, TestApp, TestApp) {
    let replica = tokio::task::spawn_blocking(start_replica)
        .await
        .expect("replica task");
    let app = TestApp::builder().start().await;
    let read_url = url_on(&replica, &app.db).await;
    let queries = TestApp::builder()
        .on(app.db.share())
        .reading(&read_url)
        .settings(role(Role::Queries))
        .refreshing(Refreshing::Off)
        .start()
        .await;
    app.seed_catalog().await;
    (replica, read_url, app, queries)
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_while_the_replica_is_down() {
    let (replica, read_url, app, queries) = replica_of_its_own().await;
    confirm_and_read_back(&app, &queries, "o-before").await;
    assert_eq!(readyz(&queries).await["reads"]["reading_from"], "listed");

    let replica = tokio::task::spawn_blocking(move || {
        replica.stop().expect("stop the replica");
        replica
    })
    .await
    .expect("stop replica");

    // Every read keeps working: the first ones find the replica gone and
    // retry on the primary; later ones go straight there.
    for i in 0..5 {
        let id = format!("o-during-{i}");
        confirm_and_read_back(&app, &queries, &id).await;
        let list = get_json(&queries, "/queries/orders", &[]).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let stats = get_json(&queries, "/queries/order-statistics", &[]).await;
        assert_eq!(stats.status, 200, "{}", stats.text);
    }
    let ready = readyz(&queries).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["reads"]["reading_from"], "primary-fallback",
        "{ready}"
    );
    assert_eq!(ready["reads"]["targets"][0]["up"], false, "{ready}");
    assert!(
        ready["reads"]["targets"][0]["error"].as_str().is_some(),
        "{ready}"
    );
    // Once the replica is back, the monitor notices and reads return to it.
    let replica = tokio::task::spawn_blocking(move || {
        replica
            .restart_immediate(&StartOptions {
                fsync: false,
                max_connections: 400,
            })
            .expect("restart the replica");
        replica
    })
    .await
    .expect("restart replica");
    poll_until(
        "reads to return to the replica",
        Duration::from_secs(15),
        || async {
            let ready = readyz(&queries).await;
            (ready["reads"]["reading_from"] == "listed").then_some(())
        },
    )
    .await;
    confirm_and_read_back(&app, &queries, "o-after").await;
    assert!(
        query_connections(&read_url, &app.db.name).await > 0,
        "reads did not return to the replica"
    );
    queries.stop().await;
    app.stop().await;
    drop(replica);
}

#[tokio::test]
async fn a_min_token_read_a_paused_replica_cannot_answer_is_answered_by_the_primary() {
    let (replica, read_url, app, queries) = replica_of_its_own().await;
    confirm_and_read_back(&app, &queries, "o-1").await;

    // The replica stops replaying; the primary goes on.
    let standby = pgcqrs::db::connect(&read_url).await.expect("connect");
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause replay");
    let token = token_of(&app.place_simple_order("o-2").await);
    let order = get_json(
        &queries,
        "/queries/orders/o-2",
        &[("min_token", &token), ("wait", "3")],
    )
    .await;
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.body["status"], "pending", "{}", order.text);
    let on_replica: i64 = standby
        .query_one(
            "SELECT count(*) FROM read.order_summary WHERE order_id = 'o-2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_replica, 0, "the replica had the order after all");

    // The lag is visible while replay is paused...
    poll_until(
        "readyz to report the paused replica's lag",
        Duration::from_secs(10),
        || async {
            let ready = readyz(&queries).await;
            let lag = ready["reads"]["targets"][0]["replay_lag_seconds"].as_f64()?;
            (lag > 0.0).then_some(())
        },
    )
    .await;
    // ...and plain reads there say how old they are.
    // (On a replica that replays, views verified every second are at most
    // a second or so old.)
    poll_until(
        "a paused replica's answer to claim an Age of 3 s",
        Duration::from_secs(10),
        || async {
            let plain = queries.get("/queries/orders/o-1").await;
            assert_eq!(plain.status(), 200);
            let age: u64 = plain
                .headers()
                .get("age")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("Age header");
            (age >= 3).then_some(())
        },
    )
    .await;

    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .expect("resume replay");
    drop(standby);
    queries.stop().await;
    app.stop().await;
    let _ = replica.stop();
}
