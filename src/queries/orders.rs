//! Orders as the read models show them: `order_summary` and `order_lines`.

use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::{GenericClient, Pool};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use super::{QueryError, Result};
use crate::db::{column, row_struct, FromRow};
use crate::domain::{serialize_amount, OrderStatus};

/// Views the single-order query reads.
pub const ORDER_VIEWS: &[&str] = &["order_summary", "order_lines"];
/// Views the list queries read.
pub const LIST_VIEWS: &[&str] = &["order_summary"];
/// Views the customer's-orders query reads: a `min_token` wait covers
/// both, since either can say that the customer exists.
pub const CUSTOMER_LIST_VIEWS: &[&str] = &["order_summary", "customer_orders"];

// A row of `order_summary`; the lines come from `order_lines`.
row_struct! {
    /// One order, denormalized.
    #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
    pub struct OrderSummary {
        pub order_id: String,
        pub customer_id: String,
        pub customer_name: String,
        pub customer_email: String,
        /// Number of lines.
        pub item_count: i32,
        #[serde(serialize_with = "serialize_amount")]
        #[schema(value_type = f64)]
        pub total: Decimal,
        pub status: String,
        pub status_display: String,
        pub cancel_reason: Option<String>,
        pub version: i32,
        #[serde(with = "time::serde::rfc3339")]
        pub created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        pub updated_at: OffsetDateTime,
    }
    default {
        /// Present on the single-order query.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub items: Option<Vec<OrderLine>>,
    }
}

row_struct! {
    /// One line of an order.
    #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
    pub struct OrderLine {
        pub product_id: String,
        pub product_name: String,
        pub quantity: i32,
        #[serde(serialize_with = "serialize_amount")]
        #[schema(value_type = f64)]
        pub unit_price: Decimal,
        #[serde(serialize_with = "serialize_amount")]
        #[schema(value_type = f64)]
        pub subtotal: Decimal,
    }
}

/// A page of orders.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
    pub total_pages: i64,
}

/// Which page of a list, already validated: `number` from 1, `size` from 1.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub number: i64,
    pub size: i64,
}

/// Filters of the list query, already validated.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub customer_id: Option<String>,
    pub status: Option<OrderStatus>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// The order `id` with its lines.
#[tracing::instrument(skip(pool))]
pub async fn get_order(pool: &Pool, id: &str) -> Result<OrderSummary> {
    let client = pool.get().await?;
    let (summary, lines) = tokio::try_join!(
        client.prepare_cached(include_str!("../../sql/queries/get_order_summary.sql")),
        client.prepare_cached(include_str!("../../sql/queries/get_order_lines.sql")),
    )?;
    // Pipelined: both statements go out before either answer comes back.
    let params: [&(dyn ToSql + Sync); 1] = [&id];
    let (head, lines) = tokio::try_join!(
        client.query_opt(&summary, &params),
        client.query(&lines, &params),
    )?;
    let head = head.ok_or_else(|| QueryError::NotFound {
        what: "order",
        id: id.to_owned(),
    })?;
    let mut order = OrderSummary::from_row(&head)?;
    order.items = Some(OrderLine::from_rows(&lines)?);
    Ok(order)
}

/// A page of orders, newest first.
#[tracing::instrument(skip(pool))]
pub async fn list_orders(pool: &Pool, filter: &OrderFilter, page: Page) -> Result<OrderPage> {
    list_with(&pool.get().await?, filter, page).await
}

/// A customer's orders; 404 if the customer is unknown to the read models.
///
/// Known means listed in `customer_orders` (which also has customers
/// without orders) or with an order in `order_summary`: the two are
/// refreshed on different schedules, and a customer whose orders show in
/// `/queries/orders` must not be a 404 here.
#[tracing::instrument(skip(pool))]
pub async fn list_customer_orders(pool: &Pool, customer_id: &str, page: Page) -> Result<OrderPage> {
    let client = pool.get().await?;
    let exists = client
        .prepare_cached(include_str!("../../sql/queries/customer_exists.sql"))
        .await?;
    let filter = OrderFilter {
        customer_id: Some(customer_id.to_owned()),
        ..Default::default()
    };
    // The existence check goes out with the page: one round trip.
    let check = async {
        client
            .query_one(&exists, &[&customer_id])
            .await
            .map_err(QueryError::from)
    };
    let (exists, page) = tokio::try_join!(check, list_with(&client, &filter, page))?;
    if page.total == 0 && !column::<bool>(&exists, 0)? {
        return Err(QueryError::NotFound {
            what: "customer",
            id: customer_id.to_owned(),
        });
    }
    Ok(page)
}

async fn list_with(
    client: &impl GenericClient,
    filter: &OrderFilter,
    Page { number, size }: Page,
) -> Result<OrderPage> {
    let (list, count) = tokio::try_join!(
        client.prepare_cached(include_str!("../../sql/queries/list_orders.sql")),
        client.prepare_cached(include_str!("../../sql/queries/count_orders.sql")),
    )?;
    let status = filter.status.map(|s| s.as_str());
    let offset = (number - 1).saturating_mul(size);
    let list_params: [&(dyn ToSql + Sync); 6] = [
        &filter.customer_id,
        &status,
        &filter.from,
        &filter.to,
        &size,
        &offset,
    ];
    let (rows, total) = tokio::try_join!(
        client.query(&list, &list_params),
        client.query_one(&count, &list_params[..4]),
    )?;
    let total: i64 = column(&total, 0)?;
    Ok(OrderPage {
        orders: OrderSummary::from_rows(&rows)?,
        total,
        page: number,
        page_size: size,
        total_pages: (total + size - 1) / size,
    })
}

row_struct! {
    /// One event in an order's history.
    #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
    pub struct HistoryEntry {
        pub version: i32,
        pub event_type: String,
        pub status: Option<String>,
        pub reason: Option<String>,
        pub correlation_id: Option<String>,
        #[serde(with = "time::serde::rfc3339")]
        pub occurred_at: OffsetDateTime,
    }
}

/// What happened to an order: `read.order_history`, kept by trigger, so
/// always current.
pub async fn order_history(pool: &Pool, id: &str) -> Result<Vec<HistoryEntry>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/queries/get_order_history.sql"))
        .await?;
    let rows = client.query(&stmt, &[&id]).await?;
    if rows.is_empty() {
        return Err(QueryError::NotFound {
            what: "order",
            id: id.to_owned(),
        });
    }
    Ok(HistoryEntry::from_rows(&rows)?)
}
