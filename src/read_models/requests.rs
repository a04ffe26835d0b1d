//! Asking for a refresh now, from any instance.
//!
//! An instance that runs a refresher asks it directly. One that does not
//! (`--role queries` or `commands`) sends `NOTIFY pgcqrs_refresh, 'view,...'`
//! on the primary (`view:force` for a refresh even if nothing changed);
//! every refresher `LISTEN`s there and treats the notification like a
//! request of its own. A lost notification costs
//! nothing but time: the view is refreshed at its next scheduled tick.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::tokio_postgres::{self, AsyncMessage, NoTls};
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Refresher;

/// The channel refreshers listen on.
pub const CHANNEL: &str = "pgcqrs_refresh";

/// How this instance asks for refreshes.
#[derive(Clone)]
pub enum RefreshRequests {
    /// Its own refresher.
    Local(Arc<Refresher>),
    /// The refreshers elsewhere, by `NOTIFY`.
    Remote(Remote),
}

/// Requests waiting for the sender task: each view once, forced if any
/// request was (bounded by the number of views, so nothing is dropped).
#[derive(Clone)]
pub struct Remote {
    pending: Arc<Mutex<BTreeMap<String, bool>>>,
    /// Wakes the sender; a full channel means a wake-up is already due.
    wake: mpsc::Sender<()>,
}

/// The sender's pause between notifications: at most ten a second.
const SEND_EVERY: Duration = Duration::from_millis(100);

impl RefreshRequests {
    /// Ask the refreshers elsewhere, through `pool` (the primary). Starts
    /// the sender task, which ends when the last clone of this is dropped.
    pub fn remote(pool: Pool) -> Self {
        let (wake, woken) = mpsc::channel(1);
        let pending = Arc::new(Mutex::new(BTreeMap::new()));
        tokio::spawn(send_notifications(pool, Arc::clone(&pending), woken));
        RefreshRequests::Remote(Remote { pending, wake })
    }

    /// Ask for a check of `views` now: a refresh if their sources changed,
    /// or in any case with `force`. Never waits; a remote request is
    /// passed on, not confirmed.
    pub fn ask(&self, views: &[String], force: bool) {
        match self {
            RefreshRequests::Local(refresher) => {
                for view in views {
                    refresher.request(view, force);
                }
            }
            RefreshRequests::Remote(remote) => {
                if let Ok(mut pending) = remote.pending.lock() {
                    for view in views {
                        *pending.entry(view.clone()).or_default() |= force;
                    }
                }
                let _ = remote.wake.try_send(());
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

/// On each wake-up, send what is pending as one `NOTIFY`, then pause; until
/// every handle is dropped.
async fn send_notifications(
    pool: Pool,
    pending: Arc<Mutex<BTreeMap<String, bool>>>,
    mut woken: mpsc::Receiver<()>,
) {
    while woken.recv().await.is_some() {
        let batch = match pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if batch.is_empty() {
            continue;
        }
        let payload = batch
            .iter()
            .map(|(v, &force)| {
                if force {
                    format!("{v}:force")
                } else {
                    v.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let sent = async {
            let client = pool.get().await?;
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(2), sent).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "could not ask the refreshers for a refresh"),
            Err(_) => tracing::debug!("asking the refreshers for a refresh timed out"),
        }
        tokio::time::sleep(SEND_EVERY).await;
    }
}

/// Listen for refresh requests on `url` (the primary) and pass them to
/// `refresher`, reconnecting after a failure, until `stop` is cancelled.
pub async fn listen(url: String, refresher: Arc<Refresher>, stop: CancellationToken) {
    const FIRST_DELAY: Duration = Duration::from_millis(250);
    let mut delay = FIRST_DELAY;
    loop {
        let mut listening = false;
        match listen_once(&url, &refresher, &stop, &mut listening).await {
            Ok(()) => return,
            Err(e) => {
                if listening {
                    delay = FIRST_DELAY;
                }
                tracing::warn!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "not listening for refresh requests");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// How often an idle listening connection is checked: a connection that
/// died silently would otherwise drop requests unnoticed.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// One connection's worth of listening; `Ok` when stopped. Sets
/// `listening` once `LISTEN` succeeded.
async fn listen_once(
    url: &str,
    refresher: &Refresher,
    stop: &CancellationToken,
    listening: &mut bool,
) -> anyhow::Result<()> {
    let mut config: tokio_postgres::Config = url.parse().context("invalid DATABASE_URL")?;
    config
        .connect_timeout(Duration::from_secs(5))
        .keepalives_idle(Duration::from_secs(15))
        .application_name("pgcqrs-refresh-requests");
    let connect = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls));
    let (client, mut connection) = tokio::select! {
        connected = connect => connected
            .context("connecting timed out")?
            .with_context(|| format!("could not connect to {}", crate::db::redact(url)))?,
        _ = stop.cancelled() => return Ok(()),
    };
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
        *listening = true;
        tracing::debug!(channel = CHANNEL, "listening for refresh requests");
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                _ = heartbeat.tick() => {
                    let check = tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1"));
                    tokio::select! {
                        answered = check => {
                            answered
                                .context("the listening connection stopped answering")?
                                .context("the listening connection failed")?;
                        }
                        _ = stop.cancelled() => return Ok(()),
                    }
                }
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
                _ = stop.cancelled() => return Ok(()),
            }
        }
    }
    .await;
    drop(client);
    driver.abort();
    result
}
