//! Customers: `RegisterCustomer`, `ChangeCustomerDetails`.

use deadpool_postgres::Transaction;
use serde::Serialize;

use super::{check_version, CommandError};
use crate::domain::{Email, EntityId, PersonName};

/// `POST /commands/customers`.
#[derive(Debug, Clone)]
pub struct RegisterCustomer {
    pub id: EntityId,
    pub name: PersonName,
    pub email: Email,
}

/// `POST /commands/customers/{id}/change-details`: at least one of the two.
#[derive(Debug, Clone)]
pub struct ChangeCustomerDetails {
    pub id: EntityId,
    pub name: Option<PersonName>,
    pub email: Option<Email>,
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

#[tracing::instrument(skip_all, fields(customer_id = %cmd.id))]
pub async fn register(
    tx: &Transaction<'_>,
    cmd: RegisterCustomer,
) -> Result<EntityAccepted, CommandError> {
    let stmt = tx
        .prepare_cached(include_str!("../../sql/commands/insert_customer.sql"))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[&cmd.id.as_str(), &cmd.name.as_str(), &cmd.email.as_str()],
        )
        .await?
        .ok_or_else(|| CommandError::AlreadyExists {
            what: "customer",
            id: cmd.id.to_string(),
        })?;
    Ok(EntityAccepted {
        id: cmd.id.to_string(),
        version: row.get(0),
        token: row.get(1),
    })
}

#[tracing::instrument(skip_all, fields(customer_id = %cmd.id))]
pub async fn change_details(
    tx: &Transaction<'_>,
    cmd: ChangeCustomerDetails,
    expected_version: Option<i32>,
) -> Result<EntityAccepted, CommandError> {
    let lock = tx
        .prepare_cached(include_str!("../../sql/commands/lock_customer.sql"))
        .await?;
    let current = tx
        .query_opt(&lock, &[&cmd.id.as_str()])
        .await?
        .ok_or_else(|| CommandError::NotFound {
            what: "customer",
            id: cmd.id.to_string(),
        })?;
    check_version(expected_version, current.get(0))?;
    let stmt = tx
        .prepare_cached(include_str!(
            "../../sql/commands/change_customer_details.sql"
        ))
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &cmd.id.as_str(),
                &cmd.name.as_ref().map(PersonName::as_str),
                &cmd.email.as_ref().map(Email::as_str),
            ],
        )
        .await?;
    Ok(EntityAccepted {
        id: cmd.id.to_string(),
        version: row.get(0),
        token: row.get(1),
    })
}
