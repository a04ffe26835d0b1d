//! Database plumbing: connection pools, migrations, typed result rows
//! ([`rows`]), where queries read ([`targets`]: replicas and the fallback to
//! the primary), and the embedded local cluster used when no `DATABASE_URL`
//! is given.

pub mod embedded;
pub mod rows;
pub mod targets;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
pub use deadpool_postgres::tokio_postgres;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::NoTls;

pub(crate) use rows::row_struct;
pub use rows::{column, FromRow, RowError};

refinery::embed_migrations!("migrations");

/// Marks the query-side pool in `build_pool`.
const READER: &str = "pgcqrs_reader";

/// Advisory lock key held while migrating, so that several instances
/// starting at once migrate one after the other.
const MIGRATION_LOCK: i64 = 0x7067_6371_7273_0001;

/// A pool of connections to `url` for the command side and the refresher.
pub fn pool(url: &str, max_size: usize, application_name: &str) -> anyhow::Result<Pool> {
    build_pool(url, max_size, application_name, None)
}

/// A pool for the query side, whose connections act as `pgcqrs_reader`
/// (`SET ROLE`): whatever the login may do, the query side can only read
/// the read schema. If the login is not a member of the role (see the
/// README), it keeps its own rights and a warning says so once.
pub fn read_pool(url: &str, max_size: usize, application_name: &str) -> anyhow::Result<Pool> {
    build_pool(url, max_size, application_name, Some(READER))
}

static READER_ROLE_WARNED: std::sync::Once = std::sync::Once::new();

fn reader_role_hook() -> deadpool_postgres::Hook {
    deadpool_postgres::Hook::async_fn(|client, _| {
        Box::pin(async move {
            if let Err(e) = client.batch_execute("SET ROLE pgcqrs_reader").await {
                READER_ROLE_WARNED.call_once(|| {
                    tracing::warn!(error = %e, "the query side could not take the role pgcqrs_reader; it reads with the login's own rights (GRANT pgcqrs_reader TO <login>)");
                });
            }
            Ok(())
        })
    })
}

fn build_pool(
    url: &str,
    max_size: usize,
    application_name: &str,
    options: Option<&str>,
) -> anyhow::Result<Pool> {
    let mut config = tokio_postgres::Config::from_str(url)
        .context("not a valid PostgreSQL connection string")?;
    if let Some(options) = options.filter(|o| *o != READER) {
        let mut all = config.get_options().unwrap_or_default().to_owned();
        if !all.is_empty() {
            all.push(' ');
        }
        all.push_str(options);
        config.options(&all);
    }
    if config.get_application_name().is_none() {
        config.application_name(application_name);
    }
    config.connect_timeout(Duration::from_secs(5));
    // Notice a server that vanished without closing the connection (a
    // crashed host, a dropped network) in about half a minute, not hours.
    config
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let mut builder = Pool::builder(manager);
    if options.is_some_and(|o| o == READER) {
        builder = builder.post_create(reader_role_hook());
    }
    builder
        .max_size(max_size)
        .timeouts(Timeouts {
            wait: Some(Duration::from_secs(5)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("Failed to build the connection pool")
}

/// Why `pool` gave no connection, in words fit for a client: the server's
/// own message when it refused one (shutting down, too many connections, a
/// bad password), else what the pool says.
pub fn pool_error_message(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned()),
        other => other.to_string(),
    }
}

/// Open one connection outside any pool (migrations, administration).
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("Failed to connect to {}", redact(url)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection closed");
        }
    });
    Ok(client)
}

/// Apply pending migrations, one instance at a time.
#[tracing::instrument(skip_all)]
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    migrate_up_to(url, refinery::Target::Latest).await
}

/// Apply pending migrations up to `version` only: a database as an older
/// release left it, to upgrade from (the upgrade tests).
pub async fn migrate_to(url: &str, version: i32) -> anyhow::Result<usize> {
    migrate_up_to(url, refinery::Target::Version(version)).await
}

async fn migrate_up_to(url: &str, target: refinery::Target) -> anyhow::Result<usize> {
    let mut client = connect(url).await?;
    // (the migrations drop and make views again; their notices, "drop
    // cascades to ...", are no news to whoever starts the service)
    client
        .batch_execute("SET client_min_messages = warning")
        .await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("Failed to take the migration lock")?;
    let applied = replay(&mut client, target).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let applied = applied.context("Failed to apply migrations")?;
    for (version, name) in &applied {
        tracing::info!(version, name, "applied migration");
    }
    Ok(applied.len())
}

/// The migration after which a database that replays them gets the
/// linear node-tree walkers of [`LINEAR_WALKERS`] early.
const WALKERS_AFTER: i32 = 12;
/// V30: the node-tree walkers that V9 and V12 create, in linear time.
/// Replayed in order, V13 to V29 declare the built-in models again and
/// again, and with V9's and V12's walkers took 40 of a new database's 50 s
/// to migrate; V30 only comes after them.
const LINEAR_WALKERS: i32 = 30;

/// Apply the pending migrations up to `target` (the caller holds the
/// migration lock), and say which, in order.
async fn replay(
    client: &mut tokio_postgres::Client,
    target: refinery::Target,
) -> anyhow::Result<Vec<(i32, String)>> {
    let run = |target| migrations::runner().set_grouped(false).set_target(target);
    let mut applied = Vec::new();
    let replays_walkers = match target {
        refinery::Target::Version(v) => v > WALKERS_AFTER,
        _ => true,
    };
    // (refinery's history table: none before the first migration)
    let history: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    let before = match history {
        true => run(target).get_last_applied_migration_async(client).await?,
        false => None,
    };
    if replays_walkers && before.is_none_or(|m| m.version() < WALKERS_AFTER) {
        let report = run(refinery::Target::Version(WALKERS_AFTER))
            .run_async(client)
            .await?;
        applied.extend(named(&report));
        let walkers = migrations::runner()
            .get_migrations()
            .iter()
            .find(|m| m.version() == LINEAR_WALKERS)
            .and_then(|m| m.sql().map(str::to_owned))
            .context("the migration with the linear node-tree walkers is missing")?;
        client.batch_execute(&walkers).await?;
    }
    let report = run(target).run_async(client).await?;
    applied.extend(named(&report));
    Ok(applied)
}

/// The migrations a run applied: version and name, in order.
fn named(report: &refinery::Report) -> Vec<(i32, String)> {
    report
        .applied_migrations()
        .iter()
        .map(|m| (m.version(), m.name().to_owned()))
        .collect()
}

/// The most statements one connection keeps prepared: the service's own,
/// and one per shape of the reads whose SQL follows the request (a list's
/// filters and page size, a view read's filters, order and cursor). Values
/// are bound, so the shapes in use are few; a client inventing shapes
/// without end empties the connection's statements each time it fills.
pub const STATEMENTS_PER_CONNECTION: usize = 128;

/// `sql` (its parameters of `types`, the rest inferred) as a statement
/// `client`'s connection keeps, so that PostgreSQL parses it once and plans
/// it once where the values do not change the plan (`plan_cache_mode =
/// auto`). A connection that keeps [`STATEMENTS_PER_CONNECTION`] already
/// forgets them all first; the service's own are prepared again on their
/// next use.
pub async fn kept_statement(
    client: &deadpool_postgres::Client,
    sql: &str,
    types: &[tokio_postgres::types::Type],
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= STATEMENTS_PER_CONNECTION {
        client.statement_cache.clear();
    }
    client.prepare_typed_cached(sql, types).await
}

/// The newest migration version this build knows.
pub fn latest_migration_version() -> i32 {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// `url` without its password (in the user part or as a `password` or
/// `sslpassword` parameter), for messages, logs and `/readyz`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let secret = |k: &str| {
                k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword")
            };
            if u.query_pairs().any(|(k, _)| secret(&k)) {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret(&k) {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<connection string>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_never_survives_redaction() {
        let r = redact("postgres://app:s3cret@db:5432/pgcqrs?sslmode=require&password=other");
        assert!(!r.contains("s3cret") && !r.contains("other"), "{r}");
        assert!(r.contains("sslmode=require"), "{r}");
        assert_eq!(redact("postgres://db/pgcqrs"), "postgres://db/pgcqrs");
        assert_eq!(redact("host=db password=x"), "<connection string>");
    }
}
