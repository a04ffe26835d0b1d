//! The benchmark: pgcqrs against raw PostgreSQL, side by side in one run.
//!
//! For each size it seeds a fresh database, starts the service as a child
//! process (so its memory can be measured alone), and drives a fixed
//! concurrency over real HTTP from this process, then the same question as
//! raw SQL through tokio-postgres: warm-up, then a timed window, each
//! scenario in turn. It prints one table of medians and ratios, and with
//! `--json` writes the same figures for tooling.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use pgcqrs::db;
use pgcqrs::db::embedded::{LocalCluster, StartOptions};
use pgcqrs::seed;

use crate::lean::LeanClient;
use crate::service::{existing_database, fresh_database, seed_orders, Service};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub sizes: Vec<u64>,
    pub concurrency: usize,
    pub warmup: Duration,
    pub window: Duration,
    /// The `pgcqrs` binary to measure.
    pub service: PathBuf,
    /// Only the write path and the read models' freshness: create order
    /// with staleness per model, and the refresh cost after 1% changed
    /// (for sizes where the rest would take hours).
    pub freshness_only: bool,
    /// Measure a database an earlier run seeded (and left) rather than
    /// seeding a new one.
    pub reuse: bool,
    /// Leave each size's database in place once measured.
    pub keep: bool,
}

/// Throughput and latency of one side of a scenario.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Measure {
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub pgcqrs: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    pub goal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgcqrs_measure: Option<Measure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_measure: Option<Measure>,
}

/// Figures for one size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeReport {
    pub orders: u64,
    pub seed_seconds: f64,
    /// The database's size on disk once seeded (bytes).
    pub disk_bytes: i64,
    pub rows: Vec<Row>,
}

/// Run the plan against the PostgreSQL server at `admin_url` (a superuser
/// URL to any database; the benchmark creates its own).
///
/// With `cluster` (the benchmark's own local cluster), reads are also
/// measured with a streaming replica of it as a second read pool.
pub async fn run(
    admin_base: &str,
    plan: &BenchPlan,
    cluster: Option<&LocalCluster>,
) -> anyhow::Result<Vec<SizeReport>> {
    let mut reports = Vec::new();
    for &orders in &plan.sizes {
        let report = run_size(admin_base, orders, plan, cluster).await?;
        print_table(&report);
        reports.push(report);
    }
    if reports.len() > 1 {
        print_series(&reports);
    }
    Ok(reports)
}

/// Drop a size's database once measured, unless asked to keep it for a
/// later `--reuse`.
async fn drop_unless_kept(
    admin: &db::tokio_postgres::Client,
    name: &str,
    keep: bool,
) -> anyhow::Result<()> {
    if keep {
        eprintln!("   kept {name} for --reuse");
        return Ok(());
    }
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

async fn run_size(
    admin_base: &str,
    orders: u64,
    plan: &BenchPlan,
    cluster: Option<&LocalCluster>,
) -> anyhow::Result<SizeReport> {
    let name = format!("pgcqrs_bench_{orders}");
    let (admin, url, seed_seconds) = if plan.reuse {
        eprintln!("== {orders} orders: reusing {name} as seeded before");
        let (admin, url) = existing_database(admin_base, &name).await?;
        (admin, url, 0.0)
    } else {
        let (admin, url) = fresh_database(admin_base, &name).await?;
        eprintln!("== {orders} orders: seeding");
        let seeded = seed_orders(&url, orders).await?;
        (admin, url, (seeded.load + seeded.rebuild).as_secs_f64())
    };
    let disk_bytes: i64 = db::connect(&url)
        .await?
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await?
        .try_get(0)?;

    let mut service = Service::start(&plan.service, &url, &[]).await?;
    if plan.freshness_only {
        let result = match Load::new(&url, orders, plan, &service).await {
            Ok(load) => {
                let rows = freshness(&url, &load).await;
                load.raw.close();
                rows
            }
            Err(e) => Err(e),
        };
        service.stop();
        let mut rows = result?;
        // A large size runs for an hour: what is measured shows at once.
        eprintln!("   seeded in {seed_seconds:.1} s, {disk_bytes} bytes on disk");
        log_rows(&rows);
        rows.extend(refresh_costs(&url, orders).await?);
        drop_unless_kept(&admin, &name, plan.keep).await?;
        return Ok(SizeReport {
            orders,
            seed_seconds,
            disk_bytes,
            rows,
        });
    }
    let result = scenarios(&url, orders, plan, &service).await;
    let rss = service.peak_rss_kib();
    service.stop();
    let mut rows = result?;

    // The same command load against the design the batches replaced: the
    // large read models recomputed whole whenever anything changed.
    eprintln!("   create order, full-refresh design");
    let mut full = Service::start(&plan.service, &url, &[("PGCQRS_FULL_REFRESH", "all")]).await?;
    let catalog = Arc::new(Catalog::load(&url, orders).await?);
    let http = reqwest::Client::new();
    let (pg, staleness) = create_phase(
        &http,
        (&full.base, &url),
        &catalog,
        plan.concurrency,
        plan.warmup,
        plan.window,
    )
    .await;
    full.stop();
    rows.push(Row {
        scenario: "full-refresh design: create order (3 items)".into(),
        pgcqrs: throughput(&pg, "cmd"),
        baseline: "—".into(),
        ratio: None,
        goal: "—".into(),
        pgcqrs_measure: Some(pg),
        baseline_measure: None,
    });
    rows.push(latency_row(
        "full-refresh design: staleness, 202 → visible",
        &staleness.visible,
        "—",
    ));
    rows.extend(covered_rows(
        "full-refresh design: ",
        &staleness.covered,
        "—",
    ));
    rows.push(latency_row(
        "full-refresh design: min_token read, 202 → answer",
        &staleness.waits,
        "—",
    ));
    rows.extend(refresh_costs(&url, orders).await?);
    rows.extend(catch_up_costs(&url, orders).await?);
    rows.push(idempotency_expiry(&url).await?);
    match cluster {
        Some(cluster) => rows.extend(read_pools(cluster, &url, &name, orders, plan).await?),
        None => rows.push(Row {
            scenario: READ_POOLS_SCENARIO.into(),
            pgcqrs: "n/a (needs the benchmark's own cluster: unset DATABASE_URL)".into(),
            baseline: "—".into(),
            ratio: None,
            goal: "—".into(),
            pgcqrs_measure: None,
            baseline_measure: None,
        }),
    }
    rows.push(Row {
        scenario: "memory: service RSS peak under load".into(),
        pgcqrs: rss
            .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
            .unwrap_or_else(|| "n/a".into()),
        baseline: "—".into(),
        ratio: None,
        goal: "≤ 64 MB".into(),
        pgcqrs_measure: None,
        baseline_measure: None,
    });
    drop_unless_kept(&admin, &name, plan.keep).await?;
    Ok(SizeReport {
        orders,
        seed_seconds,
        disk_bytes,
        rows,
    })
}

const READ_POOLS_SCENARIO: &str =
    "get order by id: 2 read pools (replica + primary) vs 1 (primary)";

/// Query throughput with two read pools, a streaming replica of `cluster`
/// and the primary, against the primary alone: one service each, measured
/// in alternating rounds. On one machine both servers share its cores, so
/// this shows the cost of spreading reads, not the capacity a second
/// machine would add. Then the replica's replay lag under command load.
async fn read_pools(
    cluster: &LocalCluster,
    url: &str,
    dbname: &str,
    orders: u64,
    plan: &BenchPlan,
) -> anyhow::Result<Vec<Row>> {
    eprintln!("   get order by id, with a replica as a second read pool");
    let dir = cluster
        .datadir()
        .with_file_name(format!("{dbname}-replica-{}", std::process::id()));
    let replica = {
        let (primary, dir) = (cluster.clone(), dir.clone());
        tokio::task::spawn_blocking(move || primary.start_replica(&dir, &StartOptions::default()))
            .await
            .context("replica start-up panicked")??
    };
    replica.remove_when_process_exits()?;
    let result = async {
        let replica_url = replica.url(dbname);
        let mut one = Service::start(&plan.service, url, &[]).await?;
        let two = Service::start(
            &plan.service,
            url,
            &[("READ_DATABASE_URL", &format!("{replica_url},{url}"))],
        )
        .await;
        let mut two = two?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency * 2)
            .build()?;
        let lean = [
            Arc::new(LeanClient::new(&one.base, plan.concurrency)?),
            Arc::new(LeanClient::new(&two.base, plan.concurrency)?),
        ];
        let (c, part) = (
            plan.concurrency,
            (plan.window / ROUNDS).max(Duration::from_secs(2)),
        );
        let rewarm = Duration::from_millis(500);
        let (mut single, mut double) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let w = if round == 0 { plan.warmup } else { rewarm };
            for (client, out) in [(&lean[0], &mut single), (&lean[1], &mut double)] {
                out.push(
                    http_get(client, c, w, part, move |w, i| {
                        format!("/queries/orders/{}", seed::order_id(pick(w, i, orders)))
                    })
                    .await,
                );
            }
        }
        two.stop();
        let reads = paired_row(
            READ_POOLS_SCENARIO,
            &double,
            &single,
            "read",
            "— (2 cores: see docs/scaling.md)",
        );

        // Replay lag as the primary sees it, sampled while commands run.
        let catalog = Arc::new(Catalog::load(url, orders).await?);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = tokio::spawn(sample_replay_lag(url.to_owned(), Arc::clone(&stop)));
        let writes = http_create(&http, &one.base, &catalog, c, plan.warmup, part).await;
        stop.store(true, Ordering::Relaxed);
        let lag = sampler.await.unwrap_or_default();
        one.stop();
        let mut lag_row = latency_row("replica replay lag under create-order load", &lag, "—");
        lag_row.baseline = format!("during {}", throughput(&writes, "cmd"));
        anyhow::Ok(vec![reads, lag_row])
    }
    .await;
    let _ = replica.stop();
    result
}

/// `pg_stat_replication.replay_lag` in seconds every 100 ms until `stop`
/// (0 when the standby has replayed everything).
async fn sample_replay_lag(url: String, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<f64> {
    let Ok(client) = db::connect(&url).await else {
        return Vec::new();
    };
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(row) = client
            .query_one(include_str!("../sql/replay_lag.sql"), &[])
            .await
        {
            if let Some(lag) = row.get::<_, Option<f64>>(0) {
                samples.push(lag);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples
}

/// Run `op` from `concurrency` tasks: `warmup` unmeasured, then `window`.
async fn drive<F, Fut>(concurrency: usize, warmup: Duration, window: Duration, op: F) -> Measure
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let op = Arc::clone(&op);
        let errors = Arc::clone(&errors);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let result = op(worker, i).await;
                i += 1;
                if t >= measure_from {
                    match result {
                        Ok(()) => latencies.push(t.elapsed().as_micros() as u32),
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("   first error: {e:#}");
                            }
                        }
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(mut l) = t.await {
            all.append(&mut l);
        }
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let idx = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[idx] as f64 / 1000.0
    };
    Measure {
        ops_per_sec: all.len() as f64 / window.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

fn throughput(m: &Measure, unit: &str) -> String {
    format!(
        "{:.0} {unit}/s, p50 {:.2} ms, p99 {:.2} ms{}",
        m.ops_per_sec,
        m.p50_ms,
        m.p99_ms,
        if m.errors > 0 {
            format!(", {} errors", m.errors)
        } else {
            String::new()
        }
    )
}

fn row(scenario: &str, a: Measure, b: Measure, unit: &str, goal: &str) -> Row {
    let ratio = (b.ops_per_sec > 0.0).then(|| a.ops_per_sec / b.ops_per_sec);
    Row {
        scenario: scenario.into(),
        pgcqrs: throughput(&a, unit),
        baseline: throughput(&b, unit),
        ratio,
        goal: goal.into(),
        pgcqrs_measure: Some(a),
        baseline_measure: Some(b),
    }
}

pub(crate) struct Catalog {
    pub(crate) customers: u32,
    prices: Vec<Decimal>,
    pub(crate) orders: u64,
}

impl Catalog {
    pub(crate) async fn load(url: &str, orders: u64) -> anyhow::Result<Self> {
        let setup = db::connect(url).await?;
        let prices: Vec<Decimal> = setup
            .query("SELECT price::numeric FROM write.products ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let customers: i64 = setup
            .query_one("SELECT count(*) FROM write.customers", &[])
            .await?
            .get(0);
        Ok(Self {
            customers: customers as u32,
            prices,
            orders,
        })
    }

    pub(crate) fn order_request(
        &self,
        rng: &mut StdRng,
    ) -> (String, Vec<(String, i32, Decimal)>, Decimal) {
        let customer = seed::customer_id(rng.random_range(1..=self.customers));
        let mut lines: Vec<(String, i32, Decimal)> = Vec::with_capacity(3);
        let mut total = Decimal::ZERO;
        while lines.len() < 3 {
            let p = rng.random_range(1..=self.prices.len() as u32);
            let id = seed::product_id(p);
            if lines.iter().any(|l| l.0 == id) {
                continue;
            }
            let q = rng.random_range(1..=4);
            let price = self.prices[(p - 1) as usize];
            total += price * Decimal::from(q);
            lines.push((id, q, price));
        }
        (customer, lines, total)
    }
}

static ORDER_SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn new_order_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        ORDER_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The create-order transaction as raw SQL on a pooled connection, with
/// statements prepared once per connection (as the service does).
async fn raw_create(
    pool: &deadpool_postgres::Pool,
    id: &str,
    customer: &str,
    lines: &[(String, i32, Decimal)],
    total: Decimal,
) -> anyhow::Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let order = tx
        .prepare_cached(include_str!("../sql/raw_insert_order.sql"))
        .await?;
    let items = tx
        .prepare_cached(include_str!("../sql/raw_insert_items.sql"))
        .await?;
    tx.execute(&order, &[&id, &customer, &total]).await?;
    tx.execute(
        &items,
        &[
            &id,
            &lines[0].0,
            &lines[0].1,
            &lines[0].2,
            &lines[1].0,
            &lines[1].1,
            &lines[1].2,
            &lines[2].0,
            &lines[2].1,
            &lines[2].2,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rounds each side of a comparison runs, alternating, so that drift on a
/// shared machine (checkpoints, other tenants) hits both sides alike.
const ROUNDS: u32 = 3;

/// The medians over rounds of one side.
fn median_measure(v: &[Measure]) -> Measure {
    let med = |f: &dyn Fn(&Measure) -> f64| {
        let mut xs: Vec<f64> = v.iter().map(f).collect();
        median(&mut xs)
    };
    Measure {
        ops_per_sec: med(&|m| m.ops_per_sec),
        p50_ms: med(&|m| m.p50_ms),
        p99_ms: med(&|m| m.p99_ms),
        errors: v.iter().map(|m| m.errors).sum(),
    }
}

fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// A row from alternating rounds: medians of each side, median of the
/// per-round ratios.
fn paired_row(scenario: &str, a: &[Measure], b: &[Measure], unit: &str, goal: &str) -> Row {
    let mut ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, b)| b.ops_per_sec > 0.0)
        .map(|(a, b)| a.ops_per_sec / b.ops_per_sec)
        .collect();
    let mut r = row(scenario, median_measure(a), median_measure(b), unit, goal);
    r.ratio = Some(median(&mut ratios));
    r
}

fn pick(w: usize, i: u64, n: u64) -> u64 {
    StdRng::seed_from_u64((w as u64) << 32 | i).random_range(1..=n)
}

async fn http_create(
    http: &reqwest::Client,
    base: &str,
    catalog: &Arc<Catalog>,
    c: usize,
    warm: Duration,
    win: Duration,
) -> Measure {
    let (http, base, catalog) = (http.clone(), base.to_owned(), Arc::clone(catalog));
    drive(c, warm, win, move |w, i| {
        let (http, base, catalog) = (http.clone(), base.clone(), Arc::clone(&catalog));
        async move {
            let mut rng = StdRng::seed_from_u64((w as u64) << 32 | i | 1 << 61);
            let (customer, lines, _) = catalog.order_request(&mut rng);
            let items: Vec<_> = lines
                .iter()
                .map(|(p, q, _)| serde_json::json!({"product_id": p, "quantity": q}))
                .collect();
            let r = http
                .post(format!("{base}/commands/orders"))
                .json(&serde_json::json!({"customer_id": customer, "items": items}))
                .send()
                .await?;
            anyhow::ensure!(r.status() == 202, "status {}", r.status());
            Ok(())
        }
    })
    .await
}

async fn raw_create_load(
    pool: &deadpool_postgres::Pool,
    catalog: &Arc<Catalog>,
    c: usize,
    warm: Duration,
    win: Duration,
) -> Measure {
    let (pool, catalog) = (pool.clone(), Arc::clone(catalog));
    drive(c, warm, win, move |w, i| {
        let (pool, catalog) = (pool.clone(), Arc::clone(&catalog));
        async move {
            let mut rng = StdRng::seed_from_u64((w as u64) << 32 | i | 1 << 62);
            let (customer, lines, total) = catalog.order_request(&mut rng);
            raw_create(&pool, &new_order_id("raw"), &customer, &lines, total).await
        }
    })
    .await
}

/// GET `path(w, i)` over HTTP with the lean client, expecting 200.
async fn http_get<P>(
    client: &Arc<LeanClient>,
    c: usize,
    warm: Duration,
    win: Duration,
    path: P,
) -> Measure
where
    P: Fn(usize, u64) -> String + Send + Sync + 'static,
{
    let (client, path) = (Arc::clone(client), Arc::new(path));
    drive(c, warm, win, move |w, i| {
        let (client, path) = (Arc::clone(&client), Arc::clone(&path));
        async move {
            let status = client.get(w, &path(w, i)).await?;
            anyhow::ensure!(status == 200, "status {status}");
            Ok(())
        }
    })
    .await
}

/// The same GETs through reqwest: what the lean client saves the cores.
async fn reqwest_get<P>(
    http: &reqwest::Client,
    base: &str,
    c: usize,
    warm: Duration,
    win: Duration,
    path: P,
) -> Measure
where
    P: Fn(usize, u64) -> String + Send + Sync + 'static,
{
    let (http, base, path) = (http.clone(), base.to_owned(), Arc::new(path));
    drive(c, warm, win, move |w, i| {
        let (http, url) = (http.clone(), format!("{base}{}", path(w, i)));
        async move {
            let r = http.get(url).send().await?;
            anyhow::ensure!(r.status() == 200, "status {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Run the prepared statements `sqls` (pipelined) with the one text
/// parameter `param(w, i)`, or with the `times` pair when given.
async fn raw_query<P>(
    pool: &deadpool_postgres::Pool,
    c: usize,
    warm: Duration,
    win: Duration,
    sqls: &'static [&'static str],
    param: P,
    times: Option<(OffsetDateTime, OffsetDateTime)>,
) -> Measure
where
    P: Fn(usize, u64) -> String + Send + Sync + 'static,
{
    let (pool, param) = (pool.clone(), Arc::new(param));
    drive(c, warm, win, move |w, i| {
        let (pool, param) = (pool.clone(), Arc::clone(&param));
        async move {
            let client = pool.get().await?;
            let mut stmts = Vec::new();
            for sql in sqls {
                stmts.push(client.prepare_cached(sql).await?);
            }
            let text = param(w, i);
            let futures = stmts.iter().map(|stmt| {
                let client = &client;
                let text = &text;
                async move {
                    match times {
                        Some((from, to)) => client.query(stmt, &[&from, &to]).await,
                        None => client.query(stmt, &[text]).await,
                    }
                }
            });
            futures::future::try_join_all(futures).await?;
            Ok(())
        }
    })
    .await
}

/// Create order over HTTP against the same inserts in SQL (with all
/// triggers, without the change capture, without any of ours), in
/// alternating rounds, while a probe measures how long each read model
/// takes to cover a new order.
async fn freshness(url: &str, load: &Load) -> anyhow::Result<Vec<Row>> {
    let (c, warm, part, rewarm) = (load.c, load.warm, load.part, load.rewarm);
    let (catalog, http, base, raw) = (&load.catalog, &load.http, &load.base, &load.raw);
    let setup = db::connect(url).await?;
    let mut rows = Vec::new();

    eprintln!("   create order");
    let probe_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn(staleness_probe(
        http.clone(),
        (base.clone(), url.to_owned()),
        Arc::clone(catalog),
        Arc::clone(&probe_stop),
        warm,
    ));
    let (mut pg, mut with, mut without) = (Vec::new(), Vec::new(), Vec::new());
    let mut uncaptured = Vec::new();
    for round in 0..ROUNDS {
        let w = if round == 0 { warm } else { rewarm };
        pg.push(http_create(http, base, catalog, c, w, part).await);
        with.push(raw_create_load(raw, catalog, c, rewarm, part).await);
        // The same inserts with only the change capture off.
        setup
            .batch_execute("ALTER TABLE write.orders DISABLE TRIGGER pgcqrs_capture_insert; ALTER TABLE write.order_items DISABLE TRIGGER pgcqrs_capture_insert;")
            .await?;
        uncaptured.push(raw_create_load(raw, catalog, c, rewarm, part).await);
        setup
            .batch_execute("ALTER TABLE write.orders ENABLE ALWAYS TRIGGER pgcqrs_capture_insert; ALTER TABLE write.order_items ENABLE ALWAYS TRIGGER pgcqrs_capture_insert;")
            .await?;
        // The same inserts with our triggers off (foreign keys still checked).
        setup
            .batch_execute("ALTER TABLE write.orders DISABLE TRIGGER USER; ALTER TABLE write.order_items DISABLE TRIGGER USER;")
            .await?;
        without.push(raw_create_load(raw, catalog, c, rewarm, part).await);
        setup
            .batch_execute("ALTER TABLE write.orders ENABLE TRIGGER USER; ALTER TABLE write.order_items ENABLE TRIGGER USER; \
                            ALTER TABLE write.orders ENABLE ALWAYS TRIGGER pgcqrs_capture_insert; ALTER TABLE write.order_items ENABLE ALWAYS TRIGGER pgcqrs_capture_insert;")
            .await?;
    }
    probe_stop.store(true, Ordering::Relaxed);
    let staleness = probe.await.unwrap_or_default();
    rows.push(paired_row(
        "create order (3 items): HTTP vs the same inserts in SQL",
        &pg,
        &with,
        "cmd",
        "≥ 0.8",
    ));
    rows.push(paired_row(
        "write-path cost of triggers (SQL with vs without)",
        &with,
        &without,
        "cmd",
        "≥ 0.85",
    ));
    rows.push(paired_row(
        "write-path cost of change capture (SQL with vs without it)",
        &with,
        &uncaptured,
        "cmd",
        "≥ 0.85",
    ));
    rows.push(latency_row(
        "staleness under load: 202 → visible without min_token",
        &staleness.visible,
        "p99 ≤ 1 s",
    ));
    rows.extend(covered_rows(
        "staleness under load: ",
        &staleness.covered,
        "p99 ≤ 1 s",
    ));
    rows.push(latency_row(
        "min_token read under load: 202 → answer",
        &staleness.waits,
        "p99 ≤ 1 s",
    ));
    Ok(rows)
}

/// What the scenarios drive: concurrency and windows, the ids to use, and
/// the two sides, the service over HTTP and the same statements in SQL.
struct Load {
    c: usize,
    warm: Duration,
    part: Duration,
    rewarm: Duration,
    catalog: Arc<Catalog>,
    http: reqwest::Client,
    lean: Arc<LeanClient>,
    base: String,
    raw: deadpool_postgres::Pool,
}

impl Load {
    async fn new(
        url: &str,
        orders: u64,
        plan: &BenchPlan,
        service: &Service,
    ) -> anyhow::Result<Self> {
        let c = plan.concurrency;
        Ok(Self {
            c,
            warm: plan.warmup,
            part: (plan.window / ROUNDS).max(Duration::from_secs(2)),
            rewarm: Duration::from_millis(500),
            catalog: Arc::new(Catalog::load(url, orders).await?),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(c * 2)
                .build()?,
            lean: Arc::new(LeanClient::new(&service.base, c)?),
            base: service.base.clone(),
            raw: db::pool(url, c, "pgcqrs-bench-raw")?,
        })
    }
}

async fn scenarios(
    url: &str,
    orders: u64,
    plan: &BenchPlan,
    service: &Service,
) -> anyhow::Result<Vec<Row>> {
    let load = Load::new(url, orders, plan, service).await?;
    let mut rows = freshness(url, &load).await?;
    let Load {
        c,
        warm,
        part,
        rewarm,
        catalog,
        http,
        lean,
        base,
        raw,
    } = load;

    // Let the read models catch up with the writes before reading.
    for view in ["order_summary", "order_lines"] {
        let _ = http
            .post(format!("{base}/admin/read-models/{view}/refresh"))
            .send()
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // ------------------------------------------------------- get order by id
    eprintln!("   get order by id");
    let n = catalog.orders;
    let (mut pg, mut sql, mut heavy) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu, mut heavy_cpu) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let w = if round == 0 { warm } else { rewarm };
        let used = ProcessCpu::start();
        pg.push(
            http_get(&lean, c, w, part, move |w, i| {
                format!("/queries/orders/{}", seed::order_id(pick(w, i, n)))
            })
            .await,
        );
        cpu.push(used.share());
        let used = ProcessCpu::start();
        heavy.push(
            reqwest_get(&http, &base, c, rewarm, part, move |w, i| {
                format!("/queries/orders/{}", seed::order_id(pick(w, i, n)))
            })
            .await,
        );
        heavy_cpu.push(used.share());
        sql.push(
            raw_query(
                &raw,
                c,
                rewarm,
                part,
                &[
                    include_str!("../../sql/queries/get_order_summary.sql"),
                    include_str!("../../sql/queries/get_order_lines.sql"),
                ],
                move |w, i| seed::order_id(pick(w, i, n)),
                None,
            )
            .await,
        );
    }
    rows.push(paired_row(
        "get order by id (HTTP vs the same read-model lookup in SQL)",
        &pg,
        &sql,
        "read",
        "≥ 0.8",
    ));
    rows.push(load_generator_row(&cpu, "get order by id"));
    rows.push(paired_row(
        "get order by id over HTTP: the lean client vs reqwest as the load generator",
        &pg,
        &heavy,
        "read",
        "—",
    ));
    rows.push(load_generator_row(&heavy_cpu, "get order by id (reqwest)"));

    // ------------------------------------- keyed lookup through a declared view
    eprintln!("   keyed lookup through /queries/views");
    let (mut view, mut dedicated) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let w = if round == 0 { warm } else { rewarm };
        view.push(
            http_get(&lean, c, w, part, move |w, i| {
                format!(
                    "/queries/views/order_summary?order_id=eq.{}",
                    seed::order_id(pick(w, i, n))
                )
            })
            .await,
        );
        dedicated.push(
            http_get(&lean, c, rewarm, part, move |w, i| {
                format!("/queries/orders/{}", seed::order_id(pick(w, i, n)))
            })
            .await,
        );
    }
    rows.push(paired_row(
        "keyed lookup: /queries/views/order_summary vs /queries/orders/{id} (HTTP)",
        &view,
        &dedicated,
        "read",
        "≥ 0.9",
    ));

    // -------------------------------------------------- customer's 20 newest
    eprintln!("   customer's newest orders");
    let n = catalog.customers as u64;
    let (mut pg, mut mv, mut join) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let w = if round == 0 { warm } else { rewarm };
        pg.push(
            http_get(&lean, c, w, part, move |w, i| {
                format!(
                    "/queries/customers/{}/orders?page_size=20",
                    seed::customer_id(pick(w, i, n) as u32)
                )
            })
            .await,
        );
        mv.push(
            raw_query(
                &raw,
                c,
                rewarm,
                part,
                &[
                    include_str!("../sql/read_customer_newest.sql"),
                    include_str!("../../sql/queries/count_customer_orders.sql"),
                ],
                move |w, i| seed::customer_id(pick(w, i, n) as u32),
                None,
            )
            .await,
        );
        join.push(
            raw_query(
                &raw,
                c,
                rewarm,
                part,
                &[
                    include_str!("../sql/join_customer_newest.sql"),
                    include_str!("../sql/join_customer_count.sql"),
                ],
                move |w, i| seed::customer_id(pick(w, i, n) as u32),
                None,
            )
            .await,
        );
    }
    rows.push(paired_row(
        "customer's 20 newest: HTTP on order_summary vs join on write tables in SQL",
        &pg,
        &join,
        "read",
        "speedup",
    ));
    rows.push(paired_row(
        "customer's 20 newest: order_summary vs join, both in SQL",
        &mv,
        &join,
        "read",
        "speedup",
    ));
    rows.push(paired_row(
        "customer's 20 newest: HTTP vs the same statements in SQL",
        &pg,
        &mv,
        "read",
        "≥ 0.6",
    ));

    // ------------------------------------------- a status's first page
    eprintln!("   status-filtered first page");
    let (mut pg, mut sql) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let w = if round == 0 { warm } else { rewarm };
        pg.push(
            http_get(&lean, c, w, part, move |w, i| {
                format!(
                    "/queries/orders?status={}&page_size=20",
                    STATUSES[pick(w, i, STATUSES.len() as u64) as usize - 1]
                )
            })
            .await,
        );
        sql.push(
            raw_query(
                &raw,
                c,
                rewarm,
                part,
                &[
                    include_str!("../sql/read_status_newest.sql"),
                    include_str!("../sql/read_status_count.sql"),
                ],
                move |w, i| STATUSES[pick(w, i, STATUSES.len() as u64) as usize - 1].to_owned(),
                None,
            )
            .await,
        );
    }
    rows.push(paired_row(
        "status-filtered first page: HTTP vs the same statements in SQL",
        &pg,
        &sql,
        "read",
        "≥ 0.5",
    ));

    // ----------------------------------------------------- statistics, 30 days
    eprintln!("   statistics over 30 days");
    // The last 30 days up to now: over HTTP without `to` (open-ended); in
    // SQL with an end in the future, which means the same.
    let now = OffsetDateTime::now_utc();
    let from = now - time::Duration::days(30);
    let to = now + time::Duration::days(1);
    let query = format!(
        "/queries/order-statistics?from={}",
        from.format(&time::format_description::well_known::Rfc3339)?
    );
    let (mut pg, mut mv, mut agg) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let w = if round == 0 { warm } else { rewarm };
        let q = query.clone();
        pg.push(http_get(&lean, c, w, part, move |_, _| q.clone()).await);
        mv.push(
            raw_query(
                &raw,
                c,
                rewarm,
                part,
                &[include_str!("../../sql/queries/order_statistics.sql")],
                |_, _| String::new(),
                Some((from, to)),
            )
            .await,
        );
        agg.push(
            raw_query(
                &raw,
                c,
                rewarm,
                part,
                &[include_str!("../sql/aggregate_statistics.sql")],
                |_, _| String::new(),
                Some((from, to)),
            )
            .await,
        );
    }
    rows.push(paired_row(
        "statistics over 30 days: HTTP on daily_sales vs aggregate on orders in SQL",
        &pg,
        &agg,
        "read",
        "≥ 10× at 1M",
    ));
    rows.push(paired_row(
        "statistics over 30 days: read models vs aggregate, both in SQL",
        &mv,
        &agg,
        "read",
        "≥ 10× at 1M",
    ));
    raw.close();
    Ok(rows)
}

/// The cost of catching up after 1% of the orders changed, per read model:
/// a batch against the full-refresh design for the incrementally kept ones,
/// CONCURRENTLY against a plain refresh for the materialized views.
async fn refresh_costs(url: &str, orders: u64) -> anyhow::Result<Vec<Row>> {
    use pgcqrs::read_models::{RefreshOutcome, Refresher, RefresherSettings, Strategy};
    eprintln!("   refresh cost after 1% of orders changed");
    let setup = db::connect(url).await?;
    // A whole recomputation at 10M orders runs for minutes: measured, not
    // cut short by the models' statement timeout.
    setup
        .batch_execute("UPDATE pgcqrs.read_models SET timeout_ms = greatest(timeout_ms, 3600000)")
        .await?;
    let pool = db::pool(url, 2, "pgcqrs-bench")?;
    let batches = Refresher::new(
        pool.clone(),
        RefresherSettings::new(pgcqrs::config::read_models_from_env()?),
    );
    batches.load(true).await?;
    // Catch up first, so that the batch below holds exactly the 1%.
    for model in batches.models() {
        batches.refresh_once(&model, false).await?;
    }
    let changed = (orders / 100).max(1) as i64;
    setup
        .execute(
            "UPDATE write.orders SET status = 'cancelled', cancel_reason = 'bench' \
             WHERE id IN (SELECT id FROM write.orders WHERE status IN ('pending', 'confirmed') ORDER BY id LIMIT $1)",
            &[&changed],
        )
        .await?;
    let mut full_settings = RefresherSettings::new(pgcqrs::config::read_models_from_env()?);
    full_settings.models.full_refresh = vec!["all".into()];
    let full = Refresher::new(pool.clone(), full_settings);
    full.load(true).await?;
    let mut rows = Vec::new();
    // The models kept by delta first: at 10M orders a whole recomputation
    // of a per-order model takes ten minutes.
    let mut pairs: Vec<_> = batches.models().into_iter().zip(full.models()).collect();
    pairs.sort_by_key(|(m, _)| {
        let by_delta = matches!(
            &m.model.strategy,
            Strategy::Incremental { delta: Some(_), .. }
        );
        (!by_delta, m.model.name.clone())
    });
    for (model, full_model) in pairs {
        let view = model.model.name.clone();
        let t = Instant::now();
        let outcome = batches.refresh_once(&model, false).await?;
        let first = t.elapsed().as_secs_f64();
        let changed_rows = match outcome {
            RefreshOutcome::Refreshed { rows, .. } => rows,
            _ => 0,
        };
        let (pgcqrs, baseline, second) = match &model.model.strategy {
            Strategy::Incremental { .. } => {
                let t = Instant::now();
                full.refresh_once(&full_model, true).await?;
                let f = t.elapsed().as_secs_f64();
                (
                    format!("{first:.3} s batch ({changed_rows} rows)"),
                    format!("{f:.3} s full refresh"),
                    f,
                )
            }
            Strategy::Concurrent => {
                let t = Instant::now();
                setup
                    .batch_execute(&format!("REFRESH MATERIALIZED VIEW read.{view}"))
                    .await?;
                let p = t.elapsed().as_secs_f64();
                (
                    format!("{first:.3} s CONCURRENTLY"),
                    format!("{p:.3} s plain (blocks readers)"),
                    p,
                )
            }
        };
        rows.push(Row {
            scenario: format!("refresh {view} after 1% of orders changed"),
            pgcqrs,
            baseline,
            ratio: Some(first / second.max(1e-9)),
            goal: "—".into(),
            pgcqrs_measure: None,
            baseline_measure: None,
        });
        log_rows(&rows[rows.len() - 1..]);
    }
    pool.close();
    Ok(rows)
}

/// How fast one prune pass forgets expired idempotency keys: 100,000 keys
/// past the retention, among the ones the commands above left.
async fn idempotency_expiry(url: &str) -> anyhow::Result<Row> {
    use pgcqrs::commands::idempotency::{prune_expired, PRUNE_BATCH};
    const EXPIRED: i64 = 100_000;
    eprintln!("   idempotency expiry: one prune pass over {EXPIRED} expired keys");
    let setup = db::connect(url).await?;
    setup
        .execute(
            "INSERT INTO write.idempotency_keys
                 (idempotency_key, request_fingerprint, status_code, response_body, created_at)
             SELECT 'bench-expired-' || g, '\\x00'::bytea, 202, '{}'::jsonb,
                    now() - interval '2 days' + g * interval '1 ms'
             FROM generate_series(1, $1::bigint) AS g",
            &[&EXPIRED],
        )
        .await?;
    setup
        .batch_execute("VACUUM ANALYZE write.idempotency_keys")
        .await?;
    let pool = db::pool(url, 1, "pgcqrs-bench")?;
    let t = Instant::now();
    let forgotten = prune_expired(&pool, 24).await?;
    let secs = t.elapsed().as_secs_f64();
    pool.close();
    Ok(Row {
        scenario: "idempotency expiry: one prune pass (every minute)".into(),
        pgcqrs: format!(
            "{:.0} keys/s ({forgotten} keys in {secs:.2} s, batches of {PRUNE_BATCH})",
            forgotten as f64 / secs.max(1e-9)
        ),
        baseline: "17 keys/s (10,000 per 10 min, before)".into(),
        ratio: None,
        goal: "> command rate".into(),
        pgcqrs_measure: None,
        baseline_measure: None,
    })
}

/// Create orders over HTTP from `c` clients while a probe measures how long
/// each new order takes to become visible.
/// Catching up a bulk import: a tenth of the orders again (at least
/// 10,000), written in one transaction while no refresher ran, applied in
/// bounded batches; against recomputing the whole table once.
async fn catch_up_costs(url: &str, orders: u64) -> anyhow::Result<Vec<Row>> {
    use pgcqrs::read_models::{RefreshOutcome, Refresher, RefresherSettings, Strategy};
    let imported = (orders / 10).max(10_000) as i64;
    eprintln!("   catching up a bulk import of {imported} orders");
    let setup = db::connect(url).await?;
    let pool = db::pool(url, 2, "pgcqrs-bench")?;
    let batches = Refresher::new(
        pool.clone(),
        RefresherSettings::new(pgcqrs::config::read_models_from_env()?),
    );
    batches.load(true).await?;
    for model in batches.models() {
        batches.catch_up(&model, false, |_| {}).await?;
    }
    setup
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             WITH c AS (SELECT id FROM write.customers ORDER BY id LIMIT 1),
                  p AS (SELECT id, price FROM write.products ORDER BY id LIMIT 1),
                  o AS (INSERT INTO write.orders (id, customer_id, total)
                        SELECT 'import-' || g, c.id, p.price FROM generate_series(1, {imported}) g, c, p
                        RETURNING id, total),
                  i AS (INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
                        SELECT o.id, 1, p.id, 1, o.total FROM o, p RETURNING order_id)
             INSERT INTO write.order_events (order_id, order_version, event_type, payload)
             SELECT order_id, 1, 'OrderCreated', '{{}}' FROM i;
             SET session_replication_role = origin;"
        ))
        .await?;
    let mut full_settings = RefresherSettings::new(pgcqrs::config::read_models_from_env()?);
    full_settings.models.full_refresh = vec!["all".into()];
    let full = Refresher::new(pool.clone(), full_settings);
    full.load(true).await?;
    let mut rows = Vec::new();
    for (model, full_model) in batches.models().into_iter().zip(full.models()) {
        if !matches!(model.model.strategy, Strategy::Incremental { .. }) {
            continue;
        }
        let view = model.model.name.clone();
        let (mut count, mut largest, mut applied) = (0u64, 0i64, 0i64);
        let t = Instant::now();
        batches
            .catch_up(&model, false, |outcome| {
                if let RefreshOutcome::Refreshed { changes, .. } = outcome {
                    count += 1;
                    largest = largest.max(*changes);
                    applied += changes;
                }
            })
            .await?;
        let caught_up = t.elapsed().as_secs_f64();
        let t = Instant::now();
        full.refresh_once(&full_model, true).await?;
        let whole = t.elapsed().as_secs_f64();
        rows.push(Row {
            scenario: format!("catch up {view} after a bulk import of {imported} orders"),
            pgcqrs: format!(
                "{caught_up:.2} s in {count} batches of ≤ {largest} ({:.0} changes/s)",
                applied as f64 / caught_up.max(1e-9)
            ),
            baseline: format!("{whole:.2} s recomputing the whole table"),
            ratio: Some(caught_up / whole.max(1e-9)),
            goal: "—".into(),
            pgcqrs_measure: None,
            baseline_measure: None,
        });
    }
    pool.close();
    Ok(rows)
}

async fn create_phase(
    http: &reqwest::Client,
    (base, url): (&str, &str),
    catalog: &Arc<Catalog>,
    c: usize,
    warm: Duration,
    win: Duration,
) -> (Measure, Staleness) {
    let probe_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn(staleness_probe(
        http.clone(),
        (base.to_owned(), url.to_owned()),
        Arc::clone(catalog),
        Arc::clone(&probe_stop),
        warm,
    ));
    let measure = http_create(http, base, catalog, c, warm, win).await;
    probe_stop.store(true, Ordering::Relaxed);
    (measure, probe.await.unwrap_or_default())
}

/// What the staleness probe measured: plain reads until the order shows,
/// `min_token` reads, and per read model the time until its refresh covered
/// the order's transaction (its status snapshot shows the token).
#[derive(Default)]
struct Staleness {
    visible: Vec<f64>,
    waits: Vec<f64>,
    covered: BTreeMap<String, Vec<f64>>,
}

/// An order the probe placed, until every read model covers it.
struct Tracked {
    id: String,
    token: String,
    accepted: Instant,
    /// Whether a plain read has shown it yet.
    shown: bool,
    /// Models that have covered it.
    covered: Vec<String>,
}

/// While commands run: every 200 ms place an order. Alternately, measure
/// how long a `min_token` read of it takes, or track it: how long until a
/// plain read shows it, and until each read model's refresh covers its
/// transaction. Tracked orders are watched together, and `min_token` reads
/// run on tasks of their own, so neither a slow model nor a wait holds up
/// the looks at the others.
async fn staleness_probe(
    http: reqwest::Client,
    (base, url): (String, String),
    catalog: Arc<Catalog>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    warmup: Duration,
) -> Staleness {
    tokio::time::sleep(warmup).await;
    let Ok(status) = db::connect(&url).await else {
        return Staleness::default();
    };
    let models = status
        .query("SELECT view_name FROM read.read_model_status", &[])
        .await
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.try_get::<_, String>(0).ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut rng = StdRng::seed_from_u64(7);
    let mut out = Staleness::default();
    let mut tracked: Vec<Tracked> = Vec::new();
    let mut use_token = false;
    let mut next_order = Instant::now();
    let mut waits = tokio::task::JoinSet::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && tracked.is_empty() {
            break;
        }
        if !stopping && Instant::now() >= next_order {
            next_order = Instant::now() + Duration::from_millis(200);
            if let Some((id, token, accepted)) =
                place_probe_order(&http, &base, &catalog, &mut rng).await
            {
                if use_token {
                    // On its own task: a wait must not hold up the looks at
                    // the tracked orders, or their times include it.
                    let (http, url) = (
                        http.clone(),
                        format!("{base}/queries/orders/{id}?min_token={token}&wait=30"),
                    );
                    waits.spawn(async move {
                        let r = http.get(url).send().await;
                        r.is_ok_and(|r| r.status() == 200)
                            .then(|| accepted.elapsed().as_secs_f64())
                    });
                } else {
                    tracked.push(Tracked {
                        id,
                        token,
                        accepted,
                        shown: false,
                        covered: Vec::new(),
                    });
                }
                use_token = !use_token;
            }
        }
        for t in tracked.iter_mut().filter(|t| !t.shown) {
            let r = http
                .get(format!("{base}/queries/orders/{}", t.id))
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                out.visible.push(t.accepted.elapsed().as_secs_f64());
                t.shown = true;
            }
        }
        let tokens: Vec<String> = tracked.iter().map(|t| t.token.clone()).collect();
        if let Ok(rows) = status
            .query(
                "SELECT s.view_name, t.token
                   FROM read.read_model_status s, unnest($1::text[]) AS t(token)
                  WHERE pg_visible_in_snapshot(t.token::xid8, s.current_as_of)",
                &[&tokens],
            )
            .await
        {
            for row in &rows {
                let (Ok(name), Ok(token)) =
                    (row.try_get::<_, String>(0), row.try_get::<_, String>(1))
                else {
                    continue;
                };
                if let Some(t) = tracked
                    .iter_mut()
                    .find(|t| t.token == token && !t.covered.contains(&name))
                {
                    out.covered
                        .entry(name.clone())
                        .or_default()
                        .push(t.accepted.elapsed().as_secs_f64());
                    t.covered.push(name);
                }
            }
        }
        // Done with an order once it shows and every model covers it; give
        // up on one after a minute.
        tracked.retain(|t| {
            (!t.shown || t.covered.len() < models.len())
                && t.accepted.elapsed() < Duration::from_secs(60)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(done) = waits.join_next().await {
        if let Ok(Some(seconds)) = done {
            out.waits.push(seconds);
        }
    }
    out
}

/// Place one order for the probe: its id, token and when it was accepted.
async fn place_probe_order(
    http: &reqwest::Client,
    base: &str,
    catalog: &Catalog,
    rng: &mut StdRng,
) -> Option<(String, String, Instant)> {
    let (customer, lines, _) = catalog.order_request(rng);
    let items: Vec<_> = lines
        .iter()
        .map(|(p, q, _)| serde_json::json!({"product_id": p, "quantity": q}))
        .collect();
    let id = new_order_id("probe");
    let r = http
        .post(format!("{base}/commands/orders"))
        .json(&serde_json::json!({"order_id": id, "customer_id": customer, "items": items}))
        .send()
        .await
        .ok()?;
    let accepted = Instant::now();
    let body = r.json::<serde_json::Value>().await.ok()?;
    let token = body["token"].as_str()?.to_owned();
    Some((id, token, accepted))
}

/// One row per read model: how long after a 202 its refresh covered the
/// order (p50/p99).
fn covered_rows(prefix: &str, covered: &BTreeMap<String, Vec<f64>>, goal: &str) -> Vec<Row> {
    covered
        .iter()
        .map(|(name, samples)| {
            latency_row(
                &format!("{prefix}202 → covered by {name} without min_token"),
                samples,
                goal,
            )
        })
        .collect()
}

/// The statuses a list is filtered by, in turn.
const STATUSES: &[&str] = &["pending", "confirmed", "shipped", "delivered", "cancelled"];

/// CPU this process (the load generator) used since `start`, as a share
/// of the wall time (1.0: one core busy).
struct ProcessCpu {
    cpu: Duration,
    wall: Instant,
}

impl ProcessCpu {
    fn start() -> Self {
        Self {
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    fn share(&self) -> f64 {
        (process_cpu().saturating_sub(self.cpu)).as_secs_f64()
            / self.wall.elapsed().as_secs_f64().max(1e-9)
    }
}

/// User and system CPU time of this process so far (from /proc; zero
/// where it cannot be read).
fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ')'.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / 100.0)
}

/// How busy the load generator was while it drove the HTTP rounds of
/// `scenario`: a ratio measures the service only while this stays well
/// under the cores the machine has.
fn load_generator_row(shares: &[f64], scenario: &str) -> Row {
    let mut s = shares.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let median = s.get(s.len() / 2).copied().unwrap_or(f64::NAN);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Row {
        scenario: format!("load generator CPU during {scenario} over HTTP"),
        pgcqrs: format!(
            "{:.0}% of one core (median of {} rounds)",
            median * 100.0,
            s.len()
        ),
        baseline: format!("{cores} cores in all"),
        ratio: None,
        goal: "well under the cores".into(),
        pgcqrs_measure: None,
        baseline_measure: None,
    }
}

fn latency_row(scenario: &str, samples: &[f64], goal: &str) -> Row {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        s.get(((s.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Row {
        scenario: scenario.into(),
        pgcqrs: format!(
            "p50 {:.3} s, p99 {:.3} s (n={})",
            pct(0.5),
            pct(0.99),
            s.len()
        ),
        baseline: "—".into(),
        ratio: None,
        goal: goal.into(),
        pgcqrs_measure: None,
        baseline_measure: None,
    }
}

/// Rows as soon as they are measured, on stderr beside the progress.
fn log_rows(rows: &[Row]) {
    for r in rows {
        let ratio = r.ratio.map(|x| format!(" ({x:.2})")).unwrap_or_default();
        eprintln!("     {}: {} | {}{ratio}", r.scenario, r.pgcqrs, r.baseline);
    }
}

fn print_table(report: &SizeReport) {
    println!();
    println!(
        "### {} orders (seeded in {:.1} s, {:.2} GB on disk)",
        report.orders,
        report.seed_seconds,
        report.disk_bytes as f64 / 1e9
    );
    println!();
    println!("| scenario | pgcqrs | baseline | ratio | goal |");
    println!("|---|---|---|---|---|");
    for r in &report.rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.scenario,
            r.pgcqrs,
            r.baseline,
            r.ratio
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "—".into()),
            r.goal
        );
    }
}

fn print_series(reports: &[SizeReport]) {
    println!();
    println!("### How it scales");
    println!();
    print!("| scenario |");
    for r in reports {
        print!(" {} orders |", r.orders);
    }
    println!();
    print!("|---|");
    for _ in reports {
        print!("---|");
    }
    println!();
    let Some(first) = reports.first() else { return };
    for (i, row) in first.rows.iter().enumerate() {
        print!("| {} |", row.scenario);
        for r in reports {
            print!(
                " {} |",
                r.rows.get(i).map(|x| x.pgcqrs.as_str()).unwrap_or("—")
            );
        }
        println!();
    }
}
