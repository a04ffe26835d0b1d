//! Helpers shared by the write-side (command) tests: counting what the write
//! schema holds, asserting that a rejected request wrote nothing, and sending
//! requests with headers or raw bodies.
#![allow(dead_code)]

use std::future::Future;

use serde_json::Value;

use super::TestApp;

/// Every table a command may write to. A rejected request must leave each
/// one exactly as it was.
pub const WRITE_TABLES: [&str; 7] = [
    "write.customers",
    "write.products",
    "write.orders",
    "write.order_items",
    "write.order_events",
    "write.idempotency_keys",
    "pgcqrs.changes",
];

/// Row counts of [`WRITE_TABLES`], taken in one statement (one snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteCounts(pub Vec<(&'static str, i64)>);

impl WriteCounts {
    pub fn get(&self, table: &str) -> i64 {
        self.0
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{table} is not counted"))
    }
}

pub async fn write_counts(app: &TestApp) -> WriteCounts {
    let sql = format!(
        "SELECT {}",
        WRITE_TABLES
            .iter()
            .map(|t| format!("(SELECT count(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let client = app.client().await;
    let row = client.query_one(&sql, &[]).await.expect("count rows");
    WriteCounts(
        WRITE_TABLES
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, row.get::<_, i64>(i)))
            .collect(),
    )
}

/// Assert that no table of the write schema changed since `before`.
pub async fn assert_nothing_written(app: &TestApp, before: &WriteCounts, case: &str) {
    let after = write_counts(app).await;
    assert_eq!(
        &after, before,
        "[{case}] a rejected request must write nothing, but row counts changed"
    );
}

/// Send a request (`send` is not started until after the row counts are
/// taken), assert a problem+json answer with `status`, assert that nothing was
/// written, and return the problem document.
pub async fn assert_rejected(
    app: &TestApp,
    case: &str,
    status: u16,
    send: impl Future<Output = reqwest::Response>,
) -> Value {
    let before = write_counts(app).await;
    let response = send.await;
    let problem = problem_of(response, status, case).await;
    assert_nothing_written(app, &before, case).await;
    problem
}

/// Assert a problem+json response with `status`; the case names itself in
/// every message.
pub async fn problem_of(response: reqwest::Response, status: u16, case: &str) -> Value {
    let got = response.status().as_u16();
    let content_type = header(&response, "content-type").unwrap_or_default();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "[{case}] expected {status}, got {got}: {body}");
    assert_eq!(
        content_type, "application/problem+json",
        "[{case}] content type; body: {body}"
    );
    let problem: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("[{case}] problem is not JSON ({e}): {body}"));
    assert_eq!(problem["status"], status, "[{case}] status in the problem");
    assert!(
        problem["type"].as_str().is_some_and(|t| !t.is_empty()),
        "[{case}] problem has a type: {problem}"
    );
    assert!(
        problem["title"].as_str().is_some_and(|t| !t.is_empty()),
        "[{case}] problem has a title: {problem}"
    );
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "[{case}] problem has a detail: {problem}"
    );
    problem
}

/// The `errors` entry of a 422 problem naming `field`.
pub fn field_error<'a>(problem: &'a Value, field: &str, case: &str) -> &'a Value {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("[{case}] a 422 problem lists its errors: {problem}"))
        .iter()
        .find(|e| e["field"] == field)
        .unwrap_or_else(|| panic!("[{case}] no error names the field {field:?}: {problem}"))
}

/// Assert that a 422 problem names `field` and has a non-empty message for it.
pub fn assert_names_field(problem: &Value, field: &str, case: &str) {
    let entry = field_error(problem, field, case);
    assert!(
        entry["message"].as_str().is_some_and(|m| !m.is_empty()),
        "[{case}] the error for {field:?} says what is wrong: {problem}"
    );
}

pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// POST a JSON body with extra headers.
pub async fn post_with(
    app: &TestApp,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.post(app.url(path)).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request failed")
}

/// POST raw bytes as JSON (for malformed bodies built at run time).
pub async fn post_bytes(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request failed")
}

/// POST with no body at all.
pub async fn post_empty(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.post(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request failed")
}

/// A successful command answer: status, headers and JSON body.
#[derive(Debug)]
pub struct Accepted {
    pub status: u16,
    pub etag: Option<String>,
    pub replayed: Option<String>,
    pub request_id: Option<String>,
    pub body: Value,
}

/// Read a response that must be `status` with a JSON body.
pub async fn accepted(response: reqwest::Response, status: u16, case: &str) -> Accepted {
    let got = response.status().as_u16();
    let etag = header(&response, "etag");
    let replayed = header(&response, "idempotent-replayed");
    let request_id = header(&response, "x-request-id");
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "[{case}] expected {status}, got {got}: {text}");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("[{case}] body is not JSON ({e}): {text}"));
    Accepted {
        status: got,
        etag,
        replayed,
        request_id,
        body,
    }
}

/// Assert the common shape of a command's answer: `version` as given, `token`
/// a non-empty string of digits, and `ETag: "<version>"`.
pub fn assert_versioned(a: &Accepted, version: i64, case: &str) {
    assert_eq!(
        a.body["version"].as_i64(),
        Some(version),
        "[{case}] version in {}",
        a.body
    );
    let token = a.body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("[{case}] token is a string: {}", a.body));
    assert!(
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()),
        "[{case}] token is a string of digits: {token:?}"
    );
    assert_eq!(
        a.etag.as_deref(),
        Some(format!("\"{version}\"").as_str()),
        "[{case}] ETag is the quoted version"
    );
}

/// The set of keys of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The exact text of a JSON number (serde_json keeps the digits with
/// `arbitrary_precision`), so that money is compared exactly.
pub fn number_text(value: &Value, case: &str) -> String {
    assert!(value.is_number(), "[{case}] {value} is a JSON number");
    value.to_string()
}

/// One value from the database, as text.
pub async fn sql_text(app: &TestApp, sql: &str) -> Option<String> {
    let client = app.client().await;
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// `version` and `status` of an order, as stored.
pub async fn order_state(app: &TestApp, order_id: &str) -> (String, i32) {
    let client = app.client().await;
    let row = client
        .query_one(
            "SELECT status, version FROM write.orders WHERE id = $1",
            &[&order_id],
        )
        .await
        .unwrap_or_else(|e| panic!("order {order_id}: {e}"));
    (row.get(0), row.get(1))
}

/// How many events the log holds for one order.
pub async fn event_count(app: &TestApp, order_id: &str) -> i64 {
    let client = app.client().await;
    client
        .query_one(
            "SELECT count(*) FROM write.order_events WHERE order_id = $1",
            &[&order_id],
        )
        .await
        .expect("count events")
        .get(0)
}
