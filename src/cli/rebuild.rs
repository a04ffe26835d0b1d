//! `pgcqrs rebuild [VIEW]`: recompute read models from the write tables.

use pgcqrs::config::{DatabaseArgs, ReadModelArgs};
use pgcqrs::read_models::{RefreshOutcome, Refresher};

pub async fn run(
    args: &DatabaseArgs,
    read_models: &ReadModelArgs,
    view: Option<&str>,
) -> anyhow::Result<()> {
    super::with_refresher(
        args,
        read_models,
        view,
        "pgcqrs-rebuild",
        async |refresher| rebuild_all(refresher, view).await,
    )
    .await
}

async fn rebuild_all(refresher: &Refresher, view: Option<&str>) -> anyhow::Result<()> {
    for model in refresher.models() {
        if view.is_some_and(|v| v != model.model.name) {
            continue;
        }
        match refresher.rebuild(&model).await? {
            RefreshOutcome::Refreshed {
                rows, duration_ms, ..
            } => println!(
                "{:<16} rebuilt: {rows} rows in {duration_ms:.0} ms",
                model.model.name
            ),
            RefreshOutcome::Busy => println!(
                "{:<16} busy: another instance is refreshing it; try again",
                model.model.name
            ),
            RefreshOutcome::Current => {}
        }
    }
    Ok(())
}
