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

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::{Pool, Transaction};
use serde::Serialize;

pub use error::{CommandError, FieldError};
pub use idempotency::Fingerprint;

use crate::db::{row_struct, FromRow};
use crate::domain::EntityId;

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

/// Place an order and answer with `status`: in one statement when no
/// `Idempotency-Key` needs claiming in the same transaction, else (or when
/// that statement wrote nothing: a check failed, or the id is taken)
/// through [`execute`], whose checks say what failed.
pub async fn place_order(
    pool: &Pool,
    meta: &CommandMeta,
    status: u16,
    cmd: orders::PlaceOrder,
) -> Result<Outcome, CommandError> {
    if meta.idempotency.is_none() {
        let client = pool.get().await?;
        if let Some(accepted) = orders::place_at_once(&client, &meta.correlation_id, &cmd).await? {
            let body = serde_json::to_value(&accepted).map_err(|e| {
                CommandError::Internal(anyhow::anyhow!("response not serializable: {e}"))
            })?;
            return Ok(Outcome {
                status,
                body,
                replayed: false,
            });
        }
    }
    execute(pool, meta, status, async |tx| orders::place(tx, cmd).await).await
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

/// A statement's parameters.
type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Run `sql`, an `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING ...`
/// creating `what` `id`: no row back means the id is taken.
async fn insert_new<T: FromRow>(
    tx: &Transaction<'_>,
    sql: &str,
    params: &Params<'_>,
    what: &'static str,
    id: &EntityId,
) -> Result<T, CommandError> {
    let stmt = tx.prepare_cached(sql).await?;
    match tx.query_opt(&stmt, params).await? {
        Some(row) => Ok(T::from_row(&row)?),
        None => Err(CommandError::AlreadyExists {
            what,
            id: id.to_string(),
        }),
    }
}

/// A row locked for a change: what `If-Match` is checked against.
trait Locked: FromRow {
    fn version(&self) -> i32;
}

/// Lock `what` `id` with `sql` (a `SELECT ... FOR UPDATE` by id) and check
/// `If-Match` against its version.
async fn lock<T: Locked>(
    tx: &Transaction<'_>,
    sql: &str,
    what: &'static str,
    id: &EntityId,
    expected_version: Option<i32>,
) -> Result<T, CommandError> {
    let stmt = tx.prepare_cached(sql).await?;
    let Some(row) = tx.query_opt(&stmt, &[&id.as_str()]).await? else {
        return Err(CommandError::NotFound {
            what,
            id: id.to_string(),
        });
    };
    let locked = T::from_row(&row)?;
    check_version(expected_version, locked.version())?;
    Ok(locked)
}

/// Run `sql`, which answers exactly one row.
async fn query_one<T: FromRow>(
    tx: &Transaction<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<T, CommandError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(T::from_row(&tx.query_one(&stmt, params).await?)?)
}

/// A customer or a product: created under a new id, changed under
/// `If-Match`. Its statements take the id first.
struct Entity {
    what: &'static str,
    /// `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING version, token`.
    insert: &'static str,
    /// `SELECT version ... FOR UPDATE`.
    lock: &'static str,
    /// `UPDATE ... RETURNING version, token`.
    update: &'static str,
}

/// `id` first, then `params`: how an entity's statements take them.
fn id_first<'a>(id: &'a &'a str, params: &Params<'a>) -> Vec<&'a (dyn ToSql + Sync)> {
    std::iter::once(id as &(dyn ToSql + Sync))
        .chain(params.iter().copied())
        .collect()
}

row_struct! {
    /// The version of a customer or product, locked for a change.
    struct Version {
        version: i32,
    }
}

impl Locked for Version {
    fn version(&self) -> i32 {
        self.version
    }
}

row_struct! {
    /// What a statement writing a customer or product returns.
    struct Written {
        version: i32,
        token: String,
    }
}

/// What a command on a customer or product answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntityAccepted {
    pub id: String,
    /// The entity's version after the command; send it back in `If-Match`.
    pub version: i32,
    /// The command's transaction id: pass it as `min_token` to read your write.
    pub token: String,
}

impl Entity {
    /// Create `id` with the other columns `params`.
    async fn create(
        &self,
        tx: &Transaction<'_>,
        id: &EntityId,
        params: &Params<'_>,
    ) -> Result<EntityAccepted, CommandError> {
        let id_param = id.as_str();
        let params = id_first(&id_param, params);
        let written = insert_new(tx, self.insert, &params, self.what, id).await?;
        Ok(self.accepted(id, written))
    }

    /// Lock `id`, check `If-Match`, then update it with `params`.
    async fn change(
        &self,
        tx: &Transaction<'_>,
        id: &EntityId,
        expected_version: Option<i32>,
        params: &Params<'_>,
    ) -> Result<EntityAccepted, CommandError> {
        lock::<Version>(tx, self.lock, self.what, id, expected_version).await?;
        let id_param = id.as_str();
        let written = query_one(tx, self.update, &id_first(&id_param, params)).await?;
        Ok(self.accepted(id, written))
    }

    fn accepted(&self, id: &EntityId, written: Written) -> EntityAccepted {
        EntityAccepted {
            id: id.to_string(),
            version: written.version,
            token: written.token,
        }
    }
}
