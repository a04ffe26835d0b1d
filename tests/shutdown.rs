//! Stopping the process during a load of commands: every command that got a
//! 2xx is in the database, complete, and no order is half-written; on SIGTERM
//! the process exits 0 promptly.

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{poll_until, TestDb};

#[tokio::test]
async fn sigterm_under_load_loses_no_acknowledged_command_and_exits_zero() {
    let (status, elapsed) = kill_under_load(nix::sys::signal::Signal::SIGTERM).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} to exit"
    );
}

#[tokio::test]
async fn sigkill_under_load_leaves_no_half_written_order_and_loses_nothing_acknowledged() {
    let (status, _) = kill_under_load(nix::sys::signal::Signal::SIGKILL).await;
    assert!(!status.success(), "SIGKILL should end the process abruptly");
}

/// Run the binary under a load of commands, send `signal`, and check that
/// every acknowledged order is in the database with all its lines and that
/// no order is half-written. Returns how the process ended and how long it
/// took after the signal.
async fn kill_under_load(signal: nix::sys::signal::Signal) -> (std::process::ExitStatus, Duration) {
    let db = TestDb::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgcqrs"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("PGCQRS_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the service");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    poll_until("the service to start", Duration::from_secs(30), || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(drop)
    })
    .await;
    let r = http
        .post(format!("{base}/commands/customers"))
        .json(&json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for p in ["p-1", "p-2"] {
        let r = http
            .post(format!("{base}/commands/products"))
            .json(&json!({"id": p, "name": p, "price": "2.50"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    // Eight clients place orders as fast as they can until the server is gone.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for w in 0..8 {
        let (http, base, acknowledged) = (http.clone(), base.clone(), Arc::clone(&acknowledged));
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("o-{w}-{i}");
                let sent = http
                    .post(format!("{base}/commands/orders"))
                    .json(&json!({"order_id": id, "customer_id": "c-1",
                                  "items": [{"product_id": "p-1", "quantity": 1}, {"product_id": "p-2", "quantity": 2}]}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => acknowledged.lock().unwrap().push(id),
                    Ok(_) => {}
                    Err(_) => break, // the listener is closed
                }
            }
        }));
    }
    poll_until("the load to build up", Duration::from_secs(10), || {
        let placed = acknowledged.lock().unwrap().len();
        async move { (placed > 10).then_some(()) }
    })
    .await;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("signal");
    let signalled = Instant::now();
    let status = poll_until(
        "the service to exit after the signal",
        Duration::from_secs(10),
        || {
            let status = child.try_wait().expect("wait");
            async move { status }
        },
    )
    .await;
    let elapsed = signalled.elapsed();
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 10,
        "too little load: {}",
        acknowledged.len()
    );
    let client = db.client().await;
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
        "an acknowledged order is missing"
    );
    for row in rows {
        assert_eq!(
            row.get::<_, i64>(1),
            2,
            "order {} is incomplete",
            row.get::<_, String>(0)
        );
    }
    let half_written: i64 = client
        .query_one(
            "SELECT count(*) FROM write.orders o \
             WHERE (SELECT count(*) FROM write.order_items i WHERE i.order_id = o.id) <> 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(half_written, 0, "an order was left half-written");
    (status, elapsed)
}
