//! The project-local PostgreSQL cluster used when `DATABASE_URL` is unset.
//!
//! It lives under `<project>/.gridmap/pg` (git-ignored), is created with the
//! installed PostgreSQL's `initdb`, listens on a Unix socket only (so several
//! clones on one machine never fight over a TCP port), and runs as the
//! unprivileged `postgres` user when started by root, since PostgreSQL refuses
//! to run as root. PostGIS is installed into `template1`, so every database
//! created in it, including the per-test databases of `#[sqlx::test]`, has it.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser and default database of the local cluster.
const ROLE: &str = "gridmap";
const DATABASE: &str = "gridmap";
/// The unprivileged system user that owns the cluster when started by root.
const SERVICE_USER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no PostgreSQL server binaries found (looked for initdb in $GRIDMAP_PG_BIN, /usr/lib/postgresql/*/bin and $PATH); install postgresql and postgis")]
    NoServerBinaries,
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// A project-local cluster: its folder and the server binaries that run it.
#[derive(Debug, Clone)]
pub struct LocalCluster {
    root: PathBuf,
    bin_dir: PathBuf,
}

impl LocalCluster {
    /// Finds the project folder (`$GRIDMAP_DATA_DIR`, else the nearest ancestor
    /// of the current directory holding a workspace `Cargo.toml`, else the
    /// current directory) and the PostgreSQL binaries.
    ///
    /// # Errors
    /// When no PostgreSQL server binaries are installed.
    pub fn discover() -> Result<Self, ClusterError> {
        let root = match std::env::var_os("GRIDMAP_DATA_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => project_root()?.join(".gridmap"),
        };
        Ok(Self::new(
            reachable_by_owner(root.join("pg")),
            find_bin_dir()?,
        ))
    }

    #[must_use]
    pub fn new(root: PathBuf, bin_dir: PathBuf) -> Self {
        Self { root, bin_dir }
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The folder holding the server's Unix socket.
    #[must_use]
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The connection URL of the cluster's default database.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "postgres://{ROLE}@localhost/{DATABASE}?host={}",
            self.socket_dir().display()
        )
    }

    /// Creates the cluster if needed, starts it if stopped, and returns its URL.
    /// Safe to call from several processes at once: a file lock serialises them.
    ///
    /// # Errors
    /// When `initdb`, `pg_ctl` or `psql` fails; the error carries its stderr.
    pub fn ensure_running(&self) -> Result<String, ClusterError> {
        fs::create_dir_all(&self.root)
            .map_err(io_error(format!("creating {}", self.root.display())))?;
        let lock = File::create(self.root.join("lock"))
            .map_err(io_error("creating the cluster lock file"))?;
        lock.lock().map_err(io_error("locking the cluster"))?;
        if !self.data_dir().join("PG_VERSION").exists() {
            self.init()?;
        }
        if !self.is_running() {
            self.start()?;
        }
        Ok(self.url())
    }

    /// Stops the cluster if it runs.
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<(), ClusterError> {
        if self.is_running() {
            let data = self.data_dir();
            self.run_as_owner(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
            )?;
        }
        Ok(())
    }

    /// Whether a server runs on this cluster's data folder.
    #[must_use]
    pub fn is_running(&self) -> bool {
        let data = self.data_dir();
        self.run_as_owner("pg_ctl", &["-D", path_str(&data), "status"])
            .is_ok()
    }

    fn init(&self) -> Result<(), ClusterError> {
        tracing::info!(dir = %self.root.display(), "creating the project-local PostgreSQL cluster");
        let data = self.data_dir();
        let socket = self.socket_dir();
        for dir in [&data, &socket] {
            fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
        }
        self.hand_to_owner(&self.root)?;
        self.run_as_owner(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                ROLE,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        )?;
        // A throwaway development and test cluster: durability is traded for
        // speed. Production deployments point DATABASE_URL at a real server.
        let settings = format!(
            "\n# gridmap local cluster\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
             max_connections = 200\nshared_buffers = 256MB\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\n",
            socket.display()
        );
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .map_err(io_error("writing postgresql.conf"))?;
        self.start()?;
        let socket_str = path_str(&socket);
        for sql in [
            "CREATE EXTENSION IF NOT EXISTS postgis",
            "CREATE DATABASE gridmap",
        ] {
            self.run_psql(socket_str, "template1", sql)?;
        }
        Ok(())
    }

    fn start(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let log = self.root.join("server.log");
        self.run_as_owner(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        tracing::info!(url = %self.url(), "project-local PostgreSQL cluster running");
        Ok(())
    }

    fn run_psql(&self, socket: &str, database: &str, sql: &str) -> Result<(), ClusterError> {
        let psql = self.bin_dir.join("psql");
        let program = if psql.exists() {
            psql
        } else {
            PathBuf::from("psql")
        };
        let output = Command::new(&program)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                socket,
                "-U",
                ROLE,
            ])
            .args(["-d", database, "-c", sql])
            .output()
            .map_err(io_error(format!("running {}", program.display())))?;
        check(&format!("psql -c {sql:?}"), &output)
    }

    fn hand_to_owner(&self, dir: &Path) -> Result<(), ClusterError> {
        if !running_as_root() {
            return Ok(());
        }
        let output = Command::new("chown")
            .args(["-R", &format!("{SERVICE_USER}:"), path_str(dir)])
            .output()
            .map_err(io_error("running chown"))?;
        check("chown", &output)
    }

    fn run_as_owner(&self, tool: &str, args: &[&str]) -> Result<Output, ClusterError> {
        let program = self.bin_dir.join(tool);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", SERVICE_USER, "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(&self.root)
            .output()
            .map_err(io_error(format!("running {}", program.display())))?;
        check(&format!("{tool} {}", args.join(" ")), &output)?;
        Ok(output)
    }
}

fn check(command: &str, output: &Output) -> Result<(), ClusterError> {
    if output.status.success() {
        return Ok(());
    }
    Err(ClusterError::Command {
        command: command.to_owned(),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

fn path_str(path: &Path) -> &str {
    // Paths here are built from the project folder, which is valid UTF-8 on
    // every machine gridmap supports; a lossy fallback would hide the problem.
    path.to_str().unwrap_or_default()
}

fn running_as_root() -> bool {
    // SAFETY-free check: the effective uid is read from /proc, avoiding libc.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// When root starts the cluster, the `postgres` user must be able to reach its
/// folder; a clone under a private home folder is not, so the cluster then
/// lives in a folder of its own under /var/tmp, named after the project path.
fn reachable_by_owner(dir: PathBuf) -> PathBuf {
    if !running_as_root() {
        return dir;
    }
    let Some(parent) = dir.ancestors().find(|d| d.exists()) else {
        return dir;
    };
    let reachable = Command::new("runuser")
        .args(["-u", SERVICE_USER, "--", "test", "-x", path_str(parent)])
        .status()
        .is_ok_and(|status| status.success());
    if reachable {
        return dir;
    }
    // FNV-1a: a stable name per project path, with no extra dependency.
    let hash = path_str(&dir)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    PathBuf::from(format!("/var/tmp/gridmap-{hash:016x}/pg"))
}

/// The project the cluster belongs to: the nearest workspace around the current
/// directory, else around the running binary (so `target/release/gridmap-db`
/// finds its own project from anywhere), else the current directory.
fn project_root() -> Result<PathBuf, ClusterError> {
    let cwd = std::env::current_dir().map_err(io_error("reading the current directory"))?;
    let is_workspace = |dir: &Path| {
        fs::read_to_string(dir.join("Cargo.toml"))
            .map(|manifest| manifest.contains("[workspace]"))
            .unwrap_or(false)
    };
    let exe = std::env::current_exe().ok();
    let found = cwd
        .ancestors()
        .find(|dir| is_workspace(dir))
        .or_else(|| exe.as_deref()?.ancestors().find(|dir| is_workspace(dir)));
    Ok(found.map_or(cwd.clone(), Path::to_path_buf))
}

fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("GRIDMAP_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    // Debian installs each major version side by side; take the newest.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists())
        .ok_or(ClusterError::NoServerBinaries)
}
