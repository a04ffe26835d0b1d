//! Faults: PostgreSQL crashing under load, refreshes failing. Kept in a test
//! binary of its own, because crashing the cluster would disturb other tests.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

#[derive(Debug, Clone)]
struct Answer {
    at: Instant,
    status: u16,
    problem_json: bool,
    order_id: String,
}

#[tokio::test]
async fn a_postgres_crash_under_load_loses_nothing_acknowledged_and_the_service_recovers() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for w in 0..4 {
        let (http, url, answers, stop) = (
            app.http.clone(),
            app.url("/commands/orders"),
            Arc::clone(&answers),
            Arc::clone(&stop),
        );
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let order_id = format!("o-{w}-{i}");
                let sent = tokio::time::timeout(
                    Duration::from_secs(15),
                    http.post(&url)
                        .json(&json!({"order_id": order_id, "customer_id": "c-1",
                                      "items": [{"product_id": "p-1", "quantity": 1}, {"product_id": "p-2", "quantity": 1}]}))
                        .send(),
                )
                .await
                .expect("a request hung for 15 s while PostgreSQL restarted")
                .expect("the service stopped answering");
                let problem_json = sent
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json");
                answers.lock().unwrap().push(Answer {
                    at: Instant::now(),
                    status: sent.status().as_u16(),
                    problem_json,
                    order_id,
                });
            }
        }));
    }
    poll_until("the load to build up", Duration::from_secs(10), || {
        let placed = answers.lock().unwrap().len();
        async move { (placed >= 20).then_some(()) }
    })
    .await;
    // Readiness is polled throughout the crash: it must say so.
    let readiness = {
        let (http, url, stop) = (app.http.clone(), app.url("/readyz"), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(r) = http.get(&url).send().await {
                    seen.push(r.status().as_u16());
                }
                // A sampling interval, not a wait for anything.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    let crashed_at = Instant::now();
    tokio::task::spawn_blocking(crash_and_restart_postgres)
        .await
        .expect("restart task");
    // Load continues after the restart; the service must come back by itself
    // (answers from 3 s after the crash on are checked below).
    poll_until(
        "answers from 3 s after the crash",
        Duration::from_secs(30),
        || {
            let late = answers
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.at > crashed_at + Duration::from_secs(3))
                .count();
            async move { (late >= 20).then_some(()) }
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    let readiness = readiness.await.expect("readiness task");
    assert!(
        readiness.contains(&503),
        "/readyz never reported the database down: {readiness:?}"
    );
    assert_eq!(readiness.last(), Some(&200), "/readyz did not recover");

    let answers = answers.lock().unwrap().clone();
    for a in &answers {
        assert!(
            a.status == 202 || (a.status == 503 && a.problem_json),
            "{}: got {} (problem+json: {}); only 202 or a 503 problem are acceptable",
            a.order_id,
            a.status,
            a.problem_json
        );
    }
    let recovered = answers
        .iter()
        .filter(|a| a.status == 202 && a.at > crashed_at)
        .count();
    assert!(
        recovered > 0,
        "no command succeeded after PostgreSQL came back"
    );
    let last = answers
        .iter()
        .filter(|a| a.at > crashed_at + Duration::from_secs(3));
    assert!(
        last.clone().all(|a| a.status == 202),
        "still failing 3 s after the crash: {:?}",
        last.map(|a| a.status).collect::<Vec<_>>()
    );

    let acknowledged: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.order_id.clone())
        .collect();
    let client = app.client().await;
    let rows = client
        .query(
            "SELECT o.id, count(i.*) FROM write.orders o JOIN write.order_items i ON i.order_id = o.id \
             WHERE o.id = ANY($1) GROUP BY o.id",
            &[&acknowledged],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        acknowledged.len(),
        "an acknowledged order was lost"
    );
    for row in &rows {
        assert_eq!(
            row.get::<_, i64>(1),
            2,
            "order {} is half-written",
            row.get::<_, String>(0)
        );
    }
    // And no half-written order exists at all, acknowledged or not.
    let orphans: i64 = client
        .query_one(
            "SELECT count(*) FROM write.orders o WHERE (SELECT count(*) FROM write.order_items i WHERE i.order_id = o.id) <> 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200, "readyz after recovery");
}
