//! Hostile input, generated: whatever the body, the answer is never a 5xx,
//! and a rejected command writes nothing.

use crate::support::*;
use proptest::prelude::*;
use serde_json::{json, Value};

/// JSON values biased towards the shapes our commands take, with nasty
/// strings (NUL, control characters, SQL, unicode, long) and odd numbers.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("p-1".to_string()),
        Just("c-1".to_string()),
        Just("'; DROP TABLE write.orders; --".to_string()),
        Just("a\u{0}b".to_string()),
        Just("\u{202e}evil".to_string()),
        Just("x".repeat(5000)),
        Just("1e400".to_string()),
        Just("-0.001".to_string()),
        ".{0,40}",
    ]
}

fn nasty_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(serde_json::from_str::<Value>("1e400").unwrap_or(Value::Null)),
        Just(json!(0)),
        Just(json!(1)),
    ]
}

fn nasty_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        nasty_number(),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("customer_id".to_string()),
                    Just("items".to_string()),
                    Just("product_id".to_string()),
                    Just("quantity".to_string()),
                    Just("price".to_string()),
                    Just("order_id".to_string()),
                    Just("name".to_string()),
                    Just("email".to_string()),
                    Just("reason".to_string()),
                    Just("status".to_string()),
                    ".{0,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn order_like() -> impl Strategy<Value = Value> {
    (
        nasty_value(),
        prop::collection::vec((nasty_value(), nasty_value(), nasty_value()), 0..4),
    )
        .prop_map(|(customer, items)| {
            json!({
                "customer_id": customer,
                "items": items.into_iter().map(|(p, q, price)| json!({"product_id": p, "quantity": q, "price": price})).collect::<Vec<_>>(),
            })
        })
}

#[test]
fn generated_bodies_never_get_a_5xx_and_rejected_ones_write_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = rt.block_on(async {
        let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
        app.seed_catalog().await;
        app
    });
    let counts = |app: &TestApp| {
        rt.block_on(async {
            let mut v = Vec::new();
            for t in [
                "write.customers",
                "write.products",
                "write.orders",
                "write.order_items",
                "write.order_events",
                "write.idempotency_keys",
            ] {
                v.push(app.count(t).await);
            }
            v
        })
    };
    let routes = [
        "/commands/orders",
        "/commands/customers",
        "/commands/products",
        "/commands/orders/o-x/cancel",
        "/commands/orders/o-x/status",
        "/commands/customers/c-1/change-details",
        "/commands/products/p-1/change-price",
    ];
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(route in 0..routes.len(), body in prop_oneof![order_like(), nasty_value()])| {
        let before = counts(&app);
        let (status, text) = rt.block_on(async {
            let r = app.http.post(app.url(routes[route])).json(&body).send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        });
        prop_assert!(status < 500, "{} {} -> {}: {}", routes[route], body, status, text);
        if !(200..300).contains(&status) {
            prop_assert_eq!(counts(&app), before, "{} {} was rejected ({}) but wrote", routes[route], body, status);
        }
    });
}
