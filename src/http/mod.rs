//! The HTTP surface: one router listing every route, grouped by caller.
//!
//! `/commands/*` and `/queries/*` (with `/admin/*`) are separate prefixes,
//! each with its own router and layers ([`Side`]), so that a load balancer
//! can send the two sides to different instances.

pub mod auth;
pub mod commands;
pub mod error;
pub mod extract;
mod fields;
pub mod fresh;
pub mod metrics;
pub mod queries;
pub mod responses;
pub mod views;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use deadpool_postgres::Pool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use error::ApiError;

use crate::config::ModelConfig;
use crate::read_models::Refresher;
use std::sync::Arc;

/// What every handler can reach: one shared value, so that the clone each
/// middleware and extractor takes is a single reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The service's pools, settings and helpers.
pub struct Shared {
    /// Commands (and refreshes) use the primary.
    pub write_pool: Pool,
    /// Where queries read the read models: replicas, else the primary.
    pub reads: Arc<crate::db::targets::ReadTargets>,
    /// Each read target's freshness, and the wait for `min_token`.
    pub freshness: crate::queries::freshness::FreshnessGate,
    /// How `min_token` waits and the admin API ask for a refresh: this
    /// instance's refresher, or the refreshers elsewhere.
    pub requests: crate::read_models::RefreshRequests,
    pub body_limit: usize,
    pub request_timeout: Duration,
    /// The refresher, when this instance runs one: `min_token` waits and the
    /// admin API ask it for immediate refreshes.
    pub refresher: Option<Arc<Refresher>>,
    /// Per-view settings of this instance, for `/queries/read-models`.
    pub models: Arc<ModelConfig>,
    /// The declared read models `/queries/views/{name}` serves.
    pub views: crate::queries::view_catalog::ViewCatalog,
    /// Bearer tokens and their scopes; empty: no authentication.
    pub tokens: Arc<auth::Tokens>,
    /// What this instance serves.
    pub role: crate::config::Role,
}

/// The OpenAPI document's frame; the paths come from the router itself.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "pgcqrs",
        description = "Single-database CQRS on PostgreSQL. Commands (under /commands) write normalized tables in one transaction each and answer with the transaction id as `token`; queries (under /queries) read materialized read models and say how fresh they are. Pass a command's token as `min_token` to read your own write.",
    ),
    tags(
        (name = "commands", description = "The write side: validated, transactional, idempotent with Idempotency-Key"),
        (name = "queries", description = "The read side: read models with staleness headers and read-your-writes"),
        (name = "operations", description = "Read-model freshness and refreshes"),
    ),
    // Bodies referred to by responses declared once (`responses.rs`, the
    // `fresh_answers!` of `queries.rs`), which no route's `body = ..` registers.
    components(schemas(
        error::Problem,
        queries::OrderHistory,
        crate::queries::orders::OrderPage,
        crate::queries::orders::OrderSummary,
        crate::queries::statistics::OrderStatistics,
    ))
)]
struct ApiDoc;

/// Every route of the service, and the OpenAPI document describing them
/// (built from the same lists, so it cannot miss a route).
pub fn router_and_openapi(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    use self::commands as c;
    use self::queries as q;
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    let mut openapi = ApiDoc::openapi();
    // Declared as 3.1 (utoipa writes 3.1 documents).
    openapi.openapi = utoipa::openapi::OpenApiVersion::Version31;
    let commands = OpenApiRouter::new()
        .routes(routes!(c::register_customer))
        .routes(routes!(c::change_customer_details))
        .routes(routes!(c::add_product))
        .routes(routes!(c::change_product_price))
        .routes(routes!(c::place_order))
        .routes(routes!(c::confirm_order))
        .routes(routes!(c::ship_order))
        .routes(routes!(c::deliver_order))
        .routes(routes!(c::cancel_order))
        .routes(routes!(c::change_order_status));
    let queries = OpenApiRouter::new()
        .routes(routes!(q::list_orders))
        .routes(routes!(q::get_order))
        .routes(routes!(q::get_order_history))
        .routes(routes!(q::list_customer_orders))
        .routes(routes!(q::order_statistics))
        .routes(routes!(q::list_read_models))
        // Documented per declared model, at request time (`/openapi.json`).
        .route("/queries/views/{name}", get(views::get_view));
    let admin = OpenApiRouter::new().routes(routes!(q::refresh_read_model));
    let mut api = Router::new();
    for (side, routes) in [
        (Side::Commands, commands),
        (Side::Queries, queries),
        (Side::Admin, admin),
    ] {
        let (routes, doc) = routes.split_for_parts();
        openapi.merge(doc);
        api = api.merge(side.router(routes, &state));
    }
    let document = std::sync::Arc::new(openapi.clone());

    let operations = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render_metrics))
        .route(
            "/openapi.json",
            get(move |State(state): State<AppState>| {
                let document = std::sync::Arc::clone(&document);
                async move { axum::Json(views::openapi_json(&state, &document).await) }
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .route_layer(middleware::from_fn(metrics::track_requests));

    let request_id = HeaderName::from_static(extract::REQUEST_ID);
    let router = Router::new()
        .merge(api)
        .merge(operations)
        .fallback(not_found)
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
        .with_state(state);
    (router, openapi)
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    router_and_openapi(state).0
}

/// The sides of the API, told apart here once: each has its own prefix,
/// router and layers (the scope a token needs, whether this instance's
/// `--role` serves it, command metrics).
#[derive(Debug, Clone, Copy)]
enum Side {
    Commands,
    Queries,
    Admin,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Commands => "/commands",
            Side::Queries => "/queries",
            Side::Admin => "/admin",
        }
    }

    fn scope(self) -> auth::Scope {
        match self {
            Side::Commands => auth::Scope::Command,
            Side::Queries => auth::Scope::Query,
            Side::Admin => auth::Scope::Admin,
        }
    }

    fn served_by(self, role: crate::config::Role) -> bool {
        match self {
            Side::Commands => role.serves_commands(),
            Side::Queries | Side::Admin => role.serves_queries(),
        }
    }

    /// The side's routes with its layers, innermost first. Paths under the
    /// prefix that match no route are 404s behind the same layers.
    fn router(self, routes: Router<AppState>, state: &AppState) -> Router<AppState> {
        let mut routes = routes
            .method_not_allowed_fallback(method_not_allowed)
            .layer(middleware::from_fn_with_state(state.clone(), deadline))
            .route_layer(middleware::from_fn(metrics::track_requests));
        if let Side::Commands = self {
            routes = routes.route_layer(middleware::from_fn(metrics::count_commands));
        }
        let routes = routes
            .route(&format!("{}/{{*rest}}", self.prefix()), any(not_found))
            .layer(middleware::from_fn_with_state(
                auth::Required {
                    scope: self.scope(),
                    tokens: Arc::clone(&state.tokens),
                },
                auth::require_scope,
            ));
        if self.served_by(state.role) {
            routes
        } else {
            routes.layer(middleware::from_fn_with_state(state.role, not_served))
        }
    }
}

/// An instance started with `--role` answers only its side's routes.
async fn not_served(State(role): State<crate::config::Role>, req: Request, _: Next) -> ApiError {
    ApiError::NotFound(format!(
        "this instance (--role {}) does not serve {}",
        format!("{role:?}").to_lowercase(),
        req.uri().path()
    ))
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
            retry_after: error::RETRY_AFTER_REQUEST_TIMEOUT,
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

/// The status page: read-model freshness, recent orders, a form to place
/// an order. Self-contained (no build step, no CDN); it uses only the API.
async fn status_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("static/index.html"))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the primary answers and its schema is this build's. Where
/// queries read is reported too: reads falling back to the primary while
/// replicas are down still count as ready (the answers are right, only the
/// load is in the wrong place), and so does a query instance whose replicas
/// answer while the primary does not.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        let client = state.write_pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM refinery_schema_history",
                &[],
            )
            .await?;
        anyhow::Ok(crate::db::column::<i32>(&row, 0)?)
    };
    if let Some(Err(stalled)) = state.refresher.as_ref().map(|r| r.health()) {
        return ApiError::Unavailable {
            detail: format!("the refresher is stalled: {stalled}"),
            retry_after: error::RETRY_AFTER_NOT_READY,
        }
        .into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(v)) if v >= crate::db::latest_migration_version() => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "schema_version": v,
                "reads": state.reads.report(),
            })),
        )
            .into_response(),
        Ok(Ok(v)) => ApiError::Unavailable {
            detail: format!(
                "the database schema is at version {v}, this build needs {}; run `pgcqrs migrate`",
                crate::db::latest_migration_version()
            ),
            retry_after: error::RETRY_AFTER_NOT_READY,
        }
        .into_response(),
        Ok(Err(e)) => primary_unreachable(&state, format!("the database is unreachable: {e}")),
        Err(_) => primary_unreachable(&state, "the database did not answer within 2 s".into()),
    }
}

/// Without the primary, a query instance whose replicas answer can still
/// serve reads (without read-your-writes past what they replayed): it stays
/// in the load balancer as `degraded`. Any other instance is not ready.
fn primary_unreachable(state: &AppState, detail: String) -> Response {
    if state.role == crate::config::Role::Queries && state.reads.replica_up() {
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "degraded",
                "primary": detail,
                "reads": state.reads.report(),
            })),
        )
            .into_response();
    }
    ApiError::Unavailable {
        detail,
        retry_after: error::RETRY_AFTER_NOT_READY,
    }
    .into_response()
}
