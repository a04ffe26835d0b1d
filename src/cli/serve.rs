//! `pgcqrs serve`: migrate, then `App::build` and `run_until_stopped` until
//! SIGINT or SIGTERM.

use pgcqrs::app::{shutdown_signal, App};
use pgcqrs::config::{DatabaseArgs, ServeArgs};
use pgcqrs::db;
use pgcqrs::db::targets::ReadTargets;
use pgcqrs::read_models::RefresherSettings;

pub async fn run(args: &DatabaseArgs, serve: &ServeArgs) -> anyhow::Result<()> {
    // Settings are checked before a database is started or touched.
    let models = serve.read_models.models()?;
    super::with_database(args, |url| async move {
        db::migrate(&url).await?;
        let size = usize::from(args.pool_size);
        let write_pool = db::pool(&url, size, "pgcqrs-commands")?;
        let reads = ReadTargets::new(&url, args.read_database_url.as_deref(), size)?;
        let refresher = serve.role.runs_refresher().then(|| {
            let mut settings = RefresherSettings::new(models);
            // Other instances ask for refreshes over LISTEN/NOTIFY on the primary.
            settings.listen_url = Some(url.clone());
            settings
        });
        let result = async {
            let app = App::build(serve, write_pool.clone(), reads.clone(), refresher).await?;
            tracing::info!(address = %app.local_addr()?, "pgcqrs is listening");
            app.run_until_stopped(shutdown_signal()).await
        }
        .await;
        // Close the pools before the embedded cluster stops, or it logs
        // terminated connections.
        write_pool.close();
        reads.close();
        result
    })
    .await
}
