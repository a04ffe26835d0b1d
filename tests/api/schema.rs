//! Schema facts, read from a migrated database rather than from the text of
//! the migrations: `docs/schema.sql` is what the migrations build, and every
//! read model of the catalog is a relation the refresher can keep current.

use std::collections::BTreeSet;
use std::path::Path;

use pgcqrs::db::embedded::LocalCluster;
use pgcqrs::read_models::Strategy;

use crate::support::*;

/// How `docs/schema.sql` is regenerated: the first line of the file says so.
const REGENERATE: &str = "PGCQRS_WRITE_SCHEMA=1 cargo test --test api schema_file";

/// `pg_dump --schema-only` of a migrated database, without what changes
/// from one dump to the next or one PostgreSQL to the next: comments
/// (versions), `SET` lines, `\restrict` keys, runs of blank lines.
fn normalise(dump: &str) -> String {
    let mut out = String::new();
    let mut blank = true;
    for line in dump.lines() {
        let line = line.trim_end();
        if line.starts_with("--")
            || line.starts_with("SET ")
            || line.starts_with("SELECT pg_catalog.set_config")
            || line.starts_with("\\restrict")
            || line.starts_with("\\unrestrict")
        {
            continue;
        }
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
        blank = false;
    }
    out.trim_end().to_owned() + "\n"
}

#[tokio::test]
async fn the_schema_file_is_what_the_migrations_build() {
    // Test databases are clones of a template migrated at start-up.
    let db = TestDb::create().await;
    let pg_dump = LocalCluster::find_bindir()
        .expect("PostgreSQL binaries")
        .join("pg_dump");
    let out = std::process::Command::new(&pg_dump)
        .args(["--schema-only", "--no-owner", "--no-privileges", "-d"])
        .arg(&db.url)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", pg_dump.display()));
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = normalise(&String::from_utf8(out.stdout).expect("UTF-8 dump"));

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.sql");
    if std::env::var_os("PGCQRS_WRITE_SCHEMA").is_some_and(|v| v == "1") {
        let header = format!(
            "-- The schema the migrations build, dumped by pg_dump. Generated: do not edit;\n\
             -- regenerate with `{REGENERATE}`.\n\n"
        );
        std::fs::write(&file, header + &built).expect("write docs/schema.sql");
        return;
    }
    let documented = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        normalise(&documented) == built,
        "docs/schema.sql differs from the schema the migrations build; \
         regenerate it with `{REGENERATE}` and review the diff"
    );
}

#[tokio::test]
async fn every_read_model_of_the_catalog_is_a_relation_with_a_unique_index_on_plain_columns() {
    let db = TestDb::create().await;
    let client = db.client().await;
    let catalog = pgcqrs::read_models::catalog::load(&client)
        .await
        .expect("the catalog");
    assert_eq!(catalog.len(), 5, "the built-in models are declared");
    for m in &catalog {
        // A unique index on columns only (no expression) over every row (no
        // predicate) is what REFRESH ... CONCURRENTLY and the batches' upserts
        // need; `not_null` says its columns are also declared NOT NULL,
        // which only a table can declare.
        let row = client
            .query_opt(
                "SELECT c.relkind::text,
                        bool_or(i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL),
                        bool_or(i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                                AND NOT EXISTS (
                                    SELECT 1 FROM pg_attribute a
                                    WHERE a.attrelid = c.oid
                                      AND a.attnum = ANY (i.indkey::int2[])
                                      AND NOT a.attnotnull))
                 FROM pg_class c
                 LEFT JOIN pg_index i ON i.indrelid = c.oid
                 WHERE c.relnamespace = 'read'::regnamespace AND c.relname = $1
                 GROUP BY c.relkind",
                &[&m.name],
            )
            .await
            .expect("read the catalog")
            .unwrap_or_else(|| panic!("read.{} does not exist", m.name));
        let (kind, unique, not_null): (String, Option<bool>, Option<bool>) =
            (row.get(0), row.get(1), row.get(2));
        match &m.strategy {
            Strategy::Concurrent => {
                assert_eq!(kind, "m", "read.{} is not a materialized view", m.name);
                assert_eq!(
                    unique,
                    Some(true),
                    "read.{} has no unique index on plain columns for CONCURRENTLY",
                    m.name
                );
            }
            Strategy::Incremental { .. } => {
                assert_eq!(kind, "r", "read.{} is not a table", m.name);
                assert_eq!(
                    not_null,
                    Some(true),
                    "read.{} has no unique index on NOT NULL columns",
                    m.name
                );
            }
        }
    }

    // And no materialized view escapes the catalog (nothing would refresh it).
    let views: BTreeSet<String> = client
        .query(
            "SELECT relname::text FROM pg_class
             WHERE relnamespace = 'read'::regnamespace AND relkind = 'm'",
            &[],
        )
        .await
        .expect("list views")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let declared: BTreeSet<String> = catalog.iter().map(|m| m.name.clone()).collect();
    let undeclared: Vec<_> = views.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "views outside the catalog: {undeclared:?}"
    );
}
