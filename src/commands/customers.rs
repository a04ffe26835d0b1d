//! Customers: `RegisterCustomer`, `ChangeCustomerDetails`.

use deadpool_postgres::Transaction;

use super::{CommandError, Entity, EntityAccepted};
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

const CUSTOMER: Entity = Entity {
    what: "customer",
    insert: include_str!("../../sql/commands/insert_customer.sql"),
    lock: include_str!("../../sql/commands/lock_customer.sql"),
    update: include_str!("../../sql/commands/change_customer_details.sql"),
};

#[tracing::instrument(skip_all, fields(customer_id = %cmd.id))]
pub async fn register(
    tx: &Transaction<'_>,
    cmd: RegisterCustomer,
) -> Result<EntityAccepted, CommandError> {
    let (name, email) = (cmd.name.as_str(), cmd.email.as_str());
    CUSTOMER.create(tx, &cmd.id, &[&name, &email]).await
}

#[tracing::instrument(skip_all, fields(customer_id = %cmd.id))]
pub async fn change_details(
    tx: &Transaction<'_>,
    cmd: ChangeCustomerDetails,
    expected_version: Option<i32>,
) -> Result<EntityAccepted, CommandError> {
    let name = cmd.name.as_ref().map(PersonName::as_str);
    let email = cmd.email.as_ref().map(Email::as_str);
    CUSTOMER
        .change(tx, &cmd.id, expected_version, &[&name, &email])
        .await
}
