//! Typed rows: a type that a statement's result row becomes says so once,
//! by column name, in an impl of [`FromRow`]. A column that is missing or
//! of another type is an error ([`RowError`]), never a panic.

use deadpool_postgres::tokio_postgres::types::FromSql;
use deadpool_postgres::tokio_postgres::Row;

/// A result row that does not have the shape its statement promises: a bug
/// in the program or the schema, never the client's.
#[derive(Debug, thiserror::Error)]
#[error("unexpected result row: {0}")]
pub struct RowError(#[from] deadpool_postgres::tokio_postgres::Error);

/// A value built from one result row.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self, RowError>;

    /// Every row, in order.
    fn from_rows(rows: &[Row]) -> Result<Vec<Self>, RowError> {
        rows.iter().map(Self::from_row).collect()
    }
}

/// One column of `row`, by name or position.
pub fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    column: impl deadpool_postgres::tokio_postgres::row::RowIndex + std::fmt::Display,
) -> Result<T, RowError> {
    Ok(row.try_get(column)?)
}
