//! The declared read models this instance serves, and reading one.
//!
//! The catalog (`pgcqrs.read_models` with each relation's columns from
//! `pg_attribute`) is cached per instance: read again when it is more than
//! [`RELOAD_EVERY`] old, when a request names a model it does not know
//! (at most every [`MISS_RELOAD_AFTER`]), and when a read finds the relation
//! gone or changed. Declarations made or dropped at run time are thus served
//! within seconds, and a stream of requests for unknown names costs at most
//! one catalog read per [`MISS_RELOAD_AFTER`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::tokio_postgres::types::{ToSql, Type};
use deadpool_postgres::Pool;
use serde::Serialize;
use serde_json::value::RawValue;

use super::views::{Column, Model, Param, Plan};
use super::QueryError;
use crate::db;
use crate::db::targets::ReadTargets;

/// The longest the cache serves without reading the catalog again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// The shortest time between two reads of the catalog for unknown names.
pub const MISS_RELOAD_AFTER: Duration = Duration::from_millis(250);

/// Every model, by name.
pub type Models = BTreeMap<String, Arc<Model>>;

#[derive(Clone)]
struct Loaded {
    at: Instant,
    models: Arc<Models>,
}

/// The cached catalog of declared read models.
#[derive(Default)]
pub struct ViewCatalog {
    loaded: RwLock<Option<Loaded>>,
    /// Held while reading the catalog: concurrent misses share one read.
    loading: tokio::sync::Mutex<()>,
}

/// Whether a cached reading still serves.
fn fresh_enough(loaded: &Loaded, name: Option<&str>) -> bool {
    let age = loaded.at.elapsed();
    match name {
        Some(name) if !loaded.models.contains_key(name) => age < MISS_RELOAD_AFTER,
        _ => age < RELOAD_EVERY,
    }
}

impl ViewCatalog {
    fn cached(&self) -> Option<Loaded> {
        self.loaded.read().ok().and_then(|l| l.clone())
    }

    /// The model called `name`, if one is declared (reading the catalog
    /// again if the cache does not know it).
    pub async fn model(
        &self,
        reads: &ReadTargets,
        name: &str,
    ) -> Result<Option<Arc<Model>>, QueryError> {
        let models = self.models_for(reads, Some(name)).await?;
        Ok(models.get(name).cloned())
    }

    /// Every declared model.
    pub async fn models(&self, reads: &ReadTargets) -> Result<Arc<Models>, QueryError> {
        self.models_for(reads, None).await
    }

    /// Forget the cached catalog: the next request reads it again.
    pub fn invalidate(&self) {
        if let Ok(mut l) = self.loaded.write() {
            *l = None;
        }
    }

    async fn models_for(
        &self,
        reads: &ReadTargets,
        name: Option<&str>,
    ) -> Result<Arc<Models>, QueryError> {
        if let Some(l) = self.cached().filter(|l| fresh_enough(l, name)) {
            return Ok(l.models);
        }
        let _loading = self.loading.lock().await;
        // Another request may have read it while this one waited.
        if let Some(l) = self.cached().filter(|l| fresh_enough(l, name)) {
            return Ok(l.models);
        }
        let models = Arc::new(
            reads
                .read(
                    None,
                    |target, _| async move { read_catalog(&target.pool).await },
                )
                .await?,
        );
        if let Ok(mut l) = self.loaded.write() {
            *l = Some(Loaded {
                at: Instant::now(),
                models: Arc::clone(&models),
            });
        }
        Ok(models)
    }
}

/// Read the catalog from `pool` (uncached).
#[tracing::instrument(skip_all)]
pub async fn read_catalog(pool: &Pool) -> Result<Models, QueryError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(include_str!("../../sql/queries/view_catalog.sql"))
        .await?;
    let rows = client.query(&stmt, &[]).await?;
    let mut models = BTreeMap::<String, Model>::new();
    for row in &rows {
        let name: String = row.try_get("name")?;
        let model = match models.entry(name) {
            std::collections::btree_map::Entry::Occupied(m) => m.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let name = slot.key().clone();
                slot.insert(Model {
                    name,
                    key: row.try_get("key")?,
                    filterable: row.try_get("filterable")?,
                    description: row.try_get("description")?,
                    columns: Vec::new(),
                })
            }
        };
        model.columns.push(Column {
            name: row.try_get("column_name")?,
            sql_type: row.try_get("sql_type")?,
            cast_type: row.try_get("cast_type")?,
            base_type: row.try_get("base_type")?,
            element_type: row.try_get("element_type")?,
            not_null: row.try_get("not_null")?,
            comment: row.try_get("comment")?,
        });
    }
    Ok(models
        .into_iter()
        .map(|(name, model)| (name, Arc::new(model)))
        .collect())
}

/// `GET /queries/views/{name}`'s answer.
#[derive(Debug, Serialize)]
pub struct ViewPage {
    /// The rows as PostgreSQL wrote them.
    pub rows: Vec<Box<RawValue>>,
    /// The cursor of the next page (`after`), or null on the last page.
    pub next: Option<String>,
}

/// Run a planned read on `pool`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn read_view(pool: &Pool, plan: &Plan<'_>) -> Result<ViewPage, QueryError> {
    let (sql, params) = plan.sql();
    let values: Vec<(Box<dyn ToSql + Sync + Send>, Type)> = params
        .into_iter()
        .map(|p| -> (Box<dyn ToSql + Sync + Send>, Type) {
            match p {
                Param::Text(v) => (Box::new(v), Type::TEXT),
                Param::List(v) => (Box::new(v), Type::TEXT_ARRAY),
                Param::Limit(n) => (Box::new(n), Type::INT8),
            }
        })
        .collect();
    let client = pool.get().await?;
    let rows = query_view(&client, &sql, &values).await?;
    let limit = usize::from(plan.limit());
    let next = match limit.checked_sub(1).and_then(|i| rows.get(i)) {
        Some(last) if rows.len() > limit => Some(plan.cursor_after(last.try_get("sort")?)),
        _ => None,
    };
    let rows = rows
        .iter()
        .take(limit)
        .map(|r| {
            let json: String = r.try_get("row")?;
            RawValue::from_string(json)
                .map_err(|e| QueryError::Internal(anyhow::anyhow!("a row is not JSON: {e}")))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    Ok(ViewPage { rows, next })
}

/// Run a view read's SELECT as a statement its connection keeps
/// ([`db::kept_statement`]), planned once per shape instead of for every
/// request. The statement's result is always `text, text[]` and its
/// parameters are typed here, so a model redefined under it is planned
/// again, not broken; one whose columns went away fails as an unnamed
/// statement would, and is forgotten. A value refused (the client's 400)
/// leaves the statement kept.
async fn query_view(
    client: &deadpool_postgres::Client,
    sql: &str,
    values: &[(Box<dyn ToSql + Sync + Send>, Type)],
) -> Result<Vec<deadpool_postgres::tokio_postgres::Row>, QueryError> {
    let types: Vec<Type> = values.iter().map(|(_, t)| t.clone()).collect();
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|(v, _)| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let result = match db::kept_statement(client, sql, &types).await {
        Ok(statement) => client.query(&statement, &params).await,
        Err(e) => Err(e),
    };
    result.map_err(|e| {
        let e = read_error(e);
        if !matches!(e, QueryError::BadParameter(_)) {
            client.statement_cache.remove(sql, &types);
        }
        e
    })
}

/// The errors a read's own values cause are the client's (400); a relation
/// gone or changed under the cached catalog asks for a fresh one.
fn read_error(e: deadpool_postgres::tokio_postgres::Error) -> QueryError {
    let Some(db) = e.as_db_error() else {
        return e.into();
    };
    match db.code().code() {
        // Data exceptions: a value that does not cast (22P02 invalid text,
        // 22007/22008 bad or out-of-range times, 22003 numbers out of
        // range, 22021 a NUL byte, ...); a domain's check (23514); a type
        // without the comparison asked for (42883).
        code if code.starts_with("22") || code == "23514" || code == "42883" => {
            QueryError::BadParameter(format!(
                "a filter or cursor value was refused: {}",
                db.message()
            ))
        }
        // The relation or a column of it is gone: dropped or redefined.
        "42P01" | "42703" => QueryError::CatalogChanged(db.message().to_owned()),
        _ => e.into(),
    }
}
