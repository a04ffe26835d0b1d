//! `pgcqrs status`: each read model's freshness, as a table.

use pgcqrs::config::{DatabaseArgs, ReadModelArgs};
use pgcqrs::db;
use pgcqrs::read_models::status::{self, ReadModelStatus};
use time::OffsetDateTime;

pub async fn run(args: &DatabaseArgs, read_models: &ReadModelArgs) -> anyhow::Result<()> {
    let models = read_models.models()?;
    let statuses = super::with_database(args, |url| async move {
        let pool = db::pool(&url, 1, "pgcqrs-status")?;
        let statuses = status::list(&pool, &models).await;
        pool.close();
        statuses.map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?;
    print_table(statuses);
    Ok(())
}

fn print_table(statuses: Vec<ReadModelStatus>) {
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
    for m in statuses {
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
}

/// `2024-05-01 12:00:00`, or `-`.
fn fmt_time(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map(|s| s.chars().take(19).collect::<String>().replace('T', " "))
    .unwrap_or_else(|| "-".into())
}
