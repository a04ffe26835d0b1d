//! Test support: every test gets its own database, cloned from a migrated
//! template, and its own service on a free port, reached over real HTTP.
//!
//! The PostgreSQL cluster is started once per test binary from the machine's
//! binaries (see `pgcqrs::db::embedded`) in a throwaway directory under the
//! system's temporary directory (`/tmp`), not in the clone: as root the
//! server runs as `postgres`, which cannot enter a clone in a home closed to
//! others. A detached reaper removes it when the test process ends. Set
//! `PGCQRS_TEST_ADMIN_URL` to a superuser URL to use an existing server
//! instead: it keeps one template per set of migrations
//! (`pgcqrs_template_<hash>`), which later runs clone, and each test's
//! database is dropped when the test ends.
//!
//! - this module: the cluster, [`TestDb`], [`TestApp`] and its builder,
//!   [`poll_until`] (the one way a test waits for something);
//! - [`read`]: a varied world of orders and the read side's expected answers;
//! - [`write`]: assertions on commands and the write tables.
#![allow(dead_code)]

pub mod read;
pub mod write;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pgcqrs::config::read_models_from_env;
use pgcqrs::config::ServeArgs;
use pgcqrs::db::embedded::{LocalCluster, StartOptions};
use pgcqrs::db::targets::ReadTargets;
use pgcqrs::db::{self, tokio_postgres};
use pgcqrs::read_models::{RefreshOutcome, Refresher, RefresherSettings};

struct Server {
    /// Superuser URL without the database name: `postgres://...:port/`.
    admin_base: String,
    template: String,
    _cluster: Option<LocalCluster>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        // Runs on a plain thread: the caller may be inside a Tokio runtime.
        std::thread::spawn(start_server)
            .join()
            .expect("test server start-up panicked")
    })
}

fn start_server() -> Server {
    let (admin_base, cluster) = match std::env::var("PGCQRS_TEST_ADMIN_URL") {
        Ok(url) => (
            url.trim_end_matches('/')
                .rsplit_once('/')
                .map(|(b, _)| format!("{b}/"))
                .unwrap_or(url),
            None,
        ),
        Err(_) => {
            let dir = std::env::temp_dir().join(format!(
                "pgcqrs-test-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            let cluster = LocalCluster::start(
                &dir,
                &StartOptions {
                    fsync: false,
                    max_connections: 400,
                },
            )
            .expect("could not start a PostgreSQL for the tests");
            cluster
                .remove_when_process_exits()
                .expect("could not arrange clean-up of the test cluster");
            (cluster.url(""), Some(cluster))
        }
    };
    let template = format!("pgcqrs_template_{}", migrations_fingerprint());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let admin = db::connect(&format!("{admin_base}postgres"))
            .await
            .expect("connect admin");
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
            .await
            .expect("look for the template")
            .is_some();
        if exists {
            return;
        }
        // Migrated under a name of its own, then named as the template: a
        // test binary started meanwhile never clones half a template.
        let building = format!("{template}_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await
            .expect("create template");
        db::migrate(&format!("{admin_base}{building}"))
            .await
            .expect("migrate template");
        let renamed = admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await;
        match renamed {
            Ok(()) => {}
            // another test binary made it first
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
                admin
                    .batch_execute(&format!("DROP DATABASE {building}"))
                    .await
                    .expect("drop the second template");
            }
            Err(e) => panic!("name the template: {e}"),
        }
    });
    Server {
        admin_base,
        template,
        _cluster: cluster,
    }
}

/// The migrations' names and contents, hashed: the template a server
/// keeps for this set of migrations is cloned by every later test binary
/// that has the same set, rather than one more left behind per run.
fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read the migrations directory")
        .map(|entry| entry.expect("a migration").path())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(
            file.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hash.update(std::fs::read(&file).expect("read a migration"));
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A streaming replica of the test binary's cluster, removed at exit.
pub fn start_replica() -> LocalCluster {
    let cluster = server()
        ._cluster
        .as_ref()
        .expect("replica tests need the embedded test cluster (unset PGCQRS_TEST_ADMIN_URL)");
    let dir = std::env::temp_dir().join(format!(
        "pgcqrs-replica-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let replica = cluster
        .start_replica(
            &dir,
            &StartOptions {
                fsync: false,
                max_connections: 400,
            },
        )
        .expect("start a replica");
    replica
        .remove_when_process_exits()
        .expect("arrange clean-up of the replica");
    replica
}

/// Crash and restart the test binary's PostgreSQL (`pg_ctl restart -m
/// immediate`): for fault tests, which live in a test binary of their own.
pub fn crash_and_restart_postgres() {
    let cluster = server()
        ._cluster
        .as_ref()
        .expect("fault tests need the embedded test cluster (unset PGCQRS_TEST_ADMIN_URL)");
    cluster
        .restart_immediate(&StartOptions {
            fsync: false,
            max_connections: 400,
        })
        .expect("restart PostgreSQL");
}

/// A database of its own, dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// Only the owner drops the database.
    owned: bool,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let server = server();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = db::connect(&format!("{}postgres", server.admin_base))
            .await
            .expect("connect admin");
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE {}",
                server.template
            ))
            .await
            .expect("create test database");
        TestDb {
            url: format!("{}{name}", server.admin_base),
            name,
            owned: true,
        }
    }

    /// A database migrated only up to `version`, as an older release left
    /// it: to upgrade from.
    pub async fn create_at(version: i32) -> TestDb {
        let server = server();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = db::connect(&format!("{}postgres", server.admin_base))
            .await
            .expect("connect admin");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .await
            .expect("create an empty test database");
        let test = TestDb {
            url: format!("{}{name}", server.admin_base),
            name,
            owned: true,
        };
        db::migrate_to(&test.url, version)
            .await
            .unwrap_or_else(|e| panic!("migrate to version {version}: {e:#}"));
        test
    }

    /// A database this harness did not create (e.g. on another cluster):
    /// not dropped.
    pub fn existing(name: &str, url: &str) -> TestDb {
        TestDb {
            name: name.to_owned(),
            url: url.to_owned(),
            owned: false,
        }
    }

    /// Another handle on the same database that does not drop it: for a
    /// second service instance on one database.
    pub fn share(&self) -> TestDb {
        TestDb {
            name: self.name.clone(),
            url: self.url.clone(),
            owned: false,
        }
    }

    /// A plain connection as the superuser, for assertions in SQL.
    pub async fn client(&self) -> tokio_postgres::Client {
        db::connect(&self.url).await.expect("connect test database")
    }

    /// The URL of this database as `user` (no password: trust auth).
    pub fn url_as(&self, user: &str) -> String {
        self.url
            .replacen("postgres://postgres@", &format!("postgres://{user}@"), 1)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let admin_url = format!("{}postgres", server().admin_base);
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().ok()?;
            rt.block_on(async {
                let admin = db::connect(&admin_url).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// A running service on its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db: TestDb,
    /// See [`TestApp::client`].
    sql: tokio::sync::OnceCell<tokio_postgres::Client>,
    pub refresher: Option<std::sync::Arc<Refresher>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// How a test service refreshes its read models.
#[derive(Debug, Clone)]
pub enum Refreshing {
    /// The catalog's schedules (every second or two).
    Scheduled,
    /// Only on request (`min_token`, admin API, `TestApp::refresh`): the
    /// schedules are set to once a year, so a test controls every refresh.
    OnRequest,
    /// No refresher in this instance.
    Off,
    /// These settings (e.g. a fault hook, other timeouts).
    With(RefresherSettings),
}

/// How to start a [`TestApp`]: `TestApp::builder()`, then any of the
/// settings below, then `start()`. Without settings: the default service
/// settings, the catalog's refresh schedules, a database of its own, and
/// queries read from that database.
#[must_use]
pub struct TestAppBuilder {
    settings: ServeArgs,
    refreshing: Refreshing,
    db: Option<TestDb>,
    read_urls: Option<String>,
}

impl TestAppBuilder {
    /// Service settings (e.g. a role, an admin token).
    pub fn settings(mut self, settings: ServeArgs) -> Self {
        self.settings = settings;
        self
    }

    /// How the service refreshes its read models (default: `Scheduled`).
    pub fn refreshing(mut self, refreshing: Refreshing) -> Self {
        self.refreshing = refreshing;
        self
    }

    /// Run on this database (e.g. `other.db.share()` for a second instance
    /// on one database) instead of a new one.
    pub fn on(mut self, db: TestDb) -> Self {
        self.db = Some(db);
        self
    }

    /// Read queries from `read_urls` (e.g. a replica; a comma-separated list
    /// as in `READ_DATABASE_URL`) instead of the database written to.
    pub fn reading(mut self, read_urls: &str) -> Self {
        self.read_urls = Some(read_urls.to_owned());
        self
    }

    /// Start the service on a free port.
    pub async fn start(self) -> TestApp {
        let db = match self.db {
            Some(db) => db,
            None => TestDb::create().await,
        };
        start(db, self.read_urls, self.settings, self.refreshing).await
    }
}

/// The settings of `Refreshing::OnRequest`: the catalog's, with every
/// schedule set to once a year. A base for `Refreshing::With`.
pub fn on_request() -> RefresherSettings {
    let mut r = RefresherSettings::new(read_models_from_env().expect("read-model settings"));
    r.models.schedule_all = Some("0 0 0 1 1 *".into());
    r
}

async fn start(
    db: TestDb,
    read_urls: Option<String>,
    mut settings: ServeArgs,
    refreshing: Refreshing,
) -> TestApp {
    settings.listen = "127.0.0.1:0".parse().expect("address");
    let write_pool = db::pool(&db.url, 8, "pgcqrs-test").expect("pool");
    let reads = ReadTargets::new(&db.url, read_urls.as_deref(), 8).expect("read pools");
    let mut refresher = match refreshing {
        Refreshing::Off => None,
        Refreshing::Scheduled => Some(RefresherSettings::new(
            read_models_from_env().expect("read-model settings"),
        )),
        Refreshing::With(settings) => Some(settings),
        Refreshing::OnRequest => Some(on_request()),
    };
    if let Some(r) = refresher.as_mut() {
        r.listen_url = Some(db.url.clone());
    }
    let app = pgcqrs::app::App::build(&settings, write_pool, reads, refresher)
        .await
        .expect("build app");
    let refresher = app.refresher();
    let addr = app.local_addr().expect("address");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        db,
        sql: tokio::sync::OnceCell::new(),
        refresher,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// A service to start: see [`TestAppBuilder`].
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            settings: ServeArgs::default(),
            refreshing: Refreshing::Scheduled,
            db: None,
            read_urls: None,
        }
    }

    /// This app's connection to its database (as the superuser), opened on
    /// first use and shared by every assertion in SQL. Tests that hold a
    /// transaction or a lock open a connection of their own with
    /// `app.db.client()`.
    pub async fn client(&self) -> &tokio_postgres::Client {
        self.sql.get_or_init(|| self.db.client()).await
    }

    /// A pool of one connection to this app's database, to look at what
    /// that connection keeps (`kept_statements`).
    pub fn pool_of_one(&self) -> deadpool_postgres::Pool {
        db::pool(&self.db.url, 1, "pgcqrs-test").expect("a pool of one")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request failed")
    }

    /// POST raw bytes, for malformed bodies.
    pub async fn post_raw(&self, path: &str, body: &'static [u8]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    /// Register a customer and a product or two: the usual starting point.
    pub async fn seed_catalog(&self) {
        let r = self
            .post("/commands/customers", serde_json::json!({"id": "c-1", "name": "Ada Lovelace", "email": "ada@example.com"}))
            .await;
        assert_eq!(
            r.status(),
            201,
            "seed customer: {}",
            r.text().await.unwrap_or_default()
        );
        for (id, name, price) in [
            ("p-1", "Widget", "19.99"),
            ("p-2", "Gadget", "5.00"),
            ("p-3", "Gizmo", "0.10"),
        ] {
            let r = self
                .post(
                    "/commands/products",
                    serde_json::json!({"id": id, "name": name, "price": price}),
                )
                .await;
            assert_eq!(
                r.status(),
                201,
                "seed product: {}",
                r.text().await.unwrap_or_default()
            );
        }
    }

    /// Place an order for c-1 with one Widget; returns the response body.
    pub async fn place_simple_order(&self, order_id: &str) -> serde_json::Value {
        let r = self
            .post(
                "/commands/orders",
                serde_json::json!({"order_id": order_id, "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1}]}),
            )
            .await;
        assert_eq!(r.status(), 202);
        r.json().await.expect("json")
    }

    /// Count rows of a table (or any FROM expression) in this app's database.
    pub async fn count(&self, from: &str) -> i64 {
        self.client()
            .await
            .query_one(&format!("SELECT count(*) FROM {from}"), &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Refresh every read model whose sources changed, now, in this task.
    pub async fn refresh(&self) -> Vec<(String, RefreshOutcome)> {
        let refresher = self.refresher.as_ref().expect("this app has no refresher");
        let mut outcomes = Vec::new();
        for m in refresher.models() {
            // Busy: another refresh of it (a start-up check, a min_token
            // request) holds it right now; try again once it is done.
            let outcome = poll_until(
                &format!("{} to be free to refresh", m.model.name),
                std::time::Duration::from_secs(10),
                || async {
                    let outcome = refresher
                        .refresh_once(&m, false)
                        .await
                        .expect("refresh failed");
                    (outcome != RefreshOutcome::Busy).then_some(outcome)
                },
            )
            .await;
            outcomes.push((m.model.name.clone(), outcome));
        }
        outcomes
    }

    /// Stop the server, waiting for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            let _ = handle.await;
        }
    }
}

/// Assert a problem+json response with `status`; returns the problem.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "expected {status}, got {got}: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    let problem: serde_json::Value = serde_json::from_str(&body).expect("problem is JSON");
    assert_eq!(problem["status"], status);
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    problem
}

/// Poll `probe` every 20 ms until it yields a value; panics naming `what`
/// after `limit`. The one way a test waits for something: never a fixed
/// sleep.
pub async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until_seen(what, limit, || {
        let next = probe();
        async move { next.await.ok_or_else(String::new) }
    })
    .await
}

/// As [`poll_until`], where `probe` says what it saw instead of a value
/// (`Err`): the panic after `limit` says what was seen last.
pub async fn poll_until_seen<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let seen = match probe().await {
            Ok(v) => return v,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}{}{seen}",
            if seen.is_empty() { "" } else { "; seen last: " }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many statements the one connection of `pool` keeps prepared.
pub async fn kept_statements(pool: &deadpool_postgres::Pool) -> usize {
    pool.get()
        .await
        .expect("the connection")
        .statement_cache
        .size()
}
