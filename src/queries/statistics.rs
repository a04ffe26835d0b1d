//! Order statistics over a time range, from `daily_sales` (whole days) and
//! `order_summary` (the partial days at the edges).

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use time::OffsetDateTime;

use super::QueryError;
use crate::db::{row_struct, FromRow};
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

row_struct! {
    /// One row of `order_statistics.sql`: the orders in range of one status.
    struct StatusTotals {
        status: String,
        orders: i64,
        revenue: Decimal,
    }
}

#[tracing::instrument(level = "debug", skip(pool))]
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
    // The sums fit: an order totals below 10^12 (write.money) and a table
    // holds fewer than 10^12 orders (PostgreSQL's 32 TB limit at more than
    // 40 bytes a row), so any revenue is below 10^24: 26 digits with the
    // cents, within the 28 a Decimal holds. The views themselves have no
    // bound (unconstrained numeric, V6). Reading and adding are checked all
    // the same, so a value out of Decimal's range is an error, never a panic
    // or a rounded amount.
    let out_of_range = || anyhow::anyhow!("the revenue is out of the range of a Decimal");
    let mut total_orders = 0i64;
    let mut total_revenue = Decimal::ZERO;
    for StatusTotals {
        status,
        orders,
        revenue,
    } in StatusTotals::from_rows(&rows)?
    {
        total_orders = total_orders
            .checked_add(orders)
            .ok_or_else(|| anyhow::anyhow!("the order count is out of range"))?;
        total_revenue = total_revenue
            .checked_add(revenue)
            .ok_or_else(out_of_range)?;
        *by_status.entry(status).or_default() += orders;
    }
    let average_order_value =
        average_to_cents(total_revenue, total_orders).ok_or_else(out_of_range)?;
    Ok(OrderStatistics {
        total_orders,
        total_revenue,
        average_order_value,
        orders_by_status: by_status,
        from,
        to: to.unwrap_or_else(OffsetDateTime::now_utc),
    })
}

/// `total / count` rounded half-even to cents, exactly: from the quotient
/// and remainder of whole cents, not from a quotient already rounded to
/// Decimal's 28 digits (which, for a total of 20 digits or more, could round
/// twice). 0 when `count` is 0. None only if `total` leaves Decimal's range
/// once in cents.
fn average_to_cents(total: Decimal, count: i64) -> Option<Decimal> {
    if count <= 0 {
        return Some(Decimal::ZERO);
    }
    let cents = total.checked_mul(Decimal::ONE_HUNDRED)?.normalize();
    if cents.scale() != 0 {
        // Not whole cents (money never has more decimals): Decimal's division.
        return Some(
            (total / Decimal::from(count))
                .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven),
        );
    }
    let (cents, count) = (cents.mantissa(), i128::from(count));
    let (quotient, remainder) = (cents.div_euclid(count), cents.rem_euclid(count));
    let rounded = match (2 * remainder).cmp(&count) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient & 1),
    };
    Decimal::try_from_i128_with_scale(rounded, 2).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn the_average_is_rounded_half_even_to_cents() {
        assert_eq!(average_to_cents(d("0.05"), 2), Some(d("0.02")));
        assert_eq!(average_to_cents(d("0.07"), 2), Some(d("0.04")));
        assert_eq!(average_to_cents(d("10.00"), 3), Some(d("3.33")));
        assert_eq!(average_to_cents(d("20.00"), 3), Some(d("6.67")));
        assert_eq!(average_to_cents(d("0"), 0), Some(Decimal::ZERO));
    }

    #[test]
    fn the_average_of_a_huge_revenue_is_exact() {
        // 10^24 - 0.01 over 3 orders: 333333333333333333333333.33 (rest 0),
        // and over 2: .995 exactly, half-even to the even cent.
        let total = d("999999999999999999999999.99");
        assert_eq!(
            average_to_cents(total, 3),
            Some(d("333333333333333333333333.33"))
        );
        assert_eq!(
            average_to_cents(total, 2),
            Some(d("500000000000000000000000.00"))
        );
        assert_eq!(
            average_to_cents(d("999999999999999999999999.97"), 2),
            Some(d("499999999999999999999999.98"))
        );
    }
}
