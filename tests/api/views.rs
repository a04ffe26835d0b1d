//! `GET /queries/views/{name}`: a declared read model over HTTP, filtered,
//! ordered and paged as SQL would, refusing what it may not run, and
//! described in `/openapi.json`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::openapi::{assert_matches, document};
use crate::support::*;
use serde_json::Value;

/// Declare the read model `name` whose rows are `query`, keyed by `key`,
/// filterable on `filterable`: the one place the tests make a declaration.
///
/// Until `pgcqrs.define_read_model` exists, it does by hand what a
/// declaration leaves behind: `read.<name>` (a table of the query's rows
/// with a unique index on the key), its row in `pgcqrs.read_models`, and its
/// freshness in `read.read_model_status` (current as of now).
async fn declare(app: &TestApp, name: &str, query: &str, key: &[&str], filterable: &[&str]) {
    let sql = app.client().await;
    sql.batch_execute(&format!(
        "CREATE TABLE read.{name} AS {query};
         CREATE UNIQUE INDEX ON read.{name} ({});
         GRANT SELECT ON read.{name} TO pgcqrs_reader;",
        key.join(", ")
    ))
    .await
    .expect("create the read model's relation");
    sql.execute(
        "INSERT INTO pgcqrs.read_models (name, query, key, filterable, description)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &name,
            &query,
            &key,
            &filterable,
            &format!("{name}, declared for a test"),
        ],
    )
    .await
    .expect("catalog row");
    sql.execute(
        "INSERT INTO read.read_model_status (view_name, current_as_of, verified_at, cluster_id)
         VALUES ($1, pg_current_snapshot(), now(), pgcqrs.cluster_id())",
        &[&name],
    )
    .await
    .expect("freshness row");
}

/// Add rows to a declared model (for now straight into its relation).
async fn add_rows(app: &TestApp, name: &str, select: &str) {
    app.client()
        .await
        .batch_execute(&format!("INSERT INTO read.{name} {select}"))
        .await
        .expect("add rows");
}

/// The source of `parcels`: ties in every filterable column, NULL weights,
/// a region with a comma, exact numbers and times with an offset.
const PARCELS_SOURCE: &str = "
    CREATE TABLE public.parcel_source (
        id      text PRIMARY KEY,
        region  text,
        weight  numeric(12,3),
        sent_at timestamptz,
        pieces  bigint,
        amount  numeric,
        note    text
    );
    INSERT INTO public.parcel_source
    SELECT format('p-%s', lpad(i::text, 4, '0')),
           (ARRAY['north', 'south', 'east', 'west', 'south,east'])[i % 5 + 1],
           CASE WHEN i % 11 = 0 THEN NULL ELSE ((i * 7) % 17) / 4.0 END,
           timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes 0.25 seconds',
           i % 13,
           i / 10.0,
           'note ' || i
    FROM generate_series(1, 240) AS i;";

const PARCELS_QUERY: &str =
    "SELECT id, region, weight, sent_at, pieces, amount, note FROM public.parcel_source";
const PARCELS_FILTERABLE: &[&str] = &["id", "region", "weight", "sent_at", "pieces", "amount"];

async fn app_with_parcels() -> TestApp {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    app.client()
        .await
        .batch_execute(PARCELS_SOURCE)
        .await
        .expect("parcel source");
    declare(&app, "parcels", PARCELS_QUERY, &["id"], PARCELS_FILTERABLE).await;
    app
}

/// A 200 page: its body.
async fn page(app: &TestApp, query: &str) -> Value {
    let r = app.get(&format!("/queries/views/parcels?{query}")).await;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).expect("a JSON page")
}

fn ids_of(page: &Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every page of a read, following `next`.
async fn all_pages(app: &TestApp, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let q = match &after {
            Some(a) => format!("{query}&after={a}"),
            None => query.to_owned(),
        };
        let p = page(app, &q).await;
        ids.extend(ids_of(&p));
        match p["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("{query}: more than 1000 pages");
}

async fn sql_ids(app: &TestApp, condition: &str, order: &str) -> Vec<String> {
    app.client()
        .await
        .query(
            &format!("SELECT id FROM read.parcels WHERE {condition} ORDER BY {order}"),
            &[],
        )
        .await
        .expect("ids in SQL")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn every_operator_filters_as_the_same_condition_in_sql() {
    let app = app_with_parcels().await;
    for (query, condition) in [
        ("region=eq.north", "region = 'north'"),
        ("region=eq.south,east", "region = 'south,east'"),
        ("weight=gt.2.5", "weight > 2.5"),
        ("weight=gte.2.5", "weight >= 2.5"),
        ("weight=lt.1", "weight < 1"),
        ("weight=lte.1", "weight <= 1"),
        ("weight=eq.1.250", "weight = 1.25"),
        (
            "region=in.(north,%22south,east%22)",
            "region IN ('north', 'south,east')",
        ),
        ("pieces=in.(1,3,5)", "pieces IN (1, 3, 5)"),
        (
            "pieces=gt.3&pieces=lte.7&region=eq.west",
            "pieces > 3 AND pieces <= 7 AND region = 'west'",
        ),
        (
            "sent_at=gte.2024-01-02T00:00:00Z&sent_at=lt.2024-01-03T12:00:00%2B02:00",
            "sent_at >= '2024-01-02T00:00:00Z' AND sent_at < '2024-01-03T12:00:00+02:00'",
        ),
        ("amount=eq.0.1", "amount = 0.1"),
        ("amount=gte.23.95", "amount >= 23.95"),
        ("id=in.()", "false"),
        ("region=eq.nowhere", "false"),
        (
            "region=eq.%27%3B%20DROP%20TABLE%20read.parcels%3B--",
            "false",
        ),
        ("region=eq.%E2%80%AEnorth%F0%9F%93%A6", "false"),
        ("", "true"),
    ] {
        let p = page(&app, &format!("{query}&limit=1000")).await;
        assert_eq!(
            ids_of(&p),
            sql_ids(&app, condition, "id").await,
            "{query} should read as WHERE {condition}"
        );
        assert!(p["next"].is_null(), "{query}: one page holds every row");
    }
    assert_eq!(app.count("read.parcels").await, 240, "the table is intact");
}

#[tokio::test]
async fn paging_with_after_reads_every_row_once_in_the_order_sql_gives() {
    let app = app_with_parcels().await;
    for (order, sql_order) in [
        ("", "id ASC"),
        ("order=weight.asc", "weight ASC, id ASC"),
        ("order=weight.desc", "weight DESC, id DESC"),
        ("order=region.asc", "region ASC, id ASC"),
        ("order=region.desc", "region DESC, id DESC"),
        ("order=sent_at.desc", "sent_at DESC, id DESC"),
        ("order=pieces", "pieces ASC, id ASC"),
        ("order=id.desc", "id DESC"),
    ] {
        for limit in [1, 7, 100] {
            let query = format!("{order}&limit={limit}");
            let paged = all_pages(&app, &query).await;
            assert_eq!(paged, sql_ids(&app, "true", sql_order).await, "{query}");
        }
    }
    // Filters and order together, paged.
    let paged = all_pages(&app, "order=weight.desc&region=in.(north,west)&limit=6").await;
    assert_eq!(
        paged,
        sql_ids(&app, "region IN ('north', 'west')", "weight DESC, id DESC").await
    );
    // The default page is 100 rows.
    assert_eq!(ids_of(&page(&app, "").await).len(), 100);
}

#[tokio::test]
async fn rows_inserted_between_pages_neither_repeat_nor_hide_the_others() {
    let app = app_with_parcels().await;
    let before: BTreeSet<String> = sql_ids(&app, "true", "id").await.into_iter().collect();
    let orders = [
        "order=weight.asc",
        "order=weight.desc",
        "order=region.desc",
        "",
    ];
    for (round, order) in orders.into_iter().enumerate() {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        for n in 0.. {
            assert!(n < 200, "{order}: the pages do not end");
            let q = match &after {
                Some(a) => format!("{order}&limit=25&after={a}"),
                None => format!("{order}&limit=25"),
            };
            let p = page(&app, &q).await;
            seen.extend(ids_of(&p));
            // Another writer adds rows in front of the reader, behind it,
            // among the NULLs and in the middle, with every id order.
            add_rows(
                &app,
                "parcels",
                &format!(
                    "SELECT format('%s-{round}-{n}', prefix), (ARRAY['north', 'west'])[i::int % 2 + 1],
                            (ARRAY[0, 9, NULL, 2.0, 2.25])[i::int]
                     FROM unnest(ARRAY['a', 'n', 'z', 'p-0100', 'p-0101~']) WITH ORDINALITY AS u(prefix, i)"
                ),
            )
            .await;
            match p["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{order}: a row came twice");
        let missing: Vec<&String> = before.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missing.is_empty(), "{order}: rows skipped: {missing:?}");
    }
}

#[tokio::test]
async fn in_takes_many_values() {
    let app = app_with_parcels().await;
    let wanted: Vec<String> = (0..900).map(|i| format!("p-{i:04}")).collect();
    let p = page(&app, &format!("id=in.({})&limit=1000", wanted.join(","))).await;
    assert_eq!(
        ids_of(&p),
        sql_ids(&app, "id <= 'p-0899'", "id").await,
        "every listed id that exists"
    );
}

#[tokio::test]
async fn numbers_stay_exact_and_times_come_out_as_rfc_3339_in_utc() {
    let app = app_with_parcels().await;
    add_rows(
        &app,
        "parcels",
        "VALUES ('x-1', 'far', 1.5, timestamptz '2024-03-01 09:00:00.123456+02', 9007199254740993, 123456789012345678901234567890.000000001, 'ünïcödé ✓'),
                ('x-2', 'far', 0.001, timestamptz '2024-03-01 09:00:00+00', -1, 0.1, NULL)",
    )
    .await;
    let r = app
        .get("/queries/views/parcels?region=eq.far&order=id.asc")
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-read-model-refreshed-at"));
    assert!(r.headers().contains_key("age"));
    let text = r.text().await.expect("body");
    for exact in [
        r#""amount":123456789012345678901234567890.000000001"#,
        r#""amount":0.1"#,
        r#""pieces":9007199254740993"#,
        r#""weight":1.500"#,
        r#""weight":0.001"#,
        r#""sent_at":"2024-03-01T07:00:00.123456Z""#,
        r#""sent_at":"2024-03-01T09:00:00Z""#,
        r#""note":"ünïcödé ✓""#,
        r#""note":null"#,
    ] {
        assert!(text.contains(exact), "{exact} in {text}");
    }
    // A time with time zone reads the same whatever the session's zone,
    // and so does a cursor over times.
    app.client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET timezone TO 'Asia/Kolkata'",
            app.db.name
        ))
        .await
        .expect("set the time zone");
    let india = TestApp::builder()
        .refreshing(Refreshing::Off)
        .on(app.db.share())
        .start()
        .await;
    let p = page(&india, "id=eq.x-1").await;
    assert_eq!(p["rows"][0]["sent_at"], "2024-03-01T07:00:00.123456Z");
    assert_eq!(
        all_pages(&india, "order=sent_at.desc&limit=11").await,
        sql_ids(&app, "true", "sent_at DESC, id DESC").await
    );
    // An exact filter value finds the exact number.
    let p = page(&app, "amount=eq.123456789012345678901234567890.000000001").await;
    assert_eq!(ids_of(&p), vec!["x-1"]);
    let p = page(&app, "amount=eq.123456789012345678901234567890").await;
    assert!(ids_of(&p).is_empty(), "no rounding");
}

#[tokio::test]
async fn a_filter_or_order_on_another_column_or_an_unknown_operator_is_a_400_naming_the_allowed() {
    let app = app_with_parcels().await;
    declare(
        &app,
        "parcel_regions",
        "SELECT DISTINCT region FROM public.parcel_source",
        &["region"],
        &["region"],
    )
    .await;
    let next = page(&app, "order=weight.desc&limit=5").await["next"]
        .as_str()
        .expect("next")
        .to_owned();
    let allowed = "id, region, weight, sent_at, pieces, amount";
    let other_order = format!("order=weight.asc&after={next}");
    let no_order = format!("after={next}");
    for (query, says) in [
        ("note=eq.x", allowed),
        ("nope=eq.1", allowed),
        ("order=note.asc", allowed),
        ("order=weight.sideways", allowed),
        ("weight=like.1", "eq.v, gt.v, gte.v, lt.v, lte.v, in.(a,b)"),
        ("weight=1", "eq.v, gt.v"),
        ("weight=in.1,2", "in.(a,b)"),
        ("limit=0", "1 to 1000"),
        ("limit=1001", "1 to 1000"),
        ("limit=ten", "1 to 1000"),
        ("limit=5&limit=6", "more than once"),
        ("order=id&order=region", "more than once"),
        ("weight=eq.heavy", "numeric"),
        ("pieces=gt.99999999999999999999", "bigint"),
        ("sent_at=gt.2024-13-45", "time"),
        ("sent_at=eq.2024-01-01T25:00:00Z", "time"),
        ("weight=in.(1,x)", "numeric"),
        ("region=eq.a%00b", "refused"),
        ("after=not-a-cursor", "cursor"),
        ("after=%27%3BDROP", "cursor"),
        (other_order.as_str(), "another"),
        (no_order.as_str(), "another"),
        ("min_token=abc", "min_token"),
        ("wait=forever", "wait"),
    ] {
        let r = app.get(&format!("/queries/views/parcels?{query}")).await;
        let problem = assert_problem(r, 400).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(says),
            "{query}: {detail:?} should say {says:?}"
        );
    }
    // A cursor of another model.
    let r = app
        .get(&format!(
            "/queries/views/parcel_regions?order=region.desc&after={next}"
        ))
        .await;
    assert_problem(r, 400).await;
    assert_eq!(app.count("read.parcels").await, 240);
}

#[tokio::test]
async fn an_unknown_model_is_a_404_problem() {
    let app = app_with_parcels().await;
    let long = "a".repeat(100);
    for name in [
        "nope",
        "Parcels",
        "parcels%3B%20DROP%20TABLE%20read.parcels",
        "parcels%22",
        "parc%C3%A9ls",
        "%FF",
        "read_model_status",
        long.as_str(),
    ] {
        let r = app.get(&format!("/queries/views/{name}")).await;
        assert_problem(r, 404).await;
    }
    assert_eq!(app.count("read.parcels").await, 240);
}

#[tokio::test]
async fn hostile_query_strings_are_refused_before_any_sql_runs() {
    let app = app_with_parcels().await;
    // Columns, orders and names from the hostile side: refused by the
    // catalog's lists, and nothing is written.
    for query in [
        "region%3BDROP%20TABLE%20read.parcels=eq.1",
        "%22region%22=eq.x",
        "r%C3%A9gion=eq.x",
        "order=id%3BDROP%20TABLE%20read.parcels",
        "order=%22id%22.desc",
        "order=region%20DESC%2C%20(SELECT%201).asc",
    ] {
        let r = app.get(&format!("/queries/views/parcels?{query}")).await;
        assert_problem(r, 400).await;
    }
    let ten_thousand = vec!["region=eq.x"; 10_000].join("&");
    let thirty_three = vec!["region=eq.x"; 33].join("&");
    let twenty_kb = format!("region=eq.{}", "x".repeat(20 << 10));
    let megabyte = format!("region=eq.{}", "x".repeat(1 << 20));

    // The database becomes unreachable (a read of the catalog, the view or
    // the freshness would be a 503): what is refused from the request alone
    // still gets its 4xx, so it ran no SQL.
    page(&app, "limit=1").await;
    let admin = pgcqrs::db::connect(&app.db.url.replace(&app.db.name, "postgres"))
        .await
        .expect("connect as admin");
    let db = &app.db.name;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';"
        ))
        .await
        .expect("shut the database");
    for (path, status) in [
        (format!("/queries/views/parcels?{twenty_kb}"), 414),
        (format!("/queries/views/parcels?{thirty_three}"), 400),
        ("/queries/views/parcels?region=like.x".into(), 400),
        ("/queries/views/parcels?region=in.(x".into(), 400),
        ("/queries/views/parcels?limit=99999".into(), 400),
        ("/queries/views/parcels%3BDROP".into(), 404),
        ("/queries/views/%E2%80%AEparcels".into(), 404),
    ] {
        let r = app.get(&path).await;
        let short: String = path.chars().take(60).collect();
        let problem = assert_problem(r, status).await;
        assert!(problem["detail"].is_string(), "{short}");
    }
    // Longer than a URI may be (64 KiB): refused by the HTTP server itself.
    for query in [ten_thousand, megabyte] {
        let status = raw_get(&app, &format!("/queries/views/parcels?{query}")).await;
        assert!(
            (400..500).contains(&status),
            "{} bytes: {status}",
            query.len()
        );
    }
    // The database was really out of reach: a good read fails.
    let r = app.get("/queries/views/parcels?limit=1").await;
    assert_problem(r, 503).await;
    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .await
        .expect("open the database");
    let sql = app.db.client().await;
    for table in ["read.parcels", "public.parcel_source"] {
        let rows: i64 = sql
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(rows, 240, "{table} is intact");
    }
}

/// GET `target` over a plain socket (an HTTP client refuses to send a URI
/// over 64 KiB); the status of the answer.
async fn raw_get(app: &TestApp, target: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    // The server may answer and close before it has read everything.
    let _ = socket.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(100)]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {head:?}"))
}

#[tokio::test]
async fn min_token_waits_for_the_model_to_cover_the_token() {
    let app = app_with_parcels().await;
    // A transaction of a psql session, outside pgcqrs.
    let token: String = app
        .client()
        .await
        .query_one(
            "WITH w AS (INSERT INTO public.parcel_source (id) VALUES ('late') RETURNING 1)
             SELECT pg_current_xact_id()::text FROM w",
            &[],
        )
        .await
        .expect("a write")
        .get(0);
    let r = app
        .get(&format!(
            "/queries/views/parcels?min_token={token}&wait=200ms"
        ))
        .await;
    let problem = assert_problem(r, 503).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("parcels"));
    // The model catches up (as the engine's refresh would record it).
    add_rows(&app, "parcels", "SELECT 'late'").await;
    app.client()
        .await
        .execute(
            "UPDATE read.read_model_status SET current_as_of = pg_current_snapshot(), verified_at = now()
             WHERE view_name = 'parcels'",
            &[],
        )
        .await
        .expect("mark current");
    let r = app
        .get(&format!(
            "/queries/views/parcels?min_token={token}&id=eq.late"
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-read-model-refreshed-at"));
    let p: Value = r.json().await.expect("page");
    assert_eq!(ids_of(&p), vec!["late"]);
    // The header form.
    let r = app
        .http
        .get(app.url("/queries/views/parcels?id=eq.late"))
        .header("X-Min-Token", &token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_model_declared_or_dropped_at_run_time_is_served_or_404_at_once() {
    let app = app_with_parcels().await;
    page(&app, "limit=1").await;
    declare(
        &app,
        "parcel_regions",
        "SELECT DISTINCT region FROM public.parcel_source",
        &["region"],
        &["region"],
    )
    .await;
    let regions: Value = poll_until(
        "the new model to be served",
        Duration::from_secs(10),
        || async {
            let r = app.get("/queries/views/parcel_regions").await;
            if r.status() == 200 {
                r.json().await.ok()
            } else {
                None
            }
        },
    )
    .await;
    assert_eq!(regions["rows"].as_array().map(Vec::len), Some(5));
    // Dropped (as pgcqrs.drop_read_model will): the cached catalog still
    // knows it, the read finds it gone and answers 404.
    app.client()
        .await
        .batch_execute(
            "DELETE FROM pgcqrs.read_models WHERE name = 'parcel_regions';
             DELETE FROM read.read_model_status WHERE view_name = 'parcel_regions';
             DROP TABLE read.parcel_regions;",
        )
        .await
        .expect("drop");
    let r = app.get("/queries/views/parcel_regions").await;
    assert_problem(r, 404).await;
}

#[tokio::test]
async fn each_declared_model_is_described_in_openapi_and_its_answers_match() {
    let app = app_with_parcels().await;
    let doc = document(&app).await;
    let path = "/queries/views/parcels";
    let op = &doc["paths"][path]["get"];
    assert!(op.is_object(), "{path} is not documented");
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in PARCELS_FILTERABLE.iter().copied().chain([
        "order",
        "limit",
        "after",
        "min_token",
        "wait",
        "X-Min-Token",
    ]) {
        assert!(
            params.contains(&name),
            "{name} is not a parameter: {params:?}"
        );
    }
    assert!(!params.contains(&"note"), "note is not filterable");
    let row = &op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        ["rows"]["items"]["properties"];
    assert_eq!(row["weight"]["type"], serde_json::json!(["number", "null"]));
    assert_eq!(
        row["pieces"]["type"],
        serde_json::json!(["integer", "null"])
    );
    assert_eq!(row["sent_at"]["format"], "date-time");
    assert_eq!(row["note"]["type"], serde_json::json!(["string", "null"]));
    for status in ["400", "404", "503"] {
        assert!(op["responses"][status].is_object(), "{status}");
    }

    let body = page(&app, "order=weight.desc&limit=3").await;
    assert_matches(&doc, "get", path, 200, &body);
    let r = app.get("/queries/views/parcels?note=eq.x").await;
    assert_matches(&doc, "get", path, 400, &assert_problem(r, 400).await);
}

#[tokio::test]
async fn a_built_in_model_reads_its_own_writes_through_its_view_route() {
    let app = TestApp::builder().start().await;
    app.seed_catalog().await;
    let placed = app.place_simple_order("o-1").await;
    let token = placed["token"].as_str().expect("token");
    let r = app
        .get(&format!(
            "/queries/views/order_summary?customer_id=eq.c-1&order=created_at.desc&min_token={token}"
        ))
        .await;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("a page");
    assert_eq!(page["rows"][0]["order_id"], "o-1", "{body}");
    assert_eq!(page["rows"][0]["total"], serde_json::json!(19.99), "{body}");
    assert!(body.contains(r#""total":19.99"#), "{body}");
    assert!(page["next"].is_null());
}

/// Drop a model `declare` made, as `pgcqrs.drop_read_model` would.
async fn undeclare(app: &TestApp, name: &str) {
    app.client()
        .await
        .batch_execute(&format!(
            "DELETE FROM pgcqrs.read_models WHERE name = '{name}';
             DELETE FROM read.read_model_status WHERE view_name = '{name}';
             DROP TABLE read.{name};"
        ))
        .await
        .expect("drop the model");
}

/// A read is a statement its connection keeps, planned once rather than
/// per request. A model redefined under it is read as it now is: a column
/// of another type comes out in that type, and a column gone is a model
/// read anew, not an error.
#[tokio::test]
async fn a_kept_statement_reads_a_redefined_model_as_it_now_is() {
    let app = TestApp::builder().refreshing(Refreshing::Off).start().await;
    app.client()
        .await
        .batch_execute(
            "CREATE TABLE public.gauges (id text PRIMARY KEY, v int NOT NULL);
             INSERT INTO public.gauges VALUES ('g1', 1), ('g2', 2);",
        )
        .await
        .expect("gauges");
    let read = || async {
        let r = app.get("/queries/views/gauge_values?id=eq.g1").await;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).expect("a JSON page")["rows"].clone()
    };
    declare(
        &app,
        "gauge_values",
        "SELECT id, v FROM public.gauges",
        &["id"],
        &["id"],
    )
    .await;
    // Past the five custom plans after which PostgreSQL may keep a generic
    // one, on every connection the reads went through.
    for _ in 0..40 {
        assert_eq!(read().await, serde_json::json!([{"id": "g1", "v": 1}]));
    }
    // The same read, the same SQL: `v` is text now.
    undeclare(&app, "gauge_values").await;
    declare(
        &app,
        "gauge_values",
        "SELECT id, v::text || ' kWh' AS v FROM public.gauges",
        &["id"],
        &["id"],
    )
    .await;
    for _ in 0..10 {
        assert_eq!(
            read().await,
            serde_json::json!([{"id": "g1", "v": "1 kWh"}])
        );
    }
    // `v` is gone: the kept statement fails, the catalog is read again.
    undeclare(&app, "gauge_values").await;
    declare(
        &app,
        "gauge_values",
        "SELECT id FROM public.gauges",
        &["id"],
        &["id"],
    )
    .await;
    for _ in 0..10 {
        assert_eq!(read().await, serde_json::json!([{"id": "g1"}]));
    }
}

/// Each shape of read (filters, order, cursor) is one statement kept on a
/// connection, whatever its values; a client inventing shapes without end
/// never makes a connection keep more than `STATEMENTS_PER_CONNECTION`
/// (it forgets them all when full and keeps the new ones), and every read,
/// kept or newly prepared, answers as its query in SQL does.
#[tokio::test]
async fn a_read_connection_keeps_one_statement_per_shape_up_to_a_bound() {
    use pgcqrs::db::STATEMENTS_PER_CONNECTION;
    use pgcqrs::queries::view_catalog::{read_catalog, read_view};
    use pgcqrs::queries::views::{Plan, ViewRequest};
    use pgcqrs::queries::QueryError;

    let app = app_with_parcels().await;
    let pool = app.pool_of_one();
    let models = read_catalog(&pool).await.expect("the catalog");
    let parcels = models.get("parcels").expect("parcels");
    let kept = || kept_statements(&pool);
    let pool = &pool;
    let ids = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let request = ViewRequest::parse(&pairs).expect("a valid read");
        async move {
            let plan = Plan::new(parcels, &request).expect("a valid plan");
            let page = read_view(pool, &plan).await.expect("a page");
            page.rows
                .iter()
                .map(|r| {
                    let row: Value = serde_json::from_str(r.get()).expect("a JSON row");
                    row["id"].as_str().expect("id").to_owned()
                })
                .collect::<Vec<_>>()
        }
    };

    // One shape, other values: one statement.
    let before = kept().await;
    for pieces in ["1", "2", "3", "1"] {
        let got = ids(&[("pieces", &format!("eq.{pieces}")), ("limit", "1000")]).await;
        assert_eq!(
            got,
            sql_ids(&app, &format!("pieces = {pieces}"), "id").await
        );
    }
    assert_eq!(kept().await, before + 1);
    // A value the column's type refuses is the client's error, and the
    // statement stays kept.
    let refused = ViewRequest::parse(&[
        ("pieces".to_owned(), "eq.many".to_owned()),
        ("limit".to_owned(), "1000".to_owned()),
    ])
    .expect("a valid read");
    let plan = Plan::new(parcels, &refused).expect("a valid plan");
    let answer = read_view(pool, &plan).await;
    assert!(
        matches!(answer, Err(QueryError::BadParameter(_))),
        "{:?}",
        answer.err()
    );
    assert_eq!(kept().await, before + 1);

    // Shapes without end: the same condition repeated 1 to 32 times, with
    // each of five operators.
    let (mut most, mut emptied) = (0, false);
    for repeat in 1..=32 {
        for (op, sql) in [
            ("eq", "="),
            ("gt", ">"),
            ("gte", ">="),
            ("lt", "<"),
            ("lte", "<="),
        ] {
            let value = format!("{op}.6");
            let mut pairs = vec![("limit", "1000")];
            pairs.extend(std::iter::repeat_n(("pieces", value.as_str()), repeat));
            let got = ids(&pairs).await;
            assert_eq!(
                got,
                sql_ids(&app, &format!("pieces {sql} 6"), "id").await,
                "pieces={value} {repeat} times"
            );
            let now = kept().await;
            emptied |= now < most;
            most = most.max(now);
        }
    }
    assert_eq!(most, STATEMENTS_PER_CONNECTION);
    assert!(emptied, "a full connection forgets its statements");
    // Kept again once forgotten.
    let now = kept().await;
    ids(&[("pieces", "eq.1"), ("limit", "1000")]).await;
    ids(&[("pieces", "eq.2"), ("limit", "1000")]).await;
    assert_eq!(kept().await, now + 1);
}
