//! The HTTP side of the metrics: request counters and `GET /metrics`
//! (the recorder and the gauges are `crate::telemetry`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The route template of a request (not its path, so that ids do not
/// explode the label set).
fn route(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into())
}

/// Count and time every request by its route template.
pub async fn track_requests(req: Request, next: Next) -> Response {
    let route = route(&req);
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("pgcqrs_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("pgcqrs_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Count commands by outcome (a layer of the command routes only).
pub async fn count_commands(req: Request, next: Next) -> Response {
    let route = route(&req);
    let response = next.run(req).await;
    let status = response.status();
    let outcome = if response.headers().contains_key("idempotent-replayed") {
        "replayed"
    } else if status.is_success() {
        "accepted"
    } else if status.is_client_error() {
        "rejected"
    } else {
        "failed"
    };
    metrics::counter!("pgcqrs_commands_total", "route" => route, "outcome" => outcome).increment(1);
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render_metrics(State(state): State<AppState>) -> Response {
    match crate::telemetry::scrape(&state.write_pool, &state.reads, &state.models).await {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}
