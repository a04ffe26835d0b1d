//! The status page in a real headless Chromium (Debian's `chromium`
//! package): it shows every read model's freshness, where queries read, and
//! the recent orders,
//! fetched through the public API. A screenshot lands in the test
//! artifacts (target/tmp/status-page.png).

use std::process::Command;

use crate::support::*;

/// Chromium, if installed. Without it the test is skipped with a notice,
/// unless PGCQRS_REQUIRE_BROWSER is set (as .ci/run sets it): then it fails.
fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("PGCQRS_REQUIRE_BROWSER").is_none(),
            "this test needs Chromium: apt-get install chromium"
        );
        eprintln!("SKIPPED: Chromium is not installed (apt-get install chromium)");
    }
    found
}

fn headless(
    browser: &str,
    url: &str,
    profile: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[tokio::test]
async fn the_status_page_shows_read_model_freshness_and_recent_orders() {
    let Some(browser) = chromium() else { return };
    let app = TestApp::builder()
        .refreshing(Refreshing::OnRequest)
        .start()
        .await;
    app.seed_catalog().await;
    app.place_simple_order("order-on-the-page").await;
    app.refresh().await;

    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let profile = artifacts.join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
    let url = app.url("/");
    let url_for_dom = url.clone();
    let dom_profile = profile.join("dom");
    let dom = tokio::task::spawn_blocking(move || {
        headless(browser, &url_for_dom, &dom_profile, &["--dump-dom"])
    })
    .await
    .expect("chromium task");
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("data-order=\"order-on-the-page\""),
        "the recent orders do not show the order; chromium said: {}\n{html}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for model in [
        "order_summary",
        "order_lines",
        "customer_orders",
        "daily_sales",
        "product_sales",
    ] {
        assert!(
            html.contains(&format!("data-model=\"{model}\"")),
            "read model {model} is missing from the page"
        );
    }
    assert!(
        html.contains("<svg class=\"spark\""),
        "no lag sparkline was drawn"
    );
    assert!(
        html.contains("data-target=\"primary\""),
        "the read targets are missing from the page"
    );

    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let shot_arg = format!("--screenshot={}", shot.display());
    let shot_profile = profile.join("shot");
    tokio::task::spawn_blocking(move || headless(browser, &url, &shot_profile, &[&shot_arg]))
        .await
        .expect("chromium task");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", shot.display());
    let _ = std::fs::remove_dir_all(&profile);
}
