//! The OpenAPI problem responses, declared once: each route lists the ones
//! it can answer, `responses((status = 200, ...), BadRequest, Unavailable)`.
//! Every one is an `application/problem+json` [`Problem`].
#![allow(dead_code)] // the types exist for their OpenAPI descriptions

use utoipa::IntoResponses;

use super::error::Problem;

/// 400: the request could not be parsed.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "Malformed JSON, header or parameter",
    content_type = "application/problem+json"
)]
pub struct BadRequest(Problem);

/// 404: a path id or name that does not exist.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "Unknown id",
    content_type = "application/problem+json"
)]
pub struct NotFound(Problem);

/// 409: the command conflicts with the current state.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "Conflict with the current state (impossible transition, id taken)",
    content_type = "application/problem+json"
)]
pub struct Conflict(Problem);

/// 412: `If-Match` is stale.
#[derive(IntoResponses)]
#[response(
    status = 412,
    description = "If-Match names a version that is not current",
    content_type = "application/problem+json"
)]
pub struct VersionMismatch(Problem);

/// What every command can answer besides success: a malformed or invalid
/// request (an `Idempotency-Key` reused with another body included), a body
/// over the limit, a database that does not answer.
#[derive(IntoResponses)]
pub enum CommandProblems {
    #[response(
        status = 400,
        description = "Malformed JSON, header or parameter",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    #[response(
        status = 413,
        description = "Body larger than the limit",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(
        status = 422,
        description = "Invalid input; `errors` names each field",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
    #[response(
        status = 503,
        description = "Database unavailable; see Retry-After",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// What every query taking `min_token` can answer besides success.
#[derive(IntoResponses)]
pub enum QueryProblems {
    #[response(
        status = 400,
        description = "Malformed JSON, header or parameter",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    #[response(
        status = 503,
        description = "Database unavailable, or min_token not reached within the wait; see Retry-After",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// 503 of a route that reads the database but waits for nothing.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "Database unavailable; see Retry-After",
    content_type = "application/problem+json"
)]
pub struct Unavailable(Problem);
