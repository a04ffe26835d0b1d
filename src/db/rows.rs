//! Typed rows: a type that a statement's result row becomes says so once,
//! by column name, in an impl of [`FromRow`]; a struct whose fields are its
//! columns is declared with [`row_struct!`](crate::db::rows::row_struct). A
//! column that is missing or of another type is an error ([`RowError`]),
//! never a panic.

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

    /// Every row of one result, in order.
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

/// Declare a struct read from result rows, each field from the column of
/// its name, and its [`FromRow`]. Fields listed after `default` are not
/// columns: they start as their type's default.
///
/// ```ignore
/// row_struct! {
///     /// What a statement writing a customer returns.
///     struct Written {
///         version: i32,
///         token: String,
///     }
///     default {
///         note: Option<String>,
///     }
/// }
/// ```
macro_rules! row_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
        }
        $(default {
            $($(#[$extra_meta:meta])* $extra_vis:vis $extra:ident: $extra_ty:ty),* $(,)?
        })?
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
            $($($(#[$extra_meta])* $extra_vis $extra: $extra_ty,)*)?
        }

        impl $crate::db::FromRow for $name {
            fn from_row(
                row: &$crate::db::tokio_postgres::Row,
            ) -> Result<Self, $crate::db::RowError> {
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                    $($($extra: Default::default(),)*)?
                })
            }

            /// Each column found by its name once, in the first row, and
            /// read by its position in every row that shares the first
            /// row's columns (every row of one result does); any other row
            /// is read by name.
            fn from_rows(
                rows: &[$crate::db::tokio_postgres::Row],
            ) -> Result<Vec<Self>, $crate::db::RowError> {
                let Some(first) = rows.first() else {
                    return Ok(Vec::new());
                };
                struct Columns {
                    $($field: usize,)*
                }
                let at = |name: &str| first.columns().iter().position(|c| c.name() == name);
                let columns = Columns {
                    $($field: match at(stringify!($field)) {
                        Some(i) => i,
                        // not found as written: read by name, which also
                        // matches ignoring case, or names the missing column
                        None => return rows.iter().map(Self::from_row).collect(),
                    },)*
                };
                rows.iter()
                    .map(|row| {
                        if !std::ptr::eq(row.columns(), first.columns()) {
                            return Self::from_row(row);
                        }
                        Ok(Self {
                            $($field: row.try_get(columns.$field)?,)*
                            $($($extra: Default::default(),)*)?
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use row_struct;
