//! Command handlers: parse the request into a domain command, run it in one
//! transaction on the write pool, answer 201/202 with version and token.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use deadpool_postgres::Transaction;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{path_id, CommandHeaders, CommandInput, IfMatch};
use super::fields;
use super::responses::{ChangeProblems, CreateProblems, TransitionProblems};
use super::AppState;
use crate::commands::orders::OrderAccepted;
use crate::commands::EntityAccepted;
use crate::commands::{self, customers, orders, products, CommandError, FieldError, Outcome};
use crate::domain::{
    CancelReason, Email, EntityId, Invalid, Money, OrderStatus, PersonName, ProductName, Quantity,
};

/// The most lines one order may have.
pub const MAX_LINES: usize = 1000;

/// Collects every field problem of a request, so the client fixes all at once.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    fn check<T>(&mut self, field: impl Into<String>, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Invalid(message)) => {
                self.0.push(FieldError::new(field, message));
                None
            }
        }
    }

    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Every check passed: hand back the value built from them.
    fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        if !self.0.is_empty() {
            return Err(ApiError::invalid(self.0));
        }
        value().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("validated input incomplete")))
    }
}

fn optional_id(checks: &mut Checks, field: &str, raw: Option<&str>) -> Option<EntityId> {
    match raw {
        Some(raw) => checks.check(field, EntityId::parse(raw)),
        None => Some(EntityId::generate()),
    }
}

/// The request's JSON body `R`, made into a command by `build`, which checks
/// every field before it gives up (see [`Checks`]).
fn validated<R: DeserializeOwned, T>(
    input: &CommandInput,
    build: impl FnOnce(R, &mut Checks) -> Option<T>,
) -> Result<T, ApiError> {
    let req = input.json()?;
    let mut checks = Checks::default();
    let value = build(req, &mut checks);
    checks.finish(|| value)
}

/// Run a validated command on the write pool and answer with `status`
/// (or, for a replay, the status stored with the first answer).
async fn run<T: Serialize>(
    state: &AppState,
    input: &CommandInput,
    status: StatusCode,
    command: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, CommandError>,
) -> Result<Response, ApiError> {
    let outcome =
        commands::execute(&state.write_pool, &input.meta, status.as_u16(), command).await?;
    Ok(respond(outcome))
}

/// Run a command changing an entity at the version `If-Match` names (if
/// any): 202.
async fn change<T: Serialize>(
    state: &AppState,
    input: &CommandInput,
    command: impl AsyncFnOnce(&Transaction<'_>, Option<i32>) -> Result<T, CommandError>,
) -> Result<Response, ApiError> {
    let expected = input.meta.expected_version;
    run(state, input, StatusCode::ACCEPTED, async |tx| {
        command(tx, expected).await
    })
    .await
}

fn respond(outcome: Outcome) -> Response {
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::OK);
    let version = outcome.body.get("version").and_then(|v| v.as_i64());
    let mut response = (status, axum::Json(outcome.body)).into_response();
    let headers = response.headers_mut();
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
        headers.insert(header::ETAG, v);
    }
    if outcome.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

// ----------------------------------------------------------------- customers

/// Body of `POST /commands/customers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCustomerRequest {
    #[schema(schema_with = fields::optional_id)]
    pub id: Option<String>,
    #[schema(schema_with = fields::person_name)]
    pub name: String,
    #[schema(schema_with = fields::email_address)]
    pub email: String,
}

/// Body of `POST /commands/customers/{id}/change-details`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCustomerDetailsRequest {
    #[schema(schema_with = fields::optional_person_name)]
    pub name: Option<String>,
    #[schema(schema_with = fields::optional_email_address)]
    pub email: Option<String>,
}

/// Register a customer.
#[utoipa::path(post, path = "/commands/customers", tag = "commands", request_body = RegisterCustomerRequest,
    params(CommandHeaders),
    responses((status = 201, description = "Registered", body = EntityAccepted), CreateProblems))]
pub async fn register_customer(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let cmd = validated(&input, |req: RegisterCustomerRequest, c| {
        let id = optional_id(c, "id", req.id.as_deref());
        let name = c.check("name", PersonName::parse(&req.name));
        let email = c.check("email", Email::parse(&req.email));
        Some(customers::RegisterCustomer {
            id: id?,
            name: name?,
            email: email?,
        })
    })?;
    run(&state, &input, StatusCode::CREATED, async |tx| {
        customers::register(tx, cmd).await
    })
    .await
}

/// Change a customer's name and/or e-mail.
#[utoipa::path(post, path = "/commands/customers/{id}/change-details", tag = "commands", request_body = ChangeCustomerDetailsRequest,
    params(("id" = String, Path, description = "The customer"), CommandHeaders, IfMatch),
    responses((status = 202, description = "Changed", body = EntityAccepted), ChangeProblems))]
pub async fn change_customer_details(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let id = path_id("customer", &id)?;
    let cmd = validated(&input, |req: ChangeCustomerDetailsRequest, c| {
        if req.name.is_none() && req.email.is_none() {
            c.fail("body", "give a new name, a new email, or both");
        }
        let name = req
            .name
            .as_deref()
            .map(|n| c.check("name", PersonName::parse(n)));
        let email = req
            .email
            .as_deref()
            .map(|e| c.check("email", Email::parse(e)));
        Some(customers::ChangeCustomerDetails {
            id,
            name: name.flatten(),
            email: email.flatten(),
        })
    })?;
    change(&state, &input, async |tx, expected| {
        customers::change_details(tx, cmd, expected).await
    })
    .await
}

// ------------------------------------------------------------------ products

/// Body of `POST /commands/products`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddProductRequest {
    #[schema(schema_with = fields::optional_id)]
    pub id: Option<String>,
    #[schema(schema_with = fields::product_name)]
    pub name: String,
    #[schema(schema_with = fields::price)]
    pub price: serde_json::Value,
}

/// Body of `POST /commands/products/{id}/change-price`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeProductPriceRequest {
    #[schema(schema_with = fields::new_price)]
    pub price: serde_json::Value,
}

fn money(c: &mut Checks, field: &str, raw: &serde_json::Value) -> Option<Money> {
    let parsed = match raw {
        serde_json::Value::Number(n) => Money::parse_json_number(&n.to_string()),
        serde_json::Value::String(s) => Money::parse(s),
        other => Err(Invalid(format!(
            "must be an amount, as a number or a string, not {other}"
        ))),
    };
    c.check(field, parsed)
}

/// Add a product to the catalog.
#[utoipa::path(post, path = "/commands/products", tag = "commands", request_body = AddProductRequest,
    params(CommandHeaders),
    responses((status = 201, description = "Added", body = EntityAccepted), CreateProblems))]
pub async fn add_product(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let cmd = validated(&input, |req: AddProductRequest, c| {
        let id = optional_id(c, "id", req.id.as_deref());
        let name = c.check("name", ProductName::parse(&req.name));
        let price = money(c, "price", &req.price);
        Some(products::AddProduct {
            id: id?,
            name: name?,
            price: price?,
        })
    })?;
    run(&state, &input, StatusCode::CREATED, async |tx| {
        products::add(tx, cmd).await
    })
    .await
}

/// Change a product's catalog price; orders already placed keep theirs.
#[utoipa::path(post, path = "/commands/products/{id}/change-price", tag = "commands", request_body = ChangeProductPriceRequest,
    params(("id" = String, Path, description = "The product"), CommandHeaders, IfMatch),
    responses((status = 202, description = "Changed; orders already placed keep their prices", body = EntityAccepted), ChangeProblems))]
pub async fn change_product_price(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let id = path_id("product", &id)?;
    let cmd = validated(&input, |req: ChangeProductPriceRequest, c| {
        let price = money(c, "price", &req.price);
        Some(products::ChangeProductPrice { id, price: price? })
    })?;
    change(&state, &input, async |tx, expected| {
        products::change_price(tx, cmd, expected).await
    })
    .await
}

// -------------------------------------------------------------------- orders

/// Body of `POST /commands/orders`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(schema_with = fields::optional_id)]
    pub order_id: Option<String>,
    #[schema(schema_with = fields::entity_id)]
    pub customer_id: String,
    /// At least one line.
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<OrderLineRequest>,
}

/// One line of `PlaceOrderRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    #[schema(schema_with = fields::entity_id)]
    pub product_id: String,
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: i64,
    #[schema(schema_with = fields::expected_price)]
    pub price: Option<serde_json::Value>,
}

/// Body of `POST /commands/orders/{id}/cancel`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrderRequest {
    #[schema(schema_with = fields::cancel_reason)]
    pub reason: String,
}

/// Body of `POST /commands/orders/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeOrderStatusRequest {
    /// Target status, any case: confirmed, shipped, delivered, cancelled.
    #[schema(
        pattern = "^([Pp][Ee][Nn][Dd][Ii][Nn][Gg]|[Cc][Oo][Nn][Ff][Ii][Rr][Mm][Ee][Dd]|[Ss][Hh][Ii][Pp][Pp][Ee][Dd]|[Dd][Ee][Ll][Ii][Vv][Ee][Rr][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ll][Ee][Dd])$"
    )]
    pub status: String,
    #[schema(schema_with = fields::reason_if_cancelling)]
    pub reason: Option<String>,
}

/// Place an order at today's catalog prices.
#[utoipa::path(post, path = "/commands/orders", tag = "commands", request_body = PlaceOrderRequest,
    params(CommandHeaders),
    responses((status = 202, description = "Placed", body = OrderAccepted), CreateProblems))]
pub async fn place_order(
    State(state): State<AppState>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let cmd = validated(&input, |req: PlaceOrderRequest, c| {
        let order_id = optional_id(c, "order_id", req.order_id.as_deref());
        let customer_id = c.check("customer_id", EntityId::parse(&req.customer_id));
        if req.items.is_empty() {
            c.fail("items", "an order needs at least one item");
        }
        if req.items.len() > MAX_LINES {
            c.fail(
                "items",
                format!(
                    "an order may have at most {MAX_LINES} items, got {}",
                    req.items.len()
                ),
            );
        }
        let lines: Vec<Option<orders::OrderLine>> = req
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let product_id = c.check(
                    format!("items[{i}].product_id"),
                    EntityId::parse(&item.product_id),
                );
                let quantity = c.check(
                    format!("items[{i}].quantity"),
                    Quantity::parse(item.quantity),
                );
                let expected_price = match &item.price {
                    None | Some(serde_json::Value::Null) => Some(None),
                    Some(p) => money(c, &format!("items[{i}].price"), p).map(Some),
                };
                Some(orders::OrderLine {
                    product_id: product_id?,
                    quantity: quantity?,
                    expected_price: expected_price?,
                })
            })
            .collect();
        Some(orders::PlaceOrder {
            order_id: order_id?,
            customer_id: customer_id?,
            lines: lines.into_iter().collect::<Option<Vec<_>>>()?,
        })
    })?;
    let outcome = commands::place_order(
        &state.write_pool,
        &input.meta,
        StatusCode::ACCEPTED.as_u16(),
        cmd,
    )
    .await?;
    Ok(respond(outcome))
}

async fn transition(
    state: AppState,
    id: String,
    input: CommandInput,
    to: OrderStatus,
    reason: Option<CancelReason>,
) -> Result<Response, ApiError> {
    let cmd = orders::ChangeOrderStatus {
        order_id: path_id("order", &id)?,
        to,
        reason,
    };
    change(&state, &input, async |tx, expected| {
        orders::change_status(tx, cmd, expected).await
    })
    .await
}

/// The moves that take no body (none, or `{}`): one handler each, for the
/// route and its OpenAPI entry.
macro_rules! bodiless_transition {
    ($(#[doc = $doc:expr])* $name:ident, $path:literal, $done:literal, $to:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "commands",
            params(("id" = String, Path, description = "The order"), CommandHeaders, IfMatch),
            responses((status = 202, description = $done, body = OrderAccepted), TransitionProblems))]
        pub async fn $name(
            State(state): State<AppState>,
            Path(id): Path<String>,
            input: CommandInput,
        ) -> Result<Response, ApiError> {
            input.no_body()?;
            transition(state, id, input, $to, None).await
        }
    };
}

bodiless_transition!(
    /// Confirm a pending order.
    confirm_order, "/commands/orders/{id}/confirm", "Confirmed", OrderStatus::Confirmed
);
bodiless_transition!(
    /// Ship a confirmed order.
    ship_order, "/commands/orders/{id}/ship", "Shipped", OrderStatus::Shipped
);
bodiless_transition!(
    /// Mark a shipped order delivered.
    deliver_order, "/commands/orders/{id}/deliver", "Delivered", OrderStatus::Delivered
);

/// Cancel an order that is not yet delivered, with a reason.
#[utoipa::path(post, path = "/commands/orders/{id}/cancel", tag = "commands", request_body = CancelOrderRequest,
    params(("id" = String, Path, description = "The order"), CommandHeaders, IfMatch),
    responses((status = 202, description = "Cancelled", body = OrderAccepted), TransitionProblems))]
pub async fn cancel_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let reason = validated(&input, |req: CancelOrderRequest, c| {
        c.check("reason", CancelReason::parse(&req.reason))
    })?;
    transition(state, id, input, OrderStatus::Cancelled, Some(reason)).await
}

/// Move an order to any status the machine allows.
#[utoipa::path(post, path = "/commands/orders/{id}/status", tag = "commands", request_body = ChangeOrderStatusRequest,
    params(("id" = String, Path, description = "The order"), CommandHeaders, IfMatch),
    responses((status = 202, description = "Moved", body = OrderAccepted), TransitionProblems))]
pub async fn change_order_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    input: CommandInput,
) -> Result<Response, ApiError> {
    let (to, reason) = validated(&input, |req: ChangeOrderStatusRequest, c| {
        let to = c.check("status", OrderStatus::parse(&req.status));
        let reason = match (&to, req.reason.as_deref()) {
            (Some(OrderStatus::Cancelled), Some(r)) => c.check("reason", CancelReason::parse(r)),
            (Some(OrderStatus::Cancelled), None) => {
                c.fail("reason", "a cancellation needs a reason");
                None
            }
            (_, Some(_)) => {
                c.fail("reason", "a reason is only given when cancelling");
                None
            }
            _ => None,
        };
        Some((to?, reason))
    })?;
    transition(state, id, input, to, reason).await
}
