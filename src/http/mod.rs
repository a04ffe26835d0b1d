//! The HTTP surface: one router listing every route, grouped by caller.
//!
//! `/commands/*` and `/queries/*` are separate prefixes so that a load
//! balancer can send the two sides to different instances.

pub mod commands;
pub mod error;
pub mod extract;
pub mod queries;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use deadpool_postgres::Pool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use error::ApiError;

use crate::read_models::{Refresher, ScheduledModel};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Commands (and refreshes) use the primary.
    pub write_pool: Pool,
    /// Queries read the read models here (the primary or a replica).
    pub read_pool: Pool,
    pub body_limit: usize,
    pub request_timeout: Duration,
    /// The refresher, when this instance runs one: `min_token` waits and the
    /// admin API ask it for immediate refreshes.
    pub refresher: Option<Arc<Refresher>>,
    /// Read models and their schedules, for `/queries/read-models`.
    pub models: Vec<ScheduledModel>,
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    use self::commands as c;
    let commands = Router::new()
        .route("/commands/customers", post(c::register_customer))
        .route(
            "/commands/customers/{id}/change-details",
            post(c::change_customer_details),
        )
        .route("/commands/products", post(c::add_product))
        .route(
            "/commands/products/{id}/change-price",
            post(c::change_product_price),
        )
        .route("/commands/orders", post(c::place_order))
        .route("/commands/orders/{id}/confirm", post(c::confirm_order))
        .route("/commands/orders/{id}/ship", post(c::ship_order))
        .route("/commands/orders/{id}/deliver", post(c::deliver_order))
        .route("/commands/orders/{id}/cancel", post(c::cancel_order))
        .route("/commands/orders/{id}/status", post(c::change_order_status));

    use self::queries as q;
    let queries = Router::new()
        .route("/queries/orders", get(q::list_orders))
        .route("/queries/orders/{id}", get(q::get_order))
        .route("/queries/orders/{id}/history", get(q::get_order_history))
        .route(
            "/queries/customers/{id}/orders",
            get(q::list_customer_orders),
        )
        .route("/queries/order-statistics", get(q::order_statistics))
        .route("/queries/read-models", get(q::list_read_models));

    let admin = Router::new().route(
        "/admin/read-models/{name}/refresh",
        post(q::refresh_read_model),
    );

    let operations = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::telemetry::render_metrics));

    let request_id = HeaderName::from_static(extract::REQUEST_ID);
    Router::new()
        .merge(commands)
        .merge(queries)
        .merge(admin)
        .merge(operations)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .route_layer(middleware::from_fn(crate::telemetry::track_requests))
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = extract::request_id(req.headers());
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// A request that runs past the deadline gets a 503 problem, not a hang.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable {
            detail: format!(
                "the request did not finish within {} ms; retry later",
                state.request_timeout.as_millis()
            ),
            retry_after: 1,
        }
        .into_response(),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers and its schema is this build's.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        let client = state.write_pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM refinery_schema_history",
                &[],
            )
            .await?;
        anyhow::Ok(row.get::<_, i32>(0))
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(v)) if v >= crate::db::latest_migration_version() => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready", "schema_version": v})),
        )
            .into_response(),
        Ok(Ok(v)) => ApiError::Unavailable {
            detail: format!(
                "the database schema is at version {v}, this build needs {}; run `pgcqrs migrate`",
                crate::db::latest_migration_version()
            ),
            retry_after: 5,
        }
        .into_response(),
        Ok(Err(e)) => ApiError::Unavailable {
            detail: format!("the database is unreachable: {e}"),
            retry_after: 1,
        }
        .into_response(),
        Err(_) => ApiError::Unavailable {
            detail: "the database did not answer within 2 s".into(),
            retry_after: 1,
        }
        .into_response(),
    }
}
