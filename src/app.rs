//! Start-up: `App::build` binds the listener and assembles the service;
//! `run_until_stopped` serves until the shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ServeArgs;
use crate::db::targets::ReadTargets;
use crate::http::{self, AppState, Shared};
use crate::queries::freshness::{FreshnessGate, Refreshes};
use crate::read_models::{RefreshRequests, Refresher, RefresherSettings};

/// A service bound to its port, ready to run.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Bind `settings.listen` (port 0 picks a free port) and wire the pools.
    /// With `refresher` settings, this instance also refreshes read models.
    pub async fn build(
        settings: &ServeArgs,
        write_pool: Pool,
        reads: Arc<ReadTargets>,
        refresher: Option<RefresherSettings>,
    ) -> anyhow::Result<App> {
        // Install the metrics recorder before anything records.
        let _ = crate::telemetry::handle();
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.listen))?;
        let models = match &refresher {
            Some(r) => r.models.clone(),
            None => settings.read_models.models()?,
        };
        let refresher = refresher.map(|r| Refresher::new(write_pool.clone(), r));
        let requests = match &refresher {
            Some(r) => RefreshRequests::Local(Arc::clone(r)),
            None => RefreshRequests::remote(write_pool.clone()),
        };
        let tokens = crate::http::auth::Tokens::parse(&settings.auth_tokens)
            .map_err(|e| anyhow::anyhow!(e))?;
        let freshness = FreshnessGate::new(&reads, write_pool.clone(), Arc::new(requests.clone()));
        let state = AppState::new(Shared {
            write_pool,
            reads,
            freshness,
            requests,
            body_limit: settings.body_limit,
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
            refresher,
            models: Arc::new(models),
            views: Default::default(),
            tokens: Arc::new(tokens),
            role: settings.role,
        });
        Ok(App { listener, state })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The refresher, if this instance runs one.
    pub fn refresher(&self) -> Option<Arc<Refresher>> {
        self.state.refresher.clone()
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests and
    /// stop the refresher between refreshes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Cancelled once the last request is answered: stops the refresher
        // (between refreshes), its listener and the replica probes.
        let stop = CancellationToken::new();
        let refresher = match &self.state.refresher {
            Some(r) => Some(r.start(stop.clone()).await?),
            None => None,
        };
        let monitor = tokio::spawn(Arc::clone(&self.state.reads).monitor(stop.clone()));
        let upkeep = tokio::spawn(crate::telemetry::upkeep(stop.clone()));
        let router = http::router(self.state.clone());
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("HTTP server failed");
        stop.cancel();
        if let Some(handle) = refresher {
            handle.stopped().await;
        }
        let _ = monitor.await;
        let _ = upkeep.await;
        served
    }
}

/// A `min_token` wait asks this instance's refresher, or the refreshers
/// elsewhere, for a refresh of the views behind its token (never forced).
impl Refreshes for RefreshRequests {
    fn ask(&self, views: &[String]) {
        RefreshRequests::ask(self, views, false);
    }

    fn subscribe(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        RefreshRequests::subscribe(self)
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
