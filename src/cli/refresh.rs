//! `pgcqrs refresh [VIEW]`: bring read models up to date now, showing a
//! backlog go down.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgcqrs::config::{DatabaseArgs, ReadModelArgs};
use pgcqrs::read_models::{RefreshOutcome, Refresher, ScheduledModel};

pub async fn run(
    args: &DatabaseArgs,
    read_models: &ReadModelArgs,
    view: Option<&str>,
    force: bool,
) -> anyhow::Result<()> {
    super::with_refresher(
        args,
        read_models,
        view,
        "pgcqrs-refresh",
        async |refresher| {
            let mut failed = false;
            for model in refresher.models() {
                if view.is_none_or(|v| v == model.model.name) {
                    failed |= !catch_up(refresher, &model, force).await;
                }
            }
            if failed {
                anyhow::bail!("some read models could not be refreshed");
            }
            Ok(())
        },
    )
    .await
}

/// Catch `model` up and print what happened; false if it failed.
async fn catch_up(refresher: &Refresher, model: &ScheduledModel, force: bool) -> bool {
    let name = model.model.name.clone();
    // A backlog is applied in bounded batches: show how it goes down.
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:<16} {bar:30} {pos}/{len} changes, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(name.clone());
    let (mut applied_ms, mut batches) = (0.0, 0u64);
    let outcome = refresher
        .catch_up(model, force, |outcome| {
            if let RefreshOutcome::Refreshed {
                duration_ms,
                changes,
                backlog,
                ..
            } = outcome
            {
                applied_ms += duration_ms;
                batches += 1;
                if *backlog > 0 && bar.is_hidden() {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
                let done = bar.position() + (*changes).max(0) as u64;
                bar.set_length(done + (*backlog).max(0) as u64);
                bar.set_position(done);
            }
        })
        .await;
    bar.finish_and_clear();
    match outcome {
        Ok(RefreshOutcome::Refreshed { .. }) => {
            println!("{name:<16} refreshed: {batches} batch(es) in {applied_ms:.0} ms")
        }
        Ok(RefreshOutcome::Current) => println!("{name:<16} current: nothing it reads changed"),
        Ok(RefreshOutcome::Busy) => println!("{name:<16} busy: another instance is refreshing it"),
        Err(e) => {
            println!("{name:<16} FAILED: {e:#}");
            return false;
        }
    }
    true
}
