//! Demo data, loaded fast: 1,000 customers, 1,000 products and N orders of
//! one to five lines (three on average) spread over the last 90 days, in
//! every status, with their events — written with COPY in one transaction,
//! then every read model rebuilt. Deterministic for a given seed.
//!
//! The load bypasses the triggers (`session_replication_role = replica`,
//! which needs a superuser or the table owner) because it writes the
//! events itself, already consistent (the history is a view of them).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::SinkExt;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;

use crate::config::ModelConfig;
use crate::db::{self, tokio_postgres::Transaction};
use crate::read_models::{Refresher, RefresherSettings};

/// What to load.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub orders: u64,
    pub customers: u32,
    pub products: u32,
    pub seed: u64,
    pub progress: bool,
    /// The read models rebuilt after loading, as configured (default: the
    /// catalog's settings).
    pub read_models: ModelConfig,
}

impl Default for SeedPlan {
    fn default() -> Self {
        Self {
            orders: 10_000,
            customers: 1_000,
            products: 1_000,
            seed: 42,
            progress: true,
            read_models: ModelConfig::default(),
        }
    }
}

/// How long it took.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub load: Duration,
    pub rebuild: Duration,
}

const ORDERS_PER_CHUNK: u64 = 25_000;

pub fn customer_id(i: u32) -> String {
    format!("c-{i:06}")
}

pub fn product_id(i: u32) -> String {
    format!("p-{i:06}")
}

pub fn order_id(i: u64) -> String {
    format!("o-{i:09}")
}

/// Load the plan into the (migrated) database at `url`, which must hold no
/// seeded ids yet.
pub async fn seed(url: &str, plan: &SeedPlan) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let mut client = db::connect(url).await?;
    let bar = progress_bar(plan);
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .await
        .context("Seeding needs a superuser (or the table owner) to bypass triggers")?;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let now = OffsetDateTime::now_utc();
    let epoch = now - time::Duration::days(100);
    copy_customers(&tx, plan, epoch).await?;
    let prices = copy_products(&tx, plan, &mut rng, epoch).await?;
    copy_orders(&tx, plan, &mut rng, now, &prices, &bar).await?;
    let txid: String = tx
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await?
        .try_get(0)?;
    tx.commit()
        .await
        .context("Failed to commit the seed data")?;
    // Before the rebuild: the models' queries then read the loaded tables
    // through index-only scans, with no visit to the heap per row.
    client.batch_execute("VACUUM ANALYZE").await?;
    let load = started.elapsed();

    bar.set_message("rebuilding");
    let rebuild_started = Instant::now();
    rebuild(url, plan).await?;
    // The capture fires even here: one change per loaded row, which no
    // batch needs once every model covers the load. Forgotten now, by the
    // seed, rather than later in one large delete by a running service's
    // housekeeping, which its readers and writers would wait on.
    client
        .execute(
            include_str!("../sql/read_models/forget_loaded.sql"),
            &[&txid],
        )
        .await
        .context("Failed to forget the load's captured changes")?;
    // VACUUM sets the visibility map, so index-only scans need no heap visits.
    client.batch_execute("VACUUM ANALYZE").await?;
    bar.finish_with_message("done");
    Ok(SeedReport {
        load,
        rebuild: rebuild_started.elapsed(),
    })
}

fn progress_bar(plan: &SeedPlan) -> ProgressBar {
    if !plan.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(plan.orders);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} orders ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("loading");
    bar
}

async fn copy_customers(
    tx: &Transaction<'_>,
    plan: &SeedPlan,
    epoch: OffsetDateTime,
) -> anyhow::Result<()> {
    let mut customers = String::new();
    for i in 1..=plan.customers {
        writeln!(
            customers,
            "{}\tCustomer {i}\tcustomer{i}@example.com\t1\t{}\t{}",
            customer_id(i),
            ts(epoch),
            ts(epoch)
        )?;
    }
    let target = "write.customers (id, name, email, version, created_at, updated_at)";
    copy(tx, target, customers).await
}

/// Returns each product's price in cents, product `i` at `i - 1`.
async fn copy_products(
    tx: &Transaction<'_>,
    plan: &SeedPlan,
    rng: &mut StdRng,
    epoch: OffsetDateTime,
) -> anyhow::Result<Vec<i64>> {
    let mut prices = Vec::with_capacity(plan.products as usize);
    let mut products = String::new();
    for i in 1..=plan.products {
        let cents: i64 = rng.random_range(100..20_000);
        prices.push(cents);
        writeln!(
            products,
            "{}\tProduct {i}\t{}\t1\t{}\t{}",
            product_id(i),
            money(cents),
            ts(epoch),
            ts(epoch)
        )?;
    }
    let target = "write.products (id, name, price, version, created_at, updated_at)";
    copy(tx, target, products).await?;
    Ok(prices)
}

/// The orders, their lines and events, `ORDERS_PER_CHUNK` orders
/// to a `COPY`.
async fn copy_orders(
    tx: &Transaction<'_>,
    plan: &SeedPlan,
    rng: &mut StdRng,
    now: OffsetDateTime,
    prices: &[i64],
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let mut next = 1u64;
    while next <= plan.orders {
        let end = (next + ORDERS_PER_CHUNK - 1).min(plan.orders);
        let mut chunk = OrderRows::default();
        for i in next..=end {
            chunk.push(i, plan, rng, now, prices)?;
        }
        chunk.copy(tx).await?;
        bar.set_position(end);
        next = end + 1;
    }
    Ok(())
}

/// A chunk of orders as `COPY` text, one buffer per table.
#[derive(Default)]
struct OrderRows {
    orders: String,
    items: String,
    events: String,
}

/// Status mix: 15% pending, 15% confirmed, 20% shipped, 40% delivered, 10%
/// cancelled; each order goes through every status of its path.
fn status_path(rng: &mut StdRng) -> &'static [&'static str] {
    match rng.random_range(0..100) {
        0..15 => &["pending"],
        15..30 => &["pending", "confirmed"],
        30..50 => &["pending", "confirmed", "shipped"],
        50..90 => &["pending", "confirmed", "shipped", "delivered"],
        _ => &["pending", "cancelled"],
    }
}

impl OrderRows {
    /// Order `i`: its customer, lines, and a path through the statuses, each
    /// step an event.
    fn push(
        &mut self,
        i: u64,
        plan: &SeedPlan,
        rng: &mut StdRng,
        now: OffsetDateTime,
        prices: &[i64],
    ) -> anyhow::Result<()> {
        const SPAN_SECS: i64 = 90 * 24 * 3600;
        let id = order_id(i);
        let customer = customer_id(rng.random_range(1..=plan.customers));
        let created = now - time::Duration::seconds(rng.random_range(60..SPAN_SECS));
        let total = self.push_lines(&id, plan, rng, prices)?;
        let path = status_path(rng);
        let created_payload = format!(
            r#"{{"customer_id": "{customer}", "total": {}}}"#,
            money(total)
        );
        let mut at = created;
        for v in 0..path.len() {
            if v > 0 {
                at += time::Duration::minutes(rng.random_range(5..3000));
            }
            self.push_event(&id, path, v, &created_payload, at)?;
        }
        let status = path[path.len() - 1];
        let cancel_reason = if status == "cancelled" {
            "changed my mind"
        } else {
            "\\N"
        };
        writeln!(
            self.orders,
            "{id}\t{customer}\t{status}\t{}\t{}\t{}\t{}\t{cancel_reason}",
            money(total),
            path.len(),
            ts(created),
            ts(at)
        )?;
        Ok(())
    }

    /// One to five lines of distinct products; returns the total in cents.
    fn push_lines(
        &mut self,
        id: &str,
        plan: &SeedPlan,
        rng: &mut StdRng,
        prices: &[i64],
    ) -> anyhow::Result<i64> {
        let lines = rng.random_range(1..=5u32);
        let mut total = 0i64;
        let mut used = Vec::with_capacity(lines as usize);
        for line in 1..=lines {
            let mut p = rng.random_range(1..=plan.products);
            while used.contains(&p) {
                p = rng.random_range(1..=plan.products);
            }
            used.push(p);
            let qty: i64 = rng.random_range(1..=5);
            let price = prices[(p - 1) as usize];
            total += qty * price;
            writeln!(
                self.items,
                "{id}\t{line}\t{}\t{qty}\t{}",
                product_id(p),
                money(price)
            )?;
        }
        Ok(total)
    }

    /// Step `v` of `path` at `at`: its event.
    fn push_event(
        &mut self,
        id: &str,
        path: &[&str],
        v: usize,
        created_payload: &str,
        at: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let version = v + 1;
        let (kind, payload) = match (v, path[v]) {
            (0, _) => ("OrderCreated", created_payload.to_owned()),
            (_, "cancelled") => (
                "OrderCancelled",
                r#"{"from": "pending", "to": "cancelled", "reason": "changed my mind"}"#
                    .to_string(),
            ),
            (_, to) => (
                "OrderStatusChanged",
                format!(r#"{{"from": "{}", "to": "{to}"}}"#, path[v - 1]),
            ),
        };
        writeln!(
            self.events,
            "{id}\t{version}\t{kind}\t{payload}\tseed\t{}",
            ts(at)
        )?;
        Ok(())
    }

    async fn copy(self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        copy(tx, "write.orders (id, customer_id, status, total, version, created_at, updated_at, cancel_reason)", self.orders).await?;
        copy(
            tx,
            "write.order_items (order_id, line_no, product_id, quantity, unit_price)",
            self.items,
        )
        .await?;
        copy(tx, "write.order_events (order_id, order_version, event_type, payload, correlation_id, occurred_at)", self.events).await
    }
}

/// Rebuild every read model from the loaded tables.
async fn rebuild(url: &str, plan: &SeedPlan) -> anyhow::Result<()> {
    let pool = db::pool(url, 2, "pgcqrs-seed")?;
    let refresher = Refresher::new(
        pool.clone(),
        RefresherSettings::new(plan.read_models.clone()),
    );
    let result = async {
        refresher.load(true).await?;
        for model in refresher.models() {
            refresher
                .rebuild(&model)
                .await
                .with_context(|| format!("Failed to rebuild {}", model.model.name))?;
        }
        anyhow::Ok(())
    }
    .await;
    pool.close();
    result
}

async fn copy(tx: &Transaction<'_>, target: &str, rows: String) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(&format!("COPY {target} FROM STDIN"))
        .await
        .with_context(|| format!("COPY {target} failed to start"))?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(rows)).await?;
    sink.close()
        .await
        .with_context(|| format!("COPY {target} failed"))?;
    Ok(())
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_written_as_exact_decimals() {
        assert_eq!(money(1999), "19.99");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(120_000), "1200.00");
    }

    #[test]
    fn seeded_ids_satisfy_the_id_pattern() {
        for id in [customer_id(1), product_id(1000), order_id(1_000_000)] {
            assert!(crate::domain::EntityId::parse(&id).is_ok(), "{id}");
        }
    }
}
