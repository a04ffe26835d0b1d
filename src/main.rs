//! The `pgcqrs` binary: parse the command line, build, run.

use anyhow::Context;
use clap::{Parser, Subcommand};
use pgcqrs::config::{DatabaseArgs, LogFormat, ServeArgs};
use pgcqrs::db::{
    self,
    embedded::{self, LocalCluster},
};

/// mimalloc instead of the C library's allocator: a request allocates and
/// frees many small buffers, and glibc's malloc was a sixth of the
/// service's CPU under read load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Single-database CQRS on PostgreSQL: validated commands, materialized-view
/// read models, bounded and visible staleness.
#[derive(Debug, Parser)]
#[command(name = "pgcqrs", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log format.
    #[arg(long, env = "PGCQRS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (migrates first).
    Serve {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Refresh read models whose sources changed (all, or the one named).
    Refresh {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The read model to refresh (default: every one).
        view: Option<String>,
        /// Refresh even if nothing it reads changed.
        #[arg(long)]
        force: bool,
    },
    /// Rebuild read models from the write tables from scratch (all, or the
    /// one named). Readers of a rebuilt model wait until it is done.
    Rebuild {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The read model to rebuild (default: every one).
        view: Option<String>,
    },
    /// Load demo data (customers, products, orders in every status) with
    /// COPY, then rebuild the read models.
    Seed {
        #[command(flatten)]
        db: DatabaseArgs,
        /// How many orders.
        #[arg(long, default_value_t = 10_000)]
        orders: u64,
        /// Random seed: the same seed loads the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Show each read model's freshness as a table.
    Status {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The database to use: DATABASE_URL, or the embedded cluster.
struct Database {
    url: String,
    embedded: Option<LocalCluster>,
}

impl Database {
    async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        if let Some(url) = &args.database_url {
            return Ok(Self {
                url: url.clone(),
                embedded: None,
            });
        }
        let chosen = args.data_dir.clone();
        let cluster = tokio::task::spawn_blocking(move || {
            let dir = match chosen {
                Some(dir) => dir,
                None => {
                    let project = std::env::current_dir()
                        .context("Failed to read the working directory")?;
                    let default = embedded::default_data_dir(&project)?;
                    if let Some(unreachable) = &default.unreachable_in_project {
                        tracing::info!(
                            unreachable = %unreachable.display(),
                            data_dir = %default.path.display(),
                            "the postgres OS user cannot reach this directory (a home closed to others?): \
                             the embedded PostgreSQL keeps its data outside it"
                        );
                    }
                    default.path
                }
            };
            tracing::info!(data_dir = %dir.display(), "DATABASE_URL is unset: starting the embedded PostgreSQL");
            LocalCluster::start(&dir, &Default::default())
        })
        .await
        .context("embedded cluster start-up panicked")??;
        cluster.ensure_database("pgcqrs").await?;
        let url = cluster.url("pgcqrs");
        tracing::info!(
            port = cluster.port(),
            data_dir = %cluster.datadir().display(),
            "embedded PostgreSQL is up"
        );
        Ok(Self {
            url,
            embedded: Some(cluster),
        })
    }

    fn close(self) {
        if let Some(cluster) = self.embedded {
            match cluster.stop() {
                Ok(()) => tracing::info!("embedded PostgreSQL stopped"),
                Err(e) => tracing::error!(error = %e, "failed to stop the embedded PostgreSQL"),
            }
        }
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The service logs what it does; one-shot commands print their result
    // and log only what went wrong.
    let default_filter = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    init_tracing(cli.log_format, default_filter);
    match cli.command {
        Command::Migrate { db: args } => {
            let database = Database::open(&args).await?;
            let result = db::migrate(&database.url).await;
            database.close();
            let applied = result?;
            println!(
                "{applied} migration(s) applied; schema at version {}",
                db::latest_migration_version()
            );
        }
        Command::Rebuild { db: args, view } => {
            let database = Database::open(&args).await?;
            let result = rebuild(&database.url, view.as_deref()).await;
            database.close();
            result?;
        }
        Command::Refresh {
            db: args,
            view,
            force,
        } => {
            let database = Database::open(&args).await?;
            let result = refresh(&database.url, view.as_deref(), force).await;
            database.close();
            result?;
        }
        Command::Seed {
            db: args,
            orders,
            seed,
        } => {
            let database = Database::open(&args).await?;
            let result = async {
                db::migrate(&database.url).await?;
                let plan = pgcqrs::seed::SeedPlan {
                    orders,
                    seed,
                    ..Default::default()
                };
                pgcqrs::seed::seed(&database.url, &plan).await
            }
            .await;
            database.close();
            let report = result?;
            println!(
                "{orders} orders loaded in {:.1} s; read models rebuilt in {:.1} s",
                report.load.as_secs_f64(),
                report.rebuild.as_secs_f64()
            );
        }
        Command::Status { db: args } => {
            let database = Database::open(&args).await?;
            let result = status(&database.url).await;
            database.close();
            result?;
        }
        Command::Serve { db: args, serve } => {
            let database = Database::open(&args).await?;
            let result = serve_until_stopped(&database.url, &args, &serve).await;
            database.close();
            result?;
        }
    }
    Ok(())
}

async fn serve_until_stopped(
    url: &str,
    args: &DatabaseArgs,
    serve: &ServeArgs,
) -> anyhow::Result<()> {
    db::migrate(url).await?;
    let size = usize::from(args.pool_size);
    let write_pool = db::pool(url, size, "pgcqrs-commands")?;
    let reads =
        pgcqrs::queries::targets::ReadTargets::new(url, args.read_database_url.as_deref(), size)?;
    let refresher = serve.role.runs_refresher().then(|| {
        let mut settings = pgcqrs::read_models::RefresherSettings::from_env();
        // Other instances ask for refreshes over LISTEN/NOTIFY on the primary.
        settings.listen_url = Some(url.to_owned());
        settings
    });
    let app = pgcqrs::app::App::build(serve, write_pool.clone(), reads.clone(), refresher).await?;
    tracing::info!(address = %app.local_addr()?, "pgcqrs is listening");
    let result = app.run_until_stopped(pgcqrs::app::shutdown_signal()).await;
    // Close the pools before the embedded cluster stops, or it logs
    // terminated connections.
    write_pool.close();
    reads.close();
    result
}

async fn refresh(url: &str, view: Option<&str>, force: bool) -> anyhow::Result<()> {
    use pgcqrs::read_models::{RefreshOutcome, Refresher, RefresherSettings};
    db::migrate(url).await?;
    let pool = db::pool(url, 2, "pgcqrs-refresh")?;
    let settings = RefresherSettings::from_env();
    if let Some(name) = view {
        if !settings.models.iter().any(|m| m.model.name == name) {
            let known: Vec<&str> = settings.models.iter().map(|m| m.model.name).collect();
            anyhow::bail!("no read model named {name:?}; known: {}", known.join(", "));
        }
    }
    let refresher = Refresher::new(pool.clone(), settings);
    let mut failed = false;
    for model in refresher.models() {
        if view.is_some_and(|v| v != model.model.name) {
            continue;
        }
        let name = model.model.name;
        // A backlog is applied in bounded batches: show how it goes down.
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:<16} {bar:30} {pos}/{len} changes, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(name);
        let (mut applied_ms, mut batches) = (0.0, 0u64);
        let outcome = refresher
            .catch_up(model, force, |outcome| {
                if let RefreshOutcome::Refreshed {
                    duration_ms,
                    changes,
                    backlog,
                    ..
                } = outcome
                {
                    applied_ms += duration_ms;
                    batches += 1;
                    if *backlog > 0 && bar.is_hidden() {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    let done = bar.position() + (*changes).max(0) as u64;
                    bar.set_length(done + (*backlog).max(0) as u64);
                    bar.set_position(done);
                }
            })
            .await;
        bar.finish_and_clear();
        match outcome {
            Ok(RefreshOutcome::Refreshed { .. }) => {
                println!("{name:<16} refreshed: {batches} batch(es) in {applied_ms:.0} ms")
            }
            Ok(RefreshOutcome::Current) => {
                println!("{name:<16} current: nothing it reads changed")
            }
            Ok(RefreshOutcome::Busy) => {
                println!("{name:<16} busy: another instance is refreshing it")
            }
            Err(e) => {
                failed = true;
                println!("{name:<16} FAILED: {e:#}")
            }
        }
    }
    pool.close();
    if failed {
        anyhow::bail!("some read models could not be refreshed");
    }
    Ok(())
}

async fn status(url: &str) -> anyhow::Result<()> {
    let pool = db::pool(url, 1, "pgcqrs-status")?;
    let settings = pgcqrs::read_models::RefresherSettings::from_env();
    let models = pgcqrs::read_models::status::list(&pool, &settings.models)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    pool.close();
    let fmt_time = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|s| s.chars().take(19).collect::<String>().replace('T', " "))
        .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<16} {:<15} {:<19} {:>9} {:>9} {:<6} {:>8} {:>9} {:>8}  last error",
        "read model",
        "schedule",
        "last refresh (UTC)",
        "took ms",
        "rows",
        "stale",
        "lag s",
        "backlog",
        "per s",
    );
    for m in models {
        println!(
            "{:<16} {:<15} {:<19} {:>9} {:>9} {:<6} {:>8.1} {:>9} {:>8.1}  {}",
            m.name,
            m.schedule.unwrap_or_default(),
            fmt_time(m.last_refresh_at),
            m.last_duration_ms
                .map(|d| format!("{d:.0}"))
                .unwrap_or_else(|| "-".into()),
            m.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            if !m.trusted {
                "resync"
            } else if m.stale {
                "yes"
            } else {
                "no"
            },
            m.lag_seconds,
            m.backlog,
            m.changes_per_second,
            m.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

async fn rebuild(url: &str, view: Option<&str>) -> anyhow::Result<()> {
    use pgcqrs::read_models::{RefreshOutcome, Refresher, RefresherSettings};
    db::migrate(url).await?;
    let settings = RefresherSettings::from_env();
    if let Some(name) = view {
        if !settings.models.iter().any(|m| m.model.name == name) {
            let known: Vec<&str> = settings.models.iter().map(|m| m.model.name).collect();
            anyhow::bail!("no read model named {name:?}; known: {}", known.join(", "));
        }
    }
    let pool = db::pool(url, 2, "pgcqrs-rebuild")?;
    let refresher = Refresher::new(pool.clone(), settings);
    for model in refresher.models() {
        if view.is_some_and(|v| v != model.model.name) {
            continue;
        }
        match refresher.rebuild(model).await? {
            RefreshOutcome::Refreshed {
                rows, duration_ms, ..
            } => println!(
                "{:<16} rebuilt: {rows} rows in {duration_ms:.0} ms",
                model.model.name
            ),
            RefreshOutcome::Busy => println!(
                "{:<16} busy: another instance is refreshing it; try again",
                model.model.name
            ),
            RefreshOutcome::Current => {}
        }
    }
    pool.close();
    Ok(())
}
