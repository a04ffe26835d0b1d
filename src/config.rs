//! Every setting, from a flag or the environment (flags win).
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
//! | `PGCQRS_AUTH_TOKENS` | unset | `token=scope,...;token=scope`: bearer tokens with scopes `command`, `query`, `admin`; unset: no authentication |
//! | `RUST_LOG` | `info` | log filter (tracing-subscriber syntax) |

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: 64 * 1024,
            request_timeout_ms: 35_000,
            auth_tokens: String::new(),
            role: Role::All,
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
