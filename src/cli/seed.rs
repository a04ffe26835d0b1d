//! `pgcqrs seed`: demo data loaded with COPY, then the read models rebuilt.

use pgcqrs::config::{DatabaseArgs, ReadModelArgs};
use pgcqrs::db;
use pgcqrs::seed::{self, SeedPlan};

pub async fn run(
    args: &DatabaseArgs,
    read_models: &ReadModelArgs,
    orders: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let plan = SeedPlan {
        orders,
        seed,
        read_models: read_models.models()?,
        ..Default::default()
    };
    let report = super::with_database(args, |url| async move {
        db::migrate(&url).await?;
        seed::seed(&url, &plan).await
    })
    .await?;
    println!(
        "{orders} orders loaded in {:.1} s; read models rebuilt in {:.1} s",
        report.load.as_secs_f64(),
        report.rebuild.as_secs_f64()
    );
    Ok(())
}
