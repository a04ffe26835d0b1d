//! The OpenAPI problem responses, declared once. Each route lists the set it
//! can answer beside its success, `responses((status = 200, ...),
//! QueryProblems)`; every problem is an `application/problem+json`
//! [`Problem`](super::error::Problem).

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// A documented problem answer: status and when it happens.
type Documented = (u16, &'static str);

const BAD_REQUEST: Documented = (400, "Malformed JSON, header or parameter");
const NOT_FOUND: Documented = (404, "Unknown id");
const UNKNOWN_NAME: Documented = (404, "No read model of that name");
const CONFLICT: Documented = (
    409,
    "Conflict with the current state (impossible transition, id taken)",
);
const VERSION_MISMATCH: Documented = (412, "If-Match names a version that is not current");
const TOO_LARGE: Documented = (413, "Body larger than the limit");
const INVALID: Documented = (422, "Invalid input; `errors` names each field");
const DATABASE_DOWN: Documented = (503, "Database unavailable; see Retry-After");
const NOT_FRESH: Documented = (
    503,
    "Database unavailable, or min_token not reached within the wait; see Retry-After",
);

fn problems(list: &[Documented]) -> BTreeMap<String, RefOr<Response>> {
    let problem = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    list.iter()
        .map(|&(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", problem.clone())
                .build();
            (status.to_string(), response.into())
        })
        .collect()
}

/// `pub struct Name;` answering the listed problems in OpenAPI.
macro_rules! problem_sets {
    ($($(#[$doc:meta])* $name:ident = [$($problem:ident),+];)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                problems(&[$($problem),+])
            }
        }
    )+};
}

problem_sets! {
    /// A command creating an entity: malformed or invalid (an
    /// `Idempotency-Key` reused with another body included), too large, an
    /// id taken, the database down.
    CreateProblems = [BAD_REQUEST, CONFLICT, TOO_LARGE, INVALID, DATABASE_DOWN];
    /// A command changing an entity, checked against `If-Match`.
    ChangeProblems = [BAD_REQUEST, NOT_FOUND, VERSION_MISMATCH, TOO_LARGE, INVALID, DATABASE_DOWN];
    /// A command moving an order, which the state machine may refuse.
    TransitionProblems =
        [BAD_REQUEST, NOT_FOUND, CONFLICT, VERSION_MISMATCH, TOO_LARGE, INVALID, DATABASE_DOWN];
    /// A query waiting for `min_token`.
    QueryProblems = [BAD_REQUEST, NOT_FRESH];
    /// A query by id waiting for `min_token`.
    QueryByIdProblems = [BAD_REQUEST, NOT_FOUND, NOT_FRESH];
    /// A read of the database that waits for nothing.
    StatusProblems = [BAD_REQUEST, DATABASE_DOWN];
    /// A request naming a read model.
    UnknownReadModel = [UNKNOWN_NAME];
}
