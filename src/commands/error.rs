use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::PoolError;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Where in the request: `customer_id`, `items[2].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a command was refused or failed. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input breaks a rule (422).
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    /// The addressed entity does not exist (404).
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    /// A create named an id that is taken (409).
    #[error("{what} {id:?} already exists")]
    AlreadyExists { what: &'static str, id: String },
    /// The entity's state does not allow the command (409).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named another version than the current one (412).
    #[error("version {expected} was expected but the current version is {actual}")]
    VersionMismatch { expected: i32, actual: i32 },
    /// The idempotency key was first used with another request (422).
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The database cannot be reached right now (503).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CommandError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// A row not of the shape its statement promises is ours (500).
impl From<crate::db::RowError> for CommandError {
    fn from(e: crate::db::RowError) -> Self {
        CommandError::Internal(anyhow::Error::new(e))
    }
}

/// Opening a connection failed (refused, shutting down, too many
/// connections, the database closed to connections, a bad password):
/// whatever the SQLSTATE, the database is not there for this command, and
/// nothing was written.
impl From<PoolError> for CommandError {
    fn from(e: PoolError) -> Self {
        CommandError::Unavailable(crate::db::pool_error_message(&e))
    }
}

/// The one place where database errors become command errors. Named
/// constraints from the migrations become the client's problem (409/422);
/// a lost connection becomes 503; anything else is ours (500).
impl From<deadpool_postgres::tokio_postgres::Error> for CommandError {
    fn from(e: deadpool_postgres::tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return CommandError::Unavailable(e.to_string());
        };
        let constraint = db.constraint().unwrap_or_default();
        match (db.code(), constraint) {
            (_, "orders_status_transition") => CommandError::Conflict(db.message().to_owned()),
            (&SqlState::CHECK_VIOLATION, _) => CommandError::Invalid(vec![FieldError::new(
                constraint.to_owned(),
                db.message().to_owned(),
            )]),
            (c, _)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                CommandError::Unavailable(db.message().to_owned())
            }
            _ => CommandError::Internal(anyhow::Error::new(e)),
        }
    }
}
