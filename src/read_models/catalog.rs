//! The read-model catalog: every model declared with
//! `pgcqrs.define_read_model` (the built-in ones by a migration), as the
//! refresher runs it. The catalog lives in the database
//! (`pgcqrs.read_models`), so running instances pick up new and dropped
//! declarations without a restart.

use crate::db::rows::column;
use anyhow::Context;

/// How a read model is kept current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// A materialized view, refreshed whole with `REFRESH ... CONCURRENTLY`
    /// when what it reads changed.
    Concurrent,
    /// A table kept current in batches: each batch takes a bounded slice of
    /// the captured changes of the tables it reads, finds the keys they
    /// touch (one statement per table read, [`Applier`]) and re-projects
    /// them (`apply`, returning `keys, changed_rows`). `full` recomputes it
    /// whole, writing only the rows that differ. `delta`, for a grouped
    /// model: merges the query's run over one table's changed rows (now and
    /// before the batch) into it, count and sum columns moved by the
    /// difference.
    Incremental {
        appliers: Vec<Applier>,
        apply: String,
        full: String,
        delta: Option<String>,
    },
}

/// How a batch finds the keys the changes of one table a model reads touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applier {
    /// The table (`pg_class` oid) whose changes this applies.
    pub source: u32,
    /// The search path that puts the table's stand-in (its changed rows)
    /// first.
    pub search_path: String,
    /// Adds those keys to `pgcqrs.batch_keys`.
    pub sql: String,
    /// The schema whose view of the table's name reads its rows now and
    /// the old versions of the batch's changed ones, and the statement that
    /// copies those versions there: when a batch changed several tables,
    /// each finds its keys with the others read so.
    pub any_schema: String,
    pub old_sql: String,
    /// For a grouped model whose batches of this table's changes can be
    /// kept by delta: how to run its query over them.
    pub delta: Option<DeltaRun>,
}

/// The query over one table's changed rows, into the model's working
/// table: as they are now (`plus`) and as they were before the batch
/// (`minus`), each a search path (the stand-in first) and a statement.
/// Its `term` orders it among the batch's changed tables: the tables of
/// later terms are read as they were, through `old_schema`, whose table of
/// first versions `first_sql` fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRun {
    pub term: i32,
    pub plus: (String, String),
    pub minus: (String, String),
    pub old_schema: String,
    pub first_sql: String,
}

/// One declared read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadModel {
    /// The relation `read.<name>` (a plain identifier, checked by the catalog).
    pub name: String,
    pub strategy: Strategy,
    /// The declared mode: full, incremental or auto.
    pub mode: String,
    /// When it was declared: a model declared again under the same name
    /// is another model, not to be run with what was loaded before.
    pub defined_at: time::OffsetDateTime,
    /// The tables it reads (`pg_class` oids), and their names.
    pub sources: Vec<u32>,
    pub source_names: Vec<String>,
    /// Cron with seconds (`sec min hour day month weekday`); `None`: as soon
    /// as a source changes (checked every quarter of a second).
    pub schedule: Option<String>,
    /// Per-refresh statement timeout.
    pub timeout_ms: u64,
    pub description: String,
}

/// The schedule shown for a model declared without one (cron's finest,
/// every second); the refresher looks for its changes every quarter of a
/// second instead.
pub const AS_SOON_AS_CHANGED: &str = "* * * * * *";

impl ReadModel {
    pub fn source_names(&self) -> Vec<String> {
        self.source_names.clone()
    }

    /// Whether the model is kept in batches.
    pub fn is_incremental(&self) -> bool {
        matches!(self.strategy, Strategy::Incremental { .. })
    }

    /// The schedule it runs on unless configured otherwise.
    pub fn default_schedule(&self) -> &str {
        self.schedule.as_deref().unwrap_or(AS_SOON_AS_CHANGED)
    }

    /// `PGCQRS_SCHEDULE_ORDER_SUMMARY` and the like.
    pub fn schedule_env_var(&self) -> String {
        format!("PGCQRS_SCHEDULE_{}", self.name.to_ascii_uppercase())
    }
}

/// Every declared read model, in declaration order.
pub async fn load(
    client: &deadpool_postgres::tokio_postgres::Client,
) -> anyhow::Result<Vec<ReadModel>> {
    let models = client
        .query(include_str!("../../sql/read_models/catalog.sql"), &[])
        .await
        .context("Failed to read the read-model catalog (are the migrations applied?)")?;
    let appliers = client
        .query(
            include_str!("../../sql/read_models/catalog_sources.sql"),
            &[],
        )
        .await
        .context("Failed to read the read-model catalog's sources")?;
    let mut out = Vec::with_capacity(models.len());
    for row in &models {
        let name: String = column(row, "name")?;
        let strategy = if column::<String>(row, "kept")? == "incremental" {
            let mut mine = Vec::new();
            for a in appliers.iter() {
                if column::<String>(a, "model")? == name {
                    let plus =
                        column::<Option<String>>(a, "plus_path")?
                            .zip(column::<Option<String>>(a, "plus_sql")?);
                    let minus =
                        column::<Option<String>>(a, "minus_path")?
                            .zip(column::<Option<String>>(a, "minus_sql")?);
                    mine.push(Applier {
                        source: column(a, "source")?,
                        search_path: column(a, "search_path")?,
                        sql: column(a, "keys_sql")?,
                        any_schema: column(a, "any_schema")?,
                        old_sql: column(a, "old_sql")?,
                        delta: match (plus.zip(minus), column::<Option<i32>>(a, "term")?) {
                            (Some((plus, minus)), Some(term)) => Some(DeltaRun {
                                term,
                                plus,
                                minus,
                                old_schema: column(a, "old_schema")?,
                                first_sql: column(a, "first_sql")?,
                            }),
                            _ => None,
                        },
                    });
                }
            }
            Strategy::Incremental {
                appliers: mine,
                apply: column::<Option<String>>(row, "apply_sql")?
                    .context("an incremental read model without its apply statement")?,
                full: column::<Option<String>>(row, "full_sql")?
                    .context("an incremental read model without its full statement")?,
                delta: column(row, "delta_sql")?,
            }
        } else {
            Strategy::Concurrent
        };
        out.push(ReadModel {
            strategy,
            mode: column(row, "mode")?,
            defined_at: column(row, "defined_at")?,
            sources: column(row, "sources")?,
            source_names: column(row, "source_names")?,
            schedule: column(row, "schedule")?,
            timeout_ms: column::<i32>(row, "timeout_ms")?.max(1) as u64,
            description: column::<Option<String>>(row, "description")?.unwrap_or_default(),
            name,
        });
    }
    Ok(out)
}
