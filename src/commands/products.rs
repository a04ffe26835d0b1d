//! Products: `AddProduct`, `ChangeProductPrice`.

use deadpool_postgres::Transaction;

use super::customers::EntityAccepted;
use super::{check_version, CommandError};
use crate::domain::{EntityId, Money, ProductName};

/// `POST /commands/products`.
#[derive(Debug, Clone)]
pub struct AddProduct {
    pub id: EntityId,
    pub name: ProductName,
    pub price: Money,
}

/// `POST /commands/products/{id}/change-price`: applies to future orders only.
#[derive(Debug, Clone)]
pub struct ChangeProductPrice {
    pub id: EntityId,
    pub price: Money,
}

#[tracing::instrument(skip_all, fields(product_id = %cmd.id))]
pub async fn add(tx: &Transaction<'_>, cmd: AddProduct) -> Result<EntityAccepted, CommandError> {
    let stmt = tx
        .prepare_cached(include_str!("../../sql/commands/insert_product.sql"))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[&cmd.id.as_str(), &cmd.name.as_str(), &cmd.price.amount()],
        )
        .await?
        .ok_or_else(|| CommandError::AlreadyExists {
            what: "product",
            id: cmd.id.to_string(),
        })?;
    Ok(EntityAccepted {
        id: cmd.id.to_string(),
        version: row.get(0),
        token: row.get(1),
    })
}

#[tracing::instrument(skip_all, fields(product_id = %cmd.id))]
pub async fn change_price(
    tx: &Transaction<'_>,
    cmd: ChangeProductPrice,
    expected_version: Option<i32>,
) -> Result<EntityAccepted, CommandError> {
    let lock = tx
        .prepare_cached(include_str!("../../sql/commands/lock_product.sql"))
        .await?;
    let current = tx
        .query_opt(&lock, &[&cmd.id.as_str()])
        .await?
        .ok_or_else(|| CommandError::NotFound {
            what: "product",
            id: cmd.id.to_string(),
        })?;
    check_version(expected_version, current.get(0))?;
    let stmt = tx
        .prepare_cached(include_str!("../../sql/commands/change_product_price.sql"))
        .await?;
    let row = tx
        .query_one(&stmt, &[&cmd.id.as_str(), &cmd.price.amount()])
        .await?;
    Ok(EntityAccepted {
        id: cmd.id.to_string(),
        version: row.get(0),
        token: row.get(1),
    })
}
