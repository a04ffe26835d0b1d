//! The `pgcqrs` binary: parse the command line, build, run.

use anyhow::Context;
use clap::{Parser, Subcommand};
use pgcqrs::config::{DatabaseArgs, LogFormat, ServeArgs};
use pgcqrs::db::{self, embedded::LocalCluster};

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
        tracing::info!(data_dir = %args.data_dir.display(), "DATABASE_URL is unset: starting the embedded PostgreSQL");
        let dir = args.data_dir.clone();
        let cluster =
            tokio::task::spawn_blocking(move || LocalCluster::start(&dir, &Default::default()))
                .await
                .context("embedded cluster start-up panicked")??;
        cluster.ensure_database("pgcqrs").await?;
        let url = cluster.url("pgcqrs");
        tracing::info!(port = cluster.port(), "embedded PostgreSQL is up");
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
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
    let read_url = args.read_database_url.as_deref().unwrap_or(url);
    let read_pool = db::read_pool(read_url, size, "pgcqrs-queries")?;
    let refresher = pgcqrs::read_models::RefresherSettings::from_env();
    let app = pgcqrs::app::App::build(
        serve,
        write_pool.clone(),
        read_pool.clone(),
        Some(refresher),
    )
    .await?;
    tracing::info!(address = %app.local_addr()?, "pgcqrs is listening");
    let result = app.run_until_stopped(pgcqrs::app::shutdown_signal()).await;
    // Close the pools before the embedded cluster stops, or it logs
    // terminated connections.
    write_pool.close();
    read_pool.close();
    result
}
