//! `GET /queries/views/{name}`: any declared read model, with filters on its
//! `filterable` columns, an order, keyset pages and read-your-writes, and
//! its description in `/openapi.json`, written per model at request time.
//!
//! A read is refused before any SQL of its own runs when its query string
//! is too long (414), malformed, has too many filters, an unknown operator,
//! or names a column that is not filterable (400), or names no declared
//! model (404). See `crate::queries::views` for the grammar and the SELECT.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::fresh::{fresh_read, Fresh, FreshnessParams, ReadQuery};
use super::AppState;
use crate::queries::view_catalog::{self, Models};
use crate::queries::views::{Column, Model, Plan, ViewError, ViewRequest, MAX_LIMIT};
use crate::queries::QueryError;

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> Self {
        match e {
            e @ ViewError::TooLong(_) => ApiError::UriTooLong(e.to_string()),
            ViewError::Bad(detail) => ApiError::BadRequest(detail),
        }
    }
}

/// A view read's query string: its length checked first, then split into
/// the freshness it asks for and the read itself.
pub struct ViewQuery {
    request: ViewRequest,
    fresh: Fresh,
}

impl<S: Send + Sync> FromRequestParts<S> for ViewQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        ViewRequest::check_length(parts.uri.query())?;
        let ReadQuery { params, fresh } =
            ReadQuery::<Vec<(String, String)>>::from_request_parts(parts, state).await?;
        Ok(Self {
            request: ViewRequest::parse(&params)?,
            fresh,
        })
    }
}

/// Whether `name` could be a declared model's (the catalog's own rule):
/// anything else is a 404 without a look at the catalog.
fn plausible_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn unknown(name: &str) -> ApiError {
    let shown: String = name.chars().take(64).collect();
    ApiError::NotFound(format!(
        "no declared read model named {shown:?}; GET /queries/read-models lists them"
    ))
}

/// Read a declared read model (documented per model in `/openapi.json`).
pub async fn get_view(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    ViewQuery { request, fresh }: ViewQuery,
) -> Result<Response, ApiError> {
    let name = match name {
        Ok(Path(name)) if plausible_name(&name) => name,
        Ok(Path(name)) => return Err(unknown(&name)),
        Err(_) => return Err(unknown("")),
    };
    let mut retried = false;
    loop {
        let model = state
            .views
            .model(&state.reads, &name)
            .await?
            .ok_or_else(|| unknown(&name))?;
        let plan = Plan::new(&model, &request)?;
        let (plan, stale) = (&plan, &AtomicBool::new(false));
        let read = fresh_read(&state, fresh, &[name.as_str()], |pool| async move {
            let page = view_catalog::read_view(&pool, plan).await;
            if let Err(QueryError::CatalogChanged(_)) = page {
                stale.store(true, Ordering::Relaxed);
            }
            page
        })
        .await;
        // Dropped or redefined since the catalog was read: read the catalog
        // again, and the model once more (or answer 404).
        if stale.load(Ordering::Relaxed) && !retried {
            retried = true;
            state.views.invalidate();
            continue;
        }
        return read;
    }
}

/// `/openapi.json`: the routes of the service, and one per declared model.
/// Without the catalog (the database is down), the routes of the service.
pub async fn openapi_json(state: &AppState, base: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(base).unwrap_or_default();
    match state.views.models(&state.reads).await {
        Ok(models) => add_models(&mut doc, &models),
        Err(e) => {
            tracing::warn!(error = %e, "the OpenAPI document goes out without the declared read models")
        }
    }
    doc
}

fn add_models(doc: &mut Value, models: &Models) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for model in models.values() {
        paths.insert(
            format!("/queries/views/{}", model.name),
            json!({ "get": operation(model) }),
        );
    }
}

/// The OpenAPI operation of one model's route.
fn operation(model: &Model) -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        })
    };
    let description = model
        .description
        .clone()
        .unwrap_or_else(|| format!("The declared read model {}.", model.name));
    json!({
        "tags": ["queries"],
        "summary": format!("Read {}", model.name),
        "description": description,
        "operationId": format!("get_view_{}", model.name),
        "parameters": parameters(model),
        "responses": {
            "200": {
                "description": "A page of rows",
                "headers": {
                    "X-Read-Model-Refreshed-At": {"description": "When the read model was last known current (RFC 3339)", "schema": {"type": "string"}},
                    "Age": {"description": "Seconds since then", "schema": {"type": "integer", "minimum": 0}},
                },
                "content": {"application/json": {"schema": page_schema(model)}},
            },
            "400": problem("A filter or order on a column that is not filterable, an unknown operator, a value that is not of the column's type, a cursor from another read"),
            "404": problem("No read model of that name"),
            "414": problem("Query string too long"),
            "503": problem("Database unavailable, or min_token not reached within the wait; see Retry-After"),
        },
    })
}

/// A model's query parameters: its filters, order, limit, cursor and the
/// freshness parameters.
fn parameters(model: &Model) -> Vec<Value> {
    let mut parameters: Vec<Value> = model
        .filterable
        .iter()
        .filter_map(|f| model.column(f))
        .map(|c| {
            json!({
                "name": c.name,
                "in": "query",
                "required": false,
                "description": format!(
                    "Filter on {} ({}): eq.v, gt.v, gte.v, lt.v, lte.v or in.(a,b) (values in double quotes may hold commas); repeat to combine",
                    c.name, c.sql_type
                ),
                "schema": {"type": "string", "pattern": "^((eq|gt|gte|lt|lte)\\..*|in\\.\\(.*\\))$"},
            })
        })
        .collect();
    let orders: Vec<String> = model
        .filterable
        .iter()
        .filter(|f| model.column(f).is_some())
        .flat_map(|f| [format!("{f}.asc"), format!("{f}.desc")])
        .collect();
    if !orders.is_empty() {
        parameters.push(json!({
            "name": "order",
            "in": "query",
            "required": false,
            "description": format!("Order by a filterable column; ties are broken by the key ({}). Default: the key, ascending.", model.key.join(", ")),
            "schema": {"type": "string", "enum": orders},
        }));
    }
    parameters.push(json!({
        "name": "limit",
        "in": "query",
        "required": false,
        "description": "Rows per page",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": crate::queries::views::DEFAULT_LIMIT},
    }));
    parameters.push(json!({
        "name": "after",
        "in": "query",
        "required": false,
        "description": "The `next` of the previous page (with the same order)",
        "schema": {"type": "string"},
    }));
    let freshness = <FreshnessParams as utoipa::IntoParams>::into_params(|| None);
    parameters.extend(
        freshness
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok()),
    );
    parameters
}

/// A page of a model's rows, each with its columns' JSON types.
fn page_schema(model: &Model) -> Value {
    let mut properties = Map::new();
    for c in &model.columns {
        properties.insert(c.name.clone(), column_schema(c));
    }
    let required: Vec<&str> = model.columns.iter().map(|c| c.name.as_str()).collect();
    json!({
        "type": "object",
        "required": ["rows", "next"],
        "properties": {
            "rows": {"type": "array", "items": {
                "type": "object",
                "required": required,
                "properties": properties,
            }},
            "next": {"type": ["string", "null"], "description": "Pass as `after` for the next page; null on the last page"},
        },
    })
}

/// A column's value in JSON, as `to_json` writes its type.
fn column_schema(c: &Column) -> Value {
    let mut schema = json_type(&c.base_type, c.element_type.as_deref());
    if !c.not_null {
        if let Some(Value::Array(types)) = schema.get_mut("type") {
            types.push(json!("null"));
        } else if let Some(t) = schema.get("type").cloned() {
            schema["type"] = json!([t, "null"]);
        }
    }
    let description = match &c.comment {
        Some(comment) => format!("{comment} ({})", c.sql_type),
        None => c.sql_type.clone(),
    };
    if let Some(object) = schema.as_object_mut() {
        object.insert("description".into(), json!(description));
    }
    schema
}

fn json_type(base: &str, element: Option<&str>) -> Value {
    if let Some(element) = element {
        let mut items = json_type(element, None);
        if let Some(t) = items.get("type").cloned() {
            items["type"] = match t {
                Value::Array(mut ts) => {
                    ts.push(json!("null"));
                    Value::Array(ts)
                }
                t => json!([t, "null"]),
            };
        }
        return json!({"type": "array", "items": items});
    }
    match base {
        "int2" | "int4" | "int8" | "oid" => json!({"type": "integer"}),
        "numeric" => json!({"type": "number"}),
        // NaN and the infinities come out as strings.
        "float4" | "float8" => json!({"type": ["number", "string"]}),
        "bool" => json!({"type": "boolean"}),
        "json" | "jsonb" => json!({}),
        "timestamptz" => json!({"type": "string", "format": "date-time"}),
        "date" => json!({"type": "string", "format": "date"}),
        "uuid" => json!({"type": "string", "format": "uuid"}),
        _ => json!({"type": "string"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_catalog_shaped_names_are_looked_up() {
        for good in ["a", "order_summary", "m2", &"a".repeat(63)] {
            assert!(plausible_name(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "_a",
            "a-b",
            "a;drop",
            "a\"b",
            "é",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!plausible_name(bad), "{bad}");
        }
    }

    #[test]
    fn nullable_columns_admit_null_in_their_schema() {
        let c = Column {
            name: "total".into(),
            sql_type: "numeric(12,2)".into(),
            cast_type: "pg_catalog.\"numeric\"".into(),
            base_type: "numeric".into(),
            element_type: None,
            not_null: false,
            comment: None,
        };
        assert_eq!(column_schema(&c)["type"], json!(["number", "null"]));
        let ints = Column {
            base_type: "_int4".into(),
            element_type: Some("int4".into()),
            not_null: true,
            ..c
        };
        assert_eq!(
            column_schema(&ints)["items"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(column_schema(&ints)["type"], json!("array"));
    }
}
