//! The OpenAPI document describes every route, and real responses match the
//! schemas it gives for them.

use crate::support::*;
use serde_json::{json, Value};

/// Every route of the HTTP contract, as (method, OpenAPI path).
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/commands/customers"),
    ("post", "/commands/products"),
    ("post", "/commands/customers/{id}/change-details"),
    ("post", "/commands/products/{id}/change-price"),
    ("post", "/commands/orders"),
    ("post", "/commands/orders/{id}/confirm"),
    ("post", "/commands/orders/{id}/ship"),
    ("post", "/commands/orders/{id}/deliver"),
    ("post", "/commands/orders/{id}/cancel"),
    ("post", "/commands/orders/{id}/status"),
    ("get", "/queries/orders/{id}"),
    ("get", "/queries/orders/{id}/history"),
    ("get", "/queries/orders"),
    ("get", "/queries/customers/{id}/orders"),
    ("get", "/queries/order-statistics"),
    ("get", "/queries/read-models"),
    ("post", "/admin/read-models/{name}/refresh"),
];

pub(crate) async fn document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("openapi.json is JSON")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_of_the_contract() {
    let app = TestApp::builder().start().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in CONTRACT {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success response"
        );
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('4') || s.starts_with('5')),
            "{method} {path}: no problem response"
        );
    }
    // Declared read models have a route each (see views.rs); the service's
    // own routes are the contract's.
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| !path.starts_with("/queries/views/"))
        .map(|(_, item)| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        CONTRACT.len(),
        "the document has routes the contract does not name"
    );
    for header in ["Idempotency-Key", "If-Match", "X-Min-Token"] {
        assert!(
            doc.to_string().contains(&format!("\"name\":\"{header}\"")),
            "header {header} is not documented"
        );
    }
}

/// Check `body` against the schema the document gives for this answer.
pub(crate) fn assert_matches(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} has no {status} response documented"
    );
    let content = response["content"].as_object().expect("content");
    let schema = content.values().next().expect("a media type")["schema"].clone();
    let mut root = schema.as_object().cloned().unwrap_or_default();
    root.insert("components".into(), doc["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(root)).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body:#}"
    );
}

#[tokio::test]
async fn real_responses_match_their_documented_schemas() {
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let doc = document(&app).await;
    let mut checks = 0;
    let mut check = |method: &str, path: &str, status: u16, body: &Value| {
        assert_matches(&doc, method, path, status, body);
        checks += 1;
    };

    let r = app
        .post(
            "/commands/customers",
            json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    check(
        "post",
        "/commands/customers",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app
        .post(
            "/commands/customers",
            json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    check(
        "post",
        "/commands/customers",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app
        .post("/commands/customers", json!({"name": "", "email": "x"}))
        .await;
    check(
        "post",
        "/commands/customers",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app
        .post(
            "/commands/products",
            json!({"id": "p-1", "name": "Widget", "price": "19.99"}),
        )
        .await;
    check(
        "post",
        "/commands/products",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app
        .post(
            "/commands/customers/c-1/change-details",
            json!({"name": "Ada L."}),
        )
        .await;
    check(
        "post",
        "/commands/customers/{id}/change-details",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app
        .post("/commands/products/p-1/change-price", json!({"price": 21}))
        .await;
    check(
        "post",
        "/commands/products/{id}/change-price",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app.post("/commands/orders", json!({"order_id": "o-1", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 2}]})).await;
    let placed: Value = r.json().await.unwrap();
    check("post", "/commands/orders", 202, &placed);
    let token = placed["token"].as_str().unwrap().to_owned();
    for (action, status) in [
        ("confirm", 202),
        ("deliver", 409),
        ("ship", 202),
        ("deliver", 202),
    ] {
        let r = app
            .post(&format!("/commands/orders/o-1/{action}"), json!({}))
            .await;
        assert_eq!(r.status(), status, "{action}");
        check(
            "post",
            &format!("/commands/orders/{{id}}/{action}"),
            status,
            &r.json().await.unwrap(),
        );
    }
    let r = app.post("/commands/orders", json!({"order_id": "o-2", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1}]})).await;
    assert_eq!(r.status(), 202);
    let r = app
        .post(
            "/commands/orders/o-2/cancel",
            json!({"reason": "changed my mind"}),
        )
        .await;
    check(
        "post",
        "/commands/orders/{id}/cancel",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app
        .post("/commands/orders/o-2/status", json!({"status": "shipped"}))
        .await;
    check(
        "post",
        "/commands/orders/{id}/status",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    let r = app.post("/commands/orders/nope/confirm", json!({})).await;
    check(
        "post",
        "/commands/orders/{id}/confirm",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );

    let r = app
        .get(&format!("/queries/orders/o-1?min_token={token}"))
        .await;
    check(
        "get",
        "/queries/orders/{id}",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    app.refresh().await;
    for (path, template) in [
        (
            "/queries/orders/o-1/history",
            "/queries/orders/{id}/history",
        ),
        (
            "/queries/orders?status=cancelled&page_size=5",
            "/queries/orders",
        ),
        ("/queries/orders?page_size=500", "/queries/orders"),
        (
            "/queries/customers/c-1/orders",
            "/queries/customers/{id}/orders",
        ),
        ("/queries/order-statistics", "/queries/order-statistics"),
        ("/queries/read-models", "/queries/read-models"),
    ] {
        let r = app.get(path).await;
        check(
            "get",
            template,
            r.status().as_u16(),
            &r.json().await.unwrap(),
        );
    }
    let r = app
        .http
        .post(app.url("/admin/read-models/daily_sales/refresh"))
        .send()
        .await
        .unwrap();
    check(
        "post",
        "/admin/read-models/{name}/refresh",
        r.status().as_u16(),
        &r.json().await.unwrap(),
    );
    assert!(checks >= 20);
}
