//! The write side: one file per aggregate, each command a function that runs
//! inside the transaction [`execute`] opens.
//!
//! Commands only ever touch the `write` schema. Each one is a single
//! transaction: the correlation id is set for the event-log triggers, the
//! idempotency key (if any) is claimed, the command runs, its response is
//! stored under the key, and everything commits together or not at all.

pub mod customers;
mod error;
pub mod idempotency;
pub mod orders;
pub mod products;

use deadpool_postgres::{Pool, Transaction};
use serde::Serialize;

pub use error::{CommandError, FieldError};
pub use idempotency::Fingerprint;

/// What every command carries besides its body.
#[derive(Debug, Clone, Default)]
pub struct CommandMeta {
    /// The request id; stored with every event the command causes.
    pub correlation_id: String,
    /// `Idempotency-Key` and the fingerprint of the request it came with.
    pub idempotency: Option<(String, Fingerprint)>,
    /// `If-Match`: the version the client last saw.
    pub expected_version: Option<i32>,
}

/// A command's answer: the status its caller answers with and a JSON body,
/// stored verbatim for idempotent replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    pub body: serde_json::Value,
    /// True when this is the stored answer to an earlier identical request.
    pub replayed: bool,
}

/// Run `command` in one transaction with idempotency and correlation.
/// `status` is the caller's (the HTTP layer's) answer on success, stored
/// with the body so that a replay answers the same.
pub async fn execute<T, F>(
    pool: &Pool,
    meta: &CommandMeta,
    status: u16,
    command: F,
) -> Result<Outcome, CommandError>
where
    T: Serialize,
    F: AsyncFnOnce(&Transaction<'_>) -> Result<T, CommandError>,
{
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(include_str!("../../sql/commands/set_correlation_id.sql"))
        .await?;
    // The correlation id goes out in the same round trip as the command's
    // first statements: tokio-postgres sends requests in the order they are
    // first polled, `try_join` polls its first future first, and the server
    // runs them in order. So it is set before any trigger reads it, at no
    // extra round trip.
    let correlate = async {
        tx.execute(&stmt, &[&meta.correlation_id])
            .await
            .map_err(CommandError::from)
    };
    let accepted = match &meta.idempotency {
        Some((key, fingerprint)) => {
            let (_, stored) =
                futures::future::try_join(correlate, idempotency::claim(&tx, key, fingerprint))
                    .await?;
            if let Some(stored) = stored {
                // Nothing of ours to keep: roll back by dropping the transaction.
                return Ok(stored);
            }
            command(&tx).await?
        }
        None => futures::future::try_join(correlate, command(&tx)).await?.1,
    };
    let body = serde_json::to_value(&accepted)
        .map_err(|e| CommandError::Internal(anyhow::anyhow!("response not serializable: {e}")))?;
    if let Some((key, _)) = &meta.idempotency {
        idempotency::store(&tx, key, status, &body).await?;
    }
    tx.commit().await?;
    Ok(Outcome {
        status,
        body,
        replayed: false,
    })
}

/// Compare an `If-Match` version with the current one.
fn check_version(expected: Option<i32>, actual: i32) -> Result<(), CommandError> {
    match expected {
        Some(expected) if expected != actual => {
            Err(CommandError::VersionMismatch { expected, actual })
        }
        _ => Ok(()),
    }
}
