//! The one fresh-read path every query takes: [`ReadQuery`] extracts a
//! query's own parameters and the freshness it asks for (`min_token` and
//! `wait`, or `X-Min-Token`); [`fresh_read`] waits on a read target until
//! the read models the query names include that token, runs the query
//! there, and answers with how fresh the answer is
//! (`X-Read-Model-Refreshed-At`, `Age`).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::Pool;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{
    ContentBuilder, Ref, RefOr, Response as OpenApiResponse, ResponseBuilder, Schema,
};
use utoipa::PartialSchema;

use super::error::ApiError;
use super::AppState;
use crate::queries::freshness::{Freshness, Token, DEFAULT_WAIT, MAX_WAIT};
use crate::queries::QueryError;

pub const MIN_TOKEN_HEADER: &str = "x-min-token";
pub const REFRESHED_AT_HEADER: &str = "x-read-model-refreshed-at";

/// The query-string names [`ReadQuery`] takes for itself.
const MIN_TOKEN: &str = "min_token";
const WAIT: &str = "wait";

/// How fresh an answer must be.
#[derive(Debug, Clone, Copy)]
pub struct Fresh {
    token: Option<Token>,
    /// The end of the wait, fixed when the request arrives: a read retried
    /// on another target has only what is left.
    until: Instant,
}

impl Fresh {
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

/// A query's own parameters `T` (which should deny unknown fields) and the
/// freshness it asks for, from one query string and `X-Min-Token`.
pub struct ReadQuery<T> {
    pub params: T,
    pub fresh: Fresh,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ReadQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let bad =
            |e: &dyn std::fmt::Display| ApiError::BadRequest(format!("invalid query string: {e}"));
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
                .map_err(|e| bad(&e))?;
        let (freshness, own): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(name, _)| name == MIN_TOKEN || name == WAIT);
        let mut min_token = None;
        let mut wait = None;
        for (name, value) in &freshness {
            let slot = if name == MIN_TOKEN {
                &mut min_token
            } else {
                &mut wait
            };
            if slot.replace(value.as_str()).is_some() {
                return Err(bad(&format_args!("duplicate field `{name}`")));
            }
        }
        let own = serde_urlencoded::to_string(&own).map_err(|e| bad(&e))?;
        let params = serde_urlencoded::from_str(&own).map_err(|e| bad(&e))?;
        let fresh = Fresh::parse(min_token, wait, &parts.headers)?;
        Ok(Self { params, fresh })
    }
}

/// Read on a read target once `views` there include the request's
/// `min_token` (waiting at most until its deadline, see
/// [`ReadTargets::read`](crate::db::targets::ReadTargets::read)), and answer `query`'s result as JSON with its
/// staleness headers. Views kept by triggers need no wait: name none.
pub async fn fresh_read<T, F, Fut>(
    state: &AppState,
    fresh: Fresh,
    views: &[&str],
    query: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(Pool) -> Fut,
    Fut: Future<Output = Result<T, QueryError>>,
{
    let query = &query;
    let started = Instant::now();
    let (freshness, body) = state
        .reads
        .read(fresh.deadline(), |target, until| async move {
            let wait = until
                .unwrap_or(fresh.until)
                .saturating_duration_since(Instant::now());
            let freshness = state
                .freshness
                .await_views(&target, views, fresh.token, wait)
                .await?;
            Ok((freshness, query(target.pool.clone()).await?))
        })
        .await
        .map_err(|e: QueryError| e.waited_since(started))?;
    Ok(fresh_json(freshness, body))
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

/// `min_token` and `wait` in the query string (the parameters
/// [`ReadQuery`] takes for itself).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only its OpenAPI description is used
struct FreshnessQuery {
    /// Wait until the answer includes the command with this token.
    #[param(pattern = "^[0-9]{1,19}$")]
    min_token: Option<String>,
    /// How long to wait for `min_token`: seconds or `500ms`; default 5 s, at most 30 s.
    #[param(
        pattern = "^([12]?[0-9](\\.[0-9]+)?|30(\\.0+)?|([12]?[0-9]|30)s|([0-9]{1,4}|[12][0-9]{4}|30000)ms)$"
    )]
    wait: Option<String>,
}

/// `X-Min-Token`, the header form of `min_token`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only its OpenAPI description is used
struct FreshnessHeader {
    /// Same as min_token
    #[param(rename = "X-Min-Token", pattern = "^[0-9]{1,19}$")]
    min_token: Option<String>,
}

/// The OpenAPI parameters of [`Fresh`]: `params(..., FreshnessParams)`.
pub struct FreshnessParams;

impl utoipa::IntoParams for FreshnessParams {
    fn into_params(
        parameter_in_provider: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let mut params =
            <FreshnessQuery as utoipa::IntoParams>::into_params(&parameter_in_provider);
        params.extend(<FreshnessHeader as utoipa::IntoParams>::into_params(
            parameter_in_provider,
        ));
        params
    }
}

/// The OpenAPI 200 of a fresh read: `body` as JSON, with the staleness
/// headers [`fresh_read`] sets.
pub fn fresh_answer(body: &str, description: &str) -> BTreeMap<String, RefOr<OpenApiResponse>> {
    let header = |description: &str, schema: RefOr<Schema>| {
        HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(description))
            .build()
    };
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(body)))
                .build(),
        )
        .header(
            "X-Read-Model-Refreshed-At",
            header(
                "When the read models behind this answer were last known current (RFC 3339)",
                String::schema(),
            ),
        )
        .header("Age", header("Seconds since then", u64::schema()))
        .build();
    BTreeMap::from([(StatusCode::OK.as_str().to_owned(), response.into())])
}

/// `pub struct Name;` documenting a query's 200 in OpenAPI (its body and the
/// staleness headers) beside its problems: `responses(Name, QueryProblems)`.
/// A route registers the schemas of its `body = ..` only: list the body among
/// the document's components.
macro_rules! fresh_answers {
    ($($(#[$doc:meta])* $name:ident = ($body:ty, $description:literal);)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::Response>,
            > {
                $crate::http::fresh::fresh_answer(
                    &<$body as utoipa::ToSchema>::name(),
                    $description,
                )
            }
        }
    )+};
}
pub(crate) use fresh_answers;

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
}
