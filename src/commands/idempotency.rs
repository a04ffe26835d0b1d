//! `Idempotency-Key`: a retry with the same key and request replays the first
//! answer; the same key with another request is refused.

use deadpool_postgres::{Pool, Transaction};
use sha2::{Digest, Sha256};

use super::{CommandError, Outcome};
use crate::db::{row_struct, FromRow};

/// SHA-256 over method, path and body: what makes two requests "the same".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(method: &str, path: &str, body: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        h.update([0]);
        h.update(body);
        Self(h.finalize().into())
    }
}

row_struct! {
    /// A claimed key: the fingerprint of the request that claimed it and,
    /// once that request committed, its answer.
    struct Stored {
        request_fingerprint: Vec<u8>,
        status_code: Option<i16>,
        response_body: Option<serde_json::Value>,
    }
}

/// Claim `key` for this transaction. `Some` is the stored answer to replay.
pub(super) async fn claim(
    tx: &Transaction<'_>,
    key: &str,
    fingerprint: &Fingerprint,
) -> Result<Option<Outcome>, CommandError> {
    let claim = tx
        .prepare_cached(include_str!("../../sql/commands/claim_idempotency_key.sql"))
        .await?;
    if tx.execute(&claim, &[&key, &&fingerprint.0[..]]).await? == 1 {
        return Ok(None);
    }
    let read = tx
        .prepare_cached(include_str!("../../sql/commands/read_idempotency_key.sql"))
        .await?;
    let stored = Stored::from_row(&tx.query_one(&read, &[&key]).await?)?;
    if stored.request_fingerprint != fingerprint.0 {
        return Err(CommandError::IdempotencyKeyReused);
    }
    match (stored.status_code, stored.response_body) {
        (Some(status), Some(body)) => Ok(Some(Outcome {
            status: u16::try_from(status).unwrap_or(200),
            body,
            replayed: true,
        })),
        _ => Err(CommandError::Internal(anyhow::anyhow!(
            "idempotency key {key:?} committed without a response"
        ))),
    }
}

pub(super) async fn store(
    tx: &Transaction<'_>,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), CommandError> {
    let stmt = tx
        .prepare_cached(include_str!(
            "../../sql/commands/store_idempotent_response.sql"
        ))
        .await?;
    let status = i16::try_from(status).unwrap_or(i16::MAX);
    tx.execute(&stmt, &[&key, &status, body]).await?;
    Ok(())
}

/// Keys forgotten per batch: small enough that a batch is a short
/// transaction, large enough that a pass costs few round trips.
pub const PRUNE_BATCH: i32 = 5_000;

/// Forget every key older than `retention_hours`, in batches of
/// [`PRUNE_BATCH`], each its own short transaction, until none is left: a
/// pass keeps up with any command rate, and never holds many row locks for
/// long. Keys that expire while it runs are left to the next pass, so a
/// pass ends even under load. Returns how many keys it forgot.
pub async fn prune_expired(pool: &Pool, retention_hours: i32) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    let cutoff = client
        .prepare_cached(include_str!("../../sql/commands/idempotency_cutoff.sql"))
        .await?;
    let cutoff: time::OffsetDateTime = client
        .query_one(&cutoff, &[&retention_hours])
        .await?
        .try_get(0)?;
    let batch = client
        .prepare_cached(include_str!(
            "../../sql/commands/prune_idempotency_keys.sql"
        ))
        .await?;
    let mut forgotten = 0;
    loop {
        let deleted = client.execute(&batch, &[&cutoff, &PRUNE_BATCH]).await?;
        forgotten += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(forgotten);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_has_the_same_fingerprint() {
        assert_eq!(
            Fingerprint::of("POST", "/commands/orders", b"{}"),
            Fingerprint::of("POST", "/commands/orders", b"{}")
        );
    }

    #[test]
    fn another_body_or_path_changes_the_fingerprint() {
        let a = Fingerprint::of("POST", "/commands/orders", b"{}");
        assert_ne!(a, Fingerprint::of("POST", "/commands/orders", b"{ }"));
        assert_ne!(a, Fingerprint::of("POST", "/commands/products", b"{}"));
    }

    #[test]
    fn path_and_body_boundaries_cannot_be_confused() {
        assert_ne!(
            Fingerprint::of("POST", "/a", b"b"),
            Fingerprint::of("POST", "/ab", b"")
        );
    }
}
