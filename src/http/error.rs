//! The one place where errors become HTTP responses: RFC 9457
//! `application/problem+json`, with a detail a person can act on. Details of
//! a 500 are logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::commands::{CommandError, FieldError};
use crate::queries::QueryError;

/// An error on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: unparsable JSON, bad header, bad query string (400).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but breaks a rule; `errors` names each field (422).
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The query string (or path) is longer than a route accepts (414).
    #[error("{0}")]
    UriTooLong(String),
    /// Try again later: database down, a wait for freshness timed out (503).
    /// `retry_after` (seconds, at least 1) is sent as `Retry-After` and
    /// comes from the reason: see the `RETRY_AFTER_*` constants.
    #[error("{detail}")]
    Unavailable { detail: String, retry_after: u32 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// `Retry-After` when the database cannot be reached: a restart or a
/// fail-over takes seconds, not milliseconds.
pub const RETRY_AFTER_DATABASE_DOWN: u32 = 3;
/// `Retry-After` when every pooled connection stayed busy for the whole
/// wait: the work ahead drains in a moment.
pub const RETRY_AFTER_OVERLOADED: u32 = 2;
/// `Retry-After` when a standby cancelled a read to replay: the next read
/// usually succeeds at once.
pub const RETRY_AFTER_REPLAY_CONFLICT: u32 = 1;
/// `Retry-After` of `/readyz` while the instance is not ready: load
/// balancers probe every few seconds.
pub const RETRY_AFTER_NOT_READY: u32 = 5;
/// `Retry-After` when a request ran past the request timeout.
pub const RETRY_AFTER_REQUEST_TIMEOUT: u32 = 5;
/// The longest `Retry-After` an estimate gives.
pub const RETRY_AFTER_MAX: u32 = 60;

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, for a person.
    pub detail: String,
    /// For 422: each offending field and what is wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
            ),
            Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "The request is invalid",
            ),
            Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "Conflict with the current state",
            ),
            PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                "The entity has changed",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            UriTooLong(_) => (
                StatusCode::URI_TOO_LONG,
                "uri-too-long",
                "Request URI too long",
            ),
            Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid; see errors", many.len()),
        };
        ApiError::Invalid { detail, errors }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let retry_after = match &self {
            ApiError::Unavailable { retry_after, .. } => Some((*retry_after).max(1)),
            _ => None,
        };
        let (detail, errors) = match self {
            ApiError::Internal(ref e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    "an internal error occurred; it has been logged".to_string(),
                    Vec::new(),
                )
            }
            ApiError::Invalid { detail, errors } => (detail, errors),
            ref other => (other.to_string(), Vec::new()),
        };
        problem_response(status, slug, title, detail, errors, retry_after)
    }
}

pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u32>,
) -> Response {
    let problem = Problem {
        kind: format!("urn:pgcqrs:problem:{slug}"),
        title: title.to_string(),
        status: status.as_u16(),
        detail,
        errors,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Invalid(errors) => ApiError::invalid(errors),
            e @ CommandError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            e @ (CommandError::AlreadyExists { .. } | CommandError::Conflict(_)) => {
                ApiError::Conflict(e.to_string())
            }
            e @ CommandError::VersionMismatch { .. } => ApiError::PreconditionFailed(format!(
                "{e}; read it again and retry with If-Match set to the current version"
            )),
            e @ CommandError::IdempotencyKeyReused => ApiError::invalid(vec![FieldError::new(
                "Idempotency-Key",
                format!("{e}; use a new key for a new request"),
            )]),
            CommandError::Unavailable(detail) => ApiError::Unavailable {
                detail: format!("the database is unavailable ({detail}); retry shortly"),
                retry_after: RETRY_AFTER_DATABASE_DOWN,
            },
            CommandError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            e @ QueryError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            QueryError::NotYetFresh {
                ref retry_after, ..
            } => {
                // Whole seconds, rounded up: a retry a little late is
                // better than one that comes back to another 503.
                let retry_after = u32::try_from(retry_after.as_millis().div_ceil(1000))
                    .unwrap_or(RETRY_AFTER_MAX)
                    .clamp(1, RETRY_AFTER_MAX);
                ApiError::Unavailable {
                    detail: format!(
                        "{e}; retry in about {retry_after} s, or wait longer with the `wait` parameter (at most 30 s)"
                    ),
                    retry_after,
                }
            }
            e @ (QueryError::UnknownToken(_) | QueryError::BadParameter(_)) => {
                ApiError::BadRequest(e.to_string())
            }
            e @ QueryError::CatalogChanged(_) => ApiError::Unavailable {
                detail: format!("{e}; retry shortly"),
                retry_after: RETRY_AFTER_REPLAY_CONFLICT,
            },
            e @ QueryError::Overloaded(_) => ApiError::Unavailable {
                detail: format!("{e}; retry shortly"),
                retry_after: RETRY_AFTER_OVERLOADED,
            },
            e @ QueryError::ReplayConflict(_) => ApiError::Unavailable {
                detail: format!("{e}; retry shortly"),
                retry_after: RETRY_AFTER_REPLAY_CONFLICT,
            },
            QueryError::Unavailable(detail) => ApiError::Unavailable {
                detail: format!("the read database is unavailable ({detail}); retry shortly"),
                retry_after: RETRY_AFTER_DATABASE_DOWN,
            },
            QueryError::Internal(e) => ApiError::Internal(e),
        }
    }
}
