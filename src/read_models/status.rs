//! The operator's view of the read models: `GET /queries/read-models`,
//! `pgcqrs status` and the freshness gauges of `/metrics`.
//!
//! Read on the primary: whether a change is waiting is answered live from
//! the write tables (the same look the refresher takes), so a stalled
//! refresher shows as stale instead of looking fresh.

use deadpool_postgres::Pool;
use serde::Serialize;
use time::OffsetDateTime;

use crate::queries::QueryError;
use crate::read_models::ScheduledModel;

/// Freshness and health of one read model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReadModelStatus {
    pub name: String,
    /// Cron schedule (with seconds) on this instance.
    pub schedule: Option<String>,
    /// The write tables it reads.
    pub sources: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_refresh_at: Option<OffsetDateTime>,
    pub last_duration_ms: Option<f64>,
    pub rows: Option<i64>,
    /// When the view was last known to be current.
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
    /// True when a change is waiting to be refreshed into the view.
    pub stale: bool,
    /// Age of the oldest change not yet in the view; 0 when current.
    pub lag_seconds: f64,
    /// Change records (order events, catalog changes) it has not applied
    /// yet, counted live from the write tables.
    pub backlog: i64,
    /// Change records applied per second over the last minute.
    pub changes_per_second: f64,
    /// False when its recorded snapshot is from another cluster (after a
    /// restore) and it is being recomputed: no `min_token` is answered from
    /// it until then.
    pub trusted: bool,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
    pub consecutive_failures: i32,
}

/// Every read model in the status table, with this instance's schedule.
pub async fn list(
    pool: &Pool,
    models: &[ScheduledModel],
) -> Result<Vec<ReadModelStatus>, QueryError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/read_models/list_status.sql"))
        .await?;
    let pending = client
        .prepare_cached(include_str!("../../sql/read_models/pending_changes.sql"))
        .await?;
    let rows = client.query(&stmt, &[]).await?;
    let mut waiting = std::collections::HashMap::new();
    for row in &rows {
        let name: String = row.get("view_name");
        let sources: Vec<&str> = models
            .iter()
            .find(|m| m.model.name == name)
            .map(|m| m.model.source_names())
            .unwrap_or_default();
        let live = client.query_one(&pending, &[&name, &sources]).await?;
        let since: Option<OffsetDateTime> = live.get("pending_since");
        let count: i64 = live.get("pending_count");
        waiting.insert(name, (since, count));
    }
    let now = OffsetDateTime::now_utc();
    Ok(rows
        .iter()
        .map(|r| {
            let name: String = r.get("view_name");
            let model = models.iter().find(|m| m.model.name == name);
            let (since, backlog) = waiting.get(&name).copied().unwrap_or((None, 0));
            let lag: Option<f64> = since.map(|s| (now - s).as_seconds_f64());
            ReadModelStatus {
                schedule: model.map(|m| m.schedule.clone()),
                sources: model
                    .map(|m| {
                        m.model
                            .source_names()
                            .into_iter()
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                last_refresh_at: r.get("last_refresh_at"),
                last_duration_ms: r
                    .get::<_, Option<f64>>("last_duration_ms")
                    .map(|ms| (ms * 1000.0).round() / 1000.0),
                rows: r.get("rows"),
                verified_at: r.get("verified_at"),
                stale: lag.is_some(),
                lag_seconds: lag.unwrap_or(0.0).max(0.0),
                backlog,
                changes_per_second: r
                    .get::<_, Option<f64>>("changes_per_second")
                    .map_or(0.0, |v| (v * 10.0).round() / 10.0),
                trusted: r.get::<_, Option<bool>>("trusted").unwrap_or(false),
                last_error: r.get("last_error"),
                last_error_at: r.get("last_error_at"),
                consecutive_failures: r.get("consecutive_failures"),
                name,
            }
        })
        .collect())
}
