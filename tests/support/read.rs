//! Support for the read-side tests: a varied set of orders placed through
//! the command API, and what the read side should answer computed
//! independently from the WRITE tables (`write.orders`, `write.customers`,
//! `write.order_items`, `write.products`, `write.order_events`).
//!
//! Answers are compared after [`canon`], which keeps money exact (a JSON
//! number becomes `#<normalized decimal>`, so `5.00` and `5` are equal but a
//! string `"5"` is not) and compares times as instants.
#![allow(dead_code)]

use std::time::Duration;

use pgcqrs::db::tokio_postgres;
use pgcqrs::read_models::RefreshOutcome;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{poll_until, TestApp};

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// GET `path` with query parameters (encoded here).
pub async fn get_json(app: &TestApp, path: &str, query: &[(&str, &str)]) -> Reply {
    let response = app
        .http
        .get(app.url(path))
        .query(query)
        .send()
        .await
        .expect("request failed");
    Reply::read(response).await
}

/// POST a command with an `X-Request-Id`; asserts 201 or 202 and returns the body.
pub async fn command(app: &TestApp, path: &str, body: Value, request_id: &str) -> Value {
    let response = app
        .http
        .post(app.url(path))
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await
        .expect("request failed");
    let reply = Reply::read(response).await;
    assert!(
        reply.status == 201 || reply.status == 202,
        "POST {path} {body}: {} {}",
        reply.status,
        reply.text
    );
    reply.body
}

/// A command's `token`, as a string.
pub fn token_of(accepted: &Value) -> String {
    accepted["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {accepted}"))
        .to_owned()
}

// ------------------------------------------------------------------ the world

/// What to do to an order after placing it.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Confirm,
    Ship,
    Deliver,
    Cancel(&'static str),
    /// `POST /commands/orders/{id}/status` with this status (any case).
    Status(&'static str),
}

pub struct OrderPlan {
    pub id: &'static str,
    pub customer: &'static str,
    pub items: &'static [(&'static str, i32)],
    pub steps: &'static [Step],
}

use Step::*;

/// Orders of three customers over five products, in every status; c-4 has
/// none. p-1's price changes between o-01 and o-11, c-3's name after its
/// orders.
pub const PLANS: &[OrderPlan] = &[
    OrderPlan {
        id: "o-01",
        customer: "c-1",
        items: &[("p-1", 2), ("p-3", 7)],
        steps: &[Confirm, Ship, Deliver],
    },
    OrderPlan {
        id: "o-02",
        customer: "c-2",
        items: &[("p-2", 1)],
        steps: &[],
    },
    OrderPlan {
        id: "o-03",
        customer: "c-1",
        items: &[("p-4", 3)],
        steps: &[Cancel("customer changed their mind")],
    },
    OrderPlan {
        id: "o-04",
        customer: "c-3",
        items: &[("p-5", 1), ("p-1", 1), ("p-2", 4)],
        steps: &[Status("CONFIRMED")],
    },
    OrderPlan {
        id: "o-05",
        customer: "c-2",
        items: &[("p-3", 3)],
        steps: &[Confirm, Ship],
    },
    OrderPlan {
        id: "o-06",
        customer: "c-3",
        items: &[("p-4", 1)],
        steps: &[Confirm, Cancel("out of stock")],
    },
    OrderPlan {
        id: "o-07",
        customer: "c-1",
        items: &[("p-1", 1)],
        steps: &[],
    },
    OrderPlan {
        id: "o-08",
        customer: "c-2",
        items: &[("p-5", 2), ("p-4", 1)],
        steps: &[Confirm, Status("Shipped"), Deliver],
    },
    OrderPlan {
        id: "o-09",
        customer: "c-3",
        items: &[("p-2", 10)],
        steps: &[Confirm, Ship, Cancel("lost in transit")],
    },
    OrderPlan {
        id: "o-10",
        customer: "c-1",
        items: &[("p-3", 1)],
        steps: &[],
    },
];

/// The set of orders the query tests read.
#[derive(Debug, Clone)]
pub struct World {
    /// Every order placed, in placement order (o-01 ... o-11, then the one
    /// with a server-generated id).
    pub order_ids: Vec<String>,
    /// The id the server generated for the last order.
    pub generated_id: String,
    /// The token of the last command.
    pub last_token: String,
    /// request ids sent per order, in order of its events.
    pub request_ids: Vec<(String, Vec<String>)>,
}

/// Register customers and products and place [`PLANS`] through the API.
pub async fn build_world(app: &TestApp) -> World {
    app.seed_catalog().await;
    for (id, name, email) in [
        ("c-2", "Grace Hopper", "grace@example.com"),
        ("c-3", "Alan Turing", "alan@example.com"),
        ("c-4", "Idle Customer", "idle@example.com"),
    ] {
        command(
            app,
            "/commands/customers",
            json!({"id": id, "name": name, "email": email}),
            &format!("req-register-{id}"),
        )
        .await;
    }
    for (id, name, price) in [
        ("p-4", "Doohickey", "33.33"),
        ("p-5", "Thingamajig", "1234.56"),
    ] {
        command(
            app,
            "/commands/products",
            json!({"id": id, "name": name, "price": price}),
            &format!("req-product-{id}"),
        )
        .await;
    }

    let mut order_ids = Vec::new();
    let mut request_ids = Vec::new();
    for plan in PLANS {
        let (ids, _) = place_planned(app, plan).await;
        order_ids.push(plan.id.to_owned());
        request_ids.push((plan.id.to_owned(), ids));
    }

    // The catalog moves on: old orders keep the price they were placed at.
    command(
        app,
        "/commands/products/p-1/change-price",
        json!({"price": "21.50"}),
        "req-price-p-1",
    )
    .await;
    let plan = OrderPlan {
        id: "o-11",
        customer: "c-2",
        items: &[("p-1", 1), ("p-3", 3)],
        steps: &[],
    };
    let (ids, _) = place_planned(app, &plan).await;
    order_ids.push("o-11".into());
    request_ids.push(("o-11".into(), ids));
    command(
        app,
        "/commands/customers/c-3/change-details",
        json!({"name": "Alan M. Turing"}),
        "req-rename-c-3",
    )
    .await;

    // One order whose id the server generates.
    let placed = command(
        app,
        "/commands/orders",
        json!({"customer_id": "c-3", "items": [{"product_id": "p-5", "quantity": 3}, {"product_id": "p-3", "quantity": 1}]}),
        "req-generated",
    )
    .await;
    let generated_id = placed["order_id"].as_str().expect("order_id").to_owned();
    order_ids.push(generated_id.clone());
    request_ids.push((generated_id.clone(), vec!["req-generated".into()]));
    let last_token = token_of(&placed);

    World {
        order_ids,
        generated_id,
        last_token,
        request_ids,
    }
}

/// Place one planned order and run its steps; returns the request ids used
/// (one per event) and the last token.
pub async fn place_planned(app: &TestApp, plan: &OrderPlan) -> (Vec<String>, String) {
    let items: Vec<Value> = plan
        .items
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    let mut ids = vec![format!("req-{}-place", plan.id)];
    let mut accepted = command(
        app,
        "/commands/orders",
        json!({"order_id": plan.id, "customer_id": plan.customer, "items": items}),
        &ids[0],
    )
    .await;
    for (n, step) in plan.steps.iter().enumerate() {
        let request_id = format!("req-{}-step{}", plan.id, n + 1);
        let (path, body) = match step {
            Confirm => ("confirm", json!({})),
            Ship => ("ship", json!({})),
            Deliver => ("deliver", json!({})),
            Cancel(reason) => ("cancel", json!({ "reason": reason })),
            Status(s) => ("status", json!({ "status": s })),
        };
        accepted = command(
            app,
            &format!("/commands/orders/{}/{path}", plan.id),
            body,
            &request_id,
        )
        .await;
        ids.push(request_id);
    }
    (ids, token_of(&accepted))
}

/// Insert an order created at `created_at` with raw SQL (as a batch job or
/// psql could: the guard fixes creation facts after insert, not at it).
/// Items are at the products' current prices.
pub async fn insert_order_at(
    client: &tokio_postgres::Client,
    id: &str,
    customer: &str,
    created_at: &str,
    items: &[(&str, i32)],
) {
    // The total is the sum of the lines: computed in SQL from the catalog.
    let values: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(n, (p, q))| format!("({}, '{p}', {q})", n + 1))
        .collect();
    let lines = values.join(", ");
    let sql = format!(
        "BEGIN;
         INSERT INTO write.orders (id, customer_id, total, created_at)
         SELECT '{id}', '{customer}', sum(l.q * p.price), '{created_at}'::timestamptz
         FROM (VALUES {lines}) AS l(n, p, q) JOIN write.products p ON p.id = l.p;
         INSERT INTO write.order_items (order_id, line_no, product_id, quantity, unit_price)
         SELECT '{id}', l.n, l.p, l.q, p.price
         FROM (VALUES {lines}) AS l(n, p, q) JOIN write.products p ON p.id = l.p;
         COMMIT;"
    );
    client
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("insert order {id} at {created_at}: {e:?}"));
}

// ------------------------------------------------------------ refresh helpers

/// Refresh every view whose sources changed, retrying views that another
/// refresh (the start-up check, a `min_token` request) holds right now.
pub async fn refresh_settled(app: &TestApp) -> Vec<(String, RefreshOutcome)> {
    let refresher = app.refresher.as_ref().expect("this app has no refresher");
    let mut outcomes = Vec::new();
    for m in refresher.models() {
        let name = m.model.name.clone();
        let outcome = poll_until(
            &format!("{name} to be free to refresh"),
            Duration::from_secs(10),
            || async {
                let outcome = refresher
                    .refresh_once(&m, false)
                    .await
                    .unwrap_or_else(|e| panic!("refresh of {name} failed: {e:#}"));
                (outcome != RefreshOutcome::Busy).then_some(outcome)
            },
        )
        .await;
        outcomes.push((name, outcome));
    }
    outcomes
}

/// A service whose models refresh only when a test asks, with the catalog
/// seeded and the start-up checks done.
pub async fn seeded_app_on_request() -> TestApp {
    let app = TestApp::builder()
        .refreshing(super::Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    wait_for_startup_checks(&app).await;
    app
}

/// Wait until the start-up check of every view of `app` has run (each run
/// bumps the refresher's generation), so that no background refresh races
/// a test's own.
pub async fn wait_for_startup_checks(app: &TestApp) {
    let refresher = app.refresher.as_ref().expect("this app has no refresher");
    let views = refresher.models().len() as u64;
    let rx = refresher.subscribe();
    poll_until("the start-up checks", Duration::from_secs(10), || {
        let done = *rx.borrow() >= views;
        async move { done.then_some(()) }
    })
    .await;
}

/// Rows of `read.refresh_log` per view.
pub async fn refresh_counts(client: &tokio_postgres::Client) -> Vec<(String, i64)> {
    client
        .query(
            "SELECT v, (SELECT count(*) FROM read.refresh_log l WHERE l.view_name = v)
             FROM unnest(ARRAY['order_summary','order_lines','customer_orders','daily_sales','product_sales']) AS v
             ORDER BY v",
            &[],
        )
        .await
        .expect("refresh counts")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

// ------------------------------------------------------ expected, from `write`

/// An order as the write tables say it is, in the API's summary shape
/// (without items), with what the list filters need.
#[derive(Debug, Clone)]
pub struct WriteOrder {
    pub id: String,
    pub customer_id: String,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub summary: Value,
}

const SUMMARY_JSON: &str = "
    json_build_object(
        'order_id',       o.id,
        'customer_id',    o.customer_id,
        'customer_name',  c.name,
        'customer_email', c.email,
        'item_count',     (SELECT count(*) FROM write.order_items i WHERE i.order_id = o.id),
        'total',          (SELECT sum(i.quantity * i.unit_price) FROM write.order_items i WHERE i.order_id = o.id),
        'status',         o.status,
        'status_display', initcap(o.status),
        'cancel_reason',  o.cancel_reason,
        'version',        o.version,
        'created_at',     o.created_at,
        'updated_at',     o.updated_at)";

/// Every order in the write tables.
pub async fn write_orders(client: &tokio_postgres::Client) -> Vec<WriteOrder> {
    let sql = format!(
        "SELECT o.id::text, o.customer_id, o.status, o.created_at, {SUMMARY_JSON}
         FROM write.orders o JOIN write.customers c ON c.id = o.customer_id"
    );
    client
        .query(&sql, &[])
        .await
        .expect("read write.orders")
        .iter()
        .map(|r| WriteOrder {
            id: r.get(0),
            customer_id: r.get(1),
            status: r.get(2),
            created_at: r.get(3),
            summary: r.get(4),
        })
        .collect()
}

/// GET /queries/orders/{id} as the write tables say it should be.
pub async fn expected_order(client: &tokio_postgres::Client, id: &str) -> Value {
    let sql = format!(
        "SELECT {SUMMARY_JSON}::jsonb || jsonb_build_object('items', (
                SELECT coalesce(json_agg(json_build_object(
                           'product_id',   i.product_id,
                           'product_name', p.name,
                           'quantity',     i.quantity,
                           'unit_price',   i.unit_price,
                           'subtotal',     i.quantity * i.unit_price) ORDER BY i.line_no), '[]')
                FROM write.order_items i JOIN write.products p ON p.id = i.product_id
                WHERE i.order_id = o.id))
         FROM write.orders o JOIN write.customers c ON c.id = o.customer_id
         WHERE o.id = $1"
    );
    client
        .query_one(&sql, &[&id])
        .await
        .unwrap_or_else(|e| panic!("expected order {id}: {e}"))
        .get(0)
}

/// Filters of the list query, applied here in Rust.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub customer_id: Option<String>,
    /// Lowercase.
    pub status: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// One page of the list, computed from every write order.
pub fn expected_page(all: &[WriteOrder], filter: &Filter, page: i64, page_size: i64) -> Value {
    let mut matching: Vec<&WriteOrder> = all
        .iter()
        .filter(|o| {
            filter
                .customer_id
                .as_ref()
                .is_none_or(|c| &o.customer_id == c)
        })
        .filter(|o| filter.status.as_ref().is_none_or(|s| &o.status == s))
        .filter(|o| filter.from.is_none_or(|f| o.created_at >= f))
        .filter(|o| filter.to.is_none_or(|t| o.created_at < t))
        .collect();
    matching.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    let total = matching.len() as i64;
    let orders: Vec<Value> = matching
        .iter()
        .skip(((page - 1) * page_size) as usize)
        .take(page_size as usize)
        .map(|o| o.summary.clone())
        .collect();
    json!({
        "orders": orders,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) / page_size,
        "count": "exact",
        // whether a cursor to the following orders is due (its text is opaque)
        "next": total > page * page_size,
    })
}

/// GET /queries/order-statistics for [from, to), from the write tables.
pub async fn expected_statistics(
    client: &tokio_postgres::Client,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Value {
    client
        .query_one(
            "SELECT json_build_object(
                 'total_orders',        count(*),
                 'total_revenue',       coalesce(sum(t.total), 0),
                 'average_order_value', CASE WHEN count(*) = 0 THEN 0 ELSE round(sum(t.total) / count(*), 2) END,
                 'orders_by_status',    json_build_object(
                     'pending',   count(*) FILTER (WHERE t.status = 'pending'),
                     'confirmed', count(*) FILTER (WHERE t.status = 'confirmed'),
                     'shipped',   count(*) FILTER (WHERE t.status = 'shipped'),
                     'delivered', count(*) FILTER (WHERE t.status = 'delivered'),
                     'cancelled', count(*) FILTER (WHERE t.status = 'cancelled')))
             FROM (SELECT o.status,
                          (SELECT sum(i.quantity * i.unit_price) FROM write.order_items i WHERE i.order_id = o.id) AS total
                   FROM write.orders o
                   WHERE o.created_at >= $1 AND o.created_at < $2) t",
            &[&from, &to],
        )
        .await
        .expect("expected statistics")
        .get(0)
}

/// The events of an order as GET /queries/orders/{id}/history lists them.
pub async fn expected_history(client: &tokio_postgres::Client, id: &str) -> Value {
    client
        .query_one(
            "SELECT coalesce(json_agg(json_build_object(
                        'version',        e.order_version,
                        'event_type',     e.event_type,
                        'status',         CASE e.event_type WHEN 'OrderCreated' THEN 'pending' ELSE e.payload ->> 'to' END,
                        'reason',         e.payload ->> 'reason',
                        'correlation_id', e.correlation_id,
                        'occurred_at',    e.occurred_at) ORDER BY e.order_version), '[]')
             FROM write.order_events e WHERE e.order_id = $1",
            &[&id],
        )
        .await
        .expect("expected history")
        .get(0)
}

// ------------------------------------------------------------------ compare

/// What each read model holds, written here over the write tables.
pub const DEFINITIONS: &[(&str, &str, &str)] = &[
    (
        "order_summary",
        "order_id, customer_id, customer_name, customer_email, item_count, total, status, status_display, cancel_reason, version, created_at, updated_at",
        "SELECT o.id::text, o.customer_id, c.name, c.email,
                (SELECT count(*) FROM write.order_items i WHERE i.order_id = o.id),
                o.total, o.status, initcap(o.status), o.cancel_reason, o.version,
                o.created_at, o.updated_at
         FROM write.orders o JOIN write.customers c ON c.id = o.customer_id",
    ),
    (
        "order_lines",
        "order_id, line_no, product_id, product_name, quantity, unit_price, subtotal",
        "SELECT i.order_id, i.line_no, i.product_id, p.name, i.quantity, i.unit_price,
                i.quantity * i.unit_price
         FROM write.order_items i JOIN write.products p ON p.id = i.product_id",
    ),
    (
        "customer_orders",
        "customer_id, customer_name, customer_email, order_count, active_order_count, lifetime_value, last_order_at",
        "SELECT c.id::text, c.name, c.email, count(o.id),
                count(o.id) FILTER (WHERE o.status <> 'cancelled'),
                coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0),
                max(o.created_at)
         FROM write.customers c LEFT JOIN write.orders o ON o.customer_id = c.id
         GROUP BY c.id, c.name, c.email",
    ),
    (
        "daily_sales",
        "day, status, orders, revenue",
        "SELECT (created_at AT TIME ZONE 'UTC')::date, status, count(*), sum(total)
         FROM write.orders GROUP BY 1, 2",
    ),
    (
        "product_sales",
        "product_id, product_name, current_price, orders, units, revenue",
        "SELECT p.id::text, p.name, p.price,
                count(DISTINCT i.order_id) FILTER (WHERE o.status <> 'cancelled'),
                coalesce(sum(i.quantity) FILTER (WHERE o.status <> 'cancelled'), 0),
                coalesce(sum(i.quantity * i.unit_price) FILTER (WHERE o.status <> 'cancelled'), 0)
         FROM write.products p
         LEFT JOIN write.order_items i ON i.product_id = p.id
         LEFT JOIN write.orders o ON o.id = i.order_id
         GROUP BY p.id, p.name, p.price",
    ),
];

/// Every read model holds exactly what its definition over the write
/// tables gives (compared as multisets of rows).
pub async fn assert_views_match_write_tables(client: &tokio_postgres::Client, after: &str) {
    for (view, columns, definition) in DEFINITIONS {
        let sql = format!(
            "SELECT (SELECT count(*) FROM (SELECT {columns} FROM read.{view} EXCEPT ALL ({definition})) extra),
                    (SELECT count(*) FROM (({definition}) EXCEPT ALL SELECT {columns} FROM read.{view}) missing)"
        );
        let row = client.query_one(&sql, &[]).await.expect("compare a view");
        let (extra, missing): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(
            (extra, missing),
            (0, 0),
            "after {after}: read.{view} has {extra} rows the write tables do not give and lacks {missing}"
        );
    }
}

/// A JSON value with exact money and times as instants, for comparison.
pub fn canon(v: &Value) -> Value {
    match v {
        Value::Number(n) => {
            let text = n.to_string();
            let d = Decimal::from_str_exact(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .unwrap_or_else(|_| panic!("{text} is not an exact decimal"));
            Value::String(format!("#{}", d.normalize()))
        }
        Value::String(s) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Value::String(format!("@{}", t.unix_timestamp_nanos())),
            Err(_) => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        other => other.clone(),
    }
}

/// Assert a list page equals [`expected_page`]: every field, and a `next`
/// cursor exactly when more orders follow.
#[track_caller]
pub fn assert_same_page(case: &str, actual: &Value, expected: &Value) {
    let mut actual = actual.clone();
    let more = expected["next"].as_bool().unwrap_or(false);
    assert_eq!(
        actual["next"].is_string(),
        more,
        "{case}: next is {}, yet more orders follow: {more}",
        actual["next"]
    );
    actual["next"] = Value::Bool(more);
    assert_same(case, &actual, expected);
}

/// Assert `actual` equals `expected` after [`canon`], naming `case`.
#[track_caller]
pub fn assert_same(case: &str, actual: &Value, expected: &Value) {
    let (a, e) = (canon(actual), canon(expected));
    if a != e {
        panic!(
            "{case}: the read side differs from the write tables\n  read side: {}\n  expected:  {}",
            serde_json::to_string_pretty(actual).unwrap_or_default(),
            serde_json::to_string_pretty(expected).unwrap_or_default()
        );
    }
}

/// The exact text of a JSON number (money is a number, never a string).
#[track_caller]
pub fn money_text(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => panic!("money must be a JSON number, got {other}"),
    }
}

/// RFC 3339 with microseconds, UTC: what `created_at` filters are sent as.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("format time")
}

pub fn parse_time(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// For each view: its refreshes follow one another (one at a time), cover
/// distinct snapshots, and each covers a change of its sources that the
/// previous one did not.
pub async fn assert_each_refresh_covers_a_new_change(client: &tokio_postgres::Client) {
    let models = client
        .query("SELECT name FROM pgcqrs.read_models ORDER BY name", &[])
        .await
        .expect("the catalog");
    for model in &models {
        let view: String = model.get(0);
        let row = client
            .query_one(
                "WITH changes AS (
                     SELECT c.txid FROM pgcqrs.changes c, pgcqrs.read_models m
                      WHERE m.name = $1 AND c.relid = ANY(m.sources::oid[])
                 ),
                 log AS (
                     SELECT refresh_id, covers, started_at, finished_at,
                            lag(covers)      OVER (ORDER BY refresh_id) AS prev_covers,
                            lag(finished_at) OVER (ORDER BY refresh_id) AS prev_finished
                     FROM read.refresh_log WHERE view_name = $1
                 )
                 SELECT (SELECT count(*) FROM log),
                        (SELECT count(DISTINCT covers::text) FROM log),
                        (SELECT count(*) FROM changes),
                        (SELECT array_agg(refresh_id) FROM log
                          WHERE prev_covers IS NOT NULL
                            AND NOT EXISTS (SELECT 1 FROM changes c
                                            WHERE pg_visible_in_snapshot(c.txid, log.covers)
                                              AND NOT pg_visible_in_snapshot(c.txid, log.prev_covers))),
                        (SELECT array_agg(refresh_id) FROM log WHERE started_at < prev_finished)",
                &[&view],
            )
            .await
            .expect("refresh_log analysis");
        let (refreshes, distinct, changes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let without_change: Option<Vec<i64>> = row.get(3);
        let overlapping: Option<Vec<i64>> = row.get(4);
        assert!(refreshes >= 1, "{view} was never refreshed");
        assert_eq!(
            distinct, refreshes,
            "{view}: two refreshes cover the same snapshot"
        );
        assert!(
            refreshes <= changes,
            "{view}: {refreshes} refreshes for {changes} changing transactions"
        );
        assert_eq!(
            without_change, None,
            "{view}: these refreshes cover no change the previous one missed"
        );
        assert_eq!(
            overlapping, None,
            "{view}: these refreshes started before the previous one finished"
        );
    }
}

/// How read model `name` was last refreshed (`read.refresh_log.mode`:
/// `full`, `delta`, `incremental`...), if it ever was.
pub async fn last_refresh_mode(client: &tokio_postgres::Client, name: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT mode FROM read.refresh_log WHERE view_name = $1 ORDER BY refresh_id DESC LIMIT 1",
            &[&name],
        )
        .await
        .expect("refresh log")
        .map(|r| r.get(0))
}
