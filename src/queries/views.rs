//! `GET /queries/views/{name}`: the query string of a read of a declared
//! read model, and the one SELECT it becomes.
//!
//! Reading happens in three steps, each refusing what it cannot vouch for:
//! 1. [`ViewRequest::parse`] reads the query string alone (no catalog, no
//!    database): the filter grammar `col=op.value`, `order`, `limit`,
//!    `after`, with caps on its size.
//! 2. [`Plan::new`] checks the request against the model's catalog entry
//!    ([`Model`]): only `filterable` columns, a cursor made for this model
//!    and order.
//! 3. [`Plan::sql`] writes the SELECT. Every name in it comes from the
//!    catalog, quoted as an identifier; every value from the request is a
//!    bound parameter, sent as text and cast in SQL to the column's type.
//!
//! PostgreSQL writes each row's JSON (`to_json`), so every type comes out as
//! the database has it: numerics exact, timestamps with time zone as RFC
//! 3339 in UTC. Pages are keyset pages: ordered by the order column, then
//! the key columns, and `after` names the last row of the previous page by
//! those values, so rows inserted meanwhile neither repeat nor hide rows.

use std::fmt::Write as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The longest query string a read accepts (checked before anything else).
pub const MAX_QUERY_LEN: usize = 16 * 1024;
/// The most filters one read may carry.
pub const MAX_FILTERS: usize = 32;
/// The most values an `in.(...)` list may carry.
pub const MAX_IN_VALUES: usize = 1000;
pub const DEFAULT_LIMIT: u16 = 100;
pub const MAX_LIMIT: u16 = 1000;
/// The query-string names that are not filters (besides `min_token` and
/// `wait`, which the fresh-read path takes for itself).
pub const RESERVED: [&str; 3] = ["order", "limit", "after"];

/// A declared read model as the catalog and PostgreSQL describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The relation `read.<name>`.
    pub name: String,
    /// Columns that identify a row: they break ties in every order.
    pub key: Vec<String>,
    /// Columns a read may filter and order on.
    pub filterable: Vec<String>,
    pub description: Option<String>,
    /// Every column of `read.<name>`, in order.
    pub columns: Vec<Column>,
}

/// A column of a declared read model.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// As `format_type` writes it, for people: `numeric(12,2)`.
    pub sql_type: String,
    /// What a filter value is cast to: the base type without modifier,
    /// schema-qualified and quoted (`pg_catalog."numeric"`), from the catalog.
    pub cast_type: String,
    /// The base type's name (`int8`, `timestamptz`, `_text`).
    pub base_type: String,
    /// For an array: its element type's name.
    pub element_type: Option<String>,
    pub not_null: bool,
    pub comment: Option<String>,
}

impl Model {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The filterable column `name`, or a 400 saying `why` not.
    fn filterable(&self, name: &str, why: impl FnOnce() -> String) -> Result<&Column, ViewError> {
        self.column(name)
            .filter(|_| self.filterable.iter().any(|f| f == name))
            .ok_or_else(|| bad(why()))
    }

    /// The filterable columns, as a 400 names them.
    pub fn filterable_list(&self) -> String {
        if self.filterable.is_empty() {
            "none (this read model declares no filterable columns)".into()
        } else {
            self.filterable.join(", ")
        }
    }
}

/// A comparison a filter makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
}

impl Op {
    pub const ALL: [Op; 6] = [Op::Eq, Op::Gt, Op::Gte, Op::Lt, Op::Lte, Op::In];

    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == raw)
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::In => "= ANY",
        }
    }

    /// How a 400 lists them.
    pub fn list() -> &'static str {
        "eq.v, gt.v, gte.v, lt.v, lte.v, in.(a,b)"
    }
}

/// One `col=op.value` of the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    /// One value, or for `in` the list.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Asc,
    Desc,
}

/// `order=col.asc|desc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub column: String,
    pub direction: Direction,
}

impl Order {
    fn parse(raw: &str) -> Self {
        let (column, direction) = match raw.rsplit_once('.') {
            Some((c, "asc")) => (c, Direction::Asc),
            Some((c, "desc")) => (c, Direction::Desc),
            _ => (raw, Direction::Asc),
        };
        Order {
            column: column.to_owned(),
            direction,
        }
    }
}

/// A read's query string, parsed without the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRequest {
    pub filters: Vec<Filter>,
    pub order: Option<Order>,
    pub limit: u16,
    /// The cursor as given.
    pub after: Option<String>,
}

/// Why a read was refused before any SQL ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The query string is longer than [`MAX_QUERY_LEN`] (414).
    #[error("the query string is {0} bytes long; at most {MAX_QUERY_LEN} are accepted")]
    TooLong(usize),
    /// Anything else wrong with the request (400).
    #[error("{0}")]
    Bad(String),
}

fn bad(detail: impl Into<String>) -> ViewError {
    ViewError::Bad(detail.into())
}

/// A value shown in a message: quoted, escaped, and cut short.
fn shown(raw: &str) -> String {
    const MAX_CHARS: usize = 64;
    if raw.chars().count() > MAX_CHARS {
        let cut: String = raw.chars().take(MAX_CHARS).collect();
        format!("{cut:?}...")
    } else {
        format!("{raw:?}")
    }
}

impl ViewRequest {
    /// Check the length of a raw query string: the first thing a read does.
    pub fn check_length(query: Option<&str>) -> Result<(), ViewError> {
        match query.map(str::len) {
            Some(n) if n > MAX_QUERY_LEN => Err(ViewError::TooLong(n)),
            _ => Ok(()),
        }
    }

    /// Parse decoded query-string pairs (without `min_token` and `wait`).
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ViewError> {
        let filters = pairs
            .iter()
            .filter(|(name, _)| !RESERVED.contains(&name.as_str()))
            .count();
        if filters > MAX_FILTERS {
            return Err(bad(format!(
                "{filters} filters given; at most {MAX_FILTERS} are accepted"
            )));
        }
        let mut request = ViewRequest {
            filters: Vec::with_capacity(filters),
            order: None,
            limit: DEFAULT_LIMIT,
            after: None,
        };
        let mut limit = None;
        for (name, value) in pairs {
            let duplicate = || bad(format!("`{name}` is given more than once"));
            match name.as_str() {
                "order" => {
                    if request.order.replace(Order::parse(value)).is_some() {
                        return Err(duplicate());
                    }
                }
                "limit" => {
                    if limit.replace(parse_limit(value)?).is_some() {
                        return Err(duplicate());
                    }
                }
                "after" => {
                    if request.after.replace(value.clone()).is_some() {
                        return Err(duplicate());
                    }
                }
                _ => request.filters.push(parse_filter(name, value)?),
            }
        }
        request.limit = limit.unwrap_or(DEFAULT_LIMIT);
        Ok(request)
    }
}

fn parse_limit(raw: &str) -> Result<u16, ViewError> {
    match raw.parse::<u16>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(bad(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}, got {}",
            shown(raw)
        ))),
    }
}

/// `op.value`, or `in.(a,b)`.
fn parse_filter(column: &str, raw: &str) -> Result<Filter, ViewError> {
    let unknown = || {
        bad(format!(
            "the filter {}={} has no known operator; use one of {}",
            shown(column),
            shown(raw),
            Op::list()
        ))
    };
    let (op, value) = raw.split_once('.').ok_or_else(unknown)?;
    let op = Op::parse(op).ok_or_else(unknown)?;
    let values = if op == Op::In {
        parse_list(value).map_err(|why| {
            bad(format!(
                "the filter {}={}: {why}",
                shown(column),
                shown(raw)
            ))
        })?
    } else {
        vec![value.to_owned()]
    };
    Ok(Filter {
        column: column.to_owned(),
        op,
        values,
    })
}

/// `(a,b,"c,d","e\"f")`: comma-separated values in parentheses; a value in
/// double quotes may hold commas, parentheses and (escaped with a
/// backslash) quotes and backslashes.
fn parse_list(raw: &str) -> Result<Vec<String>, String> {
    let inner = raw
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or("in takes a list in parentheses, such as in.(a,b)")?;
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    let mut values = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("a quoted value is not closed".into()),
                    },
                    Some(c) => value.push(c),
                    None => return Err("a quoted value is not closed".into()),
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err("a quoted value must be followed by , or )".into()),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        values.push(value);
        if values.len() > MAX_IN_VALUES {
            return Err(format!("at most {MAX_IN_VALUES} values are accepted"));
        }
        match chars.next() {
            Some(',') => continue,
            None => return Ok(values),
            Some(_) => return Err("values must be separated by commas".into()),
        }
    }
}

/// What `after` carries: the model and order it pages, and the last row's
/// values of the order and key columns (as PostgreSQL writes them in text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// The model.
    m: String,
    /// The order, if one was asked for.
    o: Option<Order>,
    /// The key columns when the cursor was made.
    k: Vec<String>,
    /// The sort values of the last row, in [`Plan::sort_columns`] order.
    v: Vec<Option<String>>,
}

impl Cursor {
    fn encode(&self) -> String {
        // Serialising plain strings cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A parameter of the generated SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// Cast in SQL from text to the column's type.
    Text(Option<String>),
    /// For `in`: cast from text[] to the column's type's array.
    List(Vec<String>),
    /// The row limit.
    Limit(i64),
}

/// A read checked against its model: ready to become SQL.
#[derive(Debug, Clone)]
pub struct Plan<'m> {
    model: &'m Model,
    filters: Vec<(&'m Column, Op, Vec<String>)>,
    order: Option<(&'m Column, Direction)>,
    request_order: Option<Order>,
    limit: u16,
    after: Option<Vec<Option<String>>>,
}

impl<'m> Plan<'m> {
    /// Check `request` against `model`: filters and order on filterable
    /// columns only, a cursor made for this model and order.
    pub fn new(model: &'m Model, request: &ViewRequest) -> Result<Self, ViewError> {
        let mut filters = Vec::with_capacity(request.filters.len());
        for f in &request.filters {
            let column = model.filterable(&f.column, || {
                format!(
                    "{} is not a filterable column of {}; filterable: {}; other parameters: order, limit, after, min_token, wait",
                    shown(&f.column),
                    model.name,
                    model.filterable_list()
                )
            })?;
            filters.push((column, f.op, f.values.clone()));
        }
        let order = match &request.order {
            None => None,
            Some(o) => {
                let column = model.filterable(&o.column, || {
                    format!(
                        "order must be a filterable column of {} followed by .asc or .desc; got {}; filterable: {}",
                        model.name,
                        shown(&o.column),
                        model.filterable_list()
                    )
                })?;
                Some((column, o.direction))
            }
        };
        let mut plan = Plan {
            model,
            filters,
            order,
            request_order: request.order.clone(),
            limit: request.limit,
            after: None,
        };
        if let Some(raw) = &request.after {
            let cursor = Cursor::decode(raw).ok_or_else(|| {
                bad("after is not a cursor this route returned; pass the `next` of the previous page as it came")
            })?;
            if cursor.m != model.name
                || cursor.o != plan.request_order
                || cursor.k != model.key
                || cursor.v.len() != plan.sort_columns().len()
            {
                return Err(bad(format!(
                    "after is a cursor for another read model or order; it can only continue a read of {} with the same order (order={})",
                    shown(&cursor.m),
                    cursor
                        .o
                        .as_ref()
                        .map(|o| format!("{}.{}", o.column, if o.direction == Direction::Asc { "asc" } else { "desc" }))
                        .unwrap_or_else(|| "none".into())
                )));
            }
            plan.after = Some(cursor.v);
        }
        Ok(plan)
    }

    pub fn limit(&self) -> u16 {
        self.limit
    }

    fn direction(&self) -> Direction {
        self.order.map_or(Direction::Asc, |(_, d)| d)
    }

    /// The order column (if any), then the key columns not already in it.
    fn sort_columns(&self) -> Vec<&'m Column> {
        let mut columns: Vec<&Column> = self.order.iter().map(|(c, _)| *c).collect();
        for k in &self.model.key {
            if let Some(c) = self.model.column(k) {
                if !columns.iter().any(|s| s.name == c.name) {
                    columns.push(c);
                }
            }
        }
        columns
    }

    /// The cursor continuing after a row whose sort values are `values`.
    pub fn cursor_after(&self, values: Vec<Option<String>>) -> String {
        Cursor {
            m: self.model.name.clone(),
            o: self.request_order.clone(),
            k: self.model.key.clone(),
            v: values,
        }
        .encode()
    }

    /// The SELECT and its parameters. It answers up to `limit + 1` rows of
    /// `(row json, sort text[])`: one more than asked, to tell whether a
    /// next page exists.
    pub fn sql(&self) -> (String, Vec<Param>) {
        let mut params = Vec::new();
        let mut bind = |p: Param| {
            params.push(p);
            format!("${}", params.len())
        };
        let t = |c: &Column| format!("t.{}", quote_ident(&c.name));
        let sort = self.sort_columns();

        let sort_text: Vec<String> = sort.iter().map(|c| format!("{}::text", t(c))).collect();
        let select = format!(
            "SELECT to_json(p)::text AS row, ARRAY[{}]::text[] AS sort",
            sort_text.join(", ")
        );
        let projection: Vec<String> = self
            .model
            .columns
            .iter()
            .map(|c| format!("{} AS {}", json_value(c, &t(c)), quote_ident(&c.name)))
            .collect();
        let from = format!(
            "\nFROM read.{} AS t\nCROSS JOIN LATERAL (SELECT {}) AS p",
            quote_ident(&self.model.name),
            projection.join(", ")
        );

        let mut conditions = Vec::new();
        for (column, op, values) in &self.filters {
            let condition = match op {
                Op::In => format!(
                    "{} = ANY({}::text[]::{}[])",
                    t(column),
                    bind(Param::List(values.clone())),
                    column.cast_type
                ),
                _ => format!(
                    "{} {} {}::text::{}",
                    t(column),
                    op.sql(),
                    bind(Param::Text(values.first().cloned())),
                    column.cast_type
                ),
            };
            conditions.push(condition);
        }
        let branches = match &self.after {
            None => Vec::new(),
            Some(values) => {
                let cast: Vec<String> = sort
                    .iter()
                    .zip(values)
                    .map(|(c, v)| {
                        format!("{}::text::{}", bind(Param::Text(v.clone())), c.cast_type)
                    })
                    .collect();
                let branches = self.after_condition(&sort, &cast, values);
                if branches.is_empty() {
                    conditions.push("false".into());
                }
                branches
            }
        };
        let direction = match self.direction() {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        };
        let order: Vec<String> = sort
            .iter()
            .map(|c| format!("{} {direction}", t(c)))
            .collect();
        let limit = bind(Param::Limit(i64::from(self.limit) + 1));
        let part = |branch: Option<&String>, extra: &str| {
            let mut all: Vec<&str> = conditions.iter().map(String::as_str).collect();
            all.extend(branch.map(String::as_str));
            let mut sql = format!("{select}{extra}{from}");
            if !all.is_empty() {
                sql.push_str("\nWHERE ");
                sql.push_str(&all.join("\n  AND "));
            }
            let _ = write!(
                sql,
                "\nORDER BY {}\nLIMIT {limit}::bigint",
                order.join(", ")
            );
            sql
        };
        let sql = match branches.as_slice() {
            [] => part(None, ""),
            [one] => part(Some(one), ""),
            // Parts with no row in common, each a range of an index on the
            // sort columns: each gives its first rows, and the page is the
            // first of those.
            many => {
                let typed: Vec<String> = sort
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!(", {} AS pgcqrs_sort_{i}", t(c)))
                    .collect();
                let parts: Vec<String> = many
                    .iter()
                    .map(|b| format!("({})", part(Some(b), &typed.concat())))
                    .collect();
                let outer: Vec<String> = (0..sort.len())
                    .map(|i| format!("u.pgcqrs_sort_{i} {direction}"))
                    .collect();
                format!(
                    "SELECT u.row, u.sort FROM (\n{}\n) AS u\nORDER BY {}\nLIMIT {limit}::bigint",
                    parts.join("\nUNION ALL\n"),
                    outer.join(", ")
                )
            }
        };
        (sql, params)
    }

    /// Rows after the cursor's row in the order `sort` (ascending: NULLs
    /// last; descending: NULLs first, as PostgreSQL sorts), as conditions
    /// of parts with no row in common (none: no row comes after). Key
    /// columns identify rows. Where one may hold NULL (a model whose key
    /// took one, a materialized view, which cannot declare its key NOT
    /// NULL), the cursor compares column by column, a part per column;
    /// otherwise the sort values compare as one row, and an order column
    /// that may be NULL has its NULLs in a part of their own.
    fn after_condition(
        &self,
        sort: &[&Column],
        cast: &[String],
        values: &[Option<String>],
    ) -> Vec<String> {
        let t = |c: &Column| format!("t.{}", quote_ident(&c.name));
        if sort
            .iter()
            .any(|c| !c.not_null && self.model.key.contains(&c.name))
        {
            return after_column_by_column(sort, cast, values, self.direction());
        }
        let row = |from: usize| -> (String, String) {
            let cols: Vec<String> = sort[from..].iter().map(|c| t(c)).collect();
            (
                format!("({})", cols.join(", ")),
                format!("({})", cast[from..].join(", ")),
            )
        };
        let (cmp, direction) = match self.direction() {
            Direction::Asc => (">", Direction::Asc),
            Direction::Desc => ("<", Direction::Desc),
        };
        // Without an order column, or with one that cannot be NULL, the
        // sort values compare as one row.
        let nullable_order = self
            .order
            .map(|(c, _)| (c, !c.not_null && !self.model.key.contains(&c.name)));
        let Some((order, true)) = nullable_order else {
            let (cols, vals) = row(0);
            return vec![format!("ROW{cols} {cmp} ROW{vals}")];
        };
        let o = t(order);
        let (rest_cols, rest_vals) = row(1);
        let rest = if sort.len() > 1 {
            format!("ROW{rest_cols} {cmp} ROW{rest_vals}")
        } else {
            "false".into()
        };
        let (all_cols, all_vals) = row(0);
        // Two parts rather than one OR, which would leave an index on the
        // sort columns no range to scan.
        match (direction, values.first().map(Option::is_some)) {
            // After a value come greater values, then the NULLs.
            (Direction::Asc, Some(true)) => vec![
                format!("ROW{all_cols} > ROW{all_vals}"),
                format!("{o} IS NULL"),
            ],
            // After a NULL come only NULLs with greater keys.
            (Direction::Asc, _) => vec![format!("{o} IS NULL AND {rest}")],
            // After a value come smaller values (the NULLs came first).
            (Direction::Desc, Some(true)) => vec![format!("ROW{all_cols} < ROW{all_vals}")],
            // After a NULL come NULLs with smaller keys, then every value.
            (Direction::Desc, _) => vec![
                format!("{o} IS NULL AND {rest}"),
                format!("{o} IS NOT NULL"),
            ],
        }
    }
}

/// Rows after the cursor's row (`values`, bound as `cast`) in the order
/// `sort`, any of whose columns may be NULL, as parts with no row in
/// common: for each column in turn, the rows equal to the cursor's in the
/// columns before it and after it in this one (ascending, the NULLs come
/// after every value; descending, before). Each part is one range of an
/// index on the sort columns; a NULL is a part of its own, as `OR` would
/// leave the index no range to scan.
fn after_column_by_column(
    sort: &[&Column],
    cast: &[String],
    values: &[Option<String>],
    direction: Direction,
) -> Vec<String> {
    let t = |c: &Column| format!("t.{}", quote_ident(&c.name));
    let mut parts = Vec::new();
    for (i, column) in sort.iter().enumerate() {
        let c = t(column);
        let value = values.get(i).is_some_and(Option::is_some);
        let after = match (direction, value) {
            (Direction::Asc, true) if column.not_null => vec![format!("{c} > {}", cast[i])],
            (Direction::Asc, true) => vec![format!("{c} > {}", cast[i]), format!("{c} IS NULL")],
            // nothing comes after a NULL in this column
            (Direction::Asc, false) => Vec::new(),
            (Direction::Desc, true) => vec![format!("{c} < {}", cast[i])],
            (Direction::Desc, false) => vec![format!("{c} IS NOT NULL")],
        };
        let equal: Vec<String> = sort[..i]
            .iter()
            .enumerate()
            .map(
                |(j, earlier)| match values.get(j).is_some_and(Option::is_some) {
                    true => format!("{} = {}", t(earlier), cast[j]),
                    false => format!("{} IS NULL", t(earlier)),
                },
            )
            .collect();
        for a in after {
            let mut all = equal.clone();
            all.push(a);
            parts.push(all.join(" AND "));
        }
    }
    parts
}

/// A column's value as it goes into the row's JSON: as PostgreSQL writes it,
/// except that a time with time zone is written in UTC with a `Z`
/// (RFC 3339), whatever the session's time zone.
fn json_value(column: &Column, expr: &str) -> String {
    if column.base_type == "timestamptz" {
        format!(
            "CASE WHEN isfinite({expr}) THEN (to_json({expr} AT TIME ZONE 'UTC') #>> '{{}}') || 'Z' ELSE {expr}::text END"
        )
    } else {
        expr.to_owned()
    }
}

/// An identifier in double quotes, with its own double quotes doubled: the
/// one way a name reaches the SQL (and every name comes from the catalog).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(query).expect("pairs")
    }

    fn parse(query: &str) -> Result<ViewRequest, ViewError> {
        ViewRequest::parse(&pairs(query))
    }

    fn column(name: &str, base: &str) -> Column {
        Column {
            name: name.into(),
            sql_type: base.into(),
            cast_type: format!("pg_catalog.{}", quote_ident(base)),
            base_type: base.into(),
            element_type: None,
            not_null: false,
            comment: None,
        }
    }

    fn model() -> Model {
        Model {
            name: "order_totals".into(),
            key: vec!["id".into()],
            filterable: vec!["status".into(), "total".into(), "id".into()],
            description: None,
            columns: vec![
                // a key column: NOT NULL unless the key took a NULL
                Column {
                    not_null: true,
                    ..column("id", "text")
                },
                column("status", "text"),
                column("total", "numeric"),
                column("placed_at", "timestamptz"),
            ],
        }
    }

    #[test]
    fn every_operator_parses_with_its_value() {
        let r = parse("a=eq.1&b=gt.2&c=gte.x.y&d=lt.&e=lte.-1&f=in.(1,2)").unwrap();
        let got: Vec<(&str, Op, Vec<String>)> = r
            .filters
            .iter()
            .map(|f| (f.column.as_str(), f.op, f.values.clone()))
            .collect();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                ("a", Op::Eq, s(&["1"])),
                ("b", Op::Gt, s(&["2"])),
                // Only the first dot separates the operator.
                ("c", Op::Gte, s(&["x.y"])),
                ("d", Op::Lt, s(&[""])),
                ("e", Op::Lte, s(&["-1"])),
                ("f", Op::In, s(&["1", "2"])),
            ]
        );
        assert_eq!(r.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn an_unknown_operator_is_refused_naming_the_known_ones() {
        for query in ["a=like.x", "a=1", "a=EQ.1", "a=not.eq.1", "a=is.null", "a="] {
            let err = parse(query).unwrap_err();
            assert!(
                matches!(&err, ViewError::Bad(d) if d.contains("eq.v, gt.v")),
                "{query}: {err}"
            );
        }
    }

    #[test]
    fn in_lists_take_quotes_escapes_and_nothing() {
        let values = |q: &str| parse(q).map(|r| r.filters[0].values.clone());
        assert_eq!(values("a=in.()").unwrap(), Vec::<String>::new());
        assert_eq!(values("a=in.(x)").unwrap(), vec!["x"]);
        assert_eq!(values("a=in.(,)").unwrap(), vec!["", ""]);
        assert_eq!(
            values(r#"a=in.("x,y",z,"q\"r","s\\t","(p)")"#).unwrap(),
            vec!["x,y", "z", "q\"r", "s\\t", "(p)"]
        );
        for bad in [
            "a=in.1,2",
            "a=in.(1,2",
            r#"a=in.("x)"#,
            r#"a=in.("x"y)"#,
            "a=in.",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many = (0..=MAX_IN_VALUES)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse(&format!("a=in.({many})")).is_err());
    }

    #[test]
    fn order_limit_and_after_are_not_filters() {
        let r = parse("order=total.desc&limit=5&after=abc&status=eq.x").unwrap();
        assert_eq!(
            r.order,
            Some(Order {
                column: "total".into(),
                direction: Direction::Desc
            })
        );
        assert_eq!(r.limit, 5);
        assert_eq!(r.after.as_deref(), Some("abc"));
        assert_eq!(r.filters.len(), 1);
        assert_eq!(
            parse("order=total").unwrap().order.unwrap().direction,
            Direction::Asc
        );
    }

    #[test]
    fn limit_is_a_number_from_1_to_1000() {
        assert_eq!(parse("limit=1000").unwrap().limit, 1000);
        for bad in ["0", "1001", "-1", "x", "1e2", "99999999999", " 5"] {
            assert!(parse(&format!("limit={bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_parameter_given_twice_is_refused_but_filters_may_repeat() {
        for dup in ["order=a&order=b", "limit=1&limit=2", "after=x&after=y"] {
            assert!(parse(dup).is_err(), "{dup}");
        }
        assert_eq!(parse("a=gt.1&a=lt.5").unwrap().filters.len(), 2);
    }

    #[test]
    fn too_many_filters_or_too_long_a_query_are_refused() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("a=eq.{i}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert!(parse(&many(MAX_FILTERS)).is_ok());
        assert!(parse(&many(MAX_FILTERS + 1)).is_err());
        let long = "a".repeat(MAX_QUERY_LEN + 1);
        assert_eq!(
            ViewRequest::check_length(Some(&long)),
            Err(ViewError::TooLong(MAX_QUERY_LEN + 1))
        );
        assert!(ViewRequest::check_length(Some("a=eq.1")).is_ok());
        assert!(ViewRequest::check_length(None).is_ok());
    }

    #[test]
    fn only_filterable_columns_may_be_filtered_or_ordered_on() {
        let m = model();
        for query in [
            "placed_at=eq.x",
            "nope=eq.1",
            "order=placed_at.asc",
            "order=x;DROP",
        ] {
            let err = Plan::new(&m, &parse(query).unwrap()).unwrap_err();
            assert!(
                matches!(&err, ViewError::Bad(d) if d.contains("status, total, id")),
                "{query}: {err}"
            );
        }
        assert!(Plan::new(&m, &parse("status=eq.x&order=total.desc").unwrap()).is_ok());
    }

    #[test]
    fn values_are_parameters_and_names_are_quoted() {
        let mut m = model();
        m.columns.push(column("we\"ird", "text"));
        m.filterable.push("we\"ird".into());
        let r = parse("status=eq.';DROP TABLE x;--&we%22ird=in.(a,b)&total=gte.1.5").unwrap();
        let (sql, params) = Plan::new(&m, &r).unwrap().sql();
        assert!(!sql.contains("DROP"), "{sql}");
        assert!(
            sql.contains(r#"t."we""ird" = ANY($2::text[]::pg_catalog."text"[])"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"t."status" = $1::text::pg_catalog."text""#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"t."total" >= $3::text::pg_catalog."numeric""#),
            "{sql}"
        );
        assert!(sql.contains("FROM read.\"order_totals\" AS t"), "{sql}");
        assert_eq!(
            params,
            vec![
                Param::Text(Some("';DROP TABLE x;--".into())),
                Param::List(vec!["a".into(), "b".into()]),
                Param::Text(Some("1.5".into())),
                Param::Limit(i64::from(DEFAULT_LIMIT) + 1),
            ]
        );
    }

    #[test]
    fn rows_are_ordered_by_the_order_column_then_the_key() {
        let m = model();
        let (sql, _) = Plan::new(&m, &parse("order=total.desc").unwrap())
            .unwrap()
            .sql();
        assert!(
            sql.contains(r#"ORDER BY t."total" DESC, t."id" DESC"#),
            "{sql}"
        );
        let (sql, _) = Plan::new(&m, &parse("").unwrap()).unwrap().sql();
        assert!(sql.contains(r#"ORDER BY t."id" ASC"#), "{sql}");
        // Ordering by the key does not repeat it.
        let (sql, _) = Plan::new(&m, &parse("order=id.desc").unwrap())
            .unwrap()
            .sql();
        assert!(sql.contains("ORDER BY t.\"id\" DESC\n"), "{sql}");
    }

    #[test]
    fn a_cursor_over_keys_that_may_be_null_compares_column_by_column() {
        let col = |name: &str| Column {
            name: name.into(),
            not_null: false,
            ..model().columns[0].clone()
        };
        let (a, b) = (col("a"), col("b"));
        let sort = [&a, &b];
        let cast = ["$1".to_owned(), "$2".to_owned()];
        let x = || Some("x".to_owned());
        assert_eq!(
            after_column_by_column(&sort, &cast, &[x(), x()], Direction::Asc),
            [
                r#"t."a" > $1"#,
                r#"t."a" IS NULL"#,
                r#"t."a" = $1 AND t."b" > $2"#,
                r#"t."a" = $1 AND t."b" IS NULL"#
            ]
        );
        // After (NULL, x) ascending: only (NULL, greater or NULL).
        assert_eq!(
            after_column_by_column(&sort, &cast, &[None, x()], Direction::Asc),
            [
                r#"t."a" IS NULL AND t."b" > $2"#,
                r#"t."a" IS NULL AND t."b" IS NULL"#
            ]
        );
        // Descending, NULLs come first: after (x, NULL) come smaller first
        // columns, and (x, any value).
        assert_eq!(
            after_column_by_column(&sort, &cast, &[x(), None], Direction::Desc),
            [r#"t."a" < $1"#, r#"t."a" = $1 AND t."b" IS NOT NULL"#]
        );
        assert!(after_column_by_column(&sort, &cast, &[None, None], Direction::Asc).is_empty());
        // A column that cannot be NULL has no part for NULLs.
        let c = Column {
            not_null: true,
            ..col("c")
        };
        assert_eq!(
            after_column_by_column(&[&c, &b], &cast, &[x(), x()], Direction::Asc),
            [
                r#"t."c" > $1"#,
                r#"t."c" = $1 AND t."b" > $2"#,
                r#"t."c" = $1 AND t."b" IS NULL"#
            ]
        );
    }

    #[test]
    fn a_page_after_a_cursor_over_keys_that_may_be_null_is_the_first_rows_of_its_parts() {
        let mut m = model();
        m.columns[0].not_null = false;
        let plan = Plan::new(&m, &parse("status=eq.x").unwrap()).unwrap();
        let next = plan.cursor_after(vec![Some("o-1".into())]);
        let r = parse(&format!("status=eq.x&after={next}")).unwrap();
        let (sql, params) = Plan::new(&m, &r).unwrap().sql();
        // one part for greater keys, one for NULL keys, each with the
        // filter, each ordered and limited; then the first of both
        assert_eq!(sql.matches("UNION ALL").count(), 1, "{sql}");
        assert_eq!(sql.matches(r#"t."status" = $1"#).count(), 2, "{sql}");
        assert!(
            sql.contains(r#"t."id" > $2::text::pg_catalog."text""#),
            "{sql}"
        );
        assert!(sql.contains(r#"t."id" IS NULL"#), "{sql}");
        assert!(sql.contains(r#"t."id" AS pgcqrs_sort_0"#), "{sql}");
        assert!(
            sql.ends_with("ORDER BY u.pgcqrs_sort_0 ASC\nLIMIT $3::bigint"),
            "{sql}"
        );
        assert_eq!(params.len(), 3);
        // A key that cannot be NULL keeps the one row comparison.
        let (sql, _) = Plan::new(&model(), &r).unwrap().sql();
        assert!(!sql.contains("UNION"), "{sql}");
        assert!(sql.contains(r#"ROW(t."id") > ROW($2"#), "{sql}");
    }

    #[test]
    fn a_cursor_continues_only_the_read_it_came_from() {
        let m = model();
        let plan = Plan::new(&m, &parse("order=total.desc").unwrap()).unwrap();
        let next = plan.cursor_after(vec![Some("12.50".into()), Some("o-1".into())]);
        let with = |q: &str| parse(&format!("{q}&after={next}")).unwrap();
        let (sql, params) = Plan::new(&m, &with("order=total.desc")).unwrap().sql();
        assert!(
            sql.contains(r#"ROW(t."total", t."id") < ROW($1::text::pg_catalog."numeric", $2::text::pg_catalog."text")"#),
            "{sql}"
        );
        assert_eq!(params[0], Param::Text(Some("12.50".into())));
        // Filters may change between pages; the order may not.
        assert!(Plan::new(&m, &with("order=total.desc&status=eq.x")).is_ok());
        for other in ["order=total.asc", "order=status.desc", "limit=5"] {
            assert!(Plan::new(&m, &with(other)).is_err(), "{other}");
        }
        let mut renamed = m.clone();
        renamed.name = "other".into();
        assert!(Plan::new(&renamed, &with("order=total.desc")).is_err());
        for junk in ["x", "%27%3B", "eyJtIjoxfQ", ""] {
            let r = parse(&format!("after={junk}")).unwrap();
            assert!(Plan::new(&m, &r).is_err(), "{junk}");
        }
    }

    #[test]
    fn after_a_null_in_the_order_column_come_the_other_nulls() {
        let m = model();
        for (order, first, expected) in [
            (
                "total.asc",
                None,
                r#"WHERE t."total" IS NULL AND ROW(t."id") > ROW($2"#,
            ),
            (
                "total.asc",
                Some("1"),
                "WHERE ROW(t.\"total\", t.\"id\") > ROW($1::text::pg_catalog.\"numeric\", $2::text::pg_catalog.\"text\")\nORDER BY t.\"total\" ASC, t.\"id\" ASC\nLIMIT $3::bigint)\nUNION ALL\n",
            ),
            (
                "total.asc",
                Some("1"),
                r#"WHERE t."total" IS NULL"#,
            ),
            (
                "total.desc",
                None,
                r#"WHERE t."total" IS NULL AND ROW(t."id") < ROW($2"#,
            ),
            (
                "total.desc",
                None,
                r#"WHERE t."total" IS NOT NULL"#,
            ),
        ] {
            let plan = Plan::new(&m, &parse(&format!("order={order}")).unwrap()).unwrap();
            let next = plan.cursor_after(vec![first.map(String::from), Some("o-1".into())]);
            let r = parse(&format!("order={order}&after={next}")).unwrap();
            let (sql, _) = Plan::new(&m, &r).unwrap().sql();
            assert!(sql.contains(expected), "{order} {first:?}: {sql}");
        }
    }

    #[test]
    fn times_with_time_zone_are_written_in_utc() {
        let m = model();
        let (sql, _) = Plan::new(&m, &parse("").unwrap()).unwrap().sql();
        assert!(sql.contains("AT TIME ZONE 'UTC'"), "{sql}");
        assert!(sql.contains(r#"t."total" AS "total""#), "{sql}");
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"; DROP"), "\"a\"\"; DROP\"");
    }
}
