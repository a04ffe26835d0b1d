//! Products: `AddProduct`, `ChangeProductPrice`.

use deadpool_postgres::Transaction;

use super::{CommandError, Entity, EntityAccepted};
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

const PRODUCT: Entity = Entity {
    what: "product",
    insert: include_str!("../../sql/commands/insert_product.sql"),
    lock: include_str!("../../sql/commands/lock_product.sql"),
    update: include_str!("../../sql/commands/change_product_price.sql"),
};

#[tracing::instrument(skip_all, fields(product_id = %cmd.id))]
pub async fn add(tx: &Transaction<'_>, cmd: AddProduct) -> Result<EntityAccepted, CommandError> {
    let (name, price) = (cmd.name.as_str(), cmd.price.amount());
    PRODUCT.create(tx, &cmd.id, &[&name, &price]).await
}

/// Applies to orders placed from now on; those placed keep their prices.
#[tracing::instrument(skip_all, fields(product_id = %cmd.id))]
pub async fn change_price(
    tx: &Transaction<'_>,
    cmd: ChangeProductPrice,
    expected_version: Option<i32>,
) -> Result<EntityAccepted, CommandError> {
    let price = cmd.price.amount();
    PRODUCT
        .change(tx, &cmd.id, expected_version, &[&price])
        .await
}
