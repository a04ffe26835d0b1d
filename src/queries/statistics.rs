//! Order statistics over a time range, from `daily_sales` (whole days) and
//! `order_summary` (the partial days at the edges).

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use time::OffsetDateTime;

use super::QueryError;
use crate::domain::{serialize_amount, OrderStatus};

pub const STATISTICS_VIEWS: &[&str] = &["daily_sales", "order_summary"];

/// Orders created in `[from, to)`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderStatistics {
    pub total_orders: i64,
    /// Sum of totals of every order in range, whatever its status.
    #[serde(serialize_with = "serialize_amount")]
    #[schema(value_type = f64)]
    pub total_revenue: Decimal,
    /// total_revenue / total_orders, rounded half-even to cents; 0 if none.
    #[serde(serialize_with = "serialize_amount")]
    #[schema(value_type = f64)]
    pub average_order_value: Decimal,
    /// Every status, with 0 where there are none.
    pub orders_by_status: BTreeMap<String, i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
}

#[tracing::instrument(skip(pool))]
pub async fn order_statistics(
    pool: &Pool,
    from: OffsetDateTime,
    to: Option<OffsetDateTime>,
) -> Result<OrderStatistics, QueryError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/queries/order_statistics.sql"))
        .await?;
    let rows = client.query(&stmt, &[&from, &to]).await?;
    let mut by_status: BTreeMap<String, i64> = OrderStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let mut total_orders = 0i64;
    let mut total_revenue = Decimal::ZERO;
    for row in &rows {
        let status: String = row.get("status");
        let orders: i64 = row.get("orders");
        let revenue: Decimal = row.get("revenue");
        total_orders += orders;
        total_revenue += revenue;
        *by_status.entry(status).or_default() += orders;
    }
    let average_order_value = if total_orders == 0 {
        Decimal::ZERO
    } else {
        (total_revenue / Decimal::from(total_orders))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
    };
    Ok(OrderStatistics {
        total_orders,
        total_revenue,
        average_order_value,
        orders_by_status: by_status,
        from,
        to: to.unwrap_or_else(OffsetDateTime::now_utc),
    })
}
