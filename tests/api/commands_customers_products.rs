//! The catalog commands: register a customer, change a customer's details,
//! add a product, change a product's price. Success shapes, every validation
//! error, If-Match, and "a price change applies to future orders only".

use crate::support::write::*;
use crate::support::*;
use serde_json::{json, Value};

// ----------------------------------------------------------------- customers

#[tokio::test]
async fn registering_a_customer_with_a_client_id_answers_201_with_id_version_and_token() {
    let app = TestApp::builder().start().await;
    let r = app
        .post(
            "/commands/customers",
            json!({"id": "customer-123", "name": "  Ada Lovelace ", "email": "ada@example.com"}),
        )
        .await;
    let a = accepted(r, 201, "register customer").await;
    assert_eq!(keys(&a.body), ["id", "token", "version"], "{}", a.body);
    assert_eq!(a.body["id"], "customer-123");
    assert_versioned(&a, 1, "register customer");

    let client = app.client().await;
    let row = client
        .query_one(
            "SELECT name, email, version FROM write.customers WHERE id = 'customer-123'",
            &[],
        )
        .await
        .expect("customer row");
    assert_eq!(row.get::<_, String>(0), "Ada Lovelace", "name is trimmed");
    assert_eq!(row.get::<_, String>(1), "ada@example.com");
    assert_eq!(row.get::<_, i32>(2), 1);
    app.stop().await;
}

#[tokio::test]
async fn registering_a_customer_without_an_id_gets_a_server_generated_uuid_v7() {
    let app = TestApp::builder().start().await;
    let r = app
        .post(
            "/commands/customers",
            json!({"name": "Grace Hopper", "email": "grace@example.com"}),
        )
        .await;
    let a = accepted(r, 201, "register without id").await;
    let id = a.body["id"].as_str().expect("id is a string");
    let uuid = uuid::Uuid::parse_str(id).expect("generated id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "generated id {id} is a UUIDv7");
    assert_eq!(app.count("write.customers").await, 1);
    assert_eq!(
        sql_text(
            &app,
            &format!("SELECT name FROM write.customers WHERE id = '{id}'")
        )
        .await,
        Some("Grace Hopper".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_customer_registration_is_rejected_naming_the_field_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    let long_id = "c".repeat(65);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "blank name",
            json!({"name": "   ", "email": "a@example.com"}),
            "name",
        ),
        (
            "empty name",
            json!({"name": "", "email": "a@example.com"}),
            "name",
        ),
        (
            "NUL byte in name",
            json!({"name": "Ada\u{0}Lovelace", "email": "a@example.com"}),
            "name",
        ),
        (
            "newline in name",
            json!({"name": "Ada\nLovelace", "email": "a@example.com"}),
            "name",
        ),
        (
            "name of 201 characters",
            json!({"name": "x".repeat(201), "email": "a@example.com"}),
            "name",
        ),
        (
            "email without @",
            json!({"name": "Ada", "email": "ada.example.com"}),
            "email",
        ),
        (
            "email without domain",
            json!({"name": "Ada", "email": "ada@"}),
            "email",
        ),
        (
            "email without local part",
            json!({"name": "Ada", "email": "@example.com"}),
            "email",
        ),
        (
            "email with a space",
            json!({"name": "Ada", "email": "a da@example.com"}),
            "email",
        ),
        (
            "email with two @",
            json!({"name": "Ada", "email": "a@b@example.com"}),
            "email",
        ),
        ("blank email", json!({"name": "Ada", "email": " "}), "email"),
        (
            "id with space and bang",
            json!({"id": "bad id!", "name": "Ada", "email": "a@example.com"}),
            "id",
        ),
        (
            "id of 65 characters",
            json!({"id": long_id, "name": "Ada", "email": "a@example.com"}),
            "id",
        ),
        (
            "empty id",
            json!({"id": "", "name": "Ada", "email": "a@example.com"}),
            "id",
        ),
        (
            "id starting with a dash",
            json!({"id": "-c1", "name": "Ada", "email": "a@example.com"}),
            "id",
        ),
        (
            "name of the wrong type",
            json!({"name": 42, "email": "a@example.com"}),
            "name",
        ),
        (
            "email of the wrong type",
            json!({"name": "Ada", "email": ["a@example.com"]}),
            "email",
        ),
    ];
    for (case, body, field) in cases {
        let problem = assert_rejected(&app, case, 422, app.post("/commands/customers", body)).await;
        assert_names_field(&problem, field, case);
    }
    // Whole-body problems: a field is missing, unknown, or the body is not an object.
    let cases: Vec<(&str, Value)> = vec![
        ("missing email", json!({"name": "Ada"})),
        ("missing name", json!({"email": "a@example.com"})),
        (
            "unknown field",
            json!({"name": "Ada", "email": "a@example.com", "nickname": "A"}),
        ),
        (
            "array instead of object",
            json!([{"name": "Ada", "email": "a@example.com"}]),
        ),
    ];
    for (case, body) in cases {
        let problem = assert_rejected(&app, case, 422, app.post("/commands/customers", body)).await;
        assert!(
            problem["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "[{case}] a 422 lists its errors: {problem}"
        );
    }
    assert_eq!(app.count("write.customers").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_field_in_a_customer_registration_is_named_in_the_problem() {
    let app = TestApp::builder().start().await;
    let problem = assert_rejected(
        &app,
        "unknown field nickname",
        422,
        app.post(
            "/commands/customers",
            json!({"name": "Ada", "email": "a@example.com", "nickname": "A"}),
        ),
    )
    .await;
    assert_names_field(&problem, "nickname", "unknown field nickname");
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_or_an_empty_body_is_a_400_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "customer: truncated JSON",
            "/commands/customers",
            br#"{"name": "Ada", "email": "#.to_vec(),
        ),
        (
            "customer: not JSON",
            "/commands/customers",
            b"name=Ada&email=a@example.com".to_vec(),
        ),
        ("customer: empty body", "/commands/customers", Vec::new()),
        (
            "product: truncated JSON",
            "/commands/products",
            br#"{"name": "Widget", "price": 1"#.to_vec(),
        ),
        (
            "product: single quotes",
            "/commands/products",
            br#"{'name': 'Widget', 'price': 1}"#.to_vec(),
        ),
        (
            "order: truncated JSON",
            "/commands/orders",
            br#"{"customer_id": "c-1", "items": ["#.to_vec(),
        ),
        ("order: empty body", "/commands/orders", b"   ".to_vec()),
    ];
    for (case, path, body) in cases {
        assert_rejected(&app, case, 400, post_bytes(&app, path, body)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_json_body_followed_by_trailing_garbage_is_a_400_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "customer followed by garbage",
            "/commands/customers",
            br#"{"name": "Ada", "email": "a@example.com"} x"#.to_vec(),
        ),
        (
            "product followed by a second object",
            "/commands/products",
            br#"{"name": "Widget", "price": 1}{"name": "Other", "price": 2}"#.to_vec(),
        ),
        (
            "order followed by garbage",
            "/commands/orders",
            br#"{"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1}]}]"#.to_vec(),
        ),
    ];
    for (case, path, body) in cases {
        assert_rejected(&app, case, 400, post_bytes(&app, path, body)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_customer_id_is_a_409_and_leaves_the_first_customer_unchanged() {
    let app = TestApp::builder().start().await;
    let r = app
        .post(
            "/commands/customers",
            json!({"id": "c-1", "name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    accepted(r, 201, "first registration").await;
    let problem = assert_rejected(
        &app,
        "duplicate customer id",
        409,
        app.post(
            "/commands/customers",
            json!({"id": "c-1", "name": "Someone Else", "email": "else@example.com"}),
        ),
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("c-1"),
        "the conflict names the id: {problem}"
    );
    assert_eq!(
        sql_text(&app, "SELECT name FROM write.customers WHERE id = 'c-1'").await,
        Some("Ada".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_customer_details_updates_name_email_or_both_and_bumps_the_version() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let steps: Vec<(&str, Value, i64, &str, &str)> = vec![
        (
            "name only",
            json!({"name": "Ada King"}),
            2,
            "Ada King",
            "ada@example.com",
        ),
        (
            "email only",
            json!({"email": "countess@example.com"}),
            3,
            "Ada King",
            "countess@example.com",
        ),
        (
            "both",
            json!({"name": "Augusta Ada", "email": "augusta@example.com"}),
            4,
            "Augusta Ada",
            "augusta@example.com",
        ),
    ];
    for (case, body, version, name, email) in steps {
        let r = app
            .post("/commands/customers/c-1/change-details", body)
            .await;
        let a = accepted(r, 202, case).await;
        assert_eq!(
            keys(&a.body),
            ["id", "token", "version"],
            "[{case}] {}",
            a.body
        );
        assert_eq!(a.body["id"], "c-1", "[{case}]");
        assert_versioned(&a, version, case);
        let client = app.client().await;
        let row = client
            .query_one(
                "SELECT name, email, version FROM write.customers WHERE id = 'c-1'",
                &[],
            )
            .await
            .expect("customer");
        assert_eq!(row.get::<_, String>(0), name, "[{case}] stored name");
        assert_eq!(row.get::<_, String>(1), email, "[{case}] stored email");
        assert_eq!(
            i64::from(row.get::<_, i32>(2)),
            version,
            "[{case}] stored version"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn invalid_customer_detail_changes_are_rejected_and_write_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let path = "/commands/customers/c-1/change-details";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("neither name nor email", json!({}), "body"),
        ("blank name", json!({"name": "  "}), "name"),
        ("NUL byte in name", json!({"name": "A\u{0}B"}), "name"),
        ("bad email", json!({"email": "not-an-email"}), "email"),
        (
            "good name but bad email",
            json!({"name": "Ada", "email": "ada@"}),
            "email",
        ),
        ("name of the wrong type", json!({"name": true}), "name"),
    ];
    for (case, body, field) in cases {
        let problem = assert_rejected(&app, case, 422, app.post(path, body)).await;
        assert_names_field(&problem, field, case);
    }
    let problem = assert_rejected(
        &app,
        "unknown field",
        422,
        app.post(path, json!({"name": "Ada", "phone": "123"})),
    )
    .await;
    assert_names_field(&problem, "phone", "unknown field phone");
    assert_rejected(
        &app,
        "malformed JSON",
        400,
        app.post_raw(path, br#"{"name": "#),
    )
    .await;
    assert_eq!(
        sql_text(
            &app,
            "SELECT version::text FROM write.customers WHERE id = 'c-1'"
        )
        .await,
        Some("1".into()),
        "the customer is untouched"
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_details_of_an_unknown_or_impossible_customer_id_is_a_404() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let long = format!("/commands/customers/{}/change-details", "c".repeat(65));
    let cases = [
        (
            "unknown customer",
            "/commands/customers/c-404/change-details",
        ),
        (
            "id that breaks the pattern",
            "/commands/customers/bad%20id!/change-details",
        ),
        ("id of 65 characters", long.as_str()),
    ];
    for (case, path) in cases {
        assert_rejected(&app, case, 404, app.post(path, json!({"name": "Ada"}))).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn change_details_with_if_match_succeeds_on_the_current_version_and_412s_on_a_stale_one() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let path = "/commands/customers/c-1/change-details";
    let problem = assert_rejected(
        &app,
        "stale If-Match on a customer",
        412,
        post_with(
            &app,
            path,
            json!({"name": "Stale"}),
            &[("if-match", "\"2\"")],
        ),
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap_or_default().contains('1'),
        "the problem states the current version: {problem}"
    );
    let r = post_with(
        &app,
        path,
        json!({"name": "Fresh"}),
        &[("if-match", "\"1\"")],
    )
    .await;
    let a = accepted(r, 202, "current If-Match on a customer").await;
    assert_versioned(&a, 2, "current If-Match on a customer");
    // The version just answered is the one to send next; the old one is stale now.
    assert_rejected(
        &app,
        "If-Match of the version before the change",
        412,
        post_with(
            &app,
            path,
            json!({"name": "Again"}),
            &[("if-match", "\"1\"")],
        ),
    )
    .await;
    let r = post_with(
        &app,
        path,
        json!({"name": "Weak"}),
        &[("if-match", "W/\"2\"")],
    )
    .await;
    accepted(r, 202, "weak entity tag of the current version").await;
    assert_eq!(
        sql_text(&app, "SELECT name FROM write.customers WHERE id = 'c-1'").await,
        Some("Weak".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_if_match_is_a_400_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    app.place_simple_order("o-1").await;
    let targets: [(&str, Value); 4] = [
        (
            "/commands/customers/c-1/change-details",
            json!({"name": "X"}),
        ),
        ("/commands/products/p-1/change-price", json!({"price": 1})),
        (
            "/commands/orders/o-1/status",
            json!({"status": "confirmed"}),
        ),
        (
            "/commands/orders/o-1/cancel",
            json!({"reason": "changed my mind"}),
        ),
    ];
    for (path, body) in targets {
        for bad in ["\"abc\"", "0", "-1", "\"\"", "\"1.5\"", "v1"] {
            let case = format!("If-Match {bad} on {path}");
            assert_rejected(
                &app,
                &case,
                400,
                post_with(&app, path, body.clone(), &[("if-match", bad)]),
            )
            .await;
        }
    }
    let client = app.client().await;
    let row = client
        .query_one(
            "SELECT (SELECT version FROM write.customers WHERE id = 'c-1'),
                    (SELECT version FROM write.products WHERE id = 'p-1'),
                    (SELECT version FROM write.orders WHERE id = 'o-1')",
            &[],
        )
        .await
        .expect("versions");
    assert_eq!(
        (
            row.get::<_, i32>(0),
            row.get::<_, i32>(1),
            row.get::<_, i32>(2)
        ),
        (1, 1, 1)
    );
    app.stop().await;
}

// ------------------------------------------------------------------ products

#[tokio::test]
async fn adding_a_product_answers_201_and_stores_the_exact_price_given_as_number_or_string() {
    let app = TestApp::builder().start().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("number with two decimals", json!(19.99), "19.99"),
        ("string with two decimals", json!("19.99"), "19.99"),
        ("integer number", json!(10), "10.00"),
        ("string with one decimal", json!("0.5"), "0.50"),
        ("number 0.1 read without float error", json!(0.1), "0.10"),
        ("string with trailing zeros", json!("7.500"), "7.50"),
        ("zero", json!(0), "0.00"),
        (
            "largest amount",
            json!("999999999999.99"),
            "999999999999.99",
        ),
    ];
    for (i, (case, price, stored)) in cases.into_iter().enumerate() {
        let id = format!("prod-{i}");
        let r = app
            .post(
                "/commands/products",
                json!({"id": id, "name": "Widget", "price": price}),
            )
            .await;
        let a = accepted(r, 201, case).await;
        assert_eq!(
            keys(&a.body),
            ["id", "token", "version"],
            "[{case}] {}",
            a.body
        );
        assert_eq!(a.body["id"], id.as_str(), "[{case}]");
        assert_versioned(&a, 1, case);
        assert_eq!(
            sql_text(
                &app,
                &format!("SELECT price::text FROM write.products WHERE id = '{id}'")
            )
            .await
            .as_deref(),
            Some(stored),
            "[{case}] stored price"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn adding_a_product_without_an_id_generates_one() {
    let app = TestApp::builder().start().await;
    let r = app
        .post(
            "/commands/products",
            json!({"name": "Widget", "price": "1.00"}),
        )
        .await;
    let a = accepted(r, 201, "product without id").await;
    let id = a.body["id"].as_str().expect("id");
    let uuid = uuid::Uuid::parse_str(id).expect("generated id is a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(app.count("write.products").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_product_is_rejected_naming_the_field_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "three decimals as number",
            json!({"name": "W", "price": 1.005}),
            "price",
        ),
        (
            "three decimals as string",
            json!({"name": "W", "price": "1.005"}),
            "price",
        ),
        (
            "negative number",
            json!({"name": "W", "price": -1}),
            "price",
        ),
        (
            "negative cent as string",
            json!({"name": "W", "price": "-0.01"}),
            "price",
        ),
        (
            "boolean price",
            json!({"name": "W", "price": true}),
            "price",
        ),
        ("null price", json!({"name": "W", "price": null}), "price"),
        (
            "text that is not a number",
            json!({"name": "W", "price": "abc"}),
            "price",
        ),
        (
            "exponent notation string",
            json!({"name": "W", "price": "1e3"}),
            "price",
        ),
        (
            "a trillion",
            json!({"name": "W", "price": 1_000_000_000_000_i64}),
            "price",
        ),
        (
            "object price",
            json!({"name": "W", "price": {"amount": 1}}),
            "price",
        ),
        ("blank name", json!({"name": " ", "price": 1}), "name"),
        (
            "NUL byte in name",
            json!({"name": "W\u{0}", "price": 1}),
            "name",
        ),
        ("tab in name", json!({"name": "W\tX", "price": 1}), "name"),
        (
            "name of the wrong type",
            json!({"name": 7, "price": 1}),
            "name",
        ),
        (
            "bad id",
            json!({"id": "bad id!", "name": "W", "price": 1}),
            "id",
        ),
        (
            "id of 65 characters",
            json!({"id": "p".repeat(65), "name": "W", "price": 1}),
            "id",
        ),
    ];
    for (case, body, field) in cases {
        let problem = assert_rejected(&app, case, 422, app.post("/commands/products", body)).await;
        assert_names_field(&problem, field, case);
    }
    let problem = assert_rejected(
        &app,
        "unknown field",
        422,
        app.post(
            "/commands/products",
            json!({"name": "W", "price": 1, "currency": "EUR"}),
        ),
    )
    .await;
    assert_names_field(&problem, "currency", "unknown field currency");
    assert_rejected(
        &app,
        "missing price",
        422,
        app.post("/commands/products", json!({"name": "W"})),
    )
    .await;
    assert_eq!(app.count("write.products").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn all_field_problems_of_a_request_are_reported_at_once() {
    let app = TestApp::builder().start().await;
    let problem = assert_rejected(
        &app,
        "bad id, blank name and bad price together",
        422,
        app.post(
            "/commands/products",
            json!({"id": "bad id!", "name": "", "price": "1.005"}),
        ),
    )
    .await;
    for field in ["id", "name", "price"] {
        assert_names_field(&problem, field, "three problems at once");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_product_id_is_a_409_and_keeps_the_first_price() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    assert_rejected(
        &app,
        "duplicate product id",
        409,
        app.post(
            "/commands/products",
            json!({"id": "p-1", "name": "Other", "price": 1}),
        ),
    )
    .await;
    assert_eq!(
        sql_text(
            &app,
            "SELECT price::text FROM write.products WHERE id = 'p-1'"
        )
        .await,
        Some("19.99".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_a_price_answers_202_with_the_new_version_and_stores_the_price() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let steps: [(&str, Value, i64, &str); 3] = [
        ("as a number", json!(24.5), 2, "24.50"),
        ("as a string", json!("25.00"), 3, "25.00"),
        ("to zero", json!(0), 4, "0.00"),
    ];
    for (case, price, version, stored) in steps {
        let r = app
            .post(
                "/commands/products/p-1/change-price",
                json!({"price": price}),
            )
            .await;
        let a = accepted(r, 202, case).await;
        assert_eq!(
            keys(&a.body),
            ["id", "token", "version"],
            "[{case}] {}",
            a.body
        );
        assert_eq!(a.body["id"], "p-1", "[{case}]");
        assert_versioned(&a, version, case);
        assert_eq!(
            sql_text(
                &app,
                "SELECT price::text FROM write.products WHERE id = 'p-1'"
            )
            .await
            .as_deref(),
            Some(stored),
            "[{case}] stored price"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_price_change_is_rejected_and_writes_nothing() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let path = "/commands/products/p-1/change-price";
    let cases: Vec<(&str, Value)> = vec![
        ("three decimals", json!({"price": 1.005})),
        ("negative", json!({"price": -5})),
        ("boolean", json!({"price": true})),
        ("not a number", json!({"price": "cheap"})),
    ];
    for (case, body) in cases {
        let problem = assert_rejected(&app, case, 422, app.post(path, body)).await;
        assert_names_field(&problem, "price", case);
    }
    assert_rejected(&app, "missing price", 422, app.post(path, json!({}))).await;
    assert_rejected(
        &app,
        "unknown field",
        422,
        app.post(path, json!({"price": 1, "name": "Renamed"})),
    )
    .await;
    assert_rejected(
        &app,
        "malformed JSON",
        400,
        app.post_raw(path, b"{price: 1}"),
    )
    .await;
    assert_eq!(
        sql_text(
            &app,
            "SELECT price::text || ' v' || version FROM write.products WHERE id = 'p-1'"
        )
        .await,
        Some("19.99 v1".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_the_price_of_an_unknown_or_impossible_product_id_is_a_404() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let long = format!("/commands/products/{}/change-price", "p".repeat(65));
    let cases = [
        ("unknown product", "/commands/products/p-404/change-price"),
        (
            "id that breaks the pattern",
            "/commands/products/bad%20id!/change-price",
        ),
        ("id of 65 characters", long.as_str()),
    ];
    for (case, path) in cases {
        assert_rejected(&app, case, 404, app.post(path, json!({"price": 1}))).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn change_price_with_if_match_succeeds_on_the_current_version_and_412s_on_a_stale_one() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let path = "/commands/products/p-1/change-price";
    assert_rejected(
        &app,
        "stale If-Match on a product",
        412,
        post_with(&app, path, json!({"price": 1}), &[("if-match", "\"7\"")]),
    )
    .await;
    let r = post_with(&app, path, json!({"price": 2}), &[("if-match", "\"1\"")]).await;
    let a = accepted(r, 202, "current If-Match on a product").await;
    assert_versioned(&a, 2, "current If-Match on a product");
    assert_rejected(
        &app,
        "If-Match of the version before the change",
        412,
        post_with(&app, path, json!({"price": 3}), &[("if-match", "\"1\"")]),
    )
    .await;
    let r = post_with(&app, path, json!({"price": 4}), &[("if-match", "*")]).await;
    let a = accepted(r, 202, "If-Match: * on a product").await;
    assert_versioned(&a, 3, "If-Match: * on a product");
    assert_eq!(
        sql_text(
            &app,
            "SELECT price::text FROM write.products WHERE id = 'p-1'"
        )
        .await,
        Some("4.00".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_price_change_applies_to_future_orders_only() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let r = app
        .post(
            "/commands/orders",
            json!({"order_id": "o-before", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 2}]}),
        )
        .await;
    let before = accepted(r, 202, "order before the change").await;
    assert_eq!(number_text(&before.body["total"], "order before"), "39.98");

    let r = app
        .post(
            "/commands/products/p-1/change-price",
            json!({"price": "25.00"}),
        )
        .await;
    accepted(r, 202, "price change").await;

    let r = app
        .post(
            "/commands/orders",
            json!({"order_id": "o-after", "customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 2}]}),
        )
        .await;
    let after = accepted(r, 202, "order after the change").await;
    assert_eq!(number_text(&after.body["total"], "order after"), "50");

    let client = app.client().await;
    let rows = client
        .query(
            "SELECT o.id, o.total::text, i.unit_price::text, i.quantity
               FROM write.orders o JOIN write.order_items i ON i.order_id = o.id
              ORDER BY o.id",
            &[],
        )
        .await
        .expect("orders");
    let got: Vec<(String, String, String, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("o-after".into(), "50.00".into(), "25.00".into(), 2),
            ("o-before".into(), "39.98".into(), "19.99".into(), 2),
        ],
        "the earlier order keeps the price it was placed at"
    );
    // The OrderCreated event of the earlier order still records the old price.
    assert_eq!(
        sql_text(
            &app,
            "SELECT payload #>> '{items,0,unit_price}' FROM write.order_events
              WHERE order_id = 'o-before' AND event_type = 'OrderCreated'"
        )
        .await,
        Some("19.99".into())
    );
    // And the old price is no longer accepted as the expected price.
    let problem = assert_rejected(
        &app,
        "old price after the change",
        422,
        app.post(
            "/commands/orders",
            json!({"customer_id": "c-1", "items": [{"product_id": "p-1", "quantity": 1, "price": "19.99"}]}),
        ),
    )
    .await;
    let entry = field_error(&problem, "items[0].price", "old price after the change");
    assert!(
        entry["message"]
            .as_str()
            .unwrap_or_default()
            .contains("p-1"),
        "the error names the product: {problem}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_price_with_underscores_is_rejected_rather_than_read_as_another_amount() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "new product priced \"1_0\"",
            "/commands/products",
            json!({"name": "W", "price": "1_0"}),
        ),
        (
            "new product priced \"19_99\"",
            "/commands/products",
            json!({"name": "W", "price": "19_99"}),
        ),
        (
            "price change to \"2_5\"",
            "/commands/products/p-1/change-price",
            json!({"price": "2_5"}),
        ),
    ];
    for (case, path, body) in cases {
        let problem = assert_rejected(&app, case, 422, app.post(path, body)).await;
        assert_names_field(&problem, "price", case);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_price_sent_as_a_json_number_in_exponent_notation_is_read_exactly() {
    let app = TestApp::builder().start().await;
    let cases: Vec<(&str, &'static [u8], &str)> = vec![
        (
            "1.5E1 is 15",
            br#"{"id": "p-e1", "name": "W", "price": 1.5E1}"#,
            "15.00",
        ),
        (
            "1e2 is 100",
            br#"{"id": "p-e2", "name": "W", "price": 1e2}"#,
            "100.00",
        ),
        (
            "1.2345678E7 (how Java writes doubles) is 12345678",
            br#"{"id": "p-e3", "name": "W", "price": 1.2345678E7}"#,
            "12345678.00",
        ),
        (
            "1999e-2 is 19.99",
            br#"{"id": "p-e4", "name": "W", "price": 1999e-2}"#,
            "19.99",
        ),
    ];
    for (case, body, stored) in cases {
        let a = accepted(app.post_raw("/commands/products", body).await, 201, case).await;
        let id = a.body["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            sql_text(
                &app,
                &format!("SELECT price::text FROM write.products WHERE id = '{id}'")
            )
            .await
            .as_deref(),
            Some(stored),
            "[{case}] stored price"
        );
    }
    app.stop().await;
}
