//! Asking for a refresh now, from any instance.
//!
//! An instance that runs a refresher asks it directly. One that does not
//! (`--role queries` or `commands`) sends `NOTIFY pgcqrs_refresh, 'view,...'`
//! on the primary (`view:force` for a refresh even if nothing changed);
//! every refresher `LISTEN`s there and treats the notification like a
//! request of its own. A lost notification costs
//! nothing but time: the view is refreshed at its next scheduled tick.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::tokio_postgres::{self, AsyncMessage, NoTls};
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::Refresher;

/// The channel refreshers listen on.
pub const CHANNEL: &str = "pgcqrs_refresh";

/// How this instance asks for refreshes.
#[derive(Clone)]
pub enum RefreshRequests {
    /// Its own refresher.
    Local(Arc<Refresher>),
    /// The refreshers elsewhere, by `NOTIFY` through this pool (the primary).
    Remote(Pool),
}

impl RefreshRequests {
    /// Ask for a check of `views` now: a refresh if their sources changed,
    /// or in any case with `force`. Never waits: a remote request is sent
    /// in the background.
    pub fn ask(&self, views: &[String], force: bool) {
        match self {
            RefreshRequests::Local(refresher) => {
                for view in views {
                    refresher.request(view, force);
                }
            }
            RefreshRequests::Remote(pool) => {
                let pool = pool.clone();
                let payload = views
                    .iter()
                    .map(|v| {
                        if force {
                            format!("{v}:force")
                        } else {
                            v.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                tokio::spawn(async move {
                    let sent = async {
                        let client = pool.get().await?;
                        client
                            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                            .await?;
                        anyhow::Ok(())
                    }
                    .await;
                    if let Err(e) = sent {
                        tracing::debug!(error = %e, "could not ask the refreshers for a refresh");
                    }
                });
            }
        }
    }

    /// A receiver that changes after every refresh here, if this instance
    /// refreshes.
    pub fn subscribe(&self) -> Option<watch::Receiver<u64>> {
        match self {
            RefreshRequests::Local(refresher) => Some(refresher.subscribe()),
            RefreshRequests::Remote(_) => None,
        }
    }
}

/// Listen for refresh requests on `url` (the primary) and pass them to
/// `refresher`, reconnecting after a failure, until `stop` fires.
pub async fn listen(url: String, refresher: Arc<Refresher>, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(250);
    loop {
        match listen_once(&url, &refresher, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "not listening for refresh requests");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// One connection's worth of listening; `Ok` when stopped.
async fn listen_once(
    url: &str,
    refresher: &Refresher,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("could not connect to {}", crate::db::redact(url)))?;
    // The connection delivers notifications only to whoever polls it.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .context("LISTEN failed")?;
        tracing::debug!(channel = CHANNEL, "listening for refresh requests");
        loop {
            tokio::select! {
                payload = rx.recv() => match payload {
                    Some(payload) => {
                        for entry in payload.split(',').map(str::trim) {
                            let (view, force) = match entry.strip_suffix(":force") {
                                Some(view) => (view, true),
                                None => (entry, false),
                            };
                            refresher.request(view, force);
                        }
                    }
                    None => anyhow::bail!("the connection closed"),
                },
                _ = stop.changed() => return Ok(()),
            }
        }
    }
    .await;
    drop(client);
    driver.abort();
    result
}
