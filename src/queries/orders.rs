//! Orders as the read models show them: `order_summary` and `order_lines`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::{GenericClient, Pool};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use super::{QueryError, Result};
use crate::db::{self, column, row_struct, FromRow};
use crate::domain::{serialize_amount, OrderStatus};

/// Views the single-order query reads.
pub const ORDER_VIEWS: &[&str] = &["order_summary", "order_lines"];
/// Views the list queries read. A total may come from `customer_orders`
/// or `daily_sales` too, only when they are as fresh as `order_summary`.
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

/// How a list's total is counted, as the client asked (`count=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMode {
    /// Count the matching rows.
    Exact,
    /// The planner's estimate.
    Planned,
    /// No total.
    None,
}

impl CountMode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "exact" => Some(Self::Exact),
            "planned" => Some(Self::Planned),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// A position in the newest-first order of a list: the last order a page
/// showed. Opaque to clients (URL-safe base64 of its time and id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: OffsetDateTime,
    pub order_id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let micros = self.created_at.unix_timestamp_nanos() / 1_000;
        URL_SAFE_NO_PAD.encode(format!("{micros}.{}", self.order_id))
    }

    /// None for anything `encode` did not make.
    pub fn decode(raw: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let (micros, id) = text.split_once('.')?;
        let micros: i128 = micros.parse().ok()?;
        let created_at =
            OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()?;
        let order_id = crate::domain::EntityId::parse(id).ok()?.to_string();
        Some(Self {
            created_at,
            order_id,
        })
    }
}

/// A list request, validated: filters, where the page starts (a page
/// number, or after a cursor), and how to count.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub filter: OrderFilter,
    pub page: Page,
    pub after: Option<Cursor>,
    /// None: exact where a read model keeps the count, planned elsewhere.
    pub count: Option<CountMode>,
}

/// A page of orders.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    /// Orders matching the filters, counted as `count` says; null with
    /// `count=none`.
    pub total: Option<i64>,
    pub page: i64,
    pub page_size: i64,
    /// Pages of `page_size` in `total`; null with `count=none`.
    pub total_pages: Option<i64>,
    /// How `total` was counted: `exact`, `planned` (the planner's estimate)
    /// or `none` (see docs/decisions/0006-lists-that-cost-a-page.md).
    pub count: &'static str,
    /// Pass as `after` for the orders following this page; null at the end.
    pub next: Option<String>,
}

/// The order `id` with its lines.
#[tracing::instrument(level = "debug", skip(pool))]
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
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list_orders(pool: &Pool, request: &ListRequest) -> Result<OrderPage> {
    let client = pool.get().await?;
    let (page, count) = tokio::try_join!(page_of(&client, request), total_of(&client, request))?;
    Ok(answer(request, page, count))
}

/// A customer's orders; 404 if the customer is unknown to the read models.
///
/// Known means listed in `customer_orders` (which also has customers
/// without orders) or with an order in `order_summary`. By default the
/// total is the customer's `order_count` there, read with the page; the
/// existence check is made only for an empty page otherwise.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list_customer_orders(pool: &Pool, request: &ListRequest) -> Result<OrderPage> {
    let client = pool.get().await?;
    let (page, count) = tokio::try_join!(page_of(&client, request), total_of(&client, request))?;
    if page.0.is_empty() {
        let known = match count {
            Counted::Maintained(Some(_)) => true,
            _ => {
                let exists = client
                    .prepare_cached(include_str!("../../sql/queries/customer_exists.sql"))
                    .await?;
                let row = client
                    .query_one(&exists, &[&request.filter.customer_id])
                    .await?;
                column::<bool>(&row, 0)?
            }
        };
        if !known {
            return Err(QueryError::NotFound {
                what: "customer",
                id: request.filter.customer_id.clone().unwrap_or_default(),
            });
        }
    }
    Ok(answer(request, page, count))
}

/// A total as counted: by a read model that keeps it (None: the model
/// has no row for it), exactly, by the planner, or not at all.
enum Counted {
    Maintained(Option<i64>),
    Exact(i64),
    Planned(i64),
    Skipped,
}

fn answer(
    request: &ListRequest,
    (orders, next): (Vec<OrderSummary>, Option<String>),
    count: Counted,
) -> OrderPage {
    let size = request.page.size;
    // What a page with orders proves: the orders before it, on it, and one
    // more if it has a next. A count kept by another read model can be a
    // refresh behind the orders; it never says less than the page shows.
    let before = match request.after {
        None => (request.page.number - 1).saturating_mul(size),
        Some(_) => 0,
    };
    let shown = match orders.len() as i64 {
        0 => 0,
        n => before + n + i64::from(next.is_some()),
    };
    let (total, kind) = match count {
        Counted::Maintained(n) => (Some(n.unwrap_or(0).max(shown)), "exact"),
        Counted::Exact(n) => (Some(n), "exact"),
        Counted::Planned(n) => (Some(n.max(shown)), "planned"),
        Counted::Skipped => (None, "none"),
    };
    OrderPage {
        orders,
        total,
        page: request.page.number,
        page_size: size,
        total_pages: total.map(|t| (t + size - 1) / size),
        count: kind,
        next,
    }
}

/// The conditions of a list statement, with their parameters numbered in
/// order: one statement text per combination of filters, so that each is
/// planned once and its plan reused (no `IS NULL OR` branches).
struct Conditions<'a> {
    sql: String,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Conditions<'a> {
    fn new(filter: &'a OrderFilter, status: &'a Option<&'static str>) -> Self {
        let mut c = Self {
            sql: String::new(),
            params: Vec::new(),
        };
        if let Some(customer) = &filter.customer_id {
            c.push("customer_id = $::text", &[customer]);
        }
        if let Some(status) = status {
            c.push("status = $::text", &[status]);
        }
        if let Some(from) = &filter.from {
            c.push("created_at >= $::timestamptz", &[from]);
        }
        if let Some(to) = &filter.to {
            c.push("created_at < $::timestamptz", &[to]);
        }
        c
    }

    /// Add `condition`, each `$` in it the next of `values`.
    fn push(&mut self, condition: &str, values: &[&'a (dyn ToSql + Sync)]) {
        self.sql.push_str(if self.sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        let mut values = values.iter();
        for (i, part) in condition.split('$').enumerate() {
            if i > 0 {
                if let Some(v) = values.next() {
                    self.params.push(*v);
                }
                self.sql.push_str(&format!("${}", self.params.len()));
            }
            self.sql.push_str(part);
        }
    }
}

/// One page, newest first, and the cursor of the following one: by page
/// number (OFFSET) or after a cursor (keyset, stable under inserts).
async fn page_of(
    client: &deadpool_postgres::Client,
    request: &ListRequest,
) -> Result<(Vec<OrderSummary>, Option<String>)> {
    let status = request.filter.status.map(|s| s.as_str());
    let mut conditions = Conditions::new(&request.filter, &status);
    if let Some(after) = &request.after {
        conditions.push(
            "(created_at, order_id) < ($::timestamptz, $::text)",
            &[&after.created_at, &after.order_id],
        );
    }
    // One row more than the page: whether there is a next one. Written
    // into the statement, not bound: planned for a `LIMIT $n`, PostgreSQL
    // assumes a tenth of the rows and never keeps a generic plan, so every
    // page was planned again. A page size is one of a hundred, and a
    // connection keeps a bounded number of statements.
    let limit = request.page.size + 1;
    let offset = (request.page.number - 1).saturating_mul(request.page.size);
    let mut params = conditions.params;
    let mut sql = format!(
        "{}{} ORDER BY created_at DESC, order_id DESC LIMIT {limit}",
        include_str!("../../sql/queries/list_orders.sql").trim_end(),
        conditions.sql,
    );
    if request.after.is_none() && offset > 0 {
        params.push(&offset);
        sql.push_str(&format!(" OFFSET ${}", params.len()));
    }
    let stmt = db::kept_statement(client, &sql, &[]).await?;
    let rows = client.query(&stmt, &params).await?;
    let mut orders = OrderSummary::from_rows(&rows)?;
    let more = orders.len() as i64 > request.page.size;
    orders.truncate(request.page.size as usize);
    let next = more.then(|| orders.last()).flatten().map(|o| {
        Cursor {
            created_at: o.created_at,
            order_id: o.order_id.clone(),
        }
        .encode()
    });
    Ok((orders, next))
}

/// Below this many rows in the planner's estimate, a default total is
/// counted exactly, and the count stops one row past it: never more rows
/// read than this, however wrong the estimate (a table the planner has not
/// yet analyzed is guessed from its size on disk).
const COUNTED_BELOW: i64 = 1_000;

/// The total of a list, as asked: by default from the read model that
/// keeps it where the filters match one (`customer_orders` for a customer
/// alone, `daily_sales` for a status and whole UTC days) and it is as
/// fresh as the orders; else exact for a customer (through the customer's
/// index), exact where the planner expects fewer than `COUNTED_BELOW`
/// rows and there are, and the planner's estimate for the rest.
async fn total_of(client: &impl GenericClient, request: &ListRequest) -> Result<Counted> {
    let filter = &request.filter;
    let status = filter.status.map(|s| s.as_str());
    let conditions = Conditions::new(filter, &status);
    let exact = match request.count {
        Some(CountMode::None) => return Ok(Counted::Skipped),
        Some(CountMode::Exact) => true,
        Some(CountMode::Planned) => false,
        None => match maintained_total(client, filter, status).await? {
            Some(kept) => return Ok(kept),
            None => filter.customer_id.is_some(),
        },
    };
    if exact {
        let sql = format!("SELECT count(*) FROM read.order_summary{}", conditions.sql);
        let stmt = client.prepare_cached(&sql).await?;
        let row = client.query_one(&stmt, &conditions.params).await?;
        return Ok(Counted::Exact(column(&row, 0)?));
    }
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM read.order_summary{}",
        conditions.sql
    );
    let stmt = client.prepare_cached(&sql).await?;
    let row = client.query_one(&stmt, &conditions.params).await?;
    let plan: serde_json::Value = column(&row, 0)?;
    let planned = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0).round() as i64;
    if request.count.is_some() || planned >= COUNTED_BELOW {
        return Ok(Counted::Planned(planned));
    }
    let mut params = conditions.params;
    params.push(&COUNTED_BELOW);
    let sql = format!(
        "SELECT count(*) FROM (SELECT FROM read.order_summary{} LIMIT ${}) few",
        conditions.sql,
        params.len()
    );
    let stmt = client.prepare_cached(&sql).await?;
    let row = client.query_one(&stmt, &params).await?;
    Ok(match column::<i64>(&row, 0)? {
        n if n < COUNTED_BELOW => Counted::Exact(n),
        n => Counted::Planned(planned.max(n)),
    })
}

/// The count a read model keeps for `filter`, if one does and it is as
/// fresh as `order_summary`.
async fn maintained_total(
    client: &impl GenericClient,
    filter: &OrderFilter,
    status: Option<&str>,
) -> Result<Option<Counted>> {
    let whole_day = |t: &Option<OffsetDateTime>| {
        t.is_none_or(|t| t.to_offset(time::UtcOffset::UTC).time() == time::Time::MIDNIGHT)
    };
    if let Some(customer) = &filter.customer_id {
        if status.is_some() || filter.from.is_some() || filter.to.is_some() {
            return Ok(None);
        }
        let stmt = client
            .prepare_cached(include_str!("../../sql/queries/count_customer_orders.sql"))
            .await?;
        let row = client.query_one(&stmt, &[customer]).await?;
        // Only a count as fresh as the orders; a missing row too (a
        // customer it has not caught up with yet must not count 0).
        return Ok(column::<bool>(&row, "current")?
            .then(|| column(&row, "order_count").map(Counted::Maintained))
            .transpose()?);
    }
    if !whole_day(&filter.from) || !whole_day(&filter.to) {
        return Ok(None);
    }
    let day = |t: &Option<OffsetDateTime>| t.map(|t| t.to_offset(time::UtcOffset::UTC).date());
    let stmt = client
        .prepare_cached(include_str!("../../sql/queries/count_orders_by_day.sql"))
        .await?;
    let row = client
        .query_one(&stmt, &[&status, &day(&filter.from), &day(&filter.to)])
        .await?;
    Ok(column::<bool>(&row, "current")?
        .then(|| column(&row, "orders").map(|n| Counted::Maintained(Some(n))))
        .transpose()?)
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

/// What happened to an order: `read.order_history`, a view of the event log, so
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
