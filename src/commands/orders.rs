//! Orders: `PlaceOrder` and the status commands (`ConfirmOrder`, `ShipOrder`,
//! `DeliverOrder`, `CancelOrder`, and the generic `ChangeOrderStatus`).

use std::collections::HashMap;

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::Transaction;
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use super::{insert_new, lock, query_one, CommandError, FieldError, Locked};
use crate::db::{column, row_struct, FromRow};
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

row_struct! {
    /// What a statement writing an order returns.
    struct OrderWritten {
        status: String,
        version: i32,
        updated_at: OffsetDateTime,
        token: String,
    }
}

impl OrderAccepted {
    fn new(order_id: &EntityId, total: Option<Money>, written: OrderWritten) -> Self {
        OrderAccepted {
            order_id: order_id.to_string(),
            status: written.status,
            total,
            version: written.version,
            token: written.token,
            updated_at: written.updated_at,
        }
    }
}

row_struct! {
    /// A product's price in the catalog now.
    struct CatalogPrice {
        id: String,
        price: Decimal,
    }
}

/// An order's lines at catalog prices, as `place_order.sql` takes them.
#[derive(Default)]
struct PricedLines {
    total: Money,
    line_nos: Vec<i16>,
    quantities: Vec<i32>,
    unit_prices: Vec<Decimal>,
}

#[tracing::instrument(skip_all, fields(order_id = %cmd.order_id))]
pub async fn place(tx: &Transaction<'_>, cmd: PlaceOrder) -> Result<OrderAccepted, CommandError> {
    let product_ids: Vec<&str> = cmd.lines.iter().map(|l| l.product_id.as_str()).collect();
    let (customer_exists, catalog) = look_up(tx, cmd.customer_id.as_str(), &product_ids).await?;
    let mut errors = Vec::new();
    if !customer_exists {
        errors.push(FieldError::new(
            "customer_id",
            format!("customer {:?} does not exist", cmd.customer_id.as_str()),
        ));
    }
    let priced = price_lines(&cmd.lines, &catalog, &mut errors)?;
    if !errors.is_empty() {
        return Err(CommandError::Invalid(errors));
    }
    let written = insert_new(
        tx,
        include_str!("../../sql/commands/place_order.sql"),
        &[
            &cmd.order_id.as_str(),
            &cmd.customer_id.as_str(),
            &priced.total.amount(),
            &priced.line_nos,
            &product_ids,
            &priced.quantities,
            &priced.unit_prices,
        ],
        "order",
        &cmd.order_id,
    )
    .await?;
    Ok(OrderAccepted::new(
        &cmd.order_id,
        Some(priced.total),
        written,
    ))
}

row_struct! {
    /// What placing an order in one statement returns.
    struct OrderPlaced {
        status: String,
        version: i32,
        updated_at: OffsetDateTime,
        token: String,
        total: Decimal,
    }
}

/// Place `cmd` in one statement, its own transaction: one round trip
/// (`place_order_at_once.sql`). `None` when it wrote nothing, because a
/// check failed or the id is taken: [`place`] then goes the long way and
/// says which.
#[tracing::instrument(skip_all, fields(order_id = %cmd.order_id))]
pub async fn place_at_once(
    client: &deadpool_postgres::Client,
    correlation_id: &str,
    cmd: &PlaceOrder,
) -> Result<Option<OrderAccepted>, CommandError> {
    let stmt = client
        .prepare_cached(include_str!("../../sql/commands/place_order_at_once.sql"))
        .await?;
    // At most MAX_LINES lines (checked when parsed), so these fit.
    let line_nos: Vec<i16> = (1..=cmd.lines.len() as i16).collect();
    let product_ids: Vec<&str> = cmd.lines.iter().map(|l| l.product_id.as_str()).collect();
    let quantities: Vec<i32> = cmd.lines.iter().map(|l| l.quantity.get()).collect();
    let expected: Vec<Option<Decimal>> = cmd
        .lines
        .iter()
        .map(|l| l.expected_price.map(|p| p.amount()))
        .collect();
    let params: [&(dyn ToSql + Sync); 7] = [
        &cmd.order_id.as_str(),
        &cmd.customer_id.as_str(),
        &line_nos,
        &product_ids,
        &quantities,
        &expected,
        &correlation_id,
    ];
    let Some(row) = client.query_opt(&stmt, &params).await? else {
        return Ok(None);
    };
    let placed = OrderPlaced::from_row(&row)?;
    let total = Money::from_decimal(placed.total)
        .map_err(|e| anyhow::anyhow!("order total out of range: {e}"))?;
    Ok(Some(OrderAccepted {
        order_id: cmd.order_id.to_string(),
        status: placed.status,
        total: Some(total),
        version: placed.version,
        token: placed.token,
        updated_at: placed.updated_at,
    }))
}

/// Whether the customer exists, and the catalog price of each product that
/// does: both lookups go out together, one round trip instead of two.
async fn look_up(
    tx: &Transaction<'_>,
    customer_id: &str,
    product_ids: &[&str],
) -> Result<(bool, HashMap<String, Decimal>), CommandError> {
    let (customer_exists, prices) = tokio::try_join!(
        tx.prepare_cached(include_str!("../../sql/commands/customer_exists.sql")),
        tx.prepare_cached(include_str!("../../sql/commands/catalog_prices.sql")),
    )?;
    let customer_params: [&(dyn ToSql + Sync); 1] = [&customer_id];
    let price_params: [&(dyn ToSql + Sync); 1] = [&product_ids];
    let (customer, catalog) = tokio::try_join!(
        tx.query_one(&customer_exists, &customer_params),
        tx.query(&prices, &price_params),
    )?;
    let catalog = CatalogPrice::from_rows(&catalog)?
        .into_iter()
        .map(|p| (p.id, p.price))
        .collect();
    Ok((column(&customer, 0)?, catalog))
}

/// Price each line at `catalog`, adding a field error for each unknown
/// product, price the client expected in vain, or total out of range.
fn price_lines(
    lines: &[OrderLine],
    catalog: &HashMap<String, Decimal>,
    errors: &mut Vec<FieldError>,
) -> Result<PricedLines, CommandError> {
    let mut priced = PricedLines::default();
    for (i, line) in lines.iter().enumerate() {
        let Some(price) = catalog.get(line.product_id.as_str()) else {
            errors.push(FieldError::new(
                format!("items[{i}].product_id"),
                format!("product {:?} does not exist", line.product_id.as_str()),
            ));
            continue;
        };
        let price = Money::from_decimal(*price)
            .map_err(|e| anyhow::anyhow!("catalog price out of range: {e}"))?;
        if let Some(expected) = line.expected_price.filter(|e| *e != price) {
            errors.push(FieldError::new(
                format!("items[{i}].price"),
                format!(
                    "product {:?} costs {price}, not {expected}; the catalog price at order time applies",
                    line.product_id.as_str()
                ),
            ));
        }
        match price
            .times(line.quantity.get())
            .and_then(|subtotal| priced.total.checked_add(subtotal))
        {
            Some(t) => priced.total = t,
            None => errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                "the order total would exceed 999999999999.99",
            )),
        }
        // At most MAX_LINES lines (checked when parsed), so this fits.
        priced.line_nos.push(i as i16 + 1);
        priced.quantities.push(line.quantity.get());
        priced.unit_prices.push(price.amount());
    }
    Ok(priced)
}

row_struct! {
    /// An order locked for a change of status.
    struct CurrentOrder {
        status: String,
        version: i32,
    }
}

impl Locked for CurrentOrder {
    fn version(&self) -> i32 {
        self.version
    }
}

#[tracing::instrument(skip_all, fields(order_id = %cmd.order_id, to = %cmd.to))]
pub async fn change_status(
    tx: &Transaction<'_>,
    cmd: ChangeOrderStatus,
    expected_version: Option<i32>,
) -> Result<OrderAccepted, CommandError> {
    let lock_sql = include_str!("../../sql/commands/lock_order.sql");
    let current: CurrentOrder =
        lock(tx, lock_sql, "order", &cmd.order_id, expected_version).await?;
    let from = OrderStatus::parse(&current.status)
        .map_err(|e| anyhow::anyhow!("order {} has an unknown status: {e}", cmd.order_id))?;
    let to = from
        .transition(cmd.to)
        .map_err(|e| CommandError::Conflict(e.to_string()))?;
    let reason = match to {
        OrderStatus::Cancelled => cmd.reason.as_ref().map(CancelReason::as_str),
        _ => None,
    };
    let written = query_one(
        tx,
        include_str!("../../sql/commands/change_order_status.sql"),
        &[&cmd.order_id.as_str(), &to.as_str(), &reason],
    )
    .await?;
    Ok(OrderAccepted::new(&cmd.order_id, None, written))
}
