//! The operator's view of the read models: `GET /queries/read-models`,
//! `pgcqrs status` and the freshness gauges of `/metrics`.
//!
//! Read on the primary: whether a change is waiting is answered live from
//! the write tables (the same look the refresher takes), so a stalled
//! refresher shows as stale instead of looking fresh.

use deadpool_postgres::Pool;
use serde::Serialize;
use time::OffsetDateTime;

use super::settings::ModelConfig;
use crate::queries::QueryError;

/// Freshness and health of one read model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReadModelStatus {
    pub name: String,
    /// Cron schedule (with seconds) on this instance.
    pub schedule: Option<String>,
    /// The tables it reads.
    pub sources: Vec<String>,
    /// As declared: full, incremental or auto.
    pub mode: String,
    /// How it is kept: incremental (changed keys re-projected in batches)
    /// or full (recomputed whole).
    pub kept: String,
    pub description: String,
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

/// Every declared read model with its freshness, and this instance's
/// schedule for it.
pub async fn list(pool: &Pool, config: &ModelConfig) -> Result<Vec<ReadModelStatus>, QueryError> {
    let client = pool.get().await?;
    let models = config
        .apply(super::catalog::load(&client).await?, false)
        .map_err(|e| QueryError::Internal(e.into()))?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/read_models/list_status.sql"))
        .await?;
    let pending = client
        .prepare_cached(include_str!("../../sql/read_models/pending_changes.sql"))
        .await?;
    let rows = client.query(&stmt, &[]).await?;
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let name: String = r.try_get("view_name")?;
        // Only declared models (a status row outlives nothing, but be sure).
        let Some(model) = models.iter().find(|m| m.model.name == name) else {
            continue;
        };
        let live = client
            .query_one(&pending, &[&name, &model.model.sources])
            .await?;
        let since: Option<OffsetDateTime> = live.try_get("pending_since")?;
        let backlog: i64 = live.try_get("pending_count")?;
        let lag: Option<f64> = since.map(|s| (now - s).as_seconds_f64());
        out.push(ReadModelStatus {
            schedule: Some(model.schedule.clone()),
            sources: model.model.source_names(),
            mode: model.model.mode.clone(),
            kept: if model.model.is_incremental() {
                "incremental".into()
            } else {
                "full".into()
            },
            description: model.model.description.clone(),
            last_refresh_at: r.try_get("last_refresh_at")?,
            last_duration_ms: r
                .try_get::<_, Option<f64>>("last_duration_ms")?
                .map(|ms| (ms * 1000.0).round() / 1000.0),
            rows: r.try_get("rows")?,
            verified_at: r.try_get("verified_at")?,
            stale: lag.is_some(),
            lag_seconds: lag.unwrap_or(0.0).max(0.0),
            backlog,
            changes_per_second: r
                .try_get::<_, Option<f64>>("changes_per_second")?
                .map_or(0.0, |v| (v * 10.0).round() / 10.0),
            trusted: r.try_get::<_, Option<bool>>("trusted")?.unwrap_or(false),
            last_error: r.try_get("last_error")?,
            last_error_at: r.try_get("last_error_at")?,
            consecutive_failures: r.try_get("consecutive_failures")?,
            name,
        });
    }
    Ok(out)
}

/// Whether a read model of that name is declared, and the names that are.
pub async fn declared(pool: &Pool, name: &str) -> Result<(bool, Vec<String>), QueryError> {
    let client = pool.get().await?;
    let names: Vec<String> = client
        .query("SELECT name FROM pgcqrs.read_models ORDER BY name", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok((names.iter().any(|n| n == name), names))
}
