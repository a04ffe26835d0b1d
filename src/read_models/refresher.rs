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
//! A model kept in batches (`Strategy::Incremental`) takes, per transaction,
//! at most a bounded slice of its backlog in transaction order and records
//! exactly what it applied (`pgcqrs.snapshot_advance`, plus a cursor inside
//! a transaction it applied in part); its worker goes straight on to the
//! next batch while a backlog is left. A batch that times out is retried at
//! once with half as many changes; any other refresh that times out gets
//! twice the time on its next attempt (up to 8x). A recorded snapshot from
//! another cluster (after a restore) is never trusted: the model is
//! recomputed first.
//!
//! Each view has a worker task woken by its cron schedule or by a request
//! (a `min_token` read, an operator). Wake-ups coalesce, so a slow refresh
//! never queues up ticks. A failing view backs off and never blocks others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::{IsolationLevel, Row};
use deadpool_postgres::{Pool, Transaction};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::catalog::{self, Applier, DeltaRun, ReadModel, Strategy, AS_SOON_AS_CHANGED};
use super::settings::ModelConfig;

/// A read model with the schedule and timeout it runs with here.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledModel {
    pub model: Arc<ReadModel>,
    pub schedule: String,
    pub timeout_ms: u64,
    /// For an incrementally kept model: recompute it whole whenever its
    /// sources changed instead (the design the batches replaced; for
    /// measurement only).
    pub full_refresh: bool,
}

/// A function called with a view's name at the start of every refresh
/// attempt: how fault tests make a refresh panic.
pub type RefreshHook = Arc<dyn Fn(&str) + Send + Sync>;

/// How the refresher runs.
#[derive(Clone)]
pub struct RefresherSettings {
    /// Per-view schedules, timeouts and designs configured here; the models
    /// themselves come from the catalog in the database.
    pub models: ModelConfig,
    /// Names this instance in the refresh log.
    pub instance: String,
    /// Where to listen for refresh requests from instances without a
    /// refresher (the primary); `None`: only this instance's own requests.
    pub listen_url: Option<String>,
    /// Called before every refresh attempt (fault tests); `None` in service.
    pub before_refresh: Option<RefreshHook>,
}

impl std::fmt::Debug for RefresherSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefresherSettings")
            .field("models", &self.models)
            .field("instance", &self.instance)
            .field("listen_url", &self.listen_url)
            .field("before_refresh", &self.before_refresh.is_some())
            .finish()
    }
}

impl RefresherSettings {
    /// Refresh the declared models with `models`' settings (as
    /// `ReadModelArgs::models` in the configuration validated them), named after
    /// this host and process.
    pub fn new(models: ModelConfig) -> Self {
        Self {
            models,
            instance: default_instance_name(),
            listen_url: None,
            before_refresh: None,
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
    /// The view was refreshed, or a batch applied; `backlog` change records
    /// are still waiting (a batch takes a bounded slice of them).
    Refreshed {
        rows: i64,
        duration_ms: f64,
        /// Change records applied (for a whole refresh, those it covered).
        changes: i64,
        backlog: i64,
    },
    /// Nothing it reads changed; it is marked current without a refresh.
    Current,
    /// Another instance is refreshing it right now.
    Busy,
}

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;

/// How many changes (orders to re-project) a batch takes at first, and at most. A batch
/// that times out halves it (down to one); quick batches double it back.
const BATCH_LIMIT: i64 = 20_000;

/// How often a model refreshed as soon as a source changes looks for
/// changes.
const CHANGE_POLL: Duration = Duration::from_millis(250);

/// How many changes a batch of an exact grouped model takes while its
/// batches have not timed out: a delta costs a pass over the changed rows,
/// and only a batch that takes every change can be one.
const DELTA_BATCH_LIMIT: i64 = 250_000;

/// Batches failing this many times for a reason of their own: the next
/// attempt recomputes the model whole (see `Refresher::batches_failing`).
const ERRORS_BEFORE_WHOLE: u32 = 2;

/// A view whose refresh times out gets twice the time on the next attempt,
/// up to this many times its configured timeout: slow is reported, never
/// stuck.
const MAX_TIMEOUT_FACTOR: u64 = 8;
/// A re-synchronisation after a restore is a one-off recomputation: it gets
/// at least this long, whatever the per-batch timeout, doubled after each
/// timeout in a row like a batch's (a large model's recomputation may take
/// longer: it must not fail for good).
const RESYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// What the worker and scheduler of one view last did, for readiness.
#[derive(Default)]
struct Activity {
    /// Unix ms of the last scheduler tick, and the gap before it.
    last_tick: AtomicI64,
    interval: AtomicI64,
    /// Unix ms when the running refresh started; 0 when idle.
    running_since: AtomicI64,
    /// The running refresh is a re-synchronisation after a restore, which
    /// may take up to `RESYNC_TIMEOUT`.
    resyncing: std::sync::atomic::AtomicBool,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A batch as taken: how many changes, the snapshot the model reflects once
/// they are applied, the backlog behind them, where it stopped inside a
/// transaction, whether a table was truncated, and the tables touched.
struct Taken {
    changes: i64,
    snapshot: String,
    taken_at: OffsetDateTime,
    backlog: i64,
    resume: Resume,
    truncated: bool,
    touched: Vec<u32>,
}

/// What one batch cost: its changes and keys, all of it and the
/// re-projection of its keys (ms).
struct BatchCost {
    changes: i64,
    keys: i64,
    duration_ms: f64,
    apply_ms: f64,
}

/// Before a batch's cost and a whole recomputation's are both measured,
/// how mode `auto` guesses which is cheaper.
#[derive(Clone, Copy)]
enum Guess {
    /// Recompute whole when the work outnumbers a quarter of the model's
    /// rows: a key re-projected costs about what its rows do.
    ModelRows,
    /// Recompute whole when the changes outnumber a twentieth of the rows
    /// of the tables the model reads: at 1M orders a delta cost 13–40
    /// times as much per change as a recomputation per row it read.
    SourceRows,
}

/// A view's failures and how its attempts adapt to them.
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    /// Change records the next batch may take.
    batch_limit: i64,
    /// Consecutive timeouts: the next attempt's timeout is 2^n times the
    /// configured one (bounded).
    timeouts: u32,
    /// Failures of the batches' own since the last success or whole
    /// recomputation: at `ERRORS_BEFORE_WHOLE`, the model is recomputed
    /// whole instead.
    errors: u32,
    /// What a change and a touched key cost in recent batches, and the
    /// last whole recomputation, in ms: how mode `auto` chooses.
    ms_per_change: Option<f64>,
    ms_per_key: Option<f64>,
    full_ms: Option<f64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            failures: 0,
            until: None,
            batch_limit: BATCH_LIMIT,
            timeouts: 0,
            errors: 0,
            ms_per_change: None,
            ms_per_key: None,
            full_ms: None,
        }
    }
}

/// A column of a row the refresher reads, or an error naming it: the
/// refresh path never panics on a row it did not expect.
fn col<'a, T: deadpool_postgres::tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    name: &str,
) -> anyhow::Result<T> {
    row.try_get(name)
        .with_context(|| format!("unexpected column {name} in a refresher statement's result"))
}

/// Whether a database error anywhere in `error`'s chain has a SQLSTATE
/// that `matches`.
fn has_sql_state(error: &anyhow::Error, matches: impl Fn(&SqlState) -> bool) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<deadpool_postgres::tokio_postgres::Error>()
            .and_then(|e| e.code())
            .is_some_and(&matches)
    })
}

/// Whether an error is a missing relation (SQLSTATE 42P01): a model
/// dropped while it was being refreshed.
fn is_undefined_table(error: &anyhow::Error) -> bool {
    has_sql_state(error, |c| *c == SqlState::UNDEFINED_TABLE)
}

/// Whether an error is a statement timeout (SQLSTATE 57014), or most
/// probably one the client never saw ([`UnseenTimeout`]).
fn is_timeout(error: &anyhow::Error) -> bool {
    error.downcast_ref::<UnseenTimeout>().is_some()
        || has_sql_state(error, |c| *c == SqlState::QUERY_CANCELED)
}

/// What a refresh that failed on "current transaction is aborted"
/// (SQLSTATE 25P02), after running at least its statement timeout, most
/// probably met. Every statement of a refresh is awaited and its error
/// returned, so the error that aborted the transaction came after a
/// statement had answered: the server raises a statement timeout that
/// falls due while it waits for the end of an exchange (a statement being
/// prepared keeps its timer armed until the exchange ends, after its
/// description), and the client, which has what it asked for, stops
/// reading before the error. The next statement meets the aborted
/// transaction. The refresher prepares few statements inside its
/// transactions (kept ones, once per connection), but with a timeout of a
/// few milliseconds under load it happens.
#[derive(Debug)]
struct UnseenTimeout;

impl std::fmt::Display for UnseenTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "probably a statement timeout that fell due after a statement of this refresh \
             had been answered, and aborted its transaction unseen",
        )
    }
}

/// Whether an error is SQLSTATE 25P02, "current transaction is aborted".
fn aborted_before(error: &anyhow::Error) -> bool {
    has_sql_state(error, |c| *c == SqlState::IN_FAILED_SQL_TRANSACTION)
}

/// Whether an error would come again from the same batch: a database
/// error about the data or the statements (a value a batch cannot read, a
/// stand-in gone wrong, a check), not about the connection, locks,
/// concurrency, resources or an operator (nor a timeout, which has its own
/// path). Only these count towards recomputing a model whole.
fn is_the_batchs_own(error: &anyhow::Error) -> bool {
    has_sql_state(error, |c| {
        ["22", "23", "2F", "39", "42", "54", "P0", "XX", "0A"]
            .iter()
            .any(|class| c.code().starts_with(class))
    })
}

/// Where a batch stopped inside a transaction it applied in part: txid,
/// source, sequence and key of the last change it applied.
type Resume = (Option<String>, Option<i32>, Option<i64>, Option<String>);

/// What a read model reflects now (`coverage.sql`).
struct Coverage {
    covers: String,
    /// Taken on this cluster and not ahead of the present.
    trusted: bool,
    /// Where the last batch stopped inside a transaction.
    resume: Resume,
    /// It equals its query as of `covers`: a delta may be added to it.
    exact: bool,
}

/// The generated statements of a model kept in batches.
struct Statements<'a> {
    appliers: &'a [Applier],
    apply: &'a str,
    full: &'a str,
    /// Merges a delta (grouped models).
    delta: Option<&'a str>,
}

/// One refresh to log (`record_refresh.sql`).
struct Record<'a> {
    name: &'a str,
    snapshot: &'a str,
    taken_at: OffsetDateTime,
    kind: &'static str,
    /// incremental or full
    mode: &'static str,
    duration_ms: f64,
    rows: i64,
    changed_rows: Option<i64>,
    changes: Option<i64>,
    backlog: i64,
    resume: Resume,
    /// The model now equals its query as of `snapshot`.
    exact: bool,
}

/// One model's worker: how to wake it, what it is doing, how to stop it.
#[derive(Clone)]
struct Slot {
    model: ScheduledModel,
    wake: Arc<Notify>,
    force: Arc<std::sync::atomic::AtomicBool>,
    activity: Arc<Activity>,
    /// Stops this model's worker (the model was dropped).
    stop: CancellationToken,
    /// Its cron job, once scheduled.
    job: Option<uuid::Uuid>,
}

/// What `start` set running, for models declared later.
struct Running {
    scheduler: JobScheduler,
    shutdown: CancellationToken,
    workers: tokio_util::task::TaskTracker,
}

/// Runs refreshes; shared by the scheduler, the admin API and `min_token` waits.
pub struct Refresher {
    pool: Pool,
    settings: RefresherSettings,
    /// The declared models, in catalog order.
    slots: std::sync::RwLock<Vec<Slot>>,
    backoff: std::sync::Mutex<HashMap<String, Backoff>>,
    /// Bumped after every refresh or verification: waiters re-check then.
    generation: watch::Sender<u64>,
    /// Called at the start of every refresh attempt (fault tests).
    before_refresh: Option<RefreshHook>,
    running: tokio::sync::Mutex<Option<Running>>,
    /// Itself, for the workers and jobs it starts.
    me: std::sync::Mutex<std::sync::Weak<Self>>,
    /// Batches that filled the working tables and ended (their rows dead)
    /// since the tables were last vacuumed.
    untidy: AtomicU64,
    /// Held while the working tables are being vacuumed.
    tidying: tokio::sync::Mutex<()>,
}

impl Refresher {
    /// A refresher with no model yet: [`load`](Self::load) reads the
    /// catalog ([`start`](Self::start) does so itself).
    pub fn new(pool: Pool, settings: RefresherSettings) -> Arc<Self> {
        let before_refresh = settings.before_refresh.clone();
        Arc::new(Self {
            pool,
            settings,
            slots: Default::default(),
            backoff: Default::default(),
            generation: watch::channel(0).0,
            before_refresh,
            running: Default::default(),
            me: Default::default(),
            untidy: Default::default(),
            tidying: Default::default(),
        })
    }

    /// Read the catalog and take on its models: new ones get a worker (once
    /// started), dropped ones lose theirs. `strict` (at start): a setting
    /// naming no model is an error.
    pub async fn load(&self, strict: bool) -> anyhow::Result<()> {
        let client = self
            .pool
            .get()
            .await
            .context("Failed to get a connection")?;
        let catalog = catalog::load(&client).await?;
        drop(client);
        let models = self.settings.models.apply(catalog, strict)?;
        let (added, removed) = {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            let mut removed = Vec::new();
            slots.retain(|s| {
                let keep = models.iter().any(|m| m.model.name == s.model.model.name);
                if !keep {
                    removed.push(s.clone());
                }
                keep
            });
            let mut added = Vec::new();
            let mut next = Vec::with_capacity(models.len());
            for model in models {
                match slots
                    .iter()
                    .find(|s| s.model.model.name == model.model.name)
                {
                    Some(slot) => {
                        let mut slot = slot.clone();
                        // Redefined under the same name: the worker runs the new one.
                        slot.model = model;
                        next.push(slot);
                    }
                    None => {
                        let slot = Slot {
                            model,
                            wake: Arc::new(Notify::new()),
                            force: Arc::default(),
                            activity: Arc::default(),
                            stop: CancellationToken::new(),
                            job: None,
                        };
                        added.push(slot.model.model.name.clone());
                        next.push(slot);
                    }
                }
            }
            *slots = next;
            (added, removed)
        };
        for slot in &removed {
            tracing::info!(
                view = slot.model.model.name,
                "read model dropped; its worker stops"
            );
            slot.stop.cancel();
        }
        let mut running = self.running.lock().await;
        if let Some(running) = running.as_mut() {
            for slot in &removed {
                if let Some(job) = slot.job {
                    let _ = running.scheduler.remove(&job).await;
                }
            }
            for name in &added {
                tracing::info!(view = name, "read model declared; its worker starts");
                self.spawn_worker(running, name)?;
                self.request(name, false);
            }
        }
        Ok(())
    }

    /// Every declared model, as it runs here.
    pub fn models(&self) -> Vec<ScheduledModel> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.iter().map(|s| s.model.clone()).collect()
    }

    fn slot(&self, name: &str) -> Option<Slot> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.iter().find(|s| s.model.model.name == name).cloned()
    }

    /// Ask for a check of `name` now instead of at its next tick. Refreshes
    /// only if its sources changed, unless `force`.
    pub fn request(&self, name: &str, force: bool) -> bool {
        let Some(slot) = self.slot(name) else {
            return false;
        };
        if force {
            slot.force.store(true, Ordering::SeqCst);
        }
        slot.wake.notify_one();
        true
    }

    /// A receiver that changes after every refresh or verification.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Refresh `model` if its sources changed (or `force`), in one
    /// transaction. For a model kept in batches this is one batch: it takes
    /// a bounded slice of the backlog and reports what is left.
    pub async fn refresh_once(
        &self,
        model: &ScheduledModel,
        force: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        // (no timeout can have fallen due before the shortest one ran out)
        let (started, timeout) = (Instant::now(), self.timeout_for(model));
        self.run_refresh(model, force, true).await.map_err(|error| {
            if aborted_before(&error) && started.elapsed() >= timeout {
                // Said for what it most probably is, and backed off from
                // as a timeout.
                error.context(UnseenTimeout)
            } else {
                error
            }
        })
    }

    /// Batches (or refreshes) until nothing is left, calling `progress` with
    /// the backlog after each: for `pgcqrs refresh`. As in the service, a
    /// model whose batches fail for a reason of their own is recomputed
    /// whole at the attempt after `ERRORS_BEFORE_WHOLE` of them; the error
    /// is returned only when that attempt fails too.
    pub async fn catch_up(
        &self,
        model: &ScheduledModel,
        force: bool,
        mut progress: impl FnMut(&RefreshOutcome),
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        let (mut force, mut own_errors) = (force, 0);
        loop {
            let outcome = match self.refresh_once(model, force).await {
                Ok(outcome) => outcome,
                Err(error) if is_timeout(&error) && self.shrink_batch(model) => continue,
                Err(error) if self.keys_took_null(&error, name).await => continue,
                Err(error)
                    if model.model.is_incremental()
                        && is_the_batchs_own(&error)
                        && own_errors < ERRORS_BEFORE_WHOLE =>
                {
                    own_errors += 1;
                    self.note_batch_error(name);
                    tracing::warn!(view = name, error = %format!("{error:#}"), "a batch failed; trying again");
                    continue;
                }
                Err(error) => return Err(error),
            };
            self.clear_backoff(name);
            force = false;
            progress(&outcome);
            match outcome {
                RefreshOutcome::Refreshed { backlog, .. } if backlog > 0 => continue,
                outcome => return Ok(outcome),
            }
        }
    }

    /// Rebuild `model` from the write tables with a plain (not concurrent)
    /// `REFRESH`: faster, but readers of the view wait until it is done. For
    /// bulk loads and repairs, not for the schedule.
    pub async fn rebuild(&self, model: &ScheduledModel) -> anyhow::Result<RefreshOutcome> {
        self.run_refresh(model, true, false).await
    }

    #[tracing::instrument(skip_all, fields(view = %model.model.name))]
    async fn run_refresh(
        &self,
        model: &ScheduledModel,
        force: bool,
        concurrently: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        if let Some(hook) = &self.before_refresh {
            hook(name);
        }
        let mut client = self
            .pool
            .get()
            .await
            .context("Failed to get a connection")?;
        // A model kept in batches is read and written in one snapshot: a
        // delta is exact only against the state that snapshot shows.
        let tx = if model.model.is_incremental() {
            client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .start()
                .await?
        } else {
            client.transaction().await?
        };
        if !Self::lock_view(&tx, name).await? {
            return Ok(RefreshOutcome::Busy);
        }
        if model.model.is_incremental() {
            let lock = tx
                .prepare_cached(include_str!("../../sql/read_models/lock_status.sql"))
                .await?;
            if let Err(e) = tx.execute(&lock, &[&name]).await {
                // Another instance's batch committed after this snapshot
                // was taken: it did the work; this one looks again later.
                if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) {
                    return Ok(RefreshOutcome::Busy);
                }
                return Err(e.into());
            }
        }
        // Dropped, or declared again, since this instance loaded it: what
        // was loaded reads other tables with other statements. Nothing to
        // do until the catalog watch loads the model as declared now (a
        // batch of the old one would find nothing waiting on its tables
        // and mark the new one current past changes it never applied).
        let declared = tx
            .prepare_cached(include_str!("../../sql/read_models/declared.sql"))
            .await?;
        let Some(declared) = tx.query_opt(&declared, &[&name]).await? else {
            return Ok(RefreshOutcome::Current);
        };
        if crate::db::column::<time::OffsetDateTime>(&declared, "defined_at")?
            != model.model.defined_at
        {
            return Ok(RefreshOutcome::Current);
        }
        // A source that has gained a partition or an inheritance relative
        // since the declaration: writes addressed to them are not captured.
        if let Some(gap) = crate::db::column::<Option<String>>(&declared, "gap")? {
            // Writes may have been missed already: once the table is out
            // of the tree again, the model is recomputed, not moved on.
            let distrust = tx
                .prepare_cached(include_str!("../../sql/read_models/distrust.sql"))
                .await?;
            tx.execute(&distrust, &[&name]).await?;
            tx.commit().await?;
            anyhow::bail!(
                "read model {name} reads {gap}: writes addressed to another table of \
                 its tree are not captured; take the table out of the tree (the model is \
                 then recomputed), or drop the model"
            );
        }
        // A stand-in dropped with a column of its table (DROP ... CASCADE):
        // a batch would read the table in its place and add it whole. A
        // column renamed: a batch would rebuild old rows without it. The
        // model is recomputed instead, each time, until declared again.
        let lost = crate::db::column::<Option<String>>(&declared, "lost")?;
        let renamed = crate::db::column::<Option<String>>(&declared, "renamed")?;
        if let (Some(_), Strategy::Incremental { full, .. }) =
            (lost.as_ref().or(renamed.as_ref()), &model.model.strategy)
        {
            if concurrently {
                let outcome = self.recompute(tx, model, full, force).await?;
                if let RefreshOutcome::Refreshed { .. } = outcome {
                    tracing::warn!(
                        view = name,
                        lost,
                        renamed,
                        "this read model's stand-ins no longer match its tables (a stand-in \
                         dropped with a column, or a column renamed): recomputed whole until it \
                         is declared again"
                    );
                }
                return Ok(outcome);
            }
        }
        let coverage = Self::coverage(&tx, name).await?;
        if coverage.as_ref().is_some_and(|c| !c.trusted) {
            return self.resync(tx, model).await;
        }
        match (&model.model.strategy, coverage) {
            (Strategy::Incremental { full, .. }, _) if !concurrently => {
                self.refill(tx, model, full).await
            }
            (Strategy::Incremental { full, .. }, _) if model.full_refresh => {
                self.recompute(tx, model, full, force).await
            }
            (
                Strategy::Incremental {
                    appliers,
                    apply,
                    full,
                    delta,
                },
                Some(coverage),
            ) => {
                let statements = Statements {
                    appliers,
                    apply,
                    full,
                    delta: delta.as_deref(),
                };
                let filled = AtomicBool::new(false);
                let outcome = self
                    .batch(tx, model, statements, coverage, (force, &filled))
                    .await;
                // Its transaction has ended, committed or rolled back: the
                // rows it put in the working tables are dead, for a vacuum.
                if filled.load(Ordering::Relaxed) {
                    self.untidy.fetch_add(1, Ordering::Relaxed);
                }
                outcome
            }
            (Strategy::Incremental { .. }, None) => {
                anyhow::bail!("read model {name} has no freshness row; are the migrations applied?")
            }
            (Strategy::Concurrent, _) => {
                self.refresh_view(tx, model, force, concurrently, "refresh")
                    .await
            }
        }
    }

    /// The snapshot `name` reflects, whether it can be trusted here, and
    /// where its last batch stopped.
    async fn coverage(tx: &Transaction<'_>, name: &str) -> anyhow::Result<Option<Coverage>> {
        let stmt = tx
            .prepare_cached(include_str!("../../sql/read_models/coverage.sql"))
            .await?;
        let Some(row) = tx.query_opt(&stmt, &[&name]).await? else {
            return Ok(None);
        };
        Ok(Some(Coverage {
            covers: col(&row, "covers")?,
            trusted: col::<Option<bool>>(&row, "trusted")?.unwrap_or(false),
            resume: (
                col(&row, "resume_txid")?,
                col(&row, "resume_src")?,
                col(&row, "resume_seq")?,
                col(&row, "resume_key")?,
            ),
            exact: col(&row, "exact")?,
        }))
    }

    /// Set this transaction's statement timeout, and the settings every
    /// refresh runs with (`set_statement_timeout.sql`).
    async fn set_timeout(tx: &Transaction<'_>, timeout: Duration) -> anyhow::Result<()> {
        let stmt = tx
            .prepare_cached(include_str!(
                "../../sql/read_models/set_statement_timeout.sql"
            ))
            .await?;
        tx.execute(&stmt, &[&format!("{}ms", timeout.as_millis())])
            .await?;
        Ok(())
    }

    /// Set the search path for the rest of this transaction, with a
    /// statement kept on the connection: prepared once, not before each
    /// use (a statement being prepared is one the statement timeout can
    /// abort unseen, see [`UnseenTimeout`]).
    async fn set_search_path(tx: &Transaction<'_>, path: &str) -> anyhow::Result<()> {
        let stmt = tx
            .prepare_cached("SELECT set_config('search_path', $1, true)")
            .await?;
        tx.execute(&stmt, &[&path]).await?;
        Ok(())
    }

    /// The view's timeout for this attempt: doubled after each timeout in a
    /// row, up to `MAX_TIMEOUT_FACTOR` times the configured one.
    fn timeout_for(&self, model: &ScheduledModel) -> Duration {
        Duration::from_millis(model.timeout_ms.saturating_mul(self.timeout_factor(model)))
    }

    /// A re-synchronisation's timeout: at least `RESYNC_TIMEOUT`, doubled
    /// after each timeout in a row with no cap short of 256 times (it
    /// cannot be split into smaller pieces as a batch can).
    fn resync_timeout_for(&self, model: &ScheduledModel) -> Duration {
        let doublings = self.timeouts_in_a_row(model).min(8);
        self.timeout_for(model)
            .max(RESYNC_TIMEOUT.saturating_mul(1 << doublings))
    }

    fn timeout_factor(&self, model: &ScheduledModel) -> u64 {
        (1u64 << self.timeouts_in_a_row(model).min(8)).min(MAX_TIMEOUT_FACTOR)
    }

    /// Whether the model's last batches failed `ERRORS_BEFORE_WHOLE` times
    /// for a reason of their own (`is_the_batchs_own`): what fails in a
    /// batch (a change it cannot read, a stand-in gone wrong) would fail
    /// the next one too, and a whole recomputation reads none of it. The
    /// count starts again: whatever the recomputation's fate, the attempt
    /// after it is a batch again.
    fn batches_failing(&self, name: &str) -> bool {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(name) {
            Some(b) if b.errors >= ERRORS_BEFORE_WHOLE => {
                b.errors = 0;
                true
            }
            _ => false,
        }
    }

    fn timeouts_in_a_row(&self, model: &ScheduledModel) -> u32 {
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&model.model.name)
            .map_or(0, |b| b.timeouts)
    }

    fn batch_limit(&self, name: &str) -> i64 {
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map_or(BATCH_LIMIT, |b| b.batch_limit)
    }

    /// After a batch timed out: halve the view's batch. False when it is
    /// one change already (nothing smaller to try).
    fn shrink_batch(&self, model: &ScheduledModel) -> bool {
        if !model.model.is_incremental() || model.full_refresh {
            return false;
        }
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(model.model.name.clone()).or_default();
        if entry.batch_limit <= 1 {
            return false;
        }
        entry.batch_limit = (entry.batch_limit / 2).max(1);
        tracing::warn!(
            view = model.model.name,
            batch_limit = entry.batch_limit,
            "a batch timed out; taking fewer changes per batch"
        );
        true
    }

    /// After a batch: let the next take more if it was quick, and learn
    /// what a change and a re-projected key cost.
    fn learn_batch(&self, name: &str, cost: BatchCost, timeout: Duration) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name.to_owned()).or_default();
        if cost.duration_ms < timeout.as_secs_f64() * 1000.0 / 4.0 {
            entry.batch_limit = (entry.batch_limit * 2).min(BATCH_LIMIT);
        }
        let learn = |old: Option<f64>, per: f64| Some(old.map_or(per, |old| 0.7 * old + 0.3 * per));
        if cost.changes >= 100 {
            entry.ms_per_change =
                learn(entry.ms_per_change, cost.duration_ms / cost.changes as f64);
        }
        if cost.keys >= 20 {
            entry.ms_per_key = learn(entry.ms_per_key, cost.apply_ms / cost.keys as f64);
        }
    }

    /// Mode `auto`: whether recomputing whole is cheaper than `work` in
    /// batches, by what both last cost here (`unit`: the measured cost of
    /// one change, or of one key re-projected; before both are measured,
    /// as `guess` says). Applies from `least` units on. Asked of the
    /// backlog of changes once a batch has taken its share, and of the
    /// keys a batch found: a change that touches most groups of an
    /// aggregate costs more key by key than all at once.
    async fn whole_is_cheaper(
        &self,
        tx: &Transaction<'_>,
        model: &ScheduledModel,
        (work, least): (i64, i64),
        (unit, guess): (fn(&Backoff) -> Option<f64>, Guess),
    ) -> anyhow::Result<bool> {
        if model.model.mode != "auto" || work < least {
            return Ok(false);
        }
        let measured = self
            .backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&model.model.name)
            .and_then(|b| Some((unit(b)?, b.full_ms?)));
        Ok(match (measured, guess) {
            (Some((per, full_ms)), _) => work as f64 * per > full_ms,
            (None, Guess::ModelRows) => work > Self::count_rows(tx, &model.model.name).await? / 4,
            (None, Guess::SourceRows) => {
                let stmt = tx
                    .prepare_cached(include_str!(
                        "../../sql/read_models/estimated_source_rows.sql"
                    ))
                    .await?;
                let rows: i64 = tx
                    .query_one(&stmt, &[&model.model.sources])
                    .await?
                    .try_get(0)?;
                work.saturating_mul(20) > rows
            }
        })
    }

    /// One batch of an incrementally kept read model: at most the view's
    /// batch limit of captured changes, resuming where the last one stopped,
    /// each table's changes applied by its [`Applier`]. A grouped model
    /// that equals its query, in a batch that took every change its
    /// snapshot sees, adds the delta of its most changed table instead of
    /// recomputing the groups that table's changes touch.
    async fn batch(
        &self,
        tx: Transaction<'_>,
        model: &ScheduledModel,
        statements: Statements<'_>,
        coverage: Coverage,
        (force, filled): (bool, &AtomicBool),
    ) -> anyhow::Result<RefreshOutcome> {
        let Statements {
            appliers,
            apply,
            full,
            delta,
        } = statements;
        let name = model.model.name.as_str();
        let timeout = self.timeout_for(model);
        Self::set_timeout(&tx, timeout).await?;
        tx.batch_execute(include_str!("../../sql/read_models/batch_planner.sql"))
            .await?;
        let started = Instant::now();
        let taken = self.take(&tx, model, &coverage).await?;
        if taken.changes > 0 {
            filled.store(true, Ordering::Relaxed);
        }
        if taken.changes == 0 && !force {
            let at = (taken.snapshot.as_str(), taken.taken_at);
            return Self::mark_current(tx, name, at, taken.backlog == 0).await;
        }
        let pending = (taken.changes + taken.backlog, BATCH_LIMIT);
        // A delta costs a pass over the changes, not a group per key: before
        // anything is measured, guessed from the size of what a whole
        // recomputation reads, not from the model's.
        let guess = if delta.is_none() || !coverage.exact {
            Guess::ModelRows
        } else {
            Guess::SourceRows
        };
        if self.batches_failing(name) {
            tracing::warn!(
                view = name,
                "the model's batches failed {ERRORS_BEFORE_WHOLE} times in a row: recomputing it whole"
            );
            return self.recompute_all(tx, model, full, "refresh", &[]).await;
        }
        if taken.truncated
            || self
                .whole_is_cheaper(&tx, model, pending, (|b| b.ms_per_change, guess))
                .await?
        {
            return self.recompute_all(tx, model, full, "refresh", &[]).await;
        }
        // Complete: the model will equal its query as of the batch's snapshot.
        let complete = taken.backlog == 0 && taken.resume.0.is_none();
        let by_delta = match delta {
            Some(merge) if complete && coverage.exact && coverage.resume.0.is_none() => {
                Some((Self::delta_terms(appliers, &taken.touched), merge))
                    .filter(|(terms, _)| !terms.is_empty())
            }
            _ => None,
        };
        let keyed = taken
            .touched
            .iter()
            .copied()
            .filter(|t| {
                by_delta
                    .as_ref()
                    .is_none_or(|(terms, _)| terms.iter().all(|a| a.source != *t))
            })
            .collect::<Vec<_>>();
        let found = Self::find_keys(&tx, name, appliers, (&keyed, &taken.touched)).await?;
        if self
            .whole_is_cheaper(
                &tx,
                model,
                (found, 20),
                (|b| b.ms_per_key, Guess::ModelRows),
            )
            .await?
        {
            return self.recompute_all(tx, model, full, "refresh", &[]).await;
        }
        let merged = match &by_delta {
            Some((terms, merge)) => Some(Self::apply_delta(&tx, name, terms, merge).await?),
            None => None,
        };
        let applying = Instant::now();
        let (keys, changed_rows) = Self::apply_keys(&tx, name, apply).await?;
        let apply_ms = applying.elapsed().as_secs_f64() * 1000.0;
        let (keys, changed_rows) =
            merged.map_or((keys, changed_rows), |(k, c)| (keys + k, changed_rows + c));
        if keys == 0 && changed_rows == 0 && taken.resume.0.is_none() && !force {
            // What changed is nothing the model shows (a column it does not
            // read, or an update undone): current, with no refresh to log.
            let at = (taken.snapshot.as_str(), taken.taken_at);
            return Self::mark_current(tx, name, at, complete).await;
        }
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let record = Record {
            name,
            snapshot: &taken.snapshot,
            taken_at: taken.taken_at,
            kind: "batch",
            mode: if merged.is_some() {
                "delta"
            } else {
                "incremental"
            },
            duration_ms,
            rows: Self::count_rows(&tx, name).await?,
            changed_rows: Some(changed_rows),
            changes: Some(taken.changes),
            backlog: taken.backlog,
            resume: taken.resume,
            exact: complete,
        };
        self.record(&tx, &record).await?;
        tx.commit().await.context("Failed to commit the batch")?;
        let cost = BatchCost {
            changes: taken.changes,
            // a delta's groups cost nothing like a recomputed one's
            keys: if merged.is_some() { 0 } else { keys },
            duration_ms,
            apply_ms,
        };
        self.learn_batch(name, cost, timeout);
        Ok(RefreshOutcome::Refreshed {
            rows: changed_rows,
            duration_ms,
            changes: taken.changes,
            backlog: taken.backlog,
        })
    }

    /// Copy the next changes of `model`'s tables (at most its batch
    /// limit) into `pgcqrs.batch` (`take_batch.sql`), resuming where the
    /// last batch stopped. When every waiting change fits, they are copied
    /// as found (`take_all.sql`): ordering and numbering 10,000 changes to
    /// find where a batch ends took half of the copy's time.
    async fn take(
        &self,
        tx: &Transaction<'_>,
        model: &ScheduledModel,
        coverage: &Coverage,
    ) -> anyhow::Result<Taken> {
        let limit = match (self.batch_limit(&model.model.name), &model.model.strategy) {
            (BATCH_LIMIT, Strategy::Incremental { delta: Some(_), .. }) if coverage.exact => {
                DELTA_BATCH_LIMIT
            }
            (limit, _) => limit,
        };
        let (txid, _, seq, _) = &coverage.resume;
        let counted = tx
            .prepare_cached(include_str!("../../sql/read_models/waiting_changes.sql"))
            .await?;
        let waiting: i64 = col(
            &tx.query_one(
                &counted,
                &[&coverage.covers, txid, seq, &model.model.sources],
            )
            .await?,
            "waiting",
        )?;
        // (the same snapshot: what was counted is what is taken)
        let row = if waiting <= limit {
            let stmt = tx
                .prepare_cached(include_str!("../../sql/read_models/take_all.sql"))
                .await?;
            tx.query_one(&stmt, &[&coverage.covers, txid, seq, &model.model.sources])
                .await
        } else {
            let stmt = tx
                .prepare_cached(include_str!("../../sql/read_models/take_batch.sql"))
                .await?;
            tx.query_one(
                &stmt,
                &[
                    &coverage.covers,
                    txid,
                    seq,
                    &limit,
                    &model.model.sources,
                    &waiting,
                ],
            )
            .await
        }
        .with_context(|| format!("taking a batch of read.{} failed", model.model.name))?;
        Ok(Taken {
            changes: col(&row, "changes")?,
            snapshot: col(&row, "snapshot")?,
            taken_at: col(&row, "taken_at")?,
            backlog: col(&row, "backlog")?,
            resume: (
                col(&row, "resume_txid")?,
                None,
                col(&row, "resume_seq")?,
                None,
            ),
            truncated: col(&row, "truncated")?,
            touched: col(&row, "touched")?,
        })
    }

    /// The keys the changes in `pgcqrs.batch` of the tables in `keyed`
    /// touch, into `pgcqrs.batch_keys`: each table's found with its
    /// stand-in first on the search path. When the batch changed several
    /// tables, the others are read with the old versions of their changed
    /// rows besides: a row made of two old versions joins neither table as
    /// it is now. Returns how many keys.
    async fn find_keys(
        tx: &Transaction<'_>,
        name: &str,
        appliers: &[Applier],
        (keyed, touched): (&[u32], &[u32]),
    ) -> anyhow::Result<i64> {
        // (no table left to find keys for: nothing to read so)
        let several = touched.len() > 1 && !keyed.is_empty();
        let changed: Vec<&Applier> = appliers
            .iter()
            .filter(|a| touched.contains(&a.source))
            .collect();
        if several {
            for applier in &changed {
                // (the simple protocol: read up to the end of the exchange)
                tx.batch_execute(&applier.old_sql).await?;
            }
        }
        for applier in changed.iter().filter(|a| keyed.contains(&a.source)) {
            let path = if several {
                let (first, rest) = applier
                    .search_path
                    .split_once(", ")
                    .unwrap_or((applier.search_path.as_str(), ""));
                let others = changed
                    .iter()
                    .filter(|o| o.source != applier.source)
                    .map(|o| o.any_schema.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{first}, {others}, {rest}")
            } else {
                applier.search_path.clone()
            };
            Self::set_search_path(tx, &path).await?;
            let stmt = tx.prepare_cached(&applier.sql).await?;
            tx.execute(&stmt, &[])
                .await
                .with_context(|| format!("finding the keys of a batch of read.{name} failed"))?;
        }
        tx.batch_execute("SET LOCAL search_path TO DEFAULT").await?;
        if several {
            for applier in &changed {
                tx.batch_execute(&format!(
                    "DELETE FROM {}.pgcqrs_old_rows",
                    applier.any_schema
                ))
                .await?;
            }
        }
        let found = tx
            .query_one("SELECT count(DISTINCT key) FROM pgcqrs.batch_keys", &[])
            .await?;
        Ok(found.try_get(0)?)
    }

    /// The tables whose changes a delta batch adds by delta: those it
    /// touched whose changes can be, in their terms' order.
    fn delta_terms<'a>(appliers: &'a [Applier], touched: &[u32]) -> Vec<&'a Applier> {
        let mut terms: Vec<&Applier> = appliers
            .iter()
            .filter(|a| a.delta.is_some() && touched.contains(&a.source))
            .collect();
        terms.sort_by_key(|a| a.delta.as_ref().map_or(0, |d| d.term));
        terms
    }

    /// Add the delta of the changed tables' rows to the model: per table
    /// (term), the query over its changed rows as they are now and as they
    /// were, the tables of later terms read as they were and the others as
    /// they are, into the working table, merged by `merge`; the groups it
    /// cannot settle join `pgcqrs.batch_keys`. Returns the groups it
    /// touched and the rows it changed.
    async fn apply_delta(
        tx: &Transaction<'_>,
        name: &str,
        terms: &[&Applier],
        merge: &str,
    ) -> anyhow::Result<(i64, i64)> {
        let runs: Vec<&DeltaRun> = terms.iter().filter_map(|a| a.delta.as_ref()).collect();
        for later in runs.iter().skip(1) {
            tx.batch_execute(&later.first_sql).await?;
        }
        for (i, run) in runs.iter().enumerate() {
            let olds: Vec<&str> = runs[i + 1..]
                .iter()
                .map(|r| r.old_schema.as_str())
                .collect();
            for (path, sql) in [&run.plus, &run.minus] {
                let path = match path.split_once(", ") {
                    Some((stand_in, rest)) if !olds.is_empty() => {
                        format!("{stand_in}, {}, {rest}", olds.join(", "))
                    }
                    _ => path.clone(),
                };
                Self::set_search_path(tx, &path).await?;
                let stmt = tx.prepare_cached(sql).await?;
                tx.execute(&stmt, &[])
                    .await
                    .with_context(|| format!("the delta of a batch of read.{name} failed"))?;
            }
        }
        tx.batch_execute("SET LOCAL search_path TO DEFAULT").await?;
        for later in runs.iter().skip(1) {
            tx.batch_execute(&format!(
                "DELETE FROM {}.pgcqrs_first_rows",
                later.old_schema
            ))
            .await?;
        }
        let stmt = tx.prepare_cached(merge).await?;
        let merged = tx
            .query_one(&stmt, &[])
            .await
            .with_context(|| format!("merging the delta of a batch of read.{name} failed"))?;
        Ok((col(&merged, "keys")?, col(&merged, "changed_rows")?))
    }

    /// Re-project each key in `pgcqrs.batch_keys` once. Returns keys and
    /// rows changed.
    async fn apply_keys(
        tx: &Transaction<'_>,
        name: &str,
        apply: &str,
    ) -> anyhow::Result<(i64, i64)> {
        let stmt = tx.prepare_cached(apply).await?;
        let applied = tx
            .query_one(&stmt, &[])
            .await
            .with_context(|| format!("batch of read.{name} failed"))?;
        tx.batch_execute("DELETE FROM pgcqrs.batch; DELETE FROM pgcqrs.batch_keys")
            .await?;
        Ok((col(&applied, "keys")?, col(&applied, "changed_rows")?))
    }

    /// The full-refresh design of an incrementally kept table (for
    /// measurement), or its re-synchronisation: recompute every row and write
    /// the ones that differ; readers keep the old rows meanwhile.
    async fn recompute(
        &self,
        tx: Transaction<'_>,
        model: &ScheduledModel,
        full: &str,
        force: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        if !force {
            // The full design refreshes only when a source changed.
            let row = Self::pending_changes(&tx, model).await?;
            if col::<Option<OffsetDateTime>>(&row, "pending_since")?.is_none() {
                let snapshot: String = col(&row, "snapshot")?;
                let at = (snapshot.as_str(), col(&row, "taken_at")?);
                return Self::mark_current(tx, name, at, true).await;
            }
        }
        Self::set_timeout(&tx, self.timeout_for(model)).await?;
        self.recompute_all(tx, model, full, "refresh", &[]).await
    }

    /// Recompute every row of an incrementally kept table, writing those
    /// that differ; the snapshot is taken first, so it covers no more than
    /// the recomputation saw.
    async fn recompute_all(
        &self,
        tx: Transaction<'_>,
        model: &ScheduledModel,
        full: &str,
        kind: &'static str,
        indexes: &[String],
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        // What a batch took before it chose this instead, and how it
        // priced index reads: a whole recomputation reads whole tables.
        tx.batch_execute(
            "DELETE FROM pgcqrs.batch; DELETE FROM pgcqrs.batch_keys;
             SET LOCAL random_page_cost TO DEFAULT",
        )
        .await?;
        let started = Instant::now();
        let now = tx
            .query_one(
                "SELECT pg_current_snapshot()::text, statement_timestamp()",
                &[],
            )
            .await?;
        let snapshot: String = now.try_get(0)?;
        let stmt = tx.prepare_cached(full).await?;
        let row = tx
            .query_one(&stmt, &[])
            .await
            .with_context(|| format!("recomputing read.{name} failed"))?;
        for index in indexes {
            tx.batch_execute(index)
                .await
                .with_context(|| format!("rebuilding an index of read.{name} failed"))?;
        }
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let changed_rows: i64 = col(&row, "changed_rows")?;
        let rows = Self::count_rows(&tx, name).await?;
        let record = Record {
            name,
            snapshot: &snapshot,
            taken_at: now.try_get(1)?,
            kind,
            mode: "full",
            duration_ms,
            rows,
            changed_rows: Some(changed_rows),
            changes: None,
            backlog: 0,
            resume: (None, None, None, None),
            exact: true,
        };
        self.record(&tx, &record).await?;
        tx.commit().await.context("Failed to commit the refresh")?;
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_default()
            .full_ms = Some(duration_ms);
        Ok(RefreshOutcome::Refreshed {
            rows: changed_rows,
            duration_ms,
            changes: 0,
            backlog: 0,
        })
    }

    /// Refill an incrementally kept table from scratch (`pgcqrs rebuild`):
    /// faster than batches after a bulk load; readers wait meanwhile.
    async fn refill(
        &self,
        tx: Transaction<'_>,
        model: &ScheduledModel,
        full: &str,
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        // Asked for (`pgcqrs rebuild`, a seed) and watched by whoever asked:
        // no statement timeout, however large the model (0 turns it off).
        Self::set_timeout(&tx, Duration::ZERO).await?;
        // `name` comes from the catalog, which admits plain identifiers only.
        tx.batch_execute(&format!("TRUNCATE read.{name}")).await?;
        // Into an empty table, building each secondary index once from the
        // filled table beats keeping it row by row: at 10M orders the
        // per-order models spent most of their first fill in random index
        // writes.
        let indexes = tx
            .query(
                include_str!("../../sql/read_models/rebuilt_indexes.sql"),
                &[&name],
            )
            .await?;
        let mut remake = Vec::with_capacity(indexes.len());
        for index in &indexes {
            tx.batch_execute(&col::<String>(index, "drop_sql")?).await?;
            remake.push(col::<String>(index, "make_sql")?);
        }
        if !remake.is_empty() {
            // More memory to sort in, never less than the server gives.
            tx.batch_execute(
                "SELECT set_config('maintenance_work_mem', '256MB', true)
                  WHERE pg_size_bytes(current_setting('maintenance_work_mem'))
                        < pg_size_bytes('256MB')",
            )
            .await?;
        }
        let outcome = self
            .recompute_all(tx, model, full, "rebuild", &remake)
            .await?;
        Ok(outcome)
    }

    /// The view's recorded snapshot comes from another cluster (a restore),
    /// from the future, or was marked untrusted by an upgrade that found
    /// the view misled: recompute it whole, readers keeping the old rows
    /// meanwhile, and record a snapshot of this cluster. Until then the
    /// query side treats the view as covering no token.
    async fn resync(
        &self,
        tx: Transaction<'_>,
        model: &ScheduledModel,
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        if let Some(slot) = self.slot(name) {
            slot.activity.resyncing.store(true, Ordering::Relaxed);
        }
        tracing::warn!(
            view = name,
            "the read model's recorded snapshot is not trusted here (a restore, an upgrade, or its stand-ins written again after a column was renamed): recomputing it"
        );
        Self::set_timeout(&tx, self.resync_timeout_for(model)).await?;
        match &model.model.strategy {
            Strategy::Incremental { full, .. } => {
                self.recompute_all(tx, model, full, "resync", &[]).await
            }
            Strategy::Concurrent => self.refresh_view(tx, model, true, true, "resync").await,
        }
    }

    /// Refresh a materialized view if its sources changed (or `force`).
    async fn refresh_view(
        &self,
        tx: Transaction<'_>,
        model: &ScheduledModel,
        force: bool,
        concurrently: bool,
        kind: &'static str,
    ) -> anyhow::Result<RefreshOutcome> {
        let name = model.model.name.as_str();
        let row = Self::pending_changes(&tx, model).await?;
        let snapshot: String = col(&row, "snapshot")?;
        let taken_at: OffsetDateTime = col(&row, "taken_at")?;
        let never: bool = col(&row, "never_refreshed")?;
        let pending_since: Option<OffsetDateTime> = col(&row, "pending_since")?;
        let pending: i64 = col(&row, "pending_count")?;

        if pending_since.is_none() && !never && !force {
            return Self::mark_current(tx, name, (&snapshot, taken_at), true).await;
        }
        // Make the lag visible while the refresh runs (own transaction).
        if let Some(since) = pending_since {
            let other = self.pool.get().await?;
            let stmt = other
                .prepare_cached(include_str!("../../sql/read_models/mark_pending.sql"))
                .await?;
            other.execute(&stmt, &[&name, &since]).await?;
        }
        if kind != "resync" {
            Self::set_timeout(&tx, self.timeout_for(model)).await?;
        }
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
            .try_get(0)?;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let record = Record {
            name,
            snapshot: &snapshot,
            taken_at,
            kind: if concurrently { kind } else { "rebuild" },
            mode: "full",
            duration_ms,
            rows,
            changed_rows: None,
            changes: Some(pending),
            backlog: 0,
            resume: (None, None, None, None),
            exact: false,
        };
        self.record(&tx, &record).await?;
        tx.commit().await.context("Failed to commit the refresh")?;
        Ok(RefreshOutcome::Refreshed {
            rows,
            duration_ms,
            changes: pending,
            backlog: 0,
        })
    }

    /// Rows in a read model: the planner's estimate when large (an exact
    /// count would cost more than the batch), else counted.
    async fn count_rows(tx: &Transaction<'_>, name: &str) -> anyhow::Result<i64> {
        let estimate = tx
            .prepare_cached(include_str!("../../sql/read_models/estimated_rows.sql"))
            .await?;
        let rows = match tx.query_opt(&estimate, &[&name]).await? {
            Some(row) => row.try_get::<_, i64>(0)?,
            None => 0,
        };
        if rows >= 100_000 {
            return Ok(rows);
        }
        // Small (or never analyzed): counting is cheap and exact.
        // `name` comes from the catalog, never from a request.
        Ok(tx
            .query_one(&format!("SELECT count(*) FROM read.{name}"), &[])
            .await?
            .try_get(0)?)
    }

    /// The snapshot now, and the oldest change to `model`'s sources that
    /// the snapshot it reflects does not cover (`pending_changes.sql`).
    async fn pending_changes(tx: &Transaction<'_>, model: &ScheduledModel) -> anyhow::Result<Row> {
        let pending = tx
            .prepare_cached(include_str!("../../sql/read_models/pending_changes.sql"))
            .await?;
        tx.query_one(&pending, &[&model.model.name, &model.model.sources])
            .await
            .context("Failed to look for changes")
    }

    /// Nothing changed: record that the view is current as of `snapshot`
    /// (no refresh, no refresh-log row) and commit.
    async fn mark_current(
        tx: Transaction<'_>,
        name: &str,
        (snapshot, taken_at): (&str, OffsetDateTime),
        complete: bool,
    ) -> anyhow::Result<RefreshOutcome> {
        let mark = tx
            .prepare_cached(include_str!("../../sql/read_models/mark_current.sql"))
            .await?;
        tx.execute(&mark, &[&name, &snapshot, &taken_at, &complete])
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Current)
    }

    /// Take the view's refresh lock for this transaction, if no other
    /// instance holds it.
    async fn lock_view(tx: &Transaction<'_>, name: &str) -> anyhow::Result<bool> {
        let lock = tx
            .prepare_cached(include_str!("../../sql/read_models/try_refresh_lock.sql"))
            .await?;
        Ok(tx.query_one(&lock, &[&name]).await?.try_get::<_, bool>(0)?)
    }

    /// Log a refresh (or batch) and move the view's freshness forward, in
    /// the refresh's own transaction.
    async fn record(&self, tx: &Transaction<'_>, r: &Record<'_>) -> anyhow::Result<()> {
        let stmt = tx
            .prepare_cached(include_str!("../../sql/read_models/record_refresh.sql"))
            .await?;
        tx.execute(
            &stmt,
            &[
                &r.name,
                &r.snapshot,
                &r.taken_at,
                &r.duration_ms,
                &r.rows,
                &self.settings.instance,
                &r.changed_rows,
                &r.kind,
                &r.changes,
                &r.backlog,
                &r.resume.0,
                &r.resume.1,
                &r.resume.2,
                &r.resume.3,
                &r.mode,
                &r.exact,
            ],
        )
        .await?;
        if let Some(changes) = r.changes {
            metrics::counter!("pgcqrs_read_model_changes_applied_total", "view" => r.name.to_owned(), "mode" => r.mode)
                .increment(changes.max(0) as u64);
        }
        Ok(())
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
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        for slot in &slots {
            let (m, a) = (&slot.model, &slot.activity);
            let running = a.running_since.load(Ordering::Relaxed);
            let timeout = if a.resyncing.load(Ordering::Relaxed) {
                self.resync_timeout_for(m)
            } else {
                self.timeout_for(m)
            };
            let limit = timeout.as_millis() as i64 + 15_000;
            if running > 0 && now - running > limit {
                return Err(format!(
                    "the refresh of {} has been running for {} s, past its {} s timeout",
                    m.model.name,
                    (now - running) / 1000,
                    timeout.as_secs()
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
    async fn run_once(&self, slot: &Slot) {
        let activity = &slot.activity;
        activity.running_since.store(now_ms(), Ordering::Relaxed);
        self.run_once_inner(slot).await;
        activity.running_since.store(0, Ordering::Relaxed);
        activity.resyncing.store(false, Ordering::Relaxed);
    }

    async fn run_once_inner(&self, slot: &Slot) {
        let model = &slot.model;
        let name = model.model.name.as_str();
        let force = slot.force.swap(false, Ordering::SeqCst);
        if !force && self.backing_off(name) {
            return;
        }
        // A panic in a refresh is a failed refresh like any other: caught,
        // recorded, backed off from, and the worker goes on.
        let attempt = std::panic::AssertUnwindSafe(self.refresh_once(model, force));
        let result = match futures::FutureExt::catch_unwind(attempt).await {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(anyhow::anyhow!("the refresh panicked: {what}"))
            }
        };
        let view = name.to_owned();
        match result {
            Ok(outcome) => {
                let label = match &outcome {
                    RefreshOutcome::Refreshed {
                        rows,
                        duration_ms,
                        backlog,
                        ..
                    } => {
                        tracing::debug!(view = name, rows, duration_ms, backlog, "refreshed");
                        metrics::histogram!("pgcqrs_refresh_duration_seconds", "view" => view.clone())
                            .record(duration_ms / 1000.0);
                        if *backlog > 0 {
                            // More waiting: the next batch right away.
                            self.request(name, false);
                        }
                        "refreshed"
                    }
                    RefreshOutcome::Current => "current",
                    RefreshOutcome::Busy => "busy",
                };
                metrics::counter!("pgcqrs_refreshes_total", "view" => view, "outcome" => label)
                    .increment(1);
                self.clear_backoff(name);
                self.generation.send_modify(|g| *g += 1);
            }
            Err(error) if is_undefined_table(&error) && self.dropped(name).await => {
                // Dropped while this refresh ran: not a failure.
                tracing::info!(view = name, "read model dropped during its refresh");
            }
            Err(error) if self.keys_took_null(&error, name).await => {
                // Its key takes NULLs now: at once again.
                self.request(name, false);
            }
            Err(error) => {
                metrics::counter!("pgcqrs_refreshes_total", "view" => view.clone(), "outcome" => "failed")
                    .increment(1);
                metrics::counter!("pgcqrs_refresh_failures_total", "view" => view).increment(1);
                let timed_out = is_timeout(&error);
                let delay = if timed_out && self.shrink_batch(model) {
                    // A smaller batch may well fit: try it now.
                    self.request(name, false);
                    Duration::ZERO
                } else {
                    self.note_failure(name, timed_out, is_the_batchs_own(&error))
                };
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

    /// Read the catalog again; true when `name` is no longer declared.
    async fn dropped(&self, name: &str) -> bool {
        if let Err(e) = self.load(false).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not read the read-model catalog"
            );
            return false;
        }
        self.slot(name).is_none()
    }

    fn backing_off(&self, name: &str) -> bool {
        let map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .and_then(|b| b.until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// A success: no more backoff; the batch limit stays as learnt.
    fn clear_backoff(&self, name: &str) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = map.get_mut(name) {
            entry.failures = 0;
            entry.until = None;
            entry.timeouts = 0;
            entry.errors = 0;
        }
    }

    /// Whether `error` is a NULL met in a key column of `name`'s own table
    /// whose key took no NULL, and the key now takes NULLs
    /// (`keys_may_be_null.sql`): a GROUP BY gives a group for NULL, which
    /// the model then holds.
    async fn keys_took_null(&self, error: &anyhow::Error, name: &str) -> bool {
        let Some(column) = error.chain().find_map(|e| {
            let db = e
                .downcast_ref::<deadpool_postgres::tokio_postgres::Error>()?
                .as_db_error()?;
            (*db.code() == SqlState::NOT_NULL_VIOLATION
                && db.schema() == Some("read")
                && db.table() == Some(name))
            .then(|| db.column().map(str::to_owned))
            .flatten()
        }) else {
            return false;
        };
        let result = async {
            let client = self.pool.get().await?;
            let stmt = client
                .prepare_cached(include_str!("../../sql/read_models/keys_may_be_null.sql"))
                .await?;
            let row = client.query_one(&stmt, &[&name, &column]).await?;
            anyhow::Ok(row.try_get::<_, bool>(0)?)
        }
        .await;
        match result {
            Ok(taken) => {
                if taken {
                    tracing::warn!(
                        view = name,
                        column,
                        "a NULL in a key column: the model's key takes NULLs from now on"
                    );
                }
                taken
            }
            Err(e) => {
                tracing::warn!(
                    view = name,
                    error = format!("{e:#}"),
                    "could not let the model's key take NULLs"
                );
                false
            }
        }
    }

    /// A batch failed for a reason of its own, with no worker to back off
    /// (`catch_up`): counted towards recomputing the model whole.
    fn note_batch_error(&self, name: &str) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name.to_owned()).or_default();
        entry.errors = entry.errors.saturating_add(1);
    }

    /// Exponential backoff: 1, 2, 4 ... 60 s after consecutive failures. A
    /// timeout also doubles the next attempt's timeout (bounded).
    fn note_failure(&self, name: &str, timed_out: bool, the_batchs_own: bool) -> Duration {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name.to_owned()).or_default();
        entry.failures = entry.failures.saturating_add(1);
        if timed_out {
            entry.timeouts = entry.timeouts.saturating_add(1);
        } else if the_batchs_own {
            entry.errors = entry.errors.saturating_add(1);
        }
        let delay = Duration::from_secs((1u64 << entry.failures.min(6).saturating_sub(1)).min(60));
        entry.until = Some(Instant::now() + delay);
        delay
    }

    /// Schedule `name`'s cron job and start its worker, which runs until
    /// the model is dropped or the refresher stops.
    fn spawn_worker(&self, running: &mut Running, name: &str) -> anyhow::Result<()> {
        let Some(slot) = self.slot(name) else {
            return Ok(());
        };
        // Every per-view series exists from the start, failures at 0.
        metrics::counter!("pgcqrs_refresh_failures_total", "view" => name.to_owned()).increment(0);
        let (tick, activity) = (Arc::clone(&slot.wake), Arc::clone(&slot.activity));
        if slot.model.model.schedule.is_none() && slot.model.schedule == AS_SOON_AS_CHANGED {
            // As soon as a source changes: a look every CHANGE_POLL (one
            // indexed query when nothing changed), finer than cron's second.
            let (stop, model_stop) = (running.shutdown.clone(), slot.stop.clone());
            running.workers.spawn(async move {
                let mut every = tokio::time::interval(CHANGE_POLL);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = every.tick() => Self::tick(&tick, &activity),
                        _ = stop.cancelled() => break,
                        _ = model_stop.cancelled() => break,
                    }
                }
            });
            return self.spawn_runner(running, slot, name);
        }
        let job = Job::new_async(slot.model.schedule.as_str(), move |_, _| {
            let (tick, activity) = (tick.clone(), Arc::clone(&activity));
            Box::pin(async move { Self::tick(&tick, &activity) })
        })
        .with_context(|| {
            format!(
                "invalid refresh schedule {:?} for {name}",
                slot.model.schedule
            )
        })?;
        let id = job.guid();
        {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = slots.iter_mut().find(|s| s.model.model.name == name) {
                s.job = Some(id);
            }
        }
        let scheduler = running.scheduler.clone();
        running.workers.spawn(async move {
            if let Err(e) = scheduler.add(job).await {
                tracing::error!(error = %e, "could not schedule a read model");
            }
        });
        self.spawn_runner(running, slot, name)
    }

    /// A tick of a model's schedule: note when, and wake its worker.
    fn tick(wake: &Notify, activity: &Activity) {
        let now = now_ms();
        let last = activity.last_tick.swap(now, Ordering::Relaxed);
        if last > 0 {
            activity.interval.store(now - last, Ordering::Relaxed);
        }
        wake.notify_one()
    }

    /// The worker that runs a model's refreshes when its schedule wakes it.
    fn spawn_runner(&self, running: &mut Running, slot: Slot, name: &str) -> anyhow::Result<()> {
        let this = self.arc()?;
        let stop = running.shutdown.clone();
        let name = name.to_owned();
        running.workers.spawn(async move {
            loop {
                tokio::select! {
                    _ = slot.wake.notified() => {}
                    _ = stop.cancelled() => break,
                    _ = slot.stop.cancelled() => break,
                }
                if stop.is_cancelled() || slot.stop.is_cancelled() {
                    break;
                }
                // The model as declared now (it may have been redefined).
                let Some(current) = this.slot(&name) else {
                    break;
                };
                this.run_once(&current).await;
            }
        });
        Ok(())
    }

    /// Start a worker per view and the cron scheduler that wakes them; both
    /// stop when `shutdown` is cancelled (a running refresh finishes first).
    /// The catalog is read again every two seconds and on `NOTIFY
    /// pgcqrs_read_models`: models declared or dropped meanwhile gain or
    /// lose their worker.
    pub async fn start(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<RefresherHandle> {
        self.load(true).await?;
        let scheduler = JobScheduler::new()
            .await
            .context("Failed to create the refresh scheduler")?;
        let mut running = Running {
            scheduler: scheduler.clone(),
            shutdown: shutdown.clone(),
            workers: tokio_util::task::TaskTracker::new(),
        };
        *self.me.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(self);
        for model in self.models() {
            self.spawn_worker(&mut running, &model.model.name)?;
        }
        scheduler
            .add(self.housekeeping()?)
            .await
            .context("Failed to schedule housekeeping")?;
        scheduler
            .add(self.tidy_job()?)
            .await
            .context("Failed to schedule the vacuum of the working tables")?;
        scheduler
            .add(self.catalog_watch()?)
            .await
            .context("Failed to schedule the catalog watch")?;
        scheduler
            .start()
            .await
            .context("Failed to start the refresh scheduler")?;
        if let Some(url) = self.settings.listen_url.clone() {
            running.workers.spawn(super::requests::listen(
                url,
                Arc::clone(self),
                shutdown.clone(),
            ));
        }
        let workers = running.workers.clone();
        *self.running.lock().await = Some(running);
        // A first check at start-up rather than at the first tick.
        for m in self.models() {
            self.request(&m.model.name, false);
        }
        Ok(RefresherHandle { scheduler, workers })
    }

    fn arc(&self) -> anyhow::Result<Arc<Self>> {
        self.me
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()
            .context("the refresher is gone")
    }

    /// Every two seconds: take on models declared or dropped meanwhile.
    fn catalog_watch(&self) -> anyhow::Result<Job> {
        let this = self.me.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Job::new_async("*/2 * * * * *", move |_, _| {
            let this = this.clone();
            Box::pin(async move {
                if let Some(this) = this.upgrade() {
                    if let Err(e) = this.load(false).await {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "could not read the read-model catalog"
                        );
                    }
                }
            })
        })
        .context("invalid catalog watch schedule")
    }

    /// Every second after a batch: vacuum the working tables batches fill
    /// and empty. Their rows die at every batch, and autovacuum, which looks
    /// at most once a minute, leaves them to pile up under command load:
    /// every batch then scans what the batches before it left.
    fn tidy_job(&self) -> anyhow::Result<Job> {
        let this = self.me.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Job::new_async("* * * * * *", move |_, _| {
            let this = this.clone();
            Box::pin(async move {
                if let Some(this) = this.upgrade() {
                    this.tidy().await;
                }
            })
        })
        .context("invalid working-table vacuum schedule")
    }

    /// Vacuum the working tables if a batch that filled them ended since
    /// the last time, unless a vacuum of this instance is still running.
    async fn tidy(&self) {
        let Ok(_running) = self.tidying.try_lock() else {
            return;
        };
        let ended = self.untidy.swap(0, Ordering::AcqRel);
        if ended > 0 {
            if let Err(e) = vacuum_working_tables(&self.pool).await {
                // (counted again, for the next pass)
                self.untidy.fetch_add(ended, Ordering::Relaxed);
                tracing::warn!(
                    error = format!("{e:#}"),
                    "could not vacuum the working tables"
                );
            }
        }
    }

    /// Housekeeping, every minute: idempotency keys are kept for a day, and
    /// captured changes until every model has applied them.
    fn housekeeping(&self) -> anyhow::Result<Job> {
        let pool = self.pool.clone();
        Job::new_async("0 * * * * *", move |_, _| {
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
                match prune_changes(&pool).await {
                    Ok(n) if n > 0 => tracing::debug!(changes = n, "forgot applied changes"),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "could not prune captured changes")
                    }
                }
            })
        })
        .context("invalid housekeeping schedule")
    }
}

/// Forget captured changes every read model has applied.
pub async fn prune_changes(pool: &Pool) -> anyhow::Result<i64> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/read_models/prune_changes.sql"))
        .await?;
    Ok(client.query_one(&stmt, &[]).await?.try_get(0)?)
}

/// Vacuum the working tables batches fill and empty, those this login may
/// vacuum. A table another session is vacuuming or has locked is skipped,
/// and none is truncated: cutting off a table's empty end takes a lock
/// that waits up to 5 s for running batches, and would make PostgreSQL
/// plan every batch statement again; the space is taken again by the next
/// batches instead (autovacuum still truncates). Returns how many tables.
pub async fn vacuum_working_tables(pool: &Pool) -> anyhow::Result<usize> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/read_models/working_tables.sql"))
        .await?;
    let names = client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    if !names.is_empty() {
        // One statement, outside any transaction, as VACUUM must be; a
        // table skipped is a warning from the server, not for the log here.
        client
            .batch_execute("SET client_min_messages = error")
            .await?;
        let vacuumed = client
            .batch_execute(&format!(
                "VACUUM (SKIP_LOCKED, TRUNCATE false) {}",
                names.join(", ")
            ))
            .await
            .context("vacuuming the working tables failed");
        client.batch_execute("RESET client_min_messages").await?;
        vacuumed?;
    }
    Ok(names.len())
}

/// The running scheduler and workers.
pub struct RefresherHandle {
    scheduler: JobScheduler,
    workers: tokio_util::task::TaskTracker,
}

impl RefresherHandle {
    /// Wait for the workers to stop (after shutdown was cancelled) and stop the scheduler.
    pub async fn stopped(mut self) {
        self.workers.close();
        self.workers.wait().await;
        let _ = self.scheduler.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unseen_timeout_is_backed_off_from_as_a_timeout_however_wrapped() {
        let unseen = anyhow::anyhow!("current transaction is aborted").context(UnseenTimeout);
        assert!(is_timeout(&unseen));
        assert!(format!("{unseen:#}").contains("statement timeout"));
        let wrapped = unseen.context("refreshing read.daily_sales");
        assert!(is_timeout(&wrapped));
        assert!(!is_timeout(&anyhow::anyhow!(
            "current transaction is aborted"
        )));
    }
}
