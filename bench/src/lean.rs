//! The load generator's HTTP client for reads: one kept-alive HTTP/1.1
//! connection per client task, driven through hyper's connection API.
//!
//! The load generator shares the two cores with the service and
//! PostgreSQL, so every microsecond it spends per request is taken from the
//! service it measures. reqwest (kept for commands and the probes) parses a
//! URL, checks a pool, and builds its headers per request; here a request is
//! a path and a Host header written to a connection that task owns.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

/// Connections to one service, one per client task (by its index).
pub struct LeanClient {
    addr: SocketAddr,
    host: String,
    conns: Vec<Mutex<Option<SendRequest<Empty<Bytes>>>>>,
}

impl LeanClient {
    /// For `clients` tasks against `base` (`http://host:port`, an IP
    /// address); each connects on its first request.
    pub fn new(base: &str, clients: usize) -> anyhow::Result<Self> {
        let host = base
            .strip_prefix("http://")
            .with_context(|| format!("not an http:// address: {base}"))?
            .trim_end_matches('/')
            .to_owned();
        let addr = host
            .parse()
            .with_context(|| format!("not an IP address and port: {host}"))?;
        Ok(Self {
            addr,
            host,
            conns: (0..clients).map(|_| Mutex::new(None)).collect(),
        })
    }

    /// GET `path` on task `client`'s connection (opened, or opened again
    /// after an error), read the whole body, and give the status.
    pub async fn get(&self, client: usize, path: &str) -> anyhow::Result<StatusCode> {
        let slot = self
            .conns
            .get(client)
            .with_context(|| format!("no connection for client task {client}"))?;
        let mut conn = slot.lock().await;
        let sender = match conn.as_mut() {
            Some(sender) if !sender.is_closed() => sender,
            _ => conn.insert(self.connect().await?),
        };
        let answer = async {
            sender.ready().await?;
            let request = Request::get(path)
                .header(header::HOST, &self.host)
                .body(Empty::new())?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            anyhow::Ok(status)
        }
        .await;
        if answer.is_err() {
            // The next request opens a new connection.
            *conn = None;
        }
        answer
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("Failed to connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the service closes it.
            let _ = connection.await;
        });
        Ok(sender)
    }
}
