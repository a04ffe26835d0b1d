//! Where queries read.
//!
//! `READ_DATABASE_URL` may list several databases, usually streaming
//! replicas (the primary itself may be one of them). Requests take them in
//! turn. A target that fails is set aside at once and the request retried
//! on the next one; when none answers, queries read the primary
//! (`DATABASE_URL`) until one comes back. A monitor probes every listed
//! target each second: it brings targets back and measures replay lag.
//!
//! A read runs on one target from start to end: each replica has replayed
//! its own amount of the primary's history, so a `min_token` wait and the
//! read it guards run on the same target. What a failed read means for the
//! target (set it aside, try the next, or answer) is the reader's to say
//! ([`ReadFailure`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::db::{self, row_struct, FromRow};

/// How often the monitor probes each listed target.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One database the query side can read.
pub struct ReadTarget {
    /// `replica-1`, `replica-2`, ... in the order listed, or `primary`.
    pub name: String,
    /// The connection string without its password.
    url: String,
    pub pool: Pool,
    /// The monitor's own connection, so that a busy pool is not taken for
    /// a dead server (and probes are not counted as reads).
    probe_pool: Pool,
    /// The primary is the last resort: never set aside.
    fallback: bool,
    up: AtomicBool,
    /// Counts set-asides, so that a probe that began before one does not
    /// undo it.
    set_asides: AtomicUsize,
    health: Mutex<Health>,
}

row_struct! {
    /// What the last probe (or failed request) found.
    #[derive(Debug, Clone, Default, Serialize)]
    pub struct Health {
        /// Whether the target is a standby (`pg_is_in_recovery()`).
        pub standby: Option<bool>,
        /// For a standby: whether it is streaming from its primary now. One
        /// that is not falls behind without limit; its replay lag says by
        /// how much.
        pub streaming: Option<bool>,
        /// How far a standby's replay is behind what it has received, in
        /// seconds (0 when it has replayed everything).
        pub replay_lag_seconds: Option<f64>,
    }
    default {
        /// Why it was set aside, if it was.
        pub error: Option<String>,
    }
}

impl ReadTarget {
    fn new(name: String, url: &str, pool_size: usize, fallback: bool) -> anyhow::Result<Self> {
        Ok(Self {
            pool: db::read_pool(url, pool_size, "pgcqrs-queries")?,
            probe_pool: db::pool(url, 1, "pgcqrs-probe")?,
            url: db::redact(url),
            name,
            fallback,
            up: AtomicBool::new(true),
            set_asides: AtomicUsize::new(0),
            health: Mutex::new(Health::default()),
        })
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Replay lag of a standby as last measured (zero for a primary; also
    /// zero when unknown: a standby that has replayed nothing since it
    /// started, which `/readyz` reports as a null lag).
    pub fn replay_lag(&self) -> Duration {
        let lag = self.health().replay_lag_seconds.unwrap_or(0.0);
        Duration::try_from_secs_f64(lag).unwrap_or_default()
    }

    /// Whether the last probe found a standby that is not streaming: it
    /// receives nothing new, so a `min_token` wait there is pointless.
    fn cut_off(&self) -> bool {
        self.health().streaming == Some(false)
    }

    /// Store under the health lock, so that a probe and a set-aside cannot
    /// interleave their two steps.
    fn store_health(&self, slot: &mut Health, up: bool, health: Health) {
        self.up.store(up, Ordering::Relaxed);
        metrics::gauge!("pgcqrs_read_target_up", "target" => self.name.clone()).set(if up {
            1.0
        } else {
            0.0
        });
        if let Some(lag) = health.replay_lag_seconds {
            metrics::gauge!("pgcqrs_read_target_replay_lag_seconds", "target" => self.name.clone())
                .set(lag);
        }
        *slot = health;
    }

    /// Bring the target back after a good probe that began when
    /// `set_asides` set-asides had happened, unless another happened since
    /// (the request's news is the later one).
    fn probed_up(&self, set_asides: usize, health: Health) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        if self.set_asides.load(Ordering::SeqCst) != set_asides {
            return;
        }
        if !self.is_up() {
            tracing::info!(target_name = %self.name, url = %self.url, "read target answers again");
        }
        self.store_health(&mut h, true, health);
    }

    fn set_aside(&self, error: &str) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        self.set_asides.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::Relaxed) {
            tracing::warn!(target_name = %self.name, url = %self.url, %error, "read target unavailable; reading elsewhere until it answers again");
        }
        let health = Health {
            error: Some(error.to_owned()),
            ..h.clone()
        };
        self.store_health(&mut h, false, health);
    }

    /// The monitor's check.
    async fn probe(&self) -> Result<Health, String> {
        let check = async {
            let client = self.probe_pool.get().await.map_err(|e| e.to_string())?;
            let row = client
                .query_one(include_str!("../../sql/queries/read_target_probe.sql"), &[])
                .await
                .map_err(|e| e.to_string())?;
            Health::from_row(&row).map_err(|e| e.to_string())
        };
        tokio::time::timeout(PROBE_TIMEOUT, check)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {} s",
                    PROBE_TIMEOUT.as_secs_f64()
                ))
            })
    }
}

/// What a failed read on a target that is not the last means for the rest
/// of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failover {
    /// The target is unavailable: set it aside (for this reason) and read
    /// on the next one.
    SetAside(String),
    /// The target is fine but could not answer this read (a standby's
    /// replay conflict, a wait it could not satisfy in time): read on the
    /// next one, keeping this one.
    TryNext,
    /// The error is the answer, wherever the read runs.
    Answer,
}

/// An error of a read that [`ReadTargets::read`] may retry elsewhere.
pub trait ReadFailure {
    /// What the error means for the target it came from.
    fn failover(&self) -> Failover;
    /// The error when no target is left to try.
    fn no_target() -> Self;
}

/// The read targets of one instance: those listed, then the primary.
pub struct ReadTargets {
    listed: Vec<Arc<ReadTarget>>,
    primary: Arc<ReadTarget>,
    next: AtomicUsize,
}

/// For `/readyz`: where reads go now, and each target's health.
#[derive(Debug, Clone, Serialize)]
pub struct ReadsReport {
    /// `listed` (READ_DATABASE_URL answers), `primary` (nothing listed),
    /// or `primary-fallback` (targets are listed but none answers).
    pub reading_from: &'static str,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// The connection string without its password.
    pub url: String,
    pub up: bool,
    #[serde(flatten)]
    pub health: Health,
}

impl ReadTargets {
    /// Read `read_urls` (a comma-separated list; unset or empty: the
    /// primary only), falling back to `primary_url`.
    pub fn new(
        primary_url: &str,
        read_urls: Option<&str>,
        pool_size: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let listed = split_urls(read_urls.unwrap_or_default())
            .iter()
            .enumerate()
            .map(|(i, url)| {
                ReadTarget::new(format!("replica-{}", i + 1), url, pool_size, false)
                    .map(Arc::new)
                    .with_context(|| format!("READ_DATABASE_URL, entry {}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let primary = Arc::new(ReadTarget::new(
            "primary".into(),
            primary_url,
            pool_size,
            true,
        )?);
        for t in listed.iter().chain([&primary]) {
            metrics::gauge!("pgcqrs_read_target_up", "target" => t.name.clone()).set(1.0);
            metrics::counter!("pgcqrs_read_failovers_total", "target" => t.name.clone())
                .increment(0);
        }
        Ok(Arc::new(Self {
            listed,
            primary,
            next: AtomicUsize::new(0),
        }))
    }

    /// Every target, the primary last.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ReadTarget>> {
        self.listed.iter().chain([&self.primary])
    }

    /// The targets to try for one request: the listed ones that answer,
    /// starting with the next in turn, then the primary.
    fn candidates(&self) -> Vec<Arc<ReadTarget>> {
        let n = self.listed.len();
        let start = if n > 1 {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        } else {
            0
        };
        let mut out: Vec<Arc<ReadTarget>> = (0..n)
            .map(|i| &self.listed[(start + i) % n])
            .filter(|t| t.is_up())
            .cloned()
            .collect();
        out.push(Arc::clone(&self.primary));
        out
    }

    /// Run `read` on a target; if it fails there, do what the error's
    /// [`ReadFailure::failover`] says: set the target aside and run `read`
    /// again on the next one, or only run it again there, or answer. The
    /// last target's answer stands. Reads are side-effect free, so a retry
    /// is always safe.
    ///
    /// `until` is the end of a `min_token` wait, if the read has one: a
    /// standby that is not streaming is skipped, and every target but the
    /// last gets half of what is left, so the next one still has time. The
    /// read is given the deadline of its attempt.
    pub async fn read<T, E, F, Fut>(&self, until: Option<Instant>, read: F) -> Result<T, E>
    where
        E: ReadFailure,
        F: Fn(Arc<ReadTarget>, Option<Instant>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut candidates = self
            .candidates()
            .into_iter()
            .filter(|t| until.is_none() || t.fallback || !t.cut_off())
            .peekable();
        loop {
            let Some(target) = candidates.next() else {
                return Err(E::no_target());
            };
            let last = target.fallback || candidates.peek().is_none();
            let attempt_until = until.map(|until| {
                let now = Instant::now();
                if last {
                    until
                } else {
                    now + until.saturating_duration_since(now) / 2
                }
            });
            let result = read(Arc::clone(&target), attempt_until).await;
            let failover = match &result {
                Err(e) if !last => e.failover(),
                _ => Failover::Answer,
            };
            match failover {
                Failover::SetAside(e) => {
                    metrics::counter!("pgcqrs_read_failovers_total", "target" => target.name.clone())
                        .increment(1);
                    target.set_aside(&e);
                }
                Failover::TryNext => {}
                Failover::Answer => return result,
            }
            if let Some(next) = candidates.peek() {
                tracing::debug!(from = %target.name, to = %next.name, "trying a read on the next target");
            }
        }
    }

    /// Probe every listed target now.
    pub async fn probe(&self) {
        let probes = self.listed.iter().map(|t| async move {
            let set_asides = t.set_asides.load(Ordering::SeqCst);
            match t.probe().await {
                Ok(health) => t.probed_up(set_asides, health),
                Err(e) => t.set_aside(&e),
            }
        });
        futures::future::join_all(probes).await;
    }

    /// Probe the listed targets every second until `stop` is cancelled.
    pub async fn monitor(self: Arc<Self>, stop: CancellationToken) {
        if self.listed.is_empty() {
            return;
        }
        loop {
            self.probe().await;
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Whether a listed target (not the fallback) answers.
    pub fn replica_up(&self) -> bool {
        self.listed.iter().any(|t| t.is_up())
    }

    /// `listed`, `primary` (nothing listed) or `primary-fallback`.
    fn reading_from(&self) -> &'static str {
        if self.listed.is_empty() {
            "primary"
        } else if self.replica_up() {
            "listed"
        } else {
            "primary-fallback"
        }
    }

    /// Set `pgcqrs_read_fallback_to_primary` (at scrape time).
    pub fn record_fallback(&self) {
        let fallback = self.reading_from() == "primary-fallback";
        metrics::gauge!("pgcqrs_read_fallback_to_primary").set(f64::from(u8::from(fallback)));
    }

    pub fn report(&self) -> ReadsReport {
        let reading_from = self.reading_from();
        ReadsReport {
            reading_from,
            targets: self
                .all()
                .map(|t| TargetReport {
                    name: t.name.clone(),
                    url: t.url.clone(),
                    up: t.is_up(),
                    health: t.health(),
                })
                .collect(),
        }
    }

    /// Close every pool (at shutdown).
    pub fn close(&self) {
        for t in self.all() {
            t.pool.close();
            t.probe_pool.close();
        }
    }
}

/// Split a comma-separated list of connection URLs. A comma inside one URL
/// (a multi-host URL such as `postgres://a,b/db`) does not start a new
/// entry: only a comma followed by `postgres://` or `postgresql://` does.
/// A `key=value` connection string can stand alone, not in a list.
pub fn split_urls(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in list.split(',') {
        let trimmed = piece.trim();
        let starts_url = trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://");
        match out.last_mut() {
            Some(last) if !starts_url => {
                last.push(',');
                last.push_str(piece);
            }
            _ if trimmed.is_empty() => {}
            _ => out.push(trimmed.to_owned()),
        }
    }
    out.into_iter()
        .map(|u| u.trim().trim_end_matches(',').trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split_urls;

    #[test]
    fn a_list_splits_at_each_url_but_not_inside_a_multi_host_url() {
        assert_eq!(
            split_urls("postgres://a/db, postgresql://b:5433/db"),
            ["postgres://a/db", "postgresql://b:5433/db"]
        );
        assert_eq!(
            split_urls("postgres://a:1,b:2/db,postgres://c/db"),
            ["postgres://a:1,b:2/db", "postgres://c/db"]
        );
        assert_eq!(
            split_urls("host=a dbname=x"),
            ["host=a dbname=x"],
            "a key=value string is one entry"
        );
        assert!(split_urls("").is_empty());
        assert!(split_urls(" , ").is_empty());
        assert_eq!(
            split_urls("postgres://a/db,,postgres://b/db"),
            ["postgres://a/db", "postgres://b/db"]
        );
    }
}
