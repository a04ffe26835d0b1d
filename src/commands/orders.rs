//! Orders: `PlaceOrder` and the status commands (`ConfirmOrder`, `ShipOrder`,
//! `DeliverOrder`, `CancelOrder`, and the generic `ChangeOrderStatus`).

use std::collections::HashMap;

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::Transaction;
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use super::{check_version, CommandError, FieldError};
use crate::domain::{CancelReason, EntityId, Money, OrderStatus, Quantity};

/// One line of a new order.
#[derive(Debug, Clone)]
pub struct OrderLine {
    pub product_id: EntityId,
    pub quantity: Quantity,
    /// The price the client believes it pays; must equal the catalog price.
    pub expected_price: Option<Money>,
}

/// `POST /commands/orders`. Has at least one line (checked when parsed).
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub order_id: EntityId,
    pub customer_id: EntityId,
    pub lines: Vec<OrderLine>,
}

/// `POST /commands/orders/{id}/{confirm,ship,deliver,cancel,status}`.
#[derive(Debug, Clone)]
pub struct ChangeOrderStatus {
    pub order_id: EntityId,
    pub to: OrderStatus,
    /// Only for `cancelled`.
    pub reason: Option<CancelReason>,
}

/// What an order command answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderAccepted {
    pub order_id: String,
    /// Lowercase status after the command.
    pub status: String,
    /// Present when the order was placed: the exact sum of its lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub total: Option<Money>,
    /// The order's version after the command; send it back in `If-Match`.
    pub version: i32,
    /// The command's transaction id: pass it as `min_token` to read your write.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[tracing::instrument(skip_all, fields(order_id = %cmd.order_id))]
pub async fn place(tx: &Transaction<'_>, cmd: PlaceOrder) -> Result<OrderAccepted, CommandError> {
    let customer_exists = tx
        .prepare_cached(include_str!("../../sql/commands/customer_exists.sql"))
        .await?;
    let prices = tx
        .prepare_cached(include_str!("../../sql/commands/catalog_prices.sql"))
        .await?;
    let product_ids: Vec<&str> = cmd.lines.iter().map(|l| l.product_id.as_str()).collect();
    // Both lookups go out together: one round trip instead of two.
    let customer_id = cmd.customer_id.as_str();
    let customer_params: [&(dyn ToSql + Sync); 1] = [&customer_id];
    let price_params: [&(dyn ToSql + Sync); 1] = [&product_ids];
    let (customer, catalog) = tokio::try_join!(
        tx.query_one(&customer_exists, &customer_params),
        tx.query(&prices, &price_params),
    )?;
    let catalog: HashMap<String, Decimal> = catalog
        .into_iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Decimal>(1)))
        .collect();

    let mut errors = Vec::new();
    if !customer.get::<_, bool>(0) {
        errors.push(FieldError::new(
            "customer_id",
            format!("customer {:?} does not exist", cmd.customer_id.as_str()),
        ));
    }
    let mut total = Money::ZERO;
    let mut line_nos = Vec::with_capacity(cmd.lines.len());
    let mut quantities = Vec::with_capacity(cmd.lines.len());
    let mut unit_prices = Vec::with_capacity(cmd.lines.len());
    for (i, line) in cmd.lines.iter().enumerate() {
        let Some(price) = catalog.get(line.product_id.as_str()) else {
            errors.push(FieldError::new(
                format!("items[{i}].product_id"),
                format!("product {:?} does not exist", line.product_id.as_str()),
            ));
            continue;
        };
        let price = Money::from_decimal(*price)
            .map_err(|e| anyhow::anyhow!("catalog price out of range: {e}"))?;
        if let Some(expected) = line.expected_price {
            if expected != price {
                errors.push(FieldError::new(
                    format!("items[{i}].price"),
                    format!(
                        "product {:?} costs {price}, not {expected}; the catalog price at order time applies",
                        line.product_id.as_str()
                    ),
                ));
            }
        }
        match price
            .times(line.quantity.get())
            .and_then(|subtotal| total.checked_add(subtotal))
        {
            Some(t) => total = t,
            None => errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                "the order total would exceed 999999999999.99",
            )),
        }
        // At most MAX_LINES lines (checked when parsed), so this fits.
        line_nos.push(i as i16 + 1);
        quantities.push(line.quantity.get());
        unit_prices.push(price.amount());
    }
    if !errors.is_empty() {
        return Err(CommandError::Invalid(errors));
    }

    let stmt = tx
        .prepare_cached(include_str!("../../sql/commands/place_order.sql"))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &cmd.order_id.as_str(),
                &cmd.customer_id.as_str(),
                &total.amount(),
                &line_nos,
                &product_ids,
                &quantities,
                &unit_prices,
            ],
        )
        .await?
        .ok_or_else(|| CommandError::AlreadyExists {
            what: "order",
            id: cmd.order_id.to_string(),
        })?;
    Ok(OrderAccepted {
        order_id: cmd.order_id.to_string(),
        status: row.get(0),
        total: Some(total),
        version: row.get(1),
        updated_at: row.get(2),
        token: row.get(3),
    })
}

#[tracing::instrument(skip_all, fields(order_id = %cmd.order_id, to = %cmd.to))]
pub async fn change_status(
    tx: &Transaction<'_>,
    cmd: ChangeOrderStatus,
    expected_version: Option<i32>,
) -> Result<OrderAccepted, CommandError> {
    let lock = tx
        .prepare_cached(include_str!("../../sql/commands/lock_order.sql"))
        .await?;
    let current = tx
        .query_opt(&lock, &[&cmd.order_id.as_str()])
        .await?
        .ok_or_else(|| CommandError::NotFound {
            what: "order",
            id: cmd.order_id.to_string(),
        })?;
    let status: String = current.get(0);
    check_version(expected_version, current.get(1))?;
    let from = OrderStatus::parse(&status)
        .map_err(|e| anyhow::anyhow!("order {} has an unknown status: {e}", cmd.order_id))?;
    let to = from
        .transition(cmd.to)
        .map_err(|e| CommandError::Conflict(e.to_string()))?;
    let reason = match to {
        OrderStatus::Cancelled => cmd.reason.as_ref().map(CancelReason::as_str),
        _ => None,
    };
    let stmt = tx
        .prepare_cached(include_str!("../../sql/commands/change_order_status.sql"))
        .await?;
    let row = tx
        .query_one(&stmt, &[&cmd.order_id.as_str(), &to.as_str(), &reason])
        .await?;
    Ok(OrderAccepted {
        order_id: cmd.order_id.to_string(),
        status: row.get(0),
        total: None,
        version: row.get(1),
        updated_at: row.get(2),
        token: row.get(3),
    })
}
