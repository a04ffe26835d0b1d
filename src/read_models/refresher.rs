//! Refreshing read models.
//!
//! One refresh is one transaction:
//! 1. take a transaction-scoped advisory lock for the view (skip if another
//!    instance holds it: it is doing the same work);
//! 2. take a snapshot and look for changes to the view's sources that the
//!    snapshot it currently reflects does not cover;
//! 3. nothing changed: record that the view is current as of the new
//!    snapshot (no refresh, no refresh-log row);
//! 4. otherwise `REFRESH ... CONCURRENTLY`, then log the refresh with the
//!    snapshot from step 2: every transaction visible in it is in the view.
//!
//! Each view has a worker task woken by its cron schedule or by a request
//! (a `min_token` read, an operator). Wake-ups coalesce, so a slow refresh
//! never queues up ticks. A failing view backs off and never blocks others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use deadpool_postgres::tokio_postgres::Row;
use deadpool_postgres::{Pool, Transaction};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::catalog::{ReadModel, Strategy, CATALOG};

/// A read model with the schedule and timeout it runs with here.
#[derive(Debug, Clone)]
pub struct ScheduledModel {
    pub model: &'static ReadModel,
    pub schedule: String,
    pub timeout_ms: u64,
    /// For an incrementally kept model: recompute it whole whenever its
    /// sources changed instead (the design the batches replaced; for
    /// measurement only).
    pub full_refresh: bool,
}

/// How the refresher runs.
#[derive(Debug, Clone)]
pub struct RefresherSettings {
    pub models: Vec<ScheduledModel>,
    /// Names this instance in the refresh log.
    pub instance: String,
    /// Where to listen for refresh requests from instances without a
    /// refresher (the primary); `None`: only this instance's own requests.
    pub listen_url: Option<String>,
}

impl RefresherSettings {
    /// The catalog's defaults, overridden by `PGCQRS_SCHEDULE_<VIEW>`,
    /// `PGCQRS_REFRESH_TIMEOUT_MS_<VIEW>` and `PGCQRS_FULL_REFRESH`
    /// (`all` or a comma-separated list of views).
    pub fn from_env() -> Self {
        let full = std::env::var("PGCQRS_FULL_REFRESH").unwrap_or_default();
        let full: Vec<&str> = full.split(',').map(str::trim).collect();
        let models = CATALOG
            .iter()
            .map(|model| ScheduledModel {
                model,
                schedule: std::env::var(model.schedule_env_var())
                    .unwrap_or_else(|_| model.default_schedule.to_string()),
                timeout_ms: std::env::var(format!(
                    "PGCQRS_REFRESH_TIMEOUT_MS_{}",
                    model.name.to_ascii_uppercase()
                ))
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(model.default_timeout_ms),
                full_refresh: full.contains(&"all") || full.contains(&model.name),
            })
            .collect();
        Self {
            models,
            instance: default_instance_name(),
            listen_url: None,
        }
    }
}

fn default_instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// What one refresh attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The view was refreshed.
    Refreshed { rows: i64, duration_ms: f64 },
    /// Nothing it reads changed; it is marked current without a refresh.
    Current,
    /// Another instance is refreshing it right now.
    Busy,
}

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;

/// What the worker and scheduler of one view last did, for readiness.
#[derive(Default)]
struct Activity {
    /// Unix ms of the last scheduler tick, and the gap before it.
    last_tick: AtomicI64,
    interval: AtomicI64,
    /// Unix ms when the running refresh started; 0 when idle.
    running_since: AtomicI64,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

/// Runs refreshes; shared by the scheduler, the admin API and `min_token` waits.
pub struct Refresher {
    pool: Pool,
    settings: RefresherSettings,
    wake: HashMap<&'static str, Arc<Notify>>,
    force: HashMap<&'static str, Arc<std::sync::atomic::AtomicBool>>,
    backoff: std::sync::Mutex<HashMap<&'static str, Backoff>>,
    /// Bumped after every refresh or verification: waiters re-check then.
    generation: watch::Sender<u64>,
    activity: HashMap<&'static str, Arc<Activity>>,
}

impl Refresher {
    pub fn new(pool: Pool, settings: RefresherSettings) -> Arc<Self> {
        let wake = settings
            .models
            .iter()
            .map(|m| (m.model.name, Arc::new(Notify::new())))
            .collect();
        let force = settings
            .models
            .iter()
            .map(|m| (m.model.name, Arc::default()))
            .collect();
        let activity = settings
            .models
            .iter()
            .map(|m| (m.model.name, Arc::default()))
            .collect();
        Arc::new(Self {
            pool,
            activity,
            settings,
            wake,
            force,
            backoff: Default::default(),
            generation: watch::channel(0).0,
        })
    }

    pub fn models(&self) -> &[ScheduledModel] {
        &self.settings.models
    }

    /// Ask for a check of `name` now instead of at its next tick. Refreshes
    /// only if its sources changed, unless `force`.
    pub fn request(&self, name: &str, force: bool) -> bool {
        let Some(notify) = self.wake.get(name) else {
            return false;
        };
        if force {
            if let Some(flag) = self.force.get(name) {
                flag.store(true, Ordering::SeqCst);
            }
        }
        notify.notify_one();
        true
    }

    /// A receiver that changes after every refresh or verification.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Refresh `model` if its sources changed (or `force`), in one transaction.
    pub async fn refresh_once(
        &self,
        model: &ScheduledModel,
        force: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        self.run_refresh(model, force, true).await
    }

    /// Rebuild `model` from the write tables with a plain (not concurrent)
    /// `REFRESH`: faster, but readers of the view wait until it is done. For
    /// bulk loads and repairs, not for the schedule.
    pub async fn rebuild(&self, model: &ScheduledModel) -> anyhow::Result<RefreshOutcome> {
        self.run_refresh(model, true, false).await
    }

    #[tracing::instrument(skip_all, fields(view = model.model.name))]
    async fn run_refresh(
        &self,
        model: &ScheduledModel,
        force: bool,
        concurrently: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        if let Strategy::Incremental {
            apply,
            full,
            rebuild,
        } = model.model.strategy
        {
            let apply = if model.full_refresh { full } else { apply };
            return self
                .run_batch(model, apply, (!concurrently).then_some(rebuild), force)
                .await;
        }
        let name = model.model.name;
        let mut client = self
            .pool
            .get()
            .await
            .context("Failed to get a connection")?;
        let tx = client.transaction().await?;
        if !Self::lock_view(&tx, name).await? {
            return Ok(RefreshOutcome::Busy);
        }
        let row = Self::pending_changes(&tx, model).await?;
        let snapshot: String = row.get("snapshot");
        let taken_at: OffsetDateTime = row.get("taken_at");
        let never: bool = row.get("never_refreshed");
        let pending_since: Option<OffsetDateTime> = row.get("pending_since");

        if pending_since.is_none() && !never && !force {
            return Self::mark_current(tx, name, &row).await;
        }

        // Make the lag visible while the refresh runs (own transaction).
        if let Some(since) = pending_since {
            let other = self.pool.get().await?;
            let stmt = other
                .prepare_cached(include_str!("../../sql/read_models/mark_pending.sql"))
                .await?;
            other.execute(&stmt, &[&name, &since]).await?;
        }

        let timeout = tx
            .prepare_cached(include_str!(
                "../../sql/read_models/set_statement_timeout.sql"
            ))
            .await?;
        tx.execute(&timeout, &[&format!("{}ms", model.timeout_ms)])
            .await?;
        let started = Instant::now();
        // `name` comes from the catalog, never from a request.
        let refresh = if concurrently {
            format!("REFRESH MATERIALIZED VIEW CONCURRENTLY read.{name}")
        } else {
            format!("REFRESH MATERIALIZED VIEW read.{name}")
        };
        tx.batch_execute(&refresh)
            .await
            .with_context(|| format!("{refresh} failed"))?;
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM read.{name}"), &[])
            .await?
            .get(0);
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.record(&tx, name, &snapshot, taken_at, duration_ms, rows, None)
            .await?;
        tx.commit().await.context("Failed to commit the refresh")?;
        Ok(RefreshOutcome::Refreshed { rows, duration_ms })
    }

    /// The snapshot now, and the oldest change to `model`'s sources that
    /// the snapshot it reflects does not cover (`pending_changes.sql`).
    async fn pending_changes(tx: &Transaction<'_>, model: &ScheduledModel) -> anyhow::Result<Row> {
        let pending = tx
            .prepare_cached(include_str!("../../sql/read_models/pending_changes.sql"))
            .await?;
        let sources = model.model.source_names();
        tx.query_one(&pending, &[&model.model.name, &sources])
            .await
            .context("Failed to look for changes")
    }

    /// Nothing changed: record that the view is current as of `row`'s
    /// snapshot (no refresh, no refresh-log row) and commit.
    async fn mark_current(
        tx: Transaction<'_>,
        name: &str,
        row: &Row,
    ) -> anyhow::Result<RefreshOutcome> {
        let mark = tx
            .prepare_cached(include_str!("../../sql/read_models/mark_current.sql"))
            .await?;
        let snapshot: String = row.get("snapshot");
        let taken_at: OffsetDateTime = row.get("taken_at");
        tx.execute(&mark, &[&name, &snapshot, &taken_at]).await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Current)
    }

    /// Take the view's refresh lock for this transaction, if no other
    /// instance holds it.
    async fn lock_view(tx: &Transaction<'_>, name: &str) -> anyhow::Result<bool> {
        let lock = tx
            .prepare_cached(include_str!("../../sql/read_models/try_refresh_lock.sql"))
            .await?;
        Ok(tx.query_one(&lock, &[&name]).await?.get::<_, bool>(0))
    }

    /// Log a refresh (or batch, with the rows it changed) and move the
    /// view's freshness forward, in the refresh's own transaction.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        snapshot: &str,
        taken_at: OffsetDateTime,
        duration_ms: f64,
        rows: i64,
        changed_rows: Option<i64>,
    ) -> anyhow::Result<()> {
        let record = tx
            .prepare_cached(include_str!("../../sql/read_models/record_refresh.sql"))
            .await?;
        tx.execute(
            &record,
            &[
                &name,
                &snapshot,
                &taken_at,
                &duration_ms,
                &rows,
                &self.settings.instance,
                &changed_rows,
            ],
        )
        .await?;
        Ok(())
    }

    /// One batch of an incrementally kept read model, or (with `rebuild`)
    /// a refill from scratch. One transaction, like a refresh.
    #[tracing::instrument(skip_all, fields(view = model.model.name))]
    async fn run_batch(
        &self,
        model: &ScheduledModel,
        apply: &str,
        rebuild: Option<&str>,
        force: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name;
        let mut client = self
            .pool
            .get()
            .await
            .context("Failed to get a connection")?;
        let tx = client.transaction().await?;
        if !Self::lock_view(&tx, name).await? {
            return Ok(RefreshOutcome::Busy);
        }
        let timeout = tx
            .prepare_cached(include_str!(
                "../../sql/read_models/set_statement_timeout.sql"
            ))
            .await?;
        tx.execute(&timeout, &[&format!("{}ms", model.timeout_ms)])
            .await?;
        let started = Instant::now();
        let (snapshot, taken_at, changed_rows): (String, OffsetDateTime, i64) = match rebuild {
            Some(rebuild) => {
                // Snapshot first: the refill's own snapshot includes all of it.
                let row = tx
                    .query_one(
                        "SELECT pg_current_snapshot()::text, statement_timestamp()",
                        &[],
                    )
                    .await?;
                tx.batch_execute(&format!("TRUNCATE read.{name}")).await?;
                let n = tx
                    .execute(rebuild, &[])
                    .await
                    .with_context(|| format!("rebuild of read.{name} failed"))?;
                (row.get(0), row.get(1), n as i64)
            }
            None => {
                let current = tx
                    .prepare_cached(include_str!("../../sql/read_models/current_as_of.sql"))
                    .await?;
                let as_of: String = tx
                    .query_opt(&current, &[&name])
                    .await?
                    .map(|r| r.get(0))
                    .context("the read model has no freshness row; are the migrations applied?")?;
                if model.full_refresh && !force {
                    // The full design refreshes only when a source changed.
                    let row = Self::pending_changes(&tx, model).await?;
                    if row
                        .get::<_, Option<OffsetDateTime>>("pending_since")
                        .is_none()
                    {
                        return Self::mark_current(tx, name, &row).await;
                    }
                }
                let stmt = tx.prepare_cached(apply).await?;
                let row = tx
                    .query_one(&stmt, &[&as_of])
                    .await
                    .with_context(|| format!("batch of read.{name} failed"))?;
                let changed_keys: i64 = row.get("changed_keys");
                if changed_keys == 0 && !force {
                    return Self::mark_current(tx, name, &row).await;
                }
                (
                    row.get("snapshot"),
                    row.get("taken_at"),
                    row.get("changed_rows"),
                )
            }
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let estimate = tx
            .prepare_cached(include_str!("../../sql/read_models/estimated_rows.sql"))
            .await?;
        let mut rows: i64 = tx
            .query_opt(&estimate, &[&name])
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        if rows < 100_000 {
            // Small (or never analyzed): counting is cheap and exact.
            rows = tx
                .query_one(&format!("SELECT count(*) FROM read.{name}"), &[])
                .await?
                .get(0);
        }
        self.record(
            &tx,
            name,
            &snapshot,
            taken_at,
            duration_ms,
            rows,
            Some(changed_rows),
        )
        .await?;
        tx.commit().await.context("Failed to commit the batch")?;
        Ok(RefreshOutcome::Refreshed {
            rows: changed_rows,
            duration_ms,
        })
    }

    async fn record_failure(&self, name: &str, error: &anyhow::Error) {
        let message = format!("{error:#}");
        let result = async {
            let client = self.pool.get().await?;
            let stmt = client
                .prepare_cached(include_str!("../../sql/read_models/record_failure.sql"))
                .await?;
            client.execute(&stmt, &[&name, &message]).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(view = name, error = %e, "could not record a refresh failure");
        }
    }

    /// Not ready when a refresh runs well past its timeout (hung) or the
    /// scheduler stopped ticking a view (stalled), not merely when it is slow.
    pub fn health(&self) -> Result<(), String> {
        let now = now_ms();
        for m in &self.settings.models {
            let Some(a) = self.activity.get(m.model.name) else {
                continue;
            };
            let running = a.running_since.load(Ordering::Relaxed);
            let limit = m.timeout_ms as i64 + 15_000;
            if running > 0 && now - running > limit {
                return Err(format!(
                    "the refresh of {} has been running for {} s, past its {} s timeout",
                    m.model.name,
                    (now - running) / 1000,
                    m.timeout_ms / 1000
                ));
            }
            let (last, interval) = (
                a.last_tick.load(Ordering::Relaxed),
                a.interval.load(Ordering::Relaxed),
            );
            if interval > 0 && now - last > 3 * interval + 5_000 {
                return Err(format!(
                    "the scheduler has not woken {} for {} s (it ticks every {} s)",
                    m.model.name,
                    (now - last) / 1000,
                    interval / 1000
                ));
            }
        }
        Ok(())
    }

    /// One wake-up of a view's worker: refresh unless backing off.
    async fn run_once(&self, model: &ScheduledModel) {
        let name = model.model.name;
        let activity = self.activity.get(name).cloned().unwrap_or_default();
        activity.running_since.store(now_ms(), Ordering::Relaxed);
        self.run_once_inner(model).await;
        activity.running_since.store(0, Ordering::Relaxed);
    }

    async fn run_once_inner(&self, model: &ScheduledModel) {
        let name = model.model.name;
        let force = self
            .force
            .get(name)
            .map(|f| f.swap(false, Ordering::SeqCst))
            .unwrap_or(false);
        if !force && self.backing_off(name) {
            return;
        }
        match self.refresh_once(model, force).await {
            Ok(outcome) => {
                let label = match &outcome {
                    RefreshOutcome::Refreshed { rows, duration_ms } => {
                        tracing::debug!(view = name, rows, duration_ms, "refreshed");
                        metrics::histogram!("pgcqrs_refresh_duration_seconds", "view" => name)
                            .record(duration_ms / 1000.0);
                        "refreshed"
                    }
                    RefreshOutcome::Current => "current",
                    RefreshOutcome::Busy => "busy",
                };
                metrics::counter!("pgcqrs_refreshes_total", "view" => name, "outcome" => label)
                    .increment(1);
                self.clear_backoff(name);
                self.generation.send_modify(|g| *g += 1);
            }
            Err(error) => {
                metrics::counter!("pgcqrs_refreshes_total", "view" => name, "outcome" => "failed")
                    .increment(1);
                metrics::counter!("pgcqrs_refresh_failures_total", "view" => name).increment(1);
                let delay = self.note_failure(name);
                tracing::error!(
                    view = name,
                    error = format!("{error:#}"),
                    retry_in_s = delay.as_secs(),
                    "refresh failed"
                );
                self.record_failure(name, &error).await;
            }
        }
    }

    fn backing_off(&self, name: &'static str) -> bool {
        let map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .and_then(|b| b.until)
            .is_some_and(|until| Instant::now() < until)
    }

    fn clear_backoff(&self, name: &'static str) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(name);
    }

    /// Exponential backoff: 1, 2, 4 ... 60 s after consecutive failures.
    fn note_failure(&self, name: &'static str) -> Duration {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name).or_default();
        entry.failures = entry.failures.saturating_add(1);
        let delay = Duration::from_secs((1u64 << entry.failures.min(6).saturating_sub(1)).min(60));
        entry.until = Some(Instant::now() + delay);
        delay
    }

    /// Start a worker per view and the cron scheduler that wakes them; both
    /// stop when `shutdown` fires (a running refresh finishes first).
    pub async fn start(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<RefresherHandle> {
        // Every per-view series exists from the start, failures at 0.
        for m in &self.settings.models {
            metrics::counter!("pgcqrs_refresh_failures_total", "view" => m.model.name).increment(0);
        }
        let scheduler = JobScheduler::new()
            .await
            .context("Failed to create the refresh scheduler")?;
        let mut workers = JoinSet::new();
        for model in self.settings.models.iter().cloned() {
            let name = model.model.name;
            let notify = self.wake.get(name).cloned().context("no worker for view")?;
            let tick = notify.clone();
            let activity = self.activity.get(name).cloned().unwrap_or_default();
            let job = Job::new_async(model.schedule.as_str(), move |_, _| {
                let (tick, activity) = (tick.clone(), Arc::clone(&activity));
                Box::pin(async move {
                    let now = now_ms();
                    let last = activity.last_tick.swap(now, Ordering::Relaxed);
                    if last > 0 {
                        activity.interval.store(now - last, Ordering::Relaxed);
                    }
                    tick.notify_one()
                })
            })
            .with_context(|| format!("invalid refresh schedule {:?} for {name}", model.schedule))?;
            scheduler
                .add(job)
                .await
                .context("Failed to schedule a refresh")?;

            let this = Arc::clone(self);
            let mut stop = shutdown.clone();
            workers.spawn(async move {
                loop {
                    tokio::select! {
                        _ = notify.notified() => {}
                        _ = stop.changed() => break,
                    }
                    if *stop.borrow() {
                        break;
                    }
                    this.run_once(&model).await;
                }
            });
        }
        // Housekeeping: idempotency keys are kept for a day.
        let pool = self.pool.clone();
        let prune = Job::new_async("0 * * * * *", move |_, _| {
            let pool = pool.clone();
            Box::pin(async move {
                let result =
                    crate::commands::idempotency::prune_expired(&pool, IDEMPOTENCY_RETENTION_HOURS)
                        .await;
                match result {
                    Ok(n) if n > 0 => tracing::info!(keys = n, "forgot old idempotency keys"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not prune idempotency keys"),
                }
            })
        })
        .context("invalid housekeeping schedule")?;
        scheduler
            .add(prune)
            .await
            .context("Failed to schedule housekeeping")?;
        scheduler
            .start()
            .await
            .context("Failed to start the refresh scheduler")?;
        if let Some(url) = self.settings.listen_url.clone() {
            workers.spawn(super::requests::listen(
                url,
                Arc::clone(self),
                shutdown.clone(),
            ));
        }
        // A first check at start-up rather than at the first tick.
        for m in &self.settings.models {
            self.request(m.model.name, false);
        }
        Ok(RefresherHandle { scheduler, workers })
    }
}

/// The running scheduler and workers.
pub struct RefresherHandle {
    scheduler: JobScheduler,
    workers: JoinSet<()>,
}

impl RefresherHandle {
    /// Wait for the workers to stop (after shutdown fired) and stop the scheduler.
    pub async fn stopped(mut self) {
        while self.workers.join_next().await.is_some() {}
        let _ = self.scheduler.shutdown().await;
    }
}
