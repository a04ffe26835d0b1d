//! Bearer tokens with scopes, when configured.

use crate::support::*;
use pgcqrs::config::ServeArgs;
use serde_json::json;

const WRITER: &str = "writer-token-0123456789";
const READER: &str = "reader-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";

#[tokio::test]
async fn with_tokens_configured_each_side_needs_its_scope() {
    let settings = ServeArgs {
        auth_tokens: format!("{WRITER}=command,query;{READER}=query;{OPERATOR}=admin"),
        ..Default::default()
    };
    let app = TestApp::builder()
        .settings(settings)
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    let customer = json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"});
    let post = |token: Option<&str>| {
        let mut r = app
            .http
            .post(app.url("/commands/customers"))
            .json(&customer);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    let r = post(None).await.unwrap();
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    assert_problem(r, 401).await;
    assert_problem(post(Some("not-a-known-token-at-all")).await.unwrap(), 401).await;
    assert_problem(post(Some(READER)).await.unwrap(), 403).await;
    assert_eq!(
        app.count("write.customers").await,
        0,
        "a refused command wrote"
    );
    assert_eq!(post(Some(WRITER)).await.unwrap().status(), 201);

    let get = |token: &'static str| {
        app.http
            .get(app.url("/queries/read-models"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get(READER).await.unwrap().status(), 200);
    assert_problem(get(OPERATOR).await.unwrap(), 403).await;

    let refresh = |token: &'static str| {
        app.http
            .post(app.url("/admin/read-models/daily_sales/refresh"))
            .bearer_auth(token)
            .send()
    };
    assert_problem(refresh(WRITER).await.unwrap(), 403).await;
    assert_eq!(refresh(OPERATOR).await.unwrap().status(), 202);

    for open in ["/healthz", "/openapi.json", "/metrics", "/"] {
        assert_eq!(app.get(open).await.status(), 200, "{open} should stay open");
    }
}

#[tokio::test]
async fn without_tokens_configured_nothing_asks_for_one() {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    let r = app
        .post(
            "/commands/customers",
            json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(r.status(), 201);
}
