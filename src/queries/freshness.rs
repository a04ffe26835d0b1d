//! Staleness and read-your-writes.
//!
//! `read.read_model_status.current_as_of` is the snapshot each view is known
//! to reflect. A command's token (its transaction id) is covered by a view
//! when `pg_visible_in_snapshot(token, current_as_of)`: exact even when
//! transactions commit out of order, which a max-sequence watermark is not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use super::targets::ReadTarget;
use super::QueryError;
use crate::read_models::RefreshRequests;

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

#[derive(Debug, Clone)]
pub(crate) struct Reading {
    at: Instant,
    views: std::collections::HashMap<String, ViewState>,
    /// The database's snapshot when read: a token at or past its xmax names
    /// no transaction yet.
    now: Snapshot,
}

/// The latest reading of every read model's freshness, shared by requests.
#[derive(Default)]
pub struct FreshnessCache {
    reading: tokio::sync::Mutex<Option<Arc<Reading>>>,
}

impl FreshnessCache {
    /// A reading no older than `max_age`.
    pub(crate) async fn read(
        &self,
        pool: &Pool,
        max_age: Duration,
    ) -> Result<Arc<Reading>, QueryError> {
        let mut slot = self.reading.lock().await;
        if let Some(r) = slot.as_ref().filter(|r| r.at.elapsed() <= max_age) {
            return Ok(Arc::clone(r));
        }
        let client = pool.get().await?;
        let stmt = client
            .prepare_cached(include_str!("../../sql/queries/read_model_freshness.sql"))
            .await?;
        let rows = client.query(&stmt, &[]).await?;
        let bad = |what: &str| QueryError::Internal(anyhow::anyhow!("unreadable snapshot {what}"));
        let mut views = std::collections::HashMap::new();
        let mut now = None;
        for row in &rows {
            let covers: String = row.get("current_as_of");
            views.insert(
                row.get::<_, String>("view_name"),
                ViewState {
                    covers: Snapshot::parse(&covers).ok_or_else(|| bad(&covers))?,
                    verified_at: row.get("verified_at"),
                    last_duration: row
                        .get::<_, Option<f64>>("last_duration_ms")
                        .filter(|ms| ms.is_finite() && *ms >= 0.0)
                        .map(|ms| Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0)),
                    consecutive_failures: row.get("consecutive_failures"),
                },
            );
            let text: String = row.get("now_snapshot");
            now = Some(Snapshot::parse(&text).ok_or_else(|| bad(&text))?);
        }
        let reading = Arc::new(Reading {
            at: Instant::now(),
            views,
            now: now.ok_or_else(|| {
                QueryError::Internal(anyhow::anyhow!(
                    "no freshness recorded; are the migrations applied?"
                ))
            })?,
        });
        *slot = Some(Arc::clone(&reading));
        Ok(reading)
    }
}

/// Wait until every view in `views` covers `token` (if any), for at most
/// `wait`, asking for an immediate refresh of the views that do not. With
/// no views, wait until `target` itself has the token's transaction (a
/// replica that has not replayed it yet). Returns how fresh the views are.
pub async fn await_views(
    target: &ReadTarget,
    primary: &Pool,
    requests: &RefreshRequests,
    views: &[&str],
    token: Option<Token>,
    wait: Duration,
) -> Result<Freshness, QueryError> {
    let started = Instant::now();
    let mut generation = requests.subscribe();
    // When we last asked for a refresh: ask again now and then, since a
    // request can land while another instance holds the view (Busy).
    let mut asked: Option<Instant> = None;
    // With less time than the cache lives, read afresh: a stale reading
    // would answer "not yet" for a token already covered.
    let mut max_age = CACHE_FOR.min(wait);
    // Whether the primary was asked about a token past the target's
    // horizon: one it has not assigned yet is a 400 at once, not after
    // the whole wait.
    let mut token_checked = false;
    loop {
        let reading = target.freshness.read(&target.pool, max_age).await?;
        let mut oldest: Option<OffsetDateTime> = None;
        let mut behind = Vec::new();
        // When a retry is likely to find the lagging views caught up.
        let mut retry_after = Duration::ZERO;
        for view in views {
            let state = reading.views.get(*view).ok_or_else(|| {
                QueryError::Internal(anyhow::anyhow!("no freshness recorded for {view}"))
            })?;
            oldest = Some(oldest.map_or(state.verified_at, |o| o.min(state.verified_at)));
            if token.is_some_and(|t| !state.covers.sees(t.0)) {
                behind.push(view.to_string());
                retry_after = retry_after.max(state.expected_refresh());
            }
        }
        let replayed = token.is_none_or(|t| reading.now.sees(t.0));
        let freshness = Freshness {
            // Views are as fresh as their last verification (on a replica,
            // as replayed); tables kept by triggers as the target itself.
            refreshed_at: oldest.unwrap_or_else(|| {
                OffsetDateTime::now_utc()
                    - time::Duration::saturating_seconds_f64(target.replay_lag().as_secs_f64())
            }),
        };
        if behind.is_empty() && replayed {
            return Ok(freshness);
        }
        // From here on, only a reading taken after this point can tell.
        max_age = Duration::ZERO;
        if let Some(t) = token.filter(|t| !token_checked && t.0 >= reading.now.xmax) {
            token_checked = true;
            if !primary_has_had(primary, t.0).await {
                return Err(QueryError::UnknownToken(t.0.to_string()));
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= wait {
            let token = token.map(|t| t.0).unwrap_or_default();
            if token >= reading.now.xmax && !primary_has_had(primary, token).await {
                return Err(QueryError::UnknownToken(token.to_string()));
            }
            if behind.is_empty() {
                behind.push(format!("{} (replay)", target.name));
                retry_after = target.replay_lag();
            }
            return Err(QueryError::NotYetFresh {
                views: behind.join(", "),
                token: token.to_string(),
                waited_ms: elapsed.as_millis(),
                retry_after,
            });
        }
        if !behind.is_empty() && asked.is_none_or(|at| at.elapsed() >= Duration::from_millis(250)) {
            requests.ask(&behind, false);
            asked = Some(Instant::now());
        }
        // Re-check after the next refresh here, or soon in any case (the
        // refresh may run on another instance, the view on a replica).
        let pause = Duration::from_millis(50).min(wait - elapsed);
        match generation.as_mut() {
            Some(rx) => {
                let _ = tokio::time::timeout(pause, rx.changed()).await;
            }
            None => tokio::time::sleep(pause).await,
        }
    }
}

/// Whether the primary has assigned `token` (a replica that is behind does
/// not know the newest transaction ids). If the primary cannot tell, assume
/// it has: "not yet" is the answer that asks the client to retry.
async fn primary_has_had(primary: &Pool, token: u64) -> bool {
    let check = async {
        let client = primary.get().await.ok()?;
        let row = client
            .query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
            .await
            .ok()?;
        row.get::<_, String>(0).parse::<u64>().ok()
    };
    match tokio::time::timeout(Duration::from_secs(1), check).await {
        Ok(Some(xmax)) => token < xmax,
        _ => true,
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
