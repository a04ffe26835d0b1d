//! The domain: validated value types and the order status machine. No I/O.
//!
//! Handlers turn raw input into these types first ("parse, don't validate"),
//! so everything past the HTTP layer can rely on them being well-formed.

mod ids;
mod money;
mod status;
mod text;

pub use ids::EntityId;
pub use money::{serialize_amount, Money};
pub use status::{OrderStatus, TransitionError};
pub use text::{CancelReason, Email, PersonName, ProductName, Quantity};

/// Why an input was refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A control character (NUL included) has no business in a name or a reason,
/// and PostgreSQL text cannot hold NUL at all.
fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}
