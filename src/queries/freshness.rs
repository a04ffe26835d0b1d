//! Staleness and read-your-writes.
//!
//! `read.read_model_status.current_as_of` is the snapshot each view is known
//! to reflect. A command's token (its transaction id) is covered by a view
//! when `pg_visible_in_snapshot(token, current_as_of)`: exact even when
//! transactions commit out of order, which a max-sequence watermark is not.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::tokio_postgres::types::{FromSql, Type};
use deadpool_postgres::tokio_postgres::Row;
use deadpool_postgres::Pool;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::QueryError;
use crate::db::targets::{ReadTarget, ReadTargets};
use crate::db::{column, FromRow, RowError};

/// A command's transaction id, as returned in `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(u64);

impl Token {
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.trim().parse::<u64>().map(Token).map_err(|_| {
            format!("min_token must be the token a command returned (digits), got {raw:?}")
        })
    }
}

/// How fresh an answer is: the oldest `verified_at` of the views it read.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub refreshed_at: OffsetDateTime,
}

impl Freshness {
    pub fn age_seconds(&self) -> u64 {
        let age = OffsetDateTime::now_utc() - self.refreshed_at;
        age.whole_seconds().max(0) as u64
    }
}

/// The longest a client may ask to wait.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How long a read of `read.read_model_status` serves other requests: plain
/// reads then cost no extra round trip, and their staleness headers are at
/// most this much older than the truth.
const CACHE_FOR: Duration = Duration::from_millis(100);

/// A `pg_snapshot` (`xmin:xmax:xip,...`): which transactions it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    xmin: u64,
    xmax: u64,
    in_progress: Vec<u64>,
}

impl Snapshot {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let in_progress = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(Self {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// `pg_visible_in_snapshot(txid, self)`: committed before the snapshot
    /// was taken (an aborted transaction wrote nothing to see).
    pub fn sees(&self, txid: u64) -> bool {
        txid < self.xmin || (txid < self.xmax && !self.in_progress.contains(&txid))
    }
}

/// A snapshot read as text (`pg_snapshot::text`).
impl<'a> FromSql<'a> for Snapshot {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let text = <&str as FromSql>::from_sql(ty, raw)?;
        Snapshot::parse(text).ok_or_else(|| format!("unreadable snapshot {text:?}").into())
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

#[derive(Debug, Clone)]
struct ViewState {
    covers: Snapshot,
    verified_at: OffsetDateTime,
    /// How long its last refresh took.
    last_duration: Option<Duration>,
    /// Failed refreshes since its last success.
    consecutive_failures: i32,
}

/// How long a retry should wait per failed refresh of a lagging view: the
/// refresher tries again at its next tick, and a failing view seldom
/// recovers at once.
const RETRY_PER_FAILURE: Duration = Duration::from_secs(5);

impl ViewState {
    /// When a refresh of this view, asked for now, is likely to be done.
    fn expected_refresh(&self) -> Duration {
        let refresh = self.last_duration.unwrap_or_default();
        let failures = u32::try_from(self.consecutive_failures).unwrap_or(0);
        refresh.max(RETRY_PER_FAILURE.saturating_mul(failures))
    }
}

/// One row of `read_model_freshness.sql`: a view's state, and the
/// database's snapshot when read (the same on every row).
struct FreshnessRow {
    view: String,
    state: ViewState,
    now: Snapshot,
}

impl FromRow for FreshnessRow {
    fn from_row(row: &Row) -> Result<Self, RowError> {
        let last_duration_ms: Option<f64> = row.try_get("last_duration_ms")?;
        Ok(FreshnessRow {
            view: row.try_get("view_name")?,
            state: ViewState {
                covers: row.try_get("current_as_of")?,
                verified_at: row.try_get("verified_at")?,
                last_duration: last_duration_ms
                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                    .map(|ms| Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0)),
                consecutive_failures: row.try_get("consecutive_failures")?,
            },
            now: row.try_get("now_snapshot")?,
        })
    }
}

#[derive(Debug, Clone)]
struct Reading {
    at: Instant,
    views: HashMap<String, ViewState>,
    /// The database's snapshot when read: a token at or past its xmax names
    /// no transaction yet.
    now: Snapshot,
}

/// The latest reading of every read model's freshness on one read target,
/// shared by requests.
#[derive(Default)]
struct FreshnessCache {
    reading: tokio::sync::Mutex<Option<Arc<Reading>>>,
}

impl FreshnessCache {
    /// A reading no older than `max_age`.
    async fn read(&self, pool: &Pool, max_age: Duration) -> Result<Arc<Reading>, QueryError> {
        let mut slot = self.reading.lock().await;
        if let Some(r) = slot.as_ref().filter(|r| r.at.elapsed() <= max_age) {
            return Ok(Arc::clone(r));
        }
        let client = pool.get().await?;
        let stmt = client
            .prepare_cached(include_str!("../../sql/queries/read_model_freshness.sql"))
            .await?;
        let rows = FreshnessRow::from_rows(&client.query(&stmt, &[]).await?)?;
        let now = rows.last().map(|r| r.now.clone()).ok_or_else(|| {
            QueryError::Internal(anyhow::anyhow!(
                "no freshness recorded; are the migrations applied?"
            ))
        })?;
        let reading = Arc::new(Reading {
            at: Instant::now(),
            views: rows.into_iter().map(|r| (r.view, r.state)).collect(),
            now,
        });
        *slot = Some(Arc::clone(&reading));
        Ok(reading)
    }
}

/// How a wait asks for refreshes and hears that one happened. The
/// read-model machinery provides it; the read side only names what it needs.
pub trait Refreshes: Send + Sync {
    /// Ask for a check of `views` now (a refresh if their sources changed).
    fn ask(&self, views: &[String]);
    /// A receiver that changes after every refresh here, if this instance
    /// refreshes.
    fn subscribe(&self) -> Option<watch::Receiver<u64>>;
}

/// How often a wait asks again for a refresh of the views still behind: a
/// request can land while another instance holds the view.
const ASK_EVERY: Duration = Duration::from_millis(250);
/// The longest pause between two looks at the views' freshness.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// Lets a read through once the views it names cover its token: keeps each
/// read target's freshness reading (each replica has replayed its own amount
/// of the primary's history), asks for refreshes, and tells a token no
/// transaction has had from one not yet covered.
pub struct FreshnessGate {
    caches: HashMap<String, FreshnessCache>,
    /// Asked whether it has assigned a token a replica does not know yet.
    primary: Pool,
    refreshes: Arc<dyn Refreshes>,
}

/// The views that do not cover a token yet, in one reading.
struct Lag {
    /// The oldest `verified_at` of the views named.
    oldest: Option<OffsetDateTime>,
    behind: Vec<String>,
    /// When a retry is likely to find the lagging views caught up.
    retry_after: Duration,
}

impl Lag {
    fn of(reading: &Reading, views: &[&str], token: Option<Token>) -> Result<Self, QueryError> {
        let mut lag = Lag {
            oldest: None,
            behind: Vec::new(),
            retry_after: Duration::ZERO,
        };
        for view in views {
            let state = reading.views.get(*view).ok_or_else(|| {
                QueryError::Internal(anyhow::anyhow!("no freshness recorded for {view}"))
            })?;
            lag.oldest = Some(
                lag.oldest
                    .map_or(state.verified_at, |o| o.min(state.verified_at)),
            );
            if token.is_some_and(|t| !state.covers.sees(t.0)) {
                lag.behind.push(view.to_string());
                lag.retry_after = lag.retry_after.max(state.expected_refresh());
            }
        }
        Ok(lag)
    }
}

impl FreshnessGate {
    /// A gate for every target of `targets`, asking `primary` about tokens
    /// and `refreshes` for refreshes.
    pub fn new(targets: &ReadTargets, primary: Pool, refreshes: Arc<dyn Refreshes>) -> Self {
        Self {
            caches: targets
                .all()
                .map(|t| (t.name.clone(), FreshnessCache::default()))
                .collect(),
            primary,
            refreshes,
        }
    }

    /// Wait until every view in `views` covers `token` (if any), for at
    /// most `wait`, asking for an immediate refresh of the views that do
    /// not. With no views, wait until `target` itself has the token's
    /// transaction (a replica that has not replayed it yet). Returns how
    /// fresh the views are.
    pub async fn await_views(
        &self,
        target: &ReadTarget,
        views: &[&str],
        token: Option<Token>,
        wait: Duration,
    ) -> Result<Freshness, QueryError> {
        let cache = self.caches.get(&target.name).ok_or_else(|| {
            QueryError::Internal(anyhow::anyhow!("no freshness kept for {}", target.name))
        })?;
        let started = Instant::now();
        let mut generation = self.refreshes.subscribe();
        // When we last asked for a refresh.
        let mut asked: Option<Instant> = None;
        // With less time than the cache lives, read afresh: a stale reading
        // would answer "not yet" for a token already covered.
        let mut max_age = CACHE_FOR.min(wait);
        // Whether the primary was asked about a token past the target's
        // horizon: one it has not assigned yet is a 400 at once, not after
        // the whole wait.
        let mut token_checked = false;
        loop {
            let reading = cache.read(&target.pool, max_age).await?;
            let lag = Lag::of(&reading, views, token)?;
            let replayed = token.is_none_or(|t| reading.now.sees(t.0));
            if lag.behind.is_empty() && replayed {
                return Ok(Freshness {
                    // Views are as fresh as their last verification (on a
                    // replica, as replayed); tables kept by triggers as the
                    // target itself.
                    refreshed_at: lag.oldest.unwrap_or_else(|| {
                        OffsetDateTime::now_utc()
                            - time::Duration::saturating_seconds_f64(
                                target.replay_lag().as_secs_f64(),
                            )
                    }),
                });
            }
            // From here on, only a reading taken after this point can tell.
            max_age = Duration::ZERO;
            if let Some(t) = token.filter(|t| !token_checked && t.0 >= reading.now.xmax) {
                token_checked = true;
                if !self.primary_has_had(t.0).await {
                    return Err(QueryError::UnknownToken(t.0.to_string()));
                }
            }
            let elapsed = started.elapsed();
            if elapsed >= wait {
                return Err(self.gave_up(target, &reading, lag, token, elapsed).await);
            }
            if !lag.behind.is_empty() && asked.is_none_or(|at| at.elapsed() >= ASK_EVERY) {
                self.refreshes.ask(&lag.behind);
                asked = Some(Instant::now());
            }
            // Look again after the next refresh here, or soon in any case
            // (the refresh may run on another instance, the view on a
            // replica).
            let pause = LOOK_EVERY.min(wait - elapsed);
            match generation.as_mut() {
                Some(rx) => {
                    let _ = tokio::time::timeout(pause, rx.changed()).await;
                }
                None => tokio::time::sleep(pause).await,
            }
        }
    }

    /// The error of a wait that ran out: the token is unknown, or names the
    /// views (or the target's replay) still behind it.
    async fn gave_up(
        &self,
        target: &ReadTarget,
        reading: &Reading,
        mut lag: Lag,
        token: Option<Token>,
        elapsed: Duration,
    ) -> QueryError {
        let token = token.map(|t| t.0).unwrap_or_default();
        if token >= reading.now.xmax && !self.primary_has_had(token).await {
            return QueryError::UnknownToken(token.to_string());
        }
        if lag.behind.is_empty() {
            lag.behind.push(format!("{} (replay)", target.name));
            lag.retry_after = target.replay_lag();
        }
        QueryError::NotYetFresh {
            views: lag.behind.join(", "),
            token: token.to_string(),
            waited_ms: elapsed.as_millis(),
            retry_after: lag.retry_after,
        }
    }

    /// Whether the primary has assigned `token` (a replica that is behind
    /// does not know the newest transaction ids). If the primary cannot
    /// tell, assume it has: "not yet" is the answer that asks the client to
    /// retry.
    async fn primary_has_had(&self, token: u64) -> bool {
        let check = async {
            let client = self.primary.get().await.ok()?;
            let row = client
                .query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
                .await
                .ok()?;
            column::<String>(&row, 0).ok()?.parse::<u64>().ok()
        };
        match tokio::time::timeout(Duration::from_secs(1), check).await {
            Ok(Some(xmax)) => token < xmax,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_what_committed_before_it_and_not_what_was_running() {
        let s = Snapshot::parse("100:105:101,103").unwrap();
        for (txid, seen) in [
            (99, true),
            (100, true),
            (101, false),
            (102, true),
            (103, false),
            (104, true),
            (105, false),
            (200, false),
        ] {
            assert_eq!(s.sees(txid), seen, "txid {txid}");
        }
        let empty = Snapshot::parse("7:7:").unwrap();
        assert!(empty.sees(6) && !empty.sees(7));
        assert!(Snapshot::parse("x:1:").is_none());
    }

    #[test]
    fn a_token_is_a_transaction_id_in_digits() {
        assert_eq!(Token::parse("12345"), Ok(Token(12345)));
        assert!(Token::parse("abc").is_err());
        assert!(Token::parse("-1").is_err());
        assert!(Token::parse("").is_err());
    }
}
