//! Staleness and read-your-writes.
//!
//! `read.read_model_status.current_as_of` is the snapshot each view is known
//! to reflect. A command's token (its transaction id) is covered by a view
//! when `pg_visible_in_snapshot(token, current_as_of)`: exact even when
//! transactions commit out of order, which a max-sequence watermark is not.

use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use super::QueryError;
use crate::read_models::Refresher;

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

/// Wait until every view in `views` covers `token` (if any), for at most
/// `wait`, asking the refresher for an immediate refresh of the views that
/// do not. Returns how fresh the views are.
pub async fn await_views(
    pool: &Pool,
    refresher: Option<&Refresher>,
    views: &[&str],
    token: Option<Token>,
    wait: Duration,
) -> Result<Freshness, QueryError> {
    let started = Instant::now();
    let mut generation = refresher.map(|r| r.subscribe());
    // When we last asked for a refresh: ask again now and then, since a
    // request can land while another instance holds the view (Busy).
    let mut asked: Option<Instant> = None;
    loop {
        let (freshness, behind, future) = check(pool, views, token).await?;
        if behind.is_empty() {
            return Ok(freshness);
        }
        let elapsed = started.elapsed();
        if elapsed >= wait {
            if future {
                return Err(QueryError::UnknownToken(
                    token.map(|t| t.0.to_string()).unwrap_or_default(),
                ));
            }
            return Err(QueryError::NotYetFresh {
                views: behind.join(", "),
                token: token.map(|t| t.0.to_string()).unwrap_or_default(),
                waited_ms: elapsed.as_millis(),
            });
        }
        if asked.is_none_or(|at| at.elapsed() >= Duration::from_millis(250)) {
            if let Some(r) = refresher {
                for view in &behind {
                    r.request(view, false);
                }
            }
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

async fn check(
    pool: &Pool,
    views: &[&str],
    token: Option<Token>,
) -> Result<(Freshness, Vec<String>, bool), QueryError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/queries/read_model_freshness.sql"))
        .await?;
    let token_text = token.map(|t| t.0.to_string());
    let rows = client.query(&stmt, &[&views, &token_text]).await?;
    let mut oldest: Option<OffsetDateTime> = None;
    let mut behind = Vec::new();
    let mut future = false;
    for row in &rows {
        future |= row.get::<_, bool>("future");
        let verified: OffsetDateTime = row.get("verified_at");
        oldest = Some(oldest.map_or(verified, |o| o.min(verified)));
        if !row.get::<_, bool>("covers") {
            behind.push(row.get::<_, String>("view_name"));
        }
    }
    let refreshed_at = oldest.ok_or_else(|| {
        anyhow::anyhow!("no freshness recorded for {views:?}; are the migrations applied?")
    })?;
    Ok((Freshness { refreshed_at }, behind, future))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_a_transaction_id_in_digits() {
        assert_eq!(Token::parse("12345"), Ok(Token(12345)));
        assert!(Token::parse("abc").is_err());
        assert!(Token::parse("-1").is_err());
        assert!(Token::parse("").is_err());
    }
}
