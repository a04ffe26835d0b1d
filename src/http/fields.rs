//! The OpenAPI schemas of the fields several command bodies share, each
//! stated once and bounded by the domain type that parses the field:
//! `#[schema(schema_with = fields::entity_id)]`.
//!
//! A field documented this way takes its description from here, not from
//! its doc comment; an optional field needs the `optional_` schema (or one
//! made nullable), which admits `null`.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};

use crate::domain::{CancelReason, Email, EntityId, PersonName, ProductName};

/// [`EntityId`]: the `write.entity_id` domain.
const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$";
/// Text with something besides white space and no control characters.
const TEXT_PATTERN: &str = "^[^\\x00-\\x1F\\x7F]*[^\\s\\x00-\\x1F\\x7F][^\\x00-\\x1F\\x7F]*$";
/// [`Email`]: one `@` with something on each side, no spaces.
const EMAIL_PATTERN: &str = "^[^@\\s\\x00-\\x1F\\x7F]+@[^@\\s\\x00-\\x1F\\x7F]+$";
/// The largest [`Money`](crate::domain::Money) (`numeric(14,2)`).
const MAX_AMOUNT: f64 = 999_999_999_999.99;

fn of_type(t: Type, nullable: bool) -> SchemaType {
    if nullable {
        SchemaType::from_iter([t, Type::Null])
    } else {
        SchemaType::Type(t)
    }
}

fn id(nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(of_type(Type::String, nullable))
        .pattern(Some(ID_PATTERN))
        .max_length(Some(EntityId::MAX_LEN))
}

fn text(max_length: usize, nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(of_type(Type::String, nullable))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .pattern(Some(TEXT_PATTERN))
}

fn email(nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(of_type(Type::String, nullable))
        .max_length(Some(Email::MAX_LEN))
        .pattern(Some(EMAIL_PATTERN))
}

/// Taken as a JSON number or a string; documented as the number.
fn amount(nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(of_type(Type::Number, nullable))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(0))
        .maximum(Some(MAX_AMOUNT))
        .multiple_of(Some(0.01))
}

/// The id of an existing customer, product or order.
pub fn entity_id() -> ObjectBuilder {
    id(false)
}

/// The id a client may give the entity it creates.
pub fn optional_id() -> ObjectBuilder {
    id(true).description(Some(
        "Optional client id; a UUIDv7 is generated when absent.",
    ))
}

pub fn person_name() -> ObjectBuilder {
    text(PersonName::MAX_LEN, false)
}

pub fn optional_person_name() -> ObjectBuilder {
    text(PersonName::MAX_LEN, true)
}

pub fn product_name() -> ObjectBuilder {
    text(ProductName::MAX_LEN, false)
}

pub fn email_address() -> ObjectBuilder {
    email(false)
}

pub fn optional_email_address() -> ObjectBuilder {
    email(true)
}

pub fn cancel_reason() -> ObjectBuilder {
    text(CancelReason::MAX_LEN, false)
}

/// The reason of `POST /commands/orders/{id}/status`.
pub fn reason_if_cancelling() -> ObjectBuilder {
    text(CancelReason::MAX_LEN, true).description(Some("Why, when the target is cancelled."))
}

/// The price of `POST /commands/products/{id}/change-price`.
pub fn new_price() -> ObjectBuilder {
    amount(false)
}

/// The price of `POST /commands/products`.
pub fn price() -> ObjectBuilder {
    amount(false).description(Some(
        "Exact amount, at most two decimals, as a number or a string.",
    ))
}

/// The price of an order line.
pub fn expected_price() -> ObjectBuilder {
    amount(true).description(Some(
        "Optional: the price the client expects; must equal the catalog price.",
    ))
}
