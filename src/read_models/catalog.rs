//! The read-model catalog: every materialized view, the write tables it
//! reads, and its default refresh schedule. Adding a read model is a
//! migration plus one entry here.

/// A write table a read model depends on, as change detection names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `write.orders` and `write.order_items` (every change is an event).
    Orders,
    Customers,
    Products,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Orders => "orders",
            Source::Customers => "customers",
            Source::Products => "products",
        }
    }
}

/// How a read model is kept current.
#[derive(Debug, Clone, Copy)]
pub enum Strategy {
    /// A materialized view, refreshed whole with `REFRESH ... CONCURRENTLY`
    /// when what it reads changed. For small aggregates: the cost of a
    /// refresh grows with the view.
    Concurrent,
    /// A table kept current in batches: `apply` recomputes the rows of the
    /// keys changed since the snapshot the table reflects ($1) and returns
    /// `snapshot, taken_at, changed_keys, changed_rows`; `rebuild` refills
    /// it from scratch. The cost of a batch grows with what changed.
    Incremental {
        apply: &'static str,
        /// The full-refresh design of the same table, kept to measure the
        /// batches against (`PGCQRS_FULL_REFRESH`).
        full: &'static str,
        rebuild: &'static str,
    },
}

/// One read model.
#[derive(Debug, Clone, Copy)]
pub struct ReadModel {
    /// The relation `read.<name>`.
    pub name: &'static str,
    pub strategy: Strategy,
    pub sources: &'static [Source],
    /// Cron with seconds (`sec min hour day month weekday`).
    pub default_schedule: &'static str,
    /// Per-refresh statement timeout.
    pub default_timeout_ms: u64,
    pub description: &'static str,
}

impl ReadModel {
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.as_str()).collect()
    }

    /// `PGCQRS_SCHEDULE_ORDER_SUMMARY` and the like.
    pub fn schedule_env_var(&self) -> String {
        format!("PGCQRS_SCHEDULE_{}", self.name.to_ascii_uppercase())
    }
}

use Source::*;

pub const CATALOG: &[ReadModel] = &[
    ReadModel {
        name: "order_summary",
        strategy: Strategy::Incremental {
            apply: include_str!("../../sql/read_models/apply_order_summary.sql"),
            full: include_str!("../../sql/read_models/full_order_summary.sql"),
            rebuild: include_str!("../../sql/read_models/rebuild_order_summary.sql"),
        },
        sources: &[Orders, Customers],
        default_schedule: "* * * * * *",
        default_timeout_ms: 120_000,
        description: "one row per order with customer and totals",
    },
    ReadModel {
        name: "order_lines",
        strategy: Strategy::Incremental {
            apply: include_str!("../../sql/read_models/apply_order_lines.sql"),
            full: include_str!("../../sql/read_models/full_order_lines.sql"),
            rebuild: include_str!("../../sql/read_models/rebuild_order_lines.sql"),
        },
        sources: &[Orders, Products],
        default_schedule: "* * * * * *",
        default_timeout_ms: 120_000,
        description: "order lines with product names and subtotals",
    },
    ReadModel {
        name: "customer_orders",
        strategy: Strategy::Concurrent,
        sources: &[Orders, Customers],
        default_schedule: "*/5 * * * * *",
        default_timeout_ms: 60_000,
        description: "per customer: order count, lifetime value, last order",
    },
    ReadModel {
        name: "daily_sales",
        strategy: Strategy::Concurrent,
        sources: &[Orders],
        default_schedule: "*/2 * * * * *",
        default_timeout_ms: 60_000,
        description: "per UTC day and status: orders and revenue",
    },
    ReadModel {
        name: "product_sales",
        strategy: Strategy::Concurrent,
        sources: &[Orders, Products],
        default_schedule: "*/10 * * * * *",
        default_timeout_ms: 60_000,
        description: "per product: units and revenue",
    },
];

/// The catalog entry called `name`.
pub fn find(name: &str) -> Option<&'static ReadModel> {
    CATALOG.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_model_has_a_valid_cron_schedule() {
        for m in CATALOG {
            let job =
                tokio_cron_scheduler::Job::new_async(m.default_schedule, |_, _| Box::pin(async {}));
            assert!(job.is_ok(), "{}: {}", m.name, m.default_schedule);
        }
    }

    #[test]
    fn view_names_are_plain_identifiers() {
        // They are spliced into REFRESH statements.
        for m in CATALOG {
            assert!(
                m.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                m.name
            );
        }
    }
}
