//! Optional bearer tokens with scopes.
//!
//! `PGCQRS_AUTH_TOKENS="tok1=command,query;tok2=admin"`: when set, every
//! `/commands/*` request needs a token with scope `command`, `/queries/*`
//! scope `query`, `/admin/*` scope `admin` (401 without a known token, 403
//! without the scope). Health, metrics, the OpenAPI document and the status
//! page stay open. Tokens are kept as SHA-256 digests and never logged.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// A permission a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Command,
    Query,
    Admin,
}

impl Scope {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "command" => Ok(Scope::Command),
            "query" => Ok(Scope::Query),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} in PGCQRS_AUTH_TOKENS; use command, query or admin"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Command => "command",
            Scope::Query => "query",
            Scope::Admin => "admin",
        }
    }
}

/// The accepted tokens (as digests) and their scopes.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<[u8; 32], Vec<Scope>>);

impl Tokens {
    /// Parse `token=scope,scope;token=scope`. Empty: no authentication.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut tokens = HashMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (token, scopes) = entry
                .split_once('=')
                .ok_or("each entry of PGCQRS_AUTH_TOKENS is token=scope[,scope]")?;
            if token.len() < 16 {
                return Err("tokens in PGCQRS_AUTH_TOKENS must be at least 16 characters".into());
            }
            let scopes = scopes
                .split(',')
                .map(Scope::parse)
                .collect::<Result<Vec<_>, _>>()?;
            tokens.insert(digest(token), scopes);
        }
        Ok(Tokens(tokens))
    }

    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a side's routes need: the scope, and the tokens that may carry it.
#[derive(Clone)]
pub struct Required {
    pub scope: Scope,
    pub tokens: std::sync::Arc<Tokens>,
}

/// Reject requests without the scope of the side they are sent to (a layer
/// of each side's router).
pub async fn require_scope(
    State(Required {
        scope: needed,
        tokens,
    }): State<Required>,
    req: Request,
    next: Next,
) -> Response {
    if !tokens.is_enabled() {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let scopes = presented.and_then(|t| tokens.0.get(&digest(t)));
    match scopes {
        None => {
            let mut response = ApiError::Unauthorized(
                "this request needs a bearer token: Authorization: Bearer <token>".into(),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Some(scopes) if !scopes.contains(&needed) => ApiError::Forbidden(format!(
            "this token does not have the {} scope",
            needed.name()
        ))
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_scopes_are_parsed() {
        let t = Tokens::parse("aaaaaaaaaaaaaaaa=command,query; bbbbbbbbbbbbbbbb=admin").unwrap();
        assert_eq!(
            t.0.get(&digest("aaaaaaaaaaaaaaaa")),
            Some(&vec![Scope::Command, Scope::Query])
        );
        assert!(t.is_enabled());
        assert!(!Tokens::parse("").unwrap().is_enabled());
    }

    #[test]
    fn a_short_token_or_an_unknown_scope_is_refused() {
        assert!(Tokens::parse("short=command").is_err());
        assert!(Tokens::parse("aaaaaaaaaaaaaaaa=root").is_err());
        assert!(Tokens::parse("aaaaaaaaaaaaaaaa").is_err());
    }
}
