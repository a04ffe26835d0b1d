//! Every setting, from a flag or the environment (flags win), validated at
//! start: a bad value stops start-up with an error naming its variable.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | unset: embedded cluster | PostgreSQL for commands, refreshes and (by default) queries |
//! | `READ_DATABASE_URL` | `DATABASE_URL` | where the query side reads the read models: one or more streaming replicas, comma-separated, taken in turn; the primary when none answers |
//! | `PGCQRS_LISTEN` | `127.0.0.1:8080` | HTTP listen address |
//! | `PGCQRS_POOL_SIZE` | `16` | connections in each pool (write and read) |
//! | `PGCQRS_BODY_LIMIT` | `65536` | largest accepted request body, bytes (413 beyond) |
//! | `PGCQRS_REQUEST_TIMEOUT_MS` | `35000` | a request running longer gets 503 |
//! | `PGCQRS_LOG_FORMAT` | `pretty` | `pretty` or `json` |
//! | `PGCQRS_DATA_DIR` | `.pgcqrs/pgdata`; as root when the `postgres` user cannot reach it, `/var/lib/pgcqrs/<project>-<hash>/pgdata` | data directory of the embedded cluster |
//! | `PGCQRS_PG_BINDIR` | searched | where initdb/pg_ctl live, for the embedded cluster |
//! | `PGCQRS_ROLE` | `all` | `all`, `commands`, `queries` or `refresher`: what this instance does |
//! | `PGCQRS_SCHEDULE_<VIEW>` | the catalog's | refresh schedule of one read model, cron with seconds (`sec min hour day month weekday`) |
//! | `PGCQRS_REFRESH_TIMEOUT_MS_<VIEW>` | the catalog's | statement timeout of one read model's refresh, ms (1 or more) |
//! | `PGCQRS_FULL_REFRESH` | unset | `all` or read models, comma-separated: recompute them whole instead of in batches (for measurement) |
//! | `PGCQRS_AUTH_TOKENS` | unset | `token=scope,...;token=scope`: bearer tokens with scopes `command`, `query`, `admin`; unset: no authentication |
//! | `RUST_LOG` | `info` | log filter (tracing-subscriber syntax) |
//!
//! The per-view variables have names no flag can declare: [`ReadModelArgs`]
//! reads them once, at start, into validated [`ScheduledModel`]s that are
//! passed down; nothing else in the service reads the environment (apart
//! from the embedded cluster looking for PostgreSQL's binaries).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};

pub use crate::read_models::settings::{ModelConfig, UnknownModel};
use crate::read_models::settings::{SCHEDULE_PREFIX, TIMEOUT_PREFIX};

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection string for commands and refreshes. When unset,
    /// pgcqrs runs a private local cluster from the machine's PostgreSQL
    /// binaries in --data-dir and stops it on exit.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Connection strings for the query side, comma-separated (e.g.
    /// streaming replicas): requests take them in turn, and read the
    /// database URL while none answers. Defaults to the database URL.
    #[arg(long, env = "READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,

    /// Data directory of the embedded cluster (used only without DATABASE_URL).
    /// Kept across runs. Default: .pgcqrs/pgdata in the working directory;
    /// as root, when the postgres OS user cannot reach it (a home of mode
    /// 700), /var/lib/pgcqrs/<project>-<hash>/pgdata. The log says which.
    #[arg(long, env = "PGCQRS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Connections in each pool (write and read).
    #[arg(long, env = "PGCQRS_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pool_size: u16,
}

/// Settings of the HTTP service.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PGCQRS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Largest accepted request body in bytes; larger bodies get 413.
    #[arg(long, env = "PGCQRS_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,

    /// A request that runs longer than this many milliseconds gets 503.
    #[arg(long, env = "PGCQRS_REQUEST_TIMEOUT_MS", default_value_t = 35_000)]
    pub request_timeout_ms: u64,

    /// What this instance does: all, commands, queries or refresher.
    #[arg(long, env = "PGCQRS_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// Bearer tokens and their scopes, `token=command,query;token=admin`
    /// (tokens of 16 characters or more). Unset: no authentication.
    #[arg(
        long,
        env = "PGCQRS_AUTH_TOKENS",
        hide_env_values = true,
        default_value = ""
    )]
    pub auth_tokens: String,

    #[command(flatten)]
    pub read_models: ReadModelArgs,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: 64 * 1024,
            request_timeout_ms: 35_000,
            auth_tokens: String::new(),
            role: Role::All,
            read_models: ReadModelArgs::default(),
        }
    }
}

/// What one instance does. Run any number of each against one database.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Role {
    /// Commands, queries and the refresher.
    #[default]
    All,
    /// Only `/commands/*` (plus health and metrics).
    Commands,
    /// Only `/queries/*` and `/admin/*` (plus health and metrics).
    Queries,
    /// Only the refresher (plus health and metrics).
    Refresher,
}

impl Role {
    pub fn serves_commands(self) -> bool {
        matches!(self, Role::All | Role::Commands)
    }

    pub fn serves_queries(self) -> bool {
        matches!(self, Role::All | Role::Queries)
    }

    pub fn runs_refresher(self) -> bool {
        matches!(self, Role::All | Role::Refresher)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A setting that cannot be used, named by its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{var}={value:?} is not a cron schedule with seconds (sec min hour day month weekday)"
    )]
    Schedule { var: String, value: String },
    #[error("{var}={value:?} is not a timeout in milliseconds (a whole number, 1 or more)")]
    Timeout { var: String, value: String },
    #[error(transparent)]
    Unknown(#[from] UnknownModel),
}

/// How the read models are refreshed here: the catalog's schedules and
/// timeouts, overridden per view by `PGCQRS_SCHEDULE_<VIEW>` and
/// `PGCQRS_REFRESH_TIMEOUT_MS_<VIEW>` (read by [`ReadModelArgs::models`]).
#[derive(Debug, Clone, Default, Args)]
pub struct ReadModelArgs {
    /// Read models to recompute whole whenever what they read changed,
    /// instead of keeping them in batches (`all` or names, comma-separated):
    /// the design the batches replaced, kept for measurement.
    #[arg(long, env = "PGCQRS_FULL_REFRESH", value_delimiter = ',')]
    pub full_refresh: Vec<String>,
}

/// Only the read-model settings, for [`ReadModelArgs::from_env`].
#[derive(Parser)]
struct ReadModelsOnly {
    #[command(flatten)]
    args: ReadModelArgs,
}

impl ReadModelArgs {
    /// The settings from the environment alone: for tools and tests that
    /// parse no command line.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(ReadModelsOnly::try_parse_from(["pgcqrs"])?.args)
    }

    /// The per-view schedules, timeouts and designs configured here, their
    /// values validated (the names are checked against the catalog when
    /// the refresher loads it: models are declared in the database).
    pub fn models(&self) -> Result<ModelConfig, ConfigError> {
        let lookup = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        self.models_from(lookup, std::env::vars_os().map(|(k, _)| k))
    }

    /// [`models`](Self::models) with the environment given: `lookup` reads
    /// one variable, `names` lists them all.
    pub fn models_from(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
        names: impl IntoIterator<Item = OsString>,
    ) -> Result<ModelConfig, ConfigError> {
        let mut config = ModelConfig {
            full_refresh: self
                .full_refresh
                .iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            ..ModelConfig::default()
        };
        for var in names.into_iter().filter_map(|n| n.into_string().ok()) {
            let Some(value) = lookup(&var) else { continue };
            if let Some(view) = var.strip_prefix(SCHEDULE_PREFIX) {
                let schedule = parse_schedule(&var, &value)?;
                config.schedules.insert(view.to_owned(), (var, schedule));
            } else if let Some(view) = var.strip_prefix(TIMEOUT_PREFIX) {
                let timeout = parse_timeout(&var, &value)?;
                config.timeouts.insert(view.to_owned(), (var, timeout));
            }
        }
        Ok(config)
    }
}

/// The read-model settings as the environment configures them: for tools
/// and tests that parse no command line.
pub fn read_models_from_env() -> anyhow::Result<ModelConfig> {
    Ok(ReadModelArgs::from_env()?.models()?)
}

/// A cron schedule the refresh scheduler accepts (the scheduler's own parser).
fn parse_schedule(var: &str, value: &str) -> Result<String, ConfigError> {
    tokio_cron_scheduler::Job::new(value, |_, _| {})
        .map(|_| value.to_owned())
        .map_err(|_| ConfigError::Schedule {
            var: var.to_owned(),
            value: value.to_owned(),
        })
}

fn parse_timeout(var: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| ConfigError::Timeout {
            var: var.to_owned(),
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_models::{ReadModel, ScheduledModel, Strategy};

    fn catalog() -> Vec<ReadModel> {
        ["order_summary", "order_lines", "daily_sales"]
            .into_iter()
            .map(|name| ReadModel {
                name: name.into(),
                strategy: Strategy::Concurrent,
                mode: "auto".into(),
                defined_at: time::OffsetDateTime::UNIX_EPOCH,
                sources: vec![],
                source_names: vec![],
                schedule: (name == "daily_sales").then(|| "*/2 * * * * *".to_owned()),
                timeout_ms: 60_000,
                description: String::new(),
            })
            .collect()
    }

    fn models(vars: &[(&str, &str)], full: &[&str]) -> Result<Vec<ScheduledModel>, ConfigError> {
        let args = ReadModelArgs {
            full_refresh: full.iter().map(|s| s.to_string()).collect(),
        };
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Ok(args
            .models_from(lookup, vars.iter().map(|(k, _)| OsString::from(k)))?
            .apply(catalog(), true)?)
    }

    fn model<'a>(models: &'a [ScheduledModel], name: &str) -> &'a ScheduledModel {
        models
            .iter()
            .find(|m| m.model.name == name)
            .expect("a model of the catalog")
    }

    #[test]
    fn without_variables_every_model_runs_with_the_catalog_defaults() {
        let got = models(&[], &[]).expect("valid");
        assert_eq!(got.len(), 3);
        for (m, c) in got.iter().zip(catalog()) {
            assert_eq!(m.schedule, c.default_schedule(), "{}", c.name);
            assert_eq!(m.timeout_ms, c.timeout_ms, "{}", c.name);
            assert!(!m.full_refresh, "{}", c.name);
        }
        assert_eq!(model(&got, "order_lines").schedule, "* * * * * *");
        assert_eq!(model(&got, "daily_sales").schedule, "*/2 * * * * *");
    }

    #[test]
    fn a_view_takes_its_own_schedule_and_timeout() {
        let got = models(
            &[
                ("PGCQRS_SCHEDULE_DAILY_SALES", "*/5 * * * * *"),
                ("PGCQRS_REFRESH_TIMEOUT_MS_DAILY_SALES", "1500"),
            ],
            &[],
        )
        .expect("valid");
        let daily = model(&got, "daily_sales");
        assert_eq!(daily.schedule, "*/5 * * * * *");
        assert_eq!(daily.timeout_ms, 1500);
    }

    #[test]
    fn a_bad_cron_schedule_is_rejected_naming_its_variable() {
        let err = models(&[("PGCQRS_SCHEDULE_DAILY_SALES", "every minute")], &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Schedule { var, .. } if var == "PGCQRS_SCHEDULE_DAILY_SALES")
        );
        assert!(err.to_string().contains("PGCQRS_SCHEDULE_DAILY_SALES"));
    }

    #[test]
    fn a_timeout_that_is_not_a_positive_number_is_rejected_naming_its_variable() {
        for bad in ["", "ten", "-5", "0", "1.5"] {
            let err =
                models(&[("PGCQRS_REFRESH_TIMEOUT_MS_ORDER_SUMMARY", bad)], &[]).expect_err(bad);
            assert_eq!(
                err,
                ConfigError::Timeout {
                    var: "PGCQRS_REFRESH_TIMEOUT_MS_ORDER_SUMMARY".into(),
                    value: bad.into()
                },
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_per_view_variable_naming_no_read_model_is_rejected_at_start_only() {
        let err = models(&[("PGCQRS_SCHEDULE_DAILY_SALE", "* * * * * *")], &[]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Unknown(UnknownModel::View { var, .. }) if var == "PGCQRS_SCHEDULE_DAILY_SALE")
        );
        let err = models(&[("PGCQRS_REFRESH_TIMEOUT_MS_ORDERS", "5")], &[]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Unknown(UnknownModel::View { .. })
        ));
        // A model dropped while running: its setting no longer applies.
        let args = ReadModelArgs::default();
        let vars = [("PGCQRS_REFRESH_TIMEOUT_MS_ORDERS", "5")];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let config = args
            .models_from(lookup, vars.iter().map(|(k, _)| OsString::from(k)))
            .expect("valid values");
        assert_eq!(config.apply(catalog(), false).expect("lenient").len(), 3);
    }

    #[test]
    fn full_refresh_takes_all_or_read_model_names_only() {
        let all = models(&[], &["all"]).expect("valid");
        assert!(all.iter().all(|m| m.full_refresh));
        let one = models(&[], &["order_lines", " "]).expect("valid");
        assert!(model(&one, "order_lines").full_refresh);
        assert!(!model(&one, "order_summary").full_refresh);
        let err = models(&[], &["orders"]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Unknown(UnknownModel::FullRefresh { name, .. }) if name == "orders")
        );
    }
}
