//! Query handlers: validate parameters, wait for freshness when asked
//! (`min_token`), read the read models, and say how fresh the answer is
//! (`X-Read-Model-Refreshed-At`, `Age`).

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{ApiError, Problem};
use super::extract::{path_id, Query};
use super::AppState;
use crate::domain::OrderStatus;
use crate::queries::freshness::{self, Freshness, Token, DEFAULT_WAIT, MAX_WAIT};
use crate::queries::orders::{OrderPage, OrderSummary};
use crate::queries::statistics::OrderStatistics;
use crate::queries::targets::ReadTarget;
use crate::queries::{orders, statistics, QueryError};
use crate::read_models::status as read_models;

pub const MIN_TOKEN_HEADER: &str = "x-min-token";
pub const REFRESHED_AT_HEADER: &str = "x-read-model-refreshed-at";
pub const MAX_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE: i64 = 1_000_000;

/// `min_token` and `wait`, from the query string or `X-Min-Token`.
struct FreshnessRequest {
    token: Option<Token>,
    /// The end of the wait, fixed when the request arrives: a read retried
    /// on another target has only what is left.
    until: Instant,
}

impl FreshnessRequest {
    /// The end of the wait, when there is something to wait for.
    fn deadline(&self) -> Option<Instant> {
        self.token.map(|_| self.until)
    }

    fn parse(
        min_token: Option<&str>,
        wait: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let header = headers.get(MIN_TOKEN_HEADER).and_then(|v| v.to_str().ok());
        let token = min_token
            .or(header)
            .map(Token::parse)
            .transpose()
            .map_err(ApiError::BadRequest)?;
        let wait = match wait {
            None => DEFAULT_WAIT,
            Some(raw) => parse_wait(raw)?,
        };
        Ok(Self {
            token,
            until: Instant::now() + wait,
        })
    }
}

/// `wait=2` (seconds), `wait=1.5`, `wait=500ms`, `wait=2s`; at most 30 s.
fn parse_wait(raw: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "wait must be a duration of at most 30 s, such as 2, 0.5, 500ms or 2s; got {raw:?}"
        ))
    };
    let wait = match raw.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs.min(3600.0)),
        Ok(_) => return Err(bad()),
        Err(_) => humantime::parse_duration(raw.trim()).map_err(|_| bad())?,
    };
    if wait > MAX_WAIT {
        return Err(bad());
    }
    Ok(wait)
}

/// Wait for `views` to cover the request's token on `target`, until the
/// attempt's deadline (see `ReadTargets::read`).
async fn fresh_views(
    state: &AppState,
    target: &ReadTarget,
    views: &[&str],
    request: &FreshnessRequest,
    until: Option<Instant>,
) -> Result<Freshness, QueryError> {
    freshness::await_views(
        target,
        &state.write_pool,
        &state.requests,
        views,
        request.token,
        until
            .unwrap_or(request.until)
            .saturating_duration_since(Instant::now()),
    )
    .await
}

/// A JSON answer with its staleness headers.
fn fresh_json<T: Serialize>(freshness: Freshness, body: T) -> Response {
    let mut response = (StatusCode::OK, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(at) = freshness.refreshed_at.format(&Rfc3339) {
        if let Ok(v) = HeaderValue::from_str(&at) {
            headers.insert(REFRESHED_AT_HEADER, v);
        }
    }
    headers.insert("age", HeaderValue::from(freshness.age_seconds()));
    response
}

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

fn parse_page(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else { return Ok(1) };
    match raw.trim().parse::<i64>() {
        Ok(p) if (1..=MAX_PAGE).contains(&p) => Ok(p),
        _ => Err(ApiError::BadRequest(format!(
            "page must be a whole number from 1 to {MAX_PAGE}, got {raw:?}"
        ))),
    }
}

fn parse_page_size(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else { return Ok(20) };
    match raw.trim().parse::<i64>() {
        Ok(p) if (1..=MAX_PAGE_SIZE).contains(&p) => Ok(p),
        _ => Err(ApiError::BadRequest(format!(
            "page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {raw:?}"
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

/// For routes without parameters: anything given is a mistake worth a 400.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Parameters every query takes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FreshnessParams {
    /// Wait until the answer includes the command with this token.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub min_token: Option<String>,
    /// How long to wait for `min_token`: seconds or `500ms`; default 5 s, at most 30 s.
    #[param(
        pattern = "^([12]?[0-9](\\.[0-9]+)?|30(\\.0+)?|([12]?[0-9]|30)s|([0-9]{1,4}|[12][0-9]{4}|30000)ms)$"
    )]
    pub wait: Option<String>,
}

/// Get one order with its lines.
#[utoipa::path(
    get,
    path = "/queries/orders/{id}",
    tag = "queries",
    params(("id" = String, Path, description = "The order"), FreshnessParams, ("X-Min-Token" = Option<String>, Header, pattern = "^[0-9]{1,19}$", description = "Same as min_token")),
    responses((status = 200, description = "The order with its lines", body = OrderSummary, headers(("X-Read-Model-Refreshed-At" = String, description = "When the read models behind this answer were last known current (RFC 3339)"), ("Age" = u64, description = "Seconds since then"))), (status = 400, description = "Malformed JSON, header or parameter", body = Problem, content_type = "application/problem+json"), (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<FreshnessParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id("order", &id)?;
    let fresh = FreshnessRequest::parse(
        params.min_token.as_deref(),
        params.wait.as_deref(),
        &headers,
    )?;
    let (state, fresh, id) = (&state, &fresh, id.as_str());
    let (freshness, order) = state
        .reads
        .read(fresh.deadline(), |target, until| async move {
            let freshness = fresh_views(state, &target, orders::ORDER_VIEWS, fresh, until).await?;
            Ok((freshness, orders::get_order(&target.pool, id).await?))
        })
        .await?;
    Ok(fresh_json(freshness, order))
}

/// Parameters of `GET /queries/orders`.
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
    #[param(pattern = "^[0-9]{1,19}$")]
    pub min_token: Option<String>,
    #[param(
        pattern = "^([12]?[0-9](\\.[0-9]+)?|30(\\.0+)?|([12]?[0-9]|30)s|([0-9]{1,4}|[12][0-9]{4}|30000)ms)$"
    )]
    pub wait: Option<String>,
}

/// List orders, newest first, with filters and pagination.
#[utoipa::path(
    get,
    path = "/queries/orders",
    tag = "queries",
    params(ListOrdersParams, ("X-Min-Token" = Option<String>, Header, pattern = "^[0-9]{1,19}$", description = "Same as min_token")),
    responses((status = 200, description = "A page of orders, newest first", body = OrderPage, headers(("X-Read-Model-Refreshed-At" = String, description = "When the read models behind this answer were last known current (RFC 3339)"), ("Age" = u64, description = "Seconds since then"))), (status = 400, description = "Malformed JSON, header or parameter", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_orders(
    State(state): State<AppState>,
    Query(params): Query<ListOrdersParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let customer_id = params
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
    let status = params
        .status
        .as_deref()
        .map(|s| OrderStatus::parse(s).map_err(|e| ApiError::BadRequest(format!("status: {e}"))))
        .transpose()?;
    let from = params
        .from
        .as_deref()
        .map(|f| parse_time("from", f))
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(|t| parse_time("to", t))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::BadRequest("from must be earlier than to".into()));
        }
    }
    let page = parse_page(params.page.as_deref())?;
    let page_size = parse_page_size(params.page_size.as_deref())?;
    let fresh = FreshnessRequest::parse(
        params.min_token.as_deref(),
        params.wait.as_deref(),
        &headers,
    )?;
    let filter = orders::OrderFilter {
        customer_id,
        status,
        from: from.map(ceil_to_microsecond),
        to: to.map(ceil_to_microsecond),
    };
    let (state, fresh, filter) = (&state, &fresh, &filter);
    let (freshness, page) = state
        .reads
        .read(fresh.deadline(), |target, until| async move {
            let freshness = fresh_views(state, &target, orders::LIST_VIEWS, fresh, until).await?;
            let page = orders::list_orders(&target.pool, filter, page, page_size).await?;
            Ok((freshness, page))
        })
        .await?;
    Ok(fresh_json(freshness, page))
}

/// Parameters of `GET /queries/customers/{id}/orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000000)]
    pub page: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
    #[param(pattern = "^[0-9]{1,19}$")]
    pub min_token: Option<String>,
    #[param(
        pattern = "^([12]?[0-9](\\.[0-9]+)?|30(\\.0+)?|([12]?[0-9]|30)s|([0-9]{1,4}|[12][0-9]{4}|30000)ms)$"
    )]
    pub wait: Option<String>,
}

/// A customer's orders, newest first.
#[utoipa::path(
    get,
    path = "/queries/customers/{id}/orders",
    tag = "queries",
    params(("id" = String, Path, description = "The customer"), PageParams, ("X-Min-Token" = Option<String>, Header, pattern = "^[0-9]{1,19}$", description = "Same as min_token")),
    responses((status = 200, description = "A page of the customer's orders, newest first", body = OrderPage, headers(("X-Read-Model-Refreshed-At" = String, description = "When the read models behind this answer were last known current (RFC 3339)"), ("Age" = u64, description = "Seconds since then"))), (status = 400, description = "Malformed JSON, header or parameter", body = Problem, content_type = "application/problem+json"), (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_customer_orders(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id("customer", &id)?;
    let page = parse_page(params.page.as_deref())?;
    let page_size = parse_page_size(params.page_size.as_deref())?;
    let fresh = FreshnessRequest::parse(
        params.min_token.as_deref(),
        params.wait.as_deref(),
        &headers,
    )?;
    let (state, fresh, id) = (&state, &fresh, id.as_str());
    let (freshness, page) = state
        .reads
        .read(fresh.deadline(), |target, until| async move {
            let freshness =
                fresh_views(state, &target, orders::CUSTOMER_LIST_VIEWS, fresh, until).await?;
            let page = orders::list_customer_orders(&target.pool, id, page, page_size).await?;
            Ok((freshness, page))
        })
        .await?;
    Ok(fresh_json(freshness, page))
}

/// What happened to an order, event by event (always current).
#[utoipa::path(
    get,
    path = "/queries/orders/{id}/history",
    tag = "queries",
    params(("id" = String, Path, description = "The order"), FreshnessParams),
    responses((status = 200, description = "Every event of the order (always current)", body = OrderHistory, headers(("X-Read-Model-Refreshed-At" = String, description = "When the read models behind this answer were last known current (RFC 3339)"), ("Age" = u64, description = "Seconds since then"))), (status = 400, description = "Malformed JSON, header or parameter", body = Problem, content_type = "application/problem+json"), (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_order_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<FreshnessParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id("order", &id)?;
    let fresh = FreshnessRequest::parse(
        params.min_token.as_deref(),
        params.wait.as_deref(),
        &headers,
    )?;
    // Kept by triggers: current on the primary; on a replica, once it has
    // replayed the token's transaction.
    let (state, fresh, order_id) = (&state, &fresh, id.as_str());
    let (freshness, history) = state
        .reads
        .read(fresh.deadline(), |target, until| async move {
            let freshness = fresh_views(state, &target, &[], fresh, until).await?;
            Ok((
                freshness,
                orders::order_history(&target.pool, order_id).await?,
            ))
        })
        .await?;
    Ok(fresh_json(
        freshness,
        OrderHistory {
            order_id: id.to_string(),
            events: history,
        },
    ))
}

/// Parameters of `GET /queries/order-statistics`.
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
    #[param(pattern = "^[0-9]{1,19}$")]
    pub min_token: Option<String>,
    #[param(
        pattern = "^([12]?[0-9](\\.[0-9]+)?|30(\\.0+)?|([12]?[0-9]|30)s|([0-9]{1,4}|[12][0-9]{4}|30000)ms)$"
    )]
    pub wait: Option<String>,
}

/// Orders, revenue and status counts for orders created in [from, to).
#[utoipa::path(
    get,
    path = "/queries/order-statistics",
    tag = "queries",
    params(StatisticsParams, ("X-Min-Token" = Option<String>, Header, pattern = "^[0-9]{1,19}$", description = "Same as min_token")),
    responses((status = 200, description = "Orders created in [from, to)", body = OrderStatistics, headers(("X-Read-Model-Refreshed-At" = String, description = "When the read models behind this answer were last known current (RFC 3339)"), ("Age" = u64, description = "Seconds since then"))), (status = 400, description = "Malformed JSON, header or parameter", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
pub async fn order_statistics(
    State(state): State<AppState>,
    Query(params): Query<StatisticsParams>,
    headers: HeaderMap,
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
    let fresh = FreshnessRequest::parse(
        params.min_token.as_deref(),
        params.wait.as_deref(),
        &headers,
    )?;
    let (state, fresh) = (&state, &fresh);
    let (freshness, mut stats) = state
        .reads
        .read(fresh.deadline(), |target, until| async move {
            let freshness =
                fresh_views(state, &target, statistics::STATISTICS_VIEWS, fresh, until).await?;
            let stats = statistics::order_statistics(
                &target.pool,
                ceil_to_microsecond(from),
                (!open_ended).then(|| ceil_to_microsecond(to)),
            )
            .await?;
            Ok((freshness, stats))
        })
        .await?;
    // Echo the range as the client gave it.
    (stats.from, stats.to) = (from, to);
    Ok(fresh_json(freshness, stats))
}

/// Freshness and health of every read model.
#[utoipa::path(
    get,
    path = "/queries/read-models",
    tag = "operations",
    responses((status = 200, description = "Freshness and health of every read model", body = ReadModelList), (status = 400, description = "Malformed JSON, header or parameter", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
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
#[utoipa::path(
    post,
    path = "/admin/read-models/{name}/refresh",
    tag = "operations",
    params(("name" = String, Path, description = "The read model, e.g. order_summary")),
    responses((status = 202, description = "A refresh was requested", body = RefreshRequested), (status = 404, description = "Unknown id", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Database unavailable, or min_token not reached within the wait; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
pub async fn refresh_read_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if crate::read_models::catalog::find(&name).is_none() {
        let known: Vec<&str> = crate::read_models::CATALOG.iter().map(|m| m.name).collect();
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
    fn wait_accepts_seconds_and_units_up_to_thirty_seconds() {
        assert_eq!(parse_wait("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_wait("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_wait("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        for bad in ["31", "-1", "soon", "NaN", "1h", "30001ms", "31s"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
        // The bounds the OpenAPI pattern declares are accepted.
        for good in ["0", "29.99", "30", "30.0", "0ms", "30000ms", "0s", "30s"] {
            assert!(parse_wait(good).is_ok(), "{good}");
        }
    }

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
        assert_eq!(parse_page(None).unwrap(), 1);
        assert_eq!(parse_page_size(None).unwrap(), 20);
        for bad in ["0", "-1", "x", "1000001", "99999999999999999999"] {
            assert!(parse_page(Some(bad)).is_err(), "page {bad}");
        }
        for bad in ["0", "101", "-5", "ten"] {
            assert!(parse_page_size(Some(bad)).is_err(), "page_size {bad}");
        }
        assert_eq!(parse_page_size(Some("100")).unwrap(), 100);
    }
}
