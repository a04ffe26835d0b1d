//! A private PostgreSQL cluster run from the machine's own binaries.
//!
//! `pgcqrs serve` uses one when `DATABASE_URL` is unset, so that a newcomer
//! needs nothing but PostgreSQL installed; the tests use throwaway ones.
//!
//! initdb and postgres refuse to run as root. When we are root we run them as
//! the `postgres` OS user (the owner every distribution package creates) and
//! hand the data directory to it. The server listens on 127.0.0.1 only, on a
//! free port picked at its first start and kept while it stays free, with
//! trust authentication: it is reachable from this machine alone, like a
//! developer's local database.
//!
//! Where `serve` keeps the data when no directory is given is decided by
//! [`default_data_dir`]: in the project, unless the server's OS user cannot
//! reach it there (see docs/decisions/0004-where-the-embedded-cluster-lives.md).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// What to do when no PostgreSQL binaries are found.
const NO_BINARIES_HINT: &str = "\
no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found on PATH, via `pg_config --bindir`, \
or under /usr/lib/postgresql/*/bin. Either install PostgreSQL 15 or newer (e.g. `apt-get install postgresql`), \
set PGCQRS_PG_BINDIR to the directory holding initdb, or run a server yourself \
(`docker compose up -d db`) and set DATABASE_URL=postgres://pgcqrs:pgcqrs@127.0.0.1:5432/pgcqrs";

/// How to start the server.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// fsync on: data survives a power cut. Off for throwaway test clusters
    /// (commits still survive a crash of PostgreSQL itself).
    pub fsync: bool,
    pub max_connections: u32,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            fsync: true,
            max_connections: 100,
        }
    }
}

/// A running local cluster. Stop it with [`LocalCluster::stop`]; a clone is
/// another handle on the same server.
#[derive(Debug, Clone)]
pub struct LocalCluster {
    bindir: PathBuf,
    datadir: PathBuf,
    port: u16,
    /// Set when we are root: the OS user the server runs as.
    run_as: Option<nix::unistd::User>,
    /// Started by another process: not ours to stop.
    borrowed: bool,
}

impl LocalCluster {
    /// Find the directory holding initdb, pg_ctl and postgres.
    pub fn find_bindir() -> anyhow::Result<PathBuf> {
        let has_server = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        if let Some(dir) = std::env::var_os("PGCQRS_PG_BINDIR") {
            let dir = PathBuf::from(dir);
            if has_server(&dir) {
                return Ok(dir);
            }
            bail!(
                "PGCQRS_PG_BINDIR={} does not hold initdb, pg_ctl and postgres",
                dir.display()
            );
        }
        if let Some(path) = std::env::var_os("PATH") {
            if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
                // PATH may hold symlinks to a few of the binaries only: use
                // the directory they point into, where the others live too.
                let real = dir
                    .join("initdb")
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| has_server(d));
                return Ok(real.unwrap_or(dir));
            }
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && has_server(&dir) {
                return Ok(dir);
            }
        }
        // Debian and Ubuntu keep each major version apart; take the newest.
        let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .filter(|(_, dir)| has_server(dir))
            .collect();
        candidates.sort();
        match candidates.pop() {
            Some((_, dir)) => Ok(dir),
            None => bail!(NO_BINARIES_HINT),
        }
    }

    /// Start the cluster in `datadir`, creating it on first use. Data is kept
    /// across runs, and so is the port while no one else takes it. A server
    /// another process runs in `datadir` is shared, not started again.
    pub fn start(datadir: &Path, options: &StartOptions) -> anyhow::Result<Self> {
        let bindir = Self::find_bindir()?;
        let run_as = server_os_user()?;
        std::fs::create_dir_all(datadir)
            .with_context(|| format!("Failed to create {}", datadir.display()))?;
        let datadir = datadir
            .canonicalize()
            .with_context(|| format!("Failed to resolve {}", datadir.display()))?;
        let cluster = Self {
            bindir,
            datadir,
            port: free_port()?,
            run_as,
            borrowed: false,
        };
        cluster.hand_over_datadir()?;
        if !cluster.datadir.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        if cluster.pg_ctl(&["status"]).output()?.status.success() {
            // Another pgcqrs (a `serve` next to this `status`, say) runs it:
            // share it, and leave it running when we exit.
            if let Some(port) = cluster.running_port() {
                tracing::info!(port, datadir = %cluster.datadir.display(), "using the local PostgreSQL already running");
                return Ok(Self {
                    port,
                    borrowed: true,
                    ..cluster
                });
            }
        }
        // The port of the last run, where it is still free: a psql command
        // line that worked yesterday works today.
        match cluster.remembered_port() {
            Some(port) if port_is_free(port) => {
                let again = Self { port, ..cluster };
                match again.start_server(options) {
                    Ok(()) => return Ok(again),
                    Err(e) => tracing::warn!(
                        port,
                        error = %format!("{e:#}"),
                        "the local PostgreSQL did not start on the port of its last run; trying another"
                    ),
                }
                return Self {
                    port: free_port()?,
                    ..again
                }
                .started(options);
            }
            Some(port) => {
                tracing::info!(
                    port,
                    "the port of the last run is taken; the local PostgreSQL takes another"
                );
            }
            None => {}
        }
        cluster.started(options)
    }

    /// Start the server on our port and remember the port for the next run.
    fn started(self, options: &StartOptions) -> anyhow::Result<Self> {
        self.start_server(options)?;
        if let Err(e) = std::fs::write(self.port_file(), format!("{}\n", self.port)) {
            tracing::debug!(error = %e, "could not remember the embedded PostgreSQL's port");
        }
        Ok(self)
    }

    /// Where the port of the last start is kept: a file of ours in the
    /// data directory, which PostgreSQL ignores.
    fn port_file(&self) -> PathBuf {
        self.datadir.join("pgcqrs.port")
    }

    fn remembered_port(&self) -> Option<u16> {
        std::fs::read_to_string(self.port_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The connection string for database `dbname`, as the superuser.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Create `dbname` unless it exists.
    pub async fn ensure_database(&self, dbname: &str) -> anyhow::Result<()> {
        let client = super::connect(&self.url("postgres")).await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
            .await?
            .is_some();
        if !exists {
            // A name cannot be a bind parameter; quote it as an identifier.
            let quoted = format!("\"{}\"", dbname.replace('"', "\"\""));
            client
                .batch_execute(&format!("CREATE DATABASE {quoted}"))
                .await
                .with_context(|| format!("Failed to create database {dbname}"))?;
        }
        Ok(())
    }

    /// Stop the server, letting connections finish (`pg_ctl stop -m fast`).
    pub fn stop(&self) -> anyhow::Result<()> {
        if self.borrowed {
            return Ok(());
        }
        let status = self.pg_ctl(&["stop", "-m", "fast", "-w"]).output()?.status;
        if !status.success() {
            bail!("pg_ctl stop failed for {}", self.datadir.display());
        }
        Ok(())
    }

    /// Restart the server in place, as a crash would (`-m immediate`): for
    /// fault-injection tests.
    pub fn restart_immediate(&self, options: &StartOptions) -> anyhow::Result<()> {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]).output();
        self.start_server(options)
    }

    /// A streaming replica of this cluster in `datadir` (`pg_basebackup -R`),
    /// started on a port of its own: for tests of reads on a standby.
    pub fn start_replica(&self, datadir: &Path, options: &StartOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(datadir)?;
        let datadir = datadir.canonicalize()?;
        let replica = Self {
            bindir: self.bindir.clone(),
            datadir,
            port: free_port()?,
            run_as: self.run_as.clone(),
            borrowed: false,
        };
        replica.hand_over_datadir()?;
        // A slot of its own, created before the backup starts: the primary
        // keeps the WAL the copy and the standby still need, however busy.
        let slot = format!("pgcqrs_replica_{}", replica.port);
        let mut cmd = Command::new(self.bindir.join("pg_basebackup"));
        cmd.arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "--checkpoint=fast",
                "--create-slot",
                "--slot",
                &slot,
                "-D",
            ])
            .arg(&replica.datadir);
        self.as_owner(&mut cmd);
        let out = cmd.output().context("Failed to run pg_basebackup")?;
        if !out.status.success() {
            bail!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        replica.start_server(options)?;
        Ok(replica)
    }

    /// For throwaway clusters: a detached watcher that stops the server and
    /// deletes its directory once this process is gone, however it ends.
    pub fn remove_when_process_exits(&self) -> anyhow::Result<()> {
        let pid = std::process::id();
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; \"$1\" stop -D \"$2\" -m immediate -w >/dev/null 2>&1; rm -rf \"$2\"",
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .arg("reaper")
            .arg(self.bindir.join("pg_ctl"))
            .arg(&self.datadir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        self.as_owner(&mut cmd);
        cmd.spawn().context("Failed to start the cluster reaper")?;
        Ok(())
    }

    /// The port of the running server, from the fourth line of postmaster.pid.
    fn running_port(&self) -> Option<u16> {
        let pid_file = std::fs::read_to_string(self.datadir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn start_server(&self, options: &StartOptions) -> anyhow::Result<()> {
        let mut server_opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections={}",
            self.port, options.max_connections
        );
        if !options.fsync {
            // Not synchronous_commit=off: a crash of the server process would
            // then lose acknowledged commits, which the fault tests check for.
            // With fsync off only an operating-system crash can.
            server_opts.push_str(" -c fsync=off -c full_page_writes=off");
            // Throwaway clusters are shared by many busy tests: keep enough
            // WAL that a standby being cloned from one still finds it.
            server_opts.push_str(" -c wal_keep_size=1GB");
        }
        let log = self.datadir.join("server.log");
        let out = self
            .pg_ctl(&["start", "-w", "-t", "60", "-o", &server_opts])
            .arg("-l")
            .arg(&log)
            .output()
            .context("Failed to run pg_ctl start")?;
        if !out.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "PostgreSQL did not start in {}:\n{}{}\n{}",
                self.datadir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let mut cmd = Command::new(self.bindir.join("initdb"));
        cmd.arg("-D").arg(&self.datadir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ]);
        self.as_owner(&mut cmd);
        let out = cmd.output().context("Failed to run initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed in {}: {}{}",
                self.datadir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Give the data directory to the server's OS user and check that it can
    /// reach it (it cannot inside a home directory of mode 700, say).
    fn hand_over_datadir(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(user) = &self.run_as {
            chown_recursive(&self.datadir, user.uid, user.gid)?;
            let mut probe = Command::new("/bin/sh");
            probe
                .arg("-c")
                .arg("test -w \"$1\"")
                .arg("probe")
                .arg(&self.datadir);
            self.as_owner(&mut probe);
            if !probe.status()?.success() {
                bail!(
                    "the postgres OS user cannot reach {}: a parent directory is closed to it. \
                     Set PGCQRS_DATA_DIR to a directory it can traverse, leave PGCQRS_DATA_DIR unset \
                     (pgcqrs then picks one), or set DATABASE_URL",
                    self.datadir.display()
                );
            }
        }
        std::fs::set_permissions(&self.datadir, std::fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bindir.join("pg_ctl"));
        cmd.arg("-D").arg(&self.datadir).args(args);
        self.as_owner(&mut cmd);
        cmd
    }

    fn as_owner(&self, cmd: &mut Command) {
        cmd.env("LC_ALL", "C").stdin(Stdio::null());
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .env("HOME", &user.dir)
                .current_dir("/");
        }
    }
}

/// Where the embedded cluster of a project lives when root's `postgres` user
/// cannot reach the project (a clone in `/root`, mode 0700, say): one
/// directory per project under here, never inside the user's home.
pub const ROOT_STATE_DIR: &str = "/var/lib/pgcqrs";

/// The data directory chosen for a project's embedded cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultDataDir {
    /// Absolute.
    pub path: PathBuf,
    /// Set when the project's own `.pgcqrs/pgdata` is out of the server's
    /// reach and the cluster lives at `path` instead: that directory.
    pub unreachable_in_project: Option<PathBuf>,
}

/// The data directory of the embedded cluster for the project in
/// `project_dir` (the working directory of `serve`), when none is given.
///
/// `project_dir/.pgcqrs/pgdata`, kept across runs, whenever the server's OS
/// user can reach it: always for an ordinary user, who runs PostgreSQL as
/// themselves. As root the server runs as `postgres`, which cannot traverse a
/// home directory closed to others; the cluster then lives in
/// `/var/lib/pgcqrs/<project name>-<hash of its path>/pgdata`, the same
/// directory on every run from that project, and nothing in the home is
/// created or loosened. A `project` file next to `pgdata` names the project.
pub fn default_data_dir(project_dir: &Path) -> anyhow::Result<DefaultDataDir> {
    let project = project_dir
        .canonicalize()
        .with_context(|| format!("Failed to resolve {}", project_dir.display()))?;
    let in_project = project.join(".pgcqrs").join("pgdata");
    let Some(user) = server_os_user()? else {
        return Ok(DefaultDataDir {
            path: in_project,
            unreachable_in_project: None,
        });
    };
    if can_traverse(&user, nearest_existing(&in_project))? {
        return Ok(DefaultDataDir {
            path: in_project,
            unreachable_in_project: None,
        });
    }
    let state = Path::new(ROOT_STATE_DIR).join(project_key(&project));
    if in_project.join("PG_VERSION").exists() {
        bail!(
            "a cluster from an earlier run is in {}, which the postgres OS user cannot reach \
             any more. Move it with `mkdir -p {state} && mv {} {state}/`, point PGCQRS_DATA_DIR \
             at a directory it can reach, or set DATABASE_URL",
            in_project.display(),
            in_project.display(),
            state = state.display(),
        );
    }
    create_traversable_dir(Path::new(ROOT_STATE_DIR))?;
    create_traversable_dir(&state)?;
    let note = state.join("project");
    let recorded = std::fs::read(&note).unwrap_or_default();
    if recorded != project.as_os_str().as_encoded_bytes() {
        std::fs::write(&note, project.as_os_str().as_encoded_bytes())
            .with_context(|| format!("Failed to write {}", note.display()))?;
    }
    Ok(DefaultDataDir {
        path: state.join("pgdata"),
        unreachable_in_project: Some(in_project),
    })
}

/// The OS user the server runs as: none (ourselves) unless we are root, who
/// initdb and postgres refuse.
fn server_os_user() -> anyhow::Result<Option<nix::unistd::User>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .context("Failed to look up the postgres OS user")?
        .context(
            "running as root, and initdb refuses root: create a `postgres` OS user \
             (the PostgreSQL packages do), run as an ordinary user, or set DATABASE_URL",
        )?;
    Ok(Some(user))
}

/// Whether `user` can reach and enter `dir`: asked of the kernel by a child
/// running as that user, exactly as the server will run (every ancestor's
/// bits, ACLs and group membership counted).
fn can_traverse(user: &nix::unistd::User, dir: &Path) -> anyhow::Result<bool> {
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg("test -x \"$1\"")
        .arg("probe")
        .arg(dir)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("Failed to check what the postgres OS user can reach")?;
    Ok(status.success())
}

/// `path`, or its closest ancestor that exists.
fn nearest_existing(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or(Path::new("/"))
}

/// `<last component>-<16 hex digits of the path's SHA-256>`: readable in a
/// listing, and distinct for two clones of the same name.
fn project_key(project: &Path) -> String {
    use sha2::Digest;
    let name: String = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = match name.trim_start_matches('.') {
        "" => "project",
        n => n,
    };
    let digest = sha2::Sha256::digest(project.as_os_str().as_encoded_bytes());
    format!("{name}-{}", &hex::encode(digest)[..16])
}

/// Create `dir` (root's, mode 0711: others may pass, not list) unless it
/// exists; an existing one is left as it is.
fn create_traversable_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .with_context(|| format!("Failed to set the mode of {}", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| {
            format!(
                "Failed to create {}; set PGCQRS_DATA_DIR to a directory the postgres OS user \
                 can reach, or set DATABASE_URL",
                dir.display()
            )
        }),
    }
}

fn chown_recursive(
    path: &Path,
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
) -> anyhow::Result<()> {
    nix::unistd::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("Failed to hand {} to the postgres user", path.display()))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_recursive(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("Failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}
