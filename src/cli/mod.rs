//! The command line: one module per subcommand, each with a `run`.
//!
//! Every command that touches the database goes through [`with_database`]:
//! DATABASE_URL, or the embedded cluster started once and stopped after.

mod migrate;
mod rebuild;
mod refresh;
mod seed;
mod serve;
mod status;

use std::future::Future;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pgcqrs::config::{DatabaseArgs, LogFormat, ReadModelArgs, ServeArgs};
use pgcqrs::db::embedded::{self, LocalCluster};
use pgcqrs::read_models::{Refresher, RefresherSettings, ScheduledModel};

/// Single-database CQRS on PostgreSQL: validated commands, materialized-view
/// read models, bounded and visible staleness.
#[derive(Debug, Parser)]
#[command(name = "pgcqrs", version, about, long_about = None)]
pub struct Cli {
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
        #[command(flatten)]
        read_models: ReadModelArgs,
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
        #[command(flatten)]
        read_models: ReadModelArgs,
        /// The read model to rebuild (default: every one).
        view: Option<String>,
    },
    /// Load demo data (customers, products, orders in every status) with
    /// COPY, then rebuild the read models.
    Seed {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        read_models: ReadModelArgs,
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
        #[command(flatten)]
        read_models: ReadModelArgs,
    },
}

impl Cli {
    /// Set up logging and run the command.
    pub async fn run(self) -> anyhow::Result<()> {
        // The service logs what it does (not the cron scheduler's own
        // start-up steps, nor refinery's line per migration: ours says which
        // were applied); one-shot commands print their result and log only
        // what went wrong.
        let default_filter = match self.command {
            Command::Serve { .. } => "info,tokio_cron_scheduler=warn,refinery_core=warn",
            _ => "warn",
        };
        init_tracing(self.log_format, default_filter);
        match self.command {
            Command::Serve { db, serve } => serve::run(&db, &serve).await,
            Command::Migrate { db } => migrate::run(&db).await,
            Command::Refresh {
                db,
                read_models,
                view,
                force,
            } => refresh::run(&db, &read_models, view.as_deref(), force).await,
            Command::Rebuild {
                db,
                read_models,
                view,
            } => rebuild::run(&db, &read_models, view.as_deref()).await,
            Command::Seed {
                db,
                read_models,
                orders,
                seed,
            } => seed::run(&db, &read_models, orders, seed).await,
            Command::Status { db, read_models } => status::run(&db, &read_models).await,
        }
    }
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours for a terminal only: a log file or a collector gets plain
    // text (and no time is spent colouring every request's span).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// Run `f` with the database URL: DATABASE_URL, or the embedded cluster,
/// started for `f` and stopped after it (whatever `f` returned).
async fn with_database<T, F, Fut>(args: &DatabaseArgs, f: F) -> anyhow::Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    if let Some(url) = &args.database_url {
        return f(url.clone()).await;
    }
    let cluster = start_embedded(args).await?;
    let result = f(cluster.url("pgcqrs")).await;
    match cluster.stop() {
        Ok(()) => tracing::info!("embedded PostgreSQL stopped"),
        Err(e) => tracing::error!(error = %e, "failed to stop the embedded PostgreSQL"),
    }
    result
}

/// The embedded cluster, with its database `pgcqrs`.
async fn start_embedded(args: &DatabaseArgs) -> anyhow::Result<LocalCluster> {
    let chosen = args.data_dir.clone();
    let cluster = tokio::task::spawn_blocking(move || {
        let dir = match chosen {
            Some(dir) => dir,
            None => {
                let project =
                    std::env::current_dir().context("Failed to read the working directory")?;
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
    if let Err(e) = cluster.ensure_database("pgcqrs").await {
        let _ = cluster.stop();
        return Err(e);
    }
    tracing::info!(
        port = cluster.port(),
        data_dir = %cluster.datadir().display(),
        "embedded PostgreSQL is up"
    );
    Ok(cluster)
}

/// Run `work` with a refresher of the configured read models (loaded from
/// the migrated database), once `view` (when given) is known to be one of
/// them.
async fn with_refresher(
    args: &DatabaseArgs,
    read_models: &ReadModelArgs,
    view: Option<&str>,
    application_name: &str,
    work: impl AsyncFnOnce(&Refresher) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let models = read_models.models()?;
    with_database(args, |url| async move {
        pgcqrs::db::migrate(&url).await?;
        let pool = pgcqrs::db::pool(&url, 2, application_name)?;
        let refresher = Refresher::new(pool.clone(), RefresherSettings::new(models));
        let result = async {
            refresher.load(true).await?;
            check_view(&refresher.models(), view)?;
            work(&refresher).await
        }
        .await;
        pool.close();
        result
    })
    .await
}

/// Fail unless `view` (when given) is a read model of `models`.
fn check_view(models: &[ScheduledModel], view: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = view else { return Ok(()) };
    if !models.iter().any(|m| m.model.name == name) {
        let known: Vec<&str> = models.iter().map(|m| m.model.name.as_str()).collect();
        anyhow::bail!("no read model named {name:?}; known: {}", known.join(", "));
    }
    Ok(())
}
