//! Query handlers: parse the query's own parameters, then take the one
//! fresh-read path ([`fresh_read`]) with the read models the query names.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::ApiError;
use super::extract::{path_id, Query};
use super::fresh::{fresh_answers, fresh_read, FreshnessParams, ReadQuery};
use super::responses::{QueryByIdProblems, QueryProblems, StatusProblems, UnknownReadModel};
use super::AppState;
use crate::domain::OrderStatus;
use crate::queries::orders::{CountMode, Cursor, ListRequest, OrderPage, OrderSummary, Page};
use crate::queries::statistics::OrderStatistics;
use crate::queries::{orders, statistics};
use crate::read_models::status as read_models;

pub use super::fresh::{MIN_TOKEN_HEADER, REFRESHED_AT_HEADER};
pub const MAX_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE: i64 = 1_000_000;

fn parse_time(field: &str, raw: &str) -> Result<OffsetDateTime, ApiError> {
    let t = OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
        ApiError::BadRequest(format!(
            "{field} must be an RFC 3339 time such as 2026-01-31T00:00:00Z, got {raw:?}"
        ))
    })?;
    Ok(t)
}

/// PostgreSQL keeps microseconds. For a half-open range [from, to) over
/// microsecond times, rounding both bounds up gives the same answer as the
/// exact bounds would; truncating them would not.
fn ceil_to_microsecond(t: OffsetDateTime) -> OffsetDateTime {
    let extra = t.nanosecond() % 1_000;
    if extra == 0 {
        t
    } else {
        t + time::Duration::nanoseconds(i64::from(1_000 - extra))
    }
}

/// Where a list starts and how it counts, from the query string: `page`
/// (default 1) or `after` (a cursor from `next`), `page_size` (default
/// 20), `count` (exact, planned or none; default: exact where a read
/// model keeps the count or fewer than a thousand orders match, planned
/// elsewhere).
fn list_request(
    filter: orders::OrderFilter,
    [page, page_size, after, count]: [Option<&str>; 4],
) -> Result<ListRequest, ApiError> {
    if page.is_some() && after.is_some() {
        return Err(ApiError::BadRequest(
            "give page or after, not both: after continues from a page's next cursor".into(),
        ));
    }
    let after = after
        .map(|a| {
            Cursor::decode(a).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "after {a:?} is not a cursor: pass the next value of a page"
                ))
            })
        })
        .transpose()?;
    let count = count
        .map(|c| {
            CountMode::parse(c).ok_or_else(|| {
                ApiError::BadRequest(format!("count must be exact, planned or none, got {c:?}"))
            })
        })
        .transpose()?;
    Ok(ListRequest {
        filter,
        page: Page {
            number: bounded("page", page, 1, MAX_PAGE)?,
            size: bounded("page_size", page_size, 20, MAX_PAGE_SIZE)?,
        },
        after,
        count,
    })
}

/// A whole number from 1 to `max`, `default` when absent.
fn bounded(name: &str, raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be a whole number from 1 to {max}, got {raw:?}"
        ))),
    }
}

/// `GET /queries/orders/{id}/history`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderHistory {
    pub order_id: String,
    pub events: Vec<orders::HistoryEntry>,
}

/// `GET /queries/read-models`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadModelList {
    pub read_models: Vec<read_models::ReadModelStatus>,
}

/// `POST /admin/read-models/{name}/refresh`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefreshRequested {
    pub name: String,
    /// Always "requested": the refresh runs in the background.
    pub refresh: String,
}

fresh_answers! {
    /// `GET /queries/orders/{id}`.
    OrderFound = (OrderSummary, "The order with its lines");
    /// `GET /queries/orders/{id}/history`.
    HistoryFound = (OrderHistory, "Every event of the order (always current)");
    /// `GET /queries/orders`.
    OrdersFound = (OrderPage, "A page of orders, newest first");
    /// `GET /queries/customers/{id}/orders`.
    CustomerOrdersFound = (OrderPage, "A page of the customer's orders, newest first");
    /// `GET /queries/order-statistics`.
    StatisticsFound = (OrderStatistics, "Orders created in [from, to)");
}

/// For routes without parameters: anything given is a mistake worth a 400.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Get one order with its lines.
#[utoipa::path(get, path = "/queries/orders/{id}", tag = "queries",
    params(("id" = String, Path, description = "The order"), FreshnessParams),
    responses(OrderFound, QueryByIdProblems))]
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ReadQuery { fresh, .. }: ReadQuery<NoParams>,
) -> Result<Response, ApiError> {
    let id = path_id("order", &id)?;
    let id = id.as_str();
    fresh_read(&state, fresh, orders::ORDER_VIEWS, |pool| async move {
        orders::get_order(&pool, id).await
    })
    .await
}

/// Parameters of `GET /queries/orders` besides the freshness ones.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersParams {
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
    pub customer_id: Option<String>,
    /// pending, confirmed, shipped, delivered or cancelled (any case).
    #[param(
        pattern = "^([Pp][Ee][Nn][Dd][Ii][Nn][Gg]|[Cc][Oo][Nn][Ff][Ii][Rr][Mm][Ee][Dd]|[Ss][Hh][Ii][Pp][Pp][Ee][Dd]|[Dd][Ee][Ll][Ii][Vv][Ee][Rr][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ll][Ee][Dd])$"
    )]
    pub status: Option<String>,
    /// Orders created at or after this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Orders created before this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// From 1 (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000000)]
    pub page: Option<String>,
    /// 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
    /// Continue after this cursor (a page's `next`) instead of a page number.
    #[param(pattern = "^[A-Za-z0-9_-]{1,200}$")]
    pub after: Option<String>,
    /// exact, planned or none (default: exact where a read model keeps the
    /// count or fewer than a thousand orders match, the planner's estimate
    /// elsewhere).
    #[param(pattern = "^(exact|planned|none)$")]
    pub count: Option<String>,
}

impl ListOrdersParams {
    fn filter(&self) -> Result<orders::OrderFilter, ApiError> {
        let customer_id = self
            .customer_id
            .as_deref()
            .map(|c| {
                crate::domain::EntityId::parse(c)
                    .map(|id| id.to_string())
                    .map_err(|e| {
                        ApiError::BadRequest(format!("customer_id {c:?} is not a valid id: it {e}"))
                    })
            })
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|s| {
                OrderStatus::parse(s).map_err(|e| ApiError::BadRequest(format!("status: {e}")))
            })
            .transpose()?;
        let from = self
            .from
            .as_deref()
            .map(|f| parse_time("from", f))
            .transpose()?;
        let to = self
            .to
            .as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(ApiError::BadRequest("from must be earlier than to".into()));
            }
        }
        Ok(orders::OrderFilter {
            customer_id,
            status,
            from: from.map(ceil_to_microsecond),
            to: to.map(ceil_to_microsecond),
        })
    }
}

/// List orders, newest first, with filters and pagination.
#[utoipa::path(
    get,
    path = "/queries/orders",
    tag = "queries",
    params(ListOrdersParams, FreshnessParams),
    responses(OrdersFound, QueryProblems)
)]
pub async fn list_orders(
    State(state): State<AppState>,
    ReadQuery { params, fresh }: ReadQuery<ListOrdersParams>,
) -> Result<Response, ApiError> {
    let request = &list_request(
        params.filter()?,
        [
            params.page.as_deref(),
            params.page_size.as_deref(),
            params.after.as_deref(),
            params.count.as_deref(),
        ],
    )?;
    fresh_read(&state, fresh, orders::LIST_VIEWS, |pool| async move {
        orders::list_orders(&pool, request).await
    })
    .await
}

/// Parameters of `GET /queries/customers/{id}/orders` besides the freshness ones.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000000)]
    pub page: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
    /// Continue after this cursor (a page's `next`) instead of a page number.
    #[param(pattern = "^[A-Za-z0-9_-]{1,200}$")]
    pub after: Option<String>,
    /// exact, planned or none (default: exact, as customer_orders keeps it).
    #[param(pattern = "^(exact|planned|none)$")]
    pub count: Option<String>,
}

/// A customer's orders, newest first.
#[utoipa::path(get, path = "/queries/customers/{id}/orders", tag = "queries",
    params(("id" = String, Path, description = "The customer"), PageParams, FreshnessParams),
    responses(CustomerOrdersFound, QueryByIdProblems))]
pub async fn list_customer_orders(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ReadQuery { params, fresh }: ReadQuery<PageParams>,
) -> Result<Response, ApiError> {
    let filter = orders::OrderFilter {
        customer_id: Some(path_id("customer", &id)?.to_string()),
        ..Default::default()
    };
    let request = &list_request(
        filter,
        [
            params.page.as_deref(),
            params.page_size.as_deref(),
            params.after.as_deref(),
            params.count.as_deref(),
        ],
    )?;
    fresh_read(
        &state,
        fresh,
        orders::CUSTOMER_LIST_VIEWS,
        |pool| async move { orders::list_customer_orders(&pool, request).await },
    )
    .await
}

/// What happened to an order, event by event (always current).
#[utoipa::path(get, path = "/queries/orders/{id}/history", tag = "queries",
    params(("id" = String, Path, description = "The order"), FreshnessParams),
    responses(HistoryFound, QueryByIdProblems))]
pub async fn get_order_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ReadQuery { fresh, .. }: ReadQuery<NoParams>,
) -> Result<Response, ApiError> {
    let id = path_id("order", &id)?;
    let id = id.as_str();
    // The event log itself: current on the primary; on a replica, once it has
    // replayed the token's transaction. So no view to wait for.
    fresh_read(&state, fresh, &[], |pool| async move {
        Ok(OrderHistory {
            order_id: id.to_string(),
            events: orders::order_history(&pool, id).await?,
        })
    })
    .await
}

/// Parameters of `GET /queries/order-statistics` besides the freshness ones.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatisticsParams {
    /// Start (inclusive), RFC 3339. Default: 30 days before `to`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// End (exclusive), RFC 3339. Default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
}

/// Orders, revenue and status counts for orders created in [from, to).
#[utoipa::path(
    get,
    path = "/queries/order-statistics",
    tag = "queries",
    params(StatisticsParams, FreshnessParams),
    responses(StatisticsFound, QueryProblems)
)]
pub async fn order_statistics(
    State(state): State<AppState>,
    ReadQuery { params, fresh }: ReadQuery<StatisticsParams>,
) -> Result<Response, ApiError> {
    // No `to`: up to now, which the query answers without scanning today.
    let open_ended = params.to.is_none();
    let to = match params.to.as_deref() {
        Some(t) => parse_time("to", t)?,
        None => OffsetDateTime::now_utc(),
    };
    let from = match params.from.as_deref() {
        Some(f) => parse_time("from", f)?,
        None => to - time::Duration::days(30),
    };
    if from >= to {
        return Err(ApiError::BadRequest("from must be earlier than to".into()));
    }
    let (bound_from, bound_to) = (
        ceil_to_microsecond(from),
        (!open_ended).then(|| ceil_to_microsecond(to)),
    );
    fresh_read(
        &state,
        fresh,
        statistics::STATISTICS_VIEWS,
        |pool| async move {
            let mut stats = statistics::order_statistics(&pool, bound_from, bound_to).await?;
            // Echo the range as the client gave it.
            (stats.from, stats.to) = (from, to);
            Ok(stats)
        },
    )
    .await
}

/// Freshness and health of every read model.
#[utoipa::path(get, path = "/queries/read-models", tag = "operations",
    responses((status = 200, description = "Freshness and health of every read model", body = ReadModelList), StatusProblems))]
pub async fn list_read_models(
    State(state): State<AppState>,
    Query(_params): Query<NoParams>,
) -> Result<Response, ApiError> {
    let models = read_models::list(&state.write_pool, &state.models).await?;
    Ok(Json(ReadModelList {
        read_models: models,
    })
    .into_response())
}

/// Refresh a read model now (even if nothing changed).
#[utoipa::path(post, path = "/admin/read-models/{name}/refresh", tag = "operations",
    params(("name" = String, Path, description = "The read model, e.g. order_summary")),
    responses((status = 202, description = "A refresh was requested", body = RefreshRequested), UnknownReadModel))]
pub async fn refresh_read_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (known_name, known) = read_models::declared(&state.write_pool, &name).await?;
    if !known_name {
        return Err(ApiError::NotFound(format!(
            "no read model named {name:?}; known: {}",
            known.join(", ")
        )));
    }
    state.requests.ask(std::slice::from_ref(&name), true);
    Ok((
        StatusCode::ACCEPTED,
        Json(RefreshRequested {
            name,
            refresh: "requested".into(),
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_microsecond_bounds_round_up() {
        let t = ceil_to_microsecond(parse_time("from", "2024-03-01T09:00:00.0000001Z").unwrap());
        assert_eq!(
            t,
            parse_time("from", "2024-03-01T09:00:00.000001Z").unwrap()
        );
        let exact = ceil_to_microsecond(parse_time("to", "2024-03-01T09:00:00.000001Z").unwrap());
        assert_eq!(exact.nanosecond(), 1_000);
    }

    #[test]
    fn page_and_page_size_are_bounded() {
        let parse = |page, page_size| {
            list_request(Default::default(), [page, page_size, None, None]).map(|r| r.page)
        };
        let defaults = parse(None, None).unwrap();
        assert_eq!((defaults.number, defaults.size), (1, 20));
        for bad in ["0", "-1", "x", "1000001", "99999999999999999999"] {
            assert!(parse(Some(bad), None).is_err(), "page {bad}");
        }
        for bad in ["0", "101", "-5", "ten"] {
            assert!(parse(None, Some(bad)).is_err(), "page_size {bad}");
        }
        assert_eq!(parse(None, Some("100")).unwrap().size, 100);
    }

    #[test]
    fn a_cursor_reads_back_as_made_and_nothing_else_reads_as_one() {
        let cursor = Cursor {
            created_at: parse_time("t", "2026-11-30T07:00:00.123456Z").unwrap(),
            order_id: "o-1".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "x",
            "bm9wZQ",
            "MTIz",
            "MS5vLTE_",
            "LTk5OTk5OTk5OTk5OTk5OTk5OTkuby0x",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
