//! `pgcqrs migrate`: apply pending migrations and exit.

use pgcqrs::config::DatabaseArgs;
use pgcqrs::db;

pub async fn run(args: &DatabaseArgs) -> anyhow::Result<()> {
    let applied = super::with_database(args, |url| async move { db::migrate(&url).await }).await?;
    println!(
        "{applied} migration(s) applied; schema at version {}",
        db::latest_migration_version()
    );
    Ok(())
}
