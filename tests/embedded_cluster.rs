//! Where `serve`'s embedded cluster lives when no data directory is given:
//! the clone's `.pgcqrs/pgdata` when the server's OS user can reach it, and
//! outside a home closed to others (`/root`, mode 700) when root runs it as
//! `postgres`, never loosening that home.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pgcqrs::db;
use pgcqrs::db::embedded::{default_data_dir, LocalCluster, StartOptions, ROOT_STATE_DIR};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Removes what a test made, and stops its cluster, even when it fails.
#[derive(Default)]
struct Cleanup {
    cluster: Option<LocalCluster>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            let _ = cluster.stop();
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A directory standing in for a home: `mode`, root's (or ours), with a
/// clone `pgcqrs` inside.
fn home_with_clone(mode: u32, cleanup: &mut Cleanup) -> (PathBuf, PathBuf) {
    let home = std::env::temp_dir().join(format!("pgcqrs-home-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&home).expect("create the home");
    cleanup.dirs.push(home.clone());
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(mode)).expect("chmod home");
    let clone = home.join("pgcqrs");
    std::fs::create_dir(&clone).expect("create the clone");
    (home.canonicalize().expect("resolve home"), clone)
}

fn start(dir: &Path) -> LocalCluster {
    LocalCluster::start(
        dir,
        &StartOptions {
            fsync: false,
            max_connections: 20,
        },
    )
    .expect("the embedded cluster starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_from_a_closed_home_the_cluster_lives_outside_it_and_keeps_its_data() {
    if !is_root() {
        println!("skipped: only root runs the server as another OS user (run the tests as root)");
        return;
    }
    let mut cleanup = Cleanup::default();
    let (home, clone) = home_with_clone(0o700, &mut cleanup);
    let home_before = std::fs::metadata(&home).expect("stat home");

    let chosen = default_data_dir(&clone).expect("a data directory is chosen");
    // Removed after the test, whatever happens: the per-project directory.
    if let Some(state) = chosen.path.parent() {
        cleanup.dirs.insert(0, state.to_path_buf());
    }
    assert_eq!(
        chosen.unreachable_in_project,
        Some(home.join("pgcqrs/.pgcqrs/pgdata")),
        "the clone's own directory is reported out of reach"
    );
    assert!(
        chosen.path.starts_with(ROOT_STATE_DIR) && !chosen.path.starts_with(&home),
        "data outside the home: {}",
        chosen.path.display()
    );
    let note = chosen.path.with_file_name("project");
    assert_eq!(
        std::fs::read_to_string(&note).expect("the project note"),
        home.join("pgcqrs").to_string_lossy(),
        "next to the data, a note names the project"
    );

    let cluster = start(&chosen.path);
    cleanup.cluster = Some(cluster.clone());
    cluster.ensure_database("pgcqrs").await.expect("create db");
    let client = db::connect(&cluster.url("pgcqrs")).await.expect("connect");
    client
        .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from the first run')")
        .await
        .expect("write");
    drop(client);
    cluster.stop().expect("stop");
    cleanup.cluster = None;

    // A second run from the same clone finds the same directory and data.
    let again = default_data_dir(&clone).expect("chosen again");
    assert_eq!(again, chosen, "the same place on every run");
    let cluster = start(&again.path);
    cleanup.cluster = Some(cluster.clone());
    let client = db::connect(&cluster.url("pgcqrs"))
        .await
        .expect("reconnect");
    let v: String = client
        .query_one("SELECT v FROM kept", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(v, "from the first run");
    drop(client);
    cluster.stop().expect("stop again");
    cleanup.cluster = None;

    let home_after = std::fs::metadata(&home).expect("stat home");
    assert_eq!(
        home_after.mode(),
        home_before.mode(),
        "the home's mode is left alone"
    );
    assert_eq!(home_after.mode() & 0o7777, 0o700);
    assert_eq!(
        (home_after.uid(), home_after.gid()),
        (home_before.uid(), home_before.gid())
    );
    assert!(
        !clone.join(".pgcqrs").exists(),
        "nothing is created in the clone when the data lives elsewhere"
    );
}

#[test]
fn where_the_postgres_user_can_reach_the_clone_the_data_stays_in_it() {
    let mut cleanup = Cleanup::default();
    let (home, clone) = home_with_clone(0o755, &mut cleanup);
    let chosen = default_data_dir(&clone).expect("a data directory is chosen");
    assert_eq!(chosen.path, home.join("pgcqrs/.pgcqrs/pgdata"));
    assert_eq!(chosen.unreachable_in_project, None);
}

#[test]
fn an_ordinary_user_keeps_the_data_in_the_clone_even_in_a_closed_home() {
    if is_root() {
        println!("skipped: covered as root by the closed-home test above");
        return;
    }
    let mut cleanup = Cleanup::default();
    let (home, clone) = home_with_clone(0o700, &mut cleanup);
    let chosen = default_data_dir(&clone).expect("a data directory is chosen");
    assert_eq!(chosen.path, home.join("pgcqrs/.pgcqrs/pgdata"));
}

#[test]
fn an_explicit_data_directory_out_of_reach_is_refused_without_touching_the_home() {
    if !is_root() {
        println!("skipped: only root runs the server as another OS user");
        return;
    }
    let mut cleanup = Cleanup::default();
    let (home, clone) = home_with_clone(0o700, &mut cleanup);
    let err = LocalCluster::start(&clone.join("data"), &StartOptions::default())
        .expect_err("postgres cannot reach a directory in a closed home");
    assert!(
        err.to_string().contains("cannot reach"),
        "a clear reason: {err:#}"
    );
    let mode = std::fs::metadata(&home).expect("stat home").mode();
    assert_eq!(mode & 0o7777, 0o700, "the home's mode is left alone");
}

/// A second run on the same data directory listens on the port of the
/// first, so the psql line it logged still works; when another program
/// holds that port, on a free one, and that one is kept next.
#[test]
fn the_cluster_keeps_its_port_from_run_to_run_while_it_is_free() {
    let mut cleanup = Cleanup::default();
    let dir = std::env::temp_dir().join(format!("pgcqrs-port-{}", uuid::Uuid::new_v4().simple()));
    cleanup.dirs.push(dir.clone());

    let first = start(&dir);
    cleanup.cluster = Some(first.clone());
    let port = first.port();
    first.stop().expect("stop");
    cleanup.cluster = None;

    let second = start(&dir);
    cleanup.cluster = Some(second.clone());
    assert_eq!(second.port(), port, "the same port on the second run");
    second.stop().expect("stop again");
    cleanup.cluster = None;

    // Someone else listens there now: a free port, not a failed start.
    let taken = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    let third = start(&dir);
    cleanup.cluster = Some(third.clone());
    assert_ne!(third.port(), port, "not the taken port");
    let moved = third.port();
    third.stop().expect("stop the third");
    cleanup.cluster = None;
    drop(taken);

    let fourth = start(&dir);
    cleanup.cluster = Some(fourth.clone());
    assert_eq!(fourth.port(), moved, "the port of the last run");
}
