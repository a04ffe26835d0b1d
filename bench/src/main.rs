//! `pgcqrs-bench`: measure pgcqrs against raw SQL on the same tables, or
//! soak it under a bounded mixed load. Both run the `pgcqrs` binary as a
//! child process against databases of their own; neither is part of the
//! service.
//!
//! # Layout
//! - `bench`: the benchmark scenarios and the table they print.
//! - `soak`: the soak run and its checks.
//! - `service`: the service under test as a child process, fresh databases.
//! - `lean`: the HTTP client the read scenarios drive the load with.

mod bench;
mod chart;
mod lean;
mod service;
mod soak;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pgcqrs::db::embedded::LocalCluster;

/// The load generator uses the service's allocator, as it did when it was
/// a command of the service, so that figures stay comparable.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure pgcqrs against raw SQL on the same tables and print a table.
/// Brings up its own PostgreSQL unless DATABASE_URL is set (then it creates
/// and drops its own databases there; needs a superuser).
#[derive(Debug, Parser)]
#[command(name = "pgcqrs-bench", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    bench: BenchArgs,

    /// The pgcqrs binary to measure (default: the one built beside this one).
    #[arg(long, env = "PGCQRS_BIN", global = true)]
    service_bin: Option<PathBuf>,

    /// A PostgreSQL server to use instead of a cluster of our own.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Comma-separated sizes in orders, e.g. 10000,100000,1000000.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    orders: Vec<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds of warm-up before each measured window.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds in each measured window.
    #[arg(long, default_value_t = 8)]
    window: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// With two sizes or more, also draw the scale series (ratios and
    /// staleness against size) as an SVG chart to this file.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Measure only the write path and the read models' freshness (create
    /// order with staleness per model, refresh cost after 1% changed).
    #[arg(long)]
    freshness_only: bool,
    /// Measure a size's database left seeded by an earlier run on the same
    /// server (DATABASE_URL), migrated to this version, instead of seeding
    /// it again: an hour saved at 10M orders.
    #[arg(long)]
    reuse: bool,
    /// Leave each size's database in place once measured, for a later run
    /// with --reuse (the measurement changes 1% of its orders).
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A bounded mixed load (commands, queries, refreshes) that fails on any
    /// error, growing memory, leaking connections or runaway lag.
    Soak {
        /// How long, in seconds.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Orders seeded first.
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let service = service::service_binary(cli.service_bin)?;
    match cli.command {
        None => {
            let args = cli.bench;
            if args.keep && cli.database_url.is_none() {
                anyhow::bail!(
                    "--keep needs DATABASE_URL: the benchmark's own cluster is removed when it exits"
                );
            }
            let plan = bench::BenchPlan {
                sizes: args.orders,
                concurrency: args.concurrency,
                warmup: Duration::from_secs(args.warmup),
                window: Duration::from_secs(args.window),
                service,
                freshness_only: args.freshness_only,
                reuse: args.reuse,
                keep: args.keep,
            };
            let reports = with_bench_cluster(cli.database_url, |admin_base, cluster| async move {
                bench::run(&admin_base, &plan, cluster.as_ref()).await
            })
            .await?;
            if let Some(path) = args.chart.filter(|_| reports.len() > 1) {
                chart::draw(&reports, &path)
                    .with_context(|| format!("Failed to draw {}", path.display()))?;
            }
            if let Some(path) = args.json {
                std::fs::write(&path, serde_json::to_vec_pretty(&reports)?)
                    .with_context(|| format!("Failed to write {}", path.display()))?;
            }
        }
        Some(Command::Soak { seconds, orders }) => {
            with_bench_cluster(cli.database_url, |admin_base, _| async move {
                soak::soak(&service, &admin_base, orders, Duration::from_secs(seconds))
                    .await
                    .map(|_| ())
            })
            .await?;
        }
    }
    Ok(())
}

/// Run `f` against DATABASE_URL's server, or a fresh cluster of our own
/// (fsync on, like production) removed at exit.
async fn with_bench_cluster<T, F, Fut>(database_url: Option<String>, f: F) -> anyhow::Result<T>
where
    F: FnOnce(String, Option<LocalCluster>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let (admin_base, cluster) = match database_url {
        Some(url) => {
            let base = url
                .rsplit_once('/')
                .map(|(b, _)| format!("{b}/"))
                .context("DATABASE_URL has no database name")?;
            (base, None)
        }
        None => {
            let dir = std::env::temp_dir().join(format!("pgcqrs-bench-{}", std::process::id()));
            let c = LocalCluster::start(&dir, &Default::default())?;
            c.remove_when_process_exits()?;
            (c.url(""), Some(c))
        }
    };
    let result = f(admin_base, cluster.clone()).await;
    if let Some(c) = cluster {
        let _ = c.stop();
    }
    result
}
