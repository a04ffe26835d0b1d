//! The service under test, run as a child process (so that its memory is
//! measured alone), and the databases the runs use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use pgcqrs::{db, seed};

/// Drop and create database `name` on the server at `admin_base` and
/// migrate it; returns the admin connection (to drop it afterwards) and its URL.
pub async fn fresh_database(
    admin_base: &str,
    name: &str,
) -> anyhow::Result<(db::tokio_postgres::Client, String)> {
    let admin = db::connect(&format!("{admin_base}postgres")).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = format!("{admin_base}{name}");
    db::migrate(&url).await?;
    Ok((admin, url))
}

/// `name` on the server of `admin_base`, migrated to this version: an
/// admin connection and its URL.
pub async fn existing_database(
    admin_base: &str,
    name: &str,
) -> anyhow::Result<(db::tokio_postgres::Client, String)> {
    let admin = db::connect(&format!("{admin_base}postgres")).await?;
    let url = format!("{admin_base}{name}");
    db::migrate(&url).await?;
    Ok((admin, url))
}

/// Seed `orders` orders into the database at `url`, the read models as
/// configured in the environment.
pub async fn seed_orders(url: &str, orders: u64) -> anyhow::Result<seed::SeedReport> {
    seed::seed(
        url,
        &seed::SeedPlan {
            orders,
            progress: false,
            read_models: pgcqrs::config::read_models_from_env()?,
            ..Default::default()
        },
    )
    .await
}

/// The service under test, as a child process.
pub struct Service {
    child: Child,
    pub base: String,
    stopped: bool,
}

impl Service {
    /// Start `pgcqrs serve` on a free port against `url` and wait until it
    /// is ready.
    pub async fn start(binary: &Path, url: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(binary)
            .arg("serve")
            .envs(env.iter().copied())
            .env("DATABASE_URL", url)
            .env("PGCQRS_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("Failed to start the service {}", binary.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("the service did not become ready in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            child,
            base,
            stopped: false,
        })
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.status_field("VmRSS:")
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_field("VmHWM:")
    }

    fn status_field(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// A benchmark that fails half-way still stops its services.
impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `pgcqrs` binary to measure: `explicit`, or the one cargo built next
/// to this benchmark. `cargo run -p pgcqrs-bench` does not build it: build
/// the workspace first (`cargo build --release --workspace`).
pub fn service_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "no service binary at {}", path.display());
        return Ok(path);
    }
    let me = std::env::current_exe().context("Failed to locate the benchmark binary")?;
    let beside = me.with_file_name("pgcqrs");
    anyhow::ensure!(
        beside.is_file(),
        "no pgcqrs binary at {}: build it first (cargo build --release --workspace), or pass --service-bin",
        beside.display()
    );
    Ok(beside)
}
