//! The soak: a bounded mixed load that fails on errors, growing memory,
//! leaking connections or runaway lag.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgcqrs::seed;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::bench::{new_order_id, Catalog};
use crate::service::{fresh_database, seed_orders, Service};

/// One sample of a soak run.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSample {
    pub at_s: u64,
    pub commands: u64,
    pub queries: u64,
    pub errors: u64,
    pub rss_mb: f64,
    pub pool_open: f64,
    pub max_lag_s: f64,
}

/// `pgcqrs-bench soak`: a bounded mixed load (commands and queries, refreshes
/// running) against the service as a child process, sampling memory, pool
/// connections and read-model lag. Fails if anything errs, memory keeps
/// growing, connections leak or the lag runs away.
pub async fn soak(
    service: &Path,
    admin_base: &str,
    orders: u64,
    duration: Duration,
) -> anyhow::Result<Vec<SoakSample>> {
    let name = "pgcqrs_soak";
    let (admin, url) = fresh_database(admin_base, name).await?;
    seed_orders(&url, orders).await?;
    let mut service = Service::start(service, &url, &[]).await?;
    let catalog = Arc::new(Catalog::load(&url, orders).await?);
    let http = reqwest::Client::new();
    let base = service.base.clone();
    let (commands, queries, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..6usize {
        let (http, base, catalog, commands, queries, errors, stop) = (
            http.clone(),
            base.clone(),
            Arc::clone(&catalog),
            Arc::clone(&commands),
            Arc::clone(&queries),
            Arc::clone(&errors),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64);
            let mut mine: Vec<String> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let ok = if w < 3 {
                    // Writers: place an order, or move one of theirs along.
                    commands.fetch_add(1, Ordering::Relaxed);
                    if mine.is_empty() || rng.random_range(0..3) == 0 {
                        let (customer, lines, _) = catalog.order_request(&mut rng);
                        let id = new_order_id("soak");
                        let items: Vec<_> = lines.iter().map(|(p, q, _)| serde_json::json!({"product_id": p, "quantity": q})).collect();
                        let r = http.post(format!("{base}/commands/orders")).json(&serde_json::json!({"order_id": id, "customer_id": customer, "items": items})).send().await;
                        mine.push(id);
                        matches!(r, Ok(ref r) if r.status() == 202)
                    } else {
                        let id = mine.swap_remove(rng.random_range(0..mine.len()));
                        let action = ["confirm", "ship", "deliver"][rng.random_range(0..3)];
                        let r = http.post(format!("{base}/commands/orders/{id}/{action}")).send().await;
                        // 409 is the state machine saying no: a correct answer.
                        matches!(r, Ok(ref r) if r.status() == 202 || r.status() == 409)
                    }
                } else {
                    queries.fetch_add(1, Ordering::Relaxed);
                    let path = match rng.random_range(0..3) {
                        0 => format!("/queries/orders/{}", seed::order_id(rng.random_range(1..=catalog.orders))),
                        1 => format!("/queries/customers/{}/orders", seed::customer_id(rng.random_range(1..=catalog.customers))),
                        _ => "/queries/order-statistics".to_string(),
                    };
                    let r = http.get(format!("{base}{path}")).send().await;
                    matches!(r, Ok(ref r) if r.status() == 200)
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    println!("| at s | commands | queries | errors | service RSS MB | pool connections | max read-model lag s |");
    println!("|---|---|---|---|---|---|---|");
    while started.elapsed() < duration {
        tokio::time::sleep(
            Duration::from_secs(10).min(
                duration
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(1)),
            ),
        )
        .await;
        let rss = service.rss_kib().unwrap_or(0) as f64 / 1024.0;
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let pool_open: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("pgcqrs_pool_connections{") && l.contains("state=\"open\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let models: serde_json::Value = http
            .get(format!("{base}/queries/read-models"))
            .send()
            .await?
            .json()
            .await?;
        let max_lag = models["read_models"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["lag_seconds"].as_f64())
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0);
        let s = SoakSample {
            at_s: started.elapsed().as_secs(),
            commands: commands.load(Ordering::Relaxed),
            queries: queries.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            rss_mb: rss,
            pool_open,
            max_lag_s: max_lag,
        };
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} |",
            s.at_s, s.commands, s.queries, s.errors, s.rss_mb, s.pool_open, s.max_lag_s
        );
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    service.stop();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    let errors = errors.load(Ordering::Relaxed);
    anyhow::ensure!(errors == 0, "{errors} requests failed during the soak");
    if let (Some(first), Some(last)) = (samples.get(1), samples.last()) {
        anyhow::ensure!(
            last.rss_mb <= first.rss_mb * 1.5 + 8.0,
            "memory grew from {:.1} MB to {:.1} MB",
            first.rss_mb,
            last.rss_mb
        );
    }
    let max_pool = samples.iter().map(|s| s.pool_open).fold(0.0, f64::max);
    anyhow::ensure!(
        max_pool <= 32.0,
        "the pools opened {max_pool} connections (limit 32)"
    );
    let max_lag = samples.iter().map(|s| s.max_lag_s).fold(0.0, f64::max);
    anyhow::ensure!(max_lag < 30.0, "a read model fell {max_lag:.0} s behind");
    Ok(samples)
}
