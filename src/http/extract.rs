//! Extractors whose rejections are our own problem+json errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::commands::{CommandMeta, FieldError, Fingerprint};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REQUEST_ID: &str = "x-request-id";

/// A command request: its metadata (request id, `Idempotency-Key`,
/// `If-Match`) and its raw body, parsed on demand with [`CommandInput::json`].
pub struct CommandInput {
    pub meta: CommandMeta,
    body: Bytes,
}

impl CommandInput {
    /// Parse the body. Syntax errors are 400; well-formed JSON of the wrong
    /// shape is 422 naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body)
    }

    /// For commands without a body: accept none, or an empty object.
    pub fn no_body(&self) -> Result<(), ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Empty {}
        parse_json::<Empty>(&self.body).map(|_| ())
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request body is empty; a JSON object is expected".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    "body".to_string()
                } else {
                    path
                };
                ApiError::invalid(vec![FieldError::new(field, strip_position(&inner))])
            }
            _ => ApiError::BadRequest(format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    // One JSON value and nothing after it but whitespace.
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 42", useless next to a field path.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl FromRequest<AppState> for CommandInput {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let headers = req.headers().clone();
        // The body must be JSON whatever Content-Type says: curl's default
        // (form-urlencoded) should not stand between a user and the API.
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(state.body_limit)
            } else {
                ApiError::BadRequest(format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ))
            }
        })?;
        let idempotency =
            idempotency_key(&headers)?.map(|key| (key, Fingerprint::of(&method, &path, &body)));
        Ok(Self {
            meta: CommandMeta {
                correlation_id: request_id(&headers),
                idempotency,
                expected_version: if_match(&headers)?,
            },
            body,
        })
    }
}

/// The OpenAPI headers every command takes: `params(CommandHeaders)`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only its OpenAPI description is used
pub struct CommandHeaders {
    /// A retry with the same key and body replays the first response; another body gets 422
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    idempotency_key: Option<String>,
    /// Request id, echoed back and stored as the events' correlation id
    #[param(rename = "X-Request-Id")]
    request_id: Option<String>,
}

/// `If-Match`, for commands on an entity that exists: `params(..., IfMatch)`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only its OpenAPI description is used
pub struct IfMatch {
    /// The version last read, e.g. "3"; a stale one gets 412
    #[param(rename = "If-Match", pattern = "^(\\*|(W/)?\"?[1-9][0-9]{0,8}\"?)$")]
    if_match: Option<String>,
}

/// The request id set (or passed through) by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)".into(),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// `If-Match: "3"` (also `W/"3"`, `3`); `*` means any version.
fn if_match(headers: &HeaderMap) -> Result<Option<i32>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::BadRequest(
            "If-Match must be the version you last read, as an entity tag: If-Match: \"3\"".into(),
        )
    };
    let raw = value.to_str().map_err(|_| bad())?.trim();
    if raw == "*" {
        return Ok(None);
    }
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    raw.parse::<i32>()
        .ok()
        .filter(|v| *v >= 1)
        .map(Some)
        .ok_or_else(bad)
}

/// A path id that cannot exist is a 404 that says why.
pub fn path_id(what: &str, raw: &str) -> Result<crate::domain::EntityId, ApiError> {
    crate::domain::EntityId::parse(raw)
        .map_err(|e| ApiError::NotFound(format!("{what} {raw:?} does not exist: an id {e}")))
}

/// Query-string parameters with our own 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_match_accepts_quoted_weak_and_bare_versions() {
        for v in ["\"3\"", "W/\"3\"", "3"] {
            assert_eq!(if_match(&headers("if-match", v)).unwrap(), Some(3), "{v}");
        }
        assert_eq!(if_match(&headers("if-match", "*")).unwrap(), None);
    }

    #[test]
    fn if_match_rejects_what_is_not_a_version() {
        for v in ["\"abc\"", "0", "-1", "\"\""] {
            assert!(if_match(&headers("if-match", v)).is_err(), "{v}");
        }
    }

    #[test]
    fn an_idempotency_key_with_spaces_is_rejected() {
        assert!(idempotency_key(&headers("idempotency-key", "a b")).is_err());
        assert!(idempotency_key(&headers("idempotency-key", "abc-123"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn malformed_json_is_a_400_and_a_wrong_type_a_422_naming_the_field() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            items: Vec<u32>,
        }
        assert!(matches!(
            parse_json::<T>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
        match parse_json::<T>(br#"{"items": [1, "x"]}"#) {
            Err(ApiError::Invalid { errors, .. }) => assert_eq!(errors[0].field, "items[1]"),
            other => panic!("expected 422, got {other:?}"),
        }
    }
}
