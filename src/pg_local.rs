//! The managed PostgreSQL cluster used when no `DATABASE_URL` is given.
//!
//! `<data>/postgres` holds the cluster (initdb once), `<data>/run` its Unix socket and log.
//! No TCP port is opened. PostgreSQL refuses to run as root, so as root the cluster is
//! created and run as the `postgres` system user.

use anyhow::{Context, Result, bail};
use sqlx::postgres::PgConnectOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DB_USER: &str = "rollcall";
const DB_NAME: &str = "rollcall";

pub struct LocalPg {
    pgdata: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<nix::unistd::User>,
    started_here: bool,
}

impl LocalPg {
    /// Initialise (first time) and start the cluster under `data_dir`, or attach to it
    /// when it is already running (another `rollcall` process started it).
    pub fn start(data_dir: &Path) -> Result<LocalPg> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let bin_dir = find_bin_dir()?;
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(
                nix::unistd::User::from_name("postgres")?
                    .context("running as root, PostgreSQL must run as the `postgres` user, and there is none (install Debian's postgresql package)")?,
            )
        } else {
            None
        };
        let pg = LocalPg {
            pgdata: data_dir.join("postgres"),
            socket_dir: data_dir.join("run"),
            bin_dir,
            run_as,
            started_here: false,
        };
        let socket = pg.socket_dir.join(".s.PGSQL.5432");
        if socket.as_os_str().len() > 100 {
            bail!(
                "the data directory path is too long for a Unix socket ({}); set ROLLCALL_DATA_DIR to a shorter path",
                socket.display()
            );
        }
        pg.prepare_dirs()?;
        pg.init_if_needed()?;
        pg.start_if_needed()
    }

    fn prepare_dirs(&self) -> Result<()> {
        for dir in [&self.pgdata, &self.socket_dir] {
            std::fs::create_dir_all(dir)?;
            if let Some(user) = &self.run_as {
                nix::unistd::chown(dir, Some(user.uid), Some(user.gid))
                    .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        if self.run_as.is_some() {
            // The postgres user must be able to reach the data directory.
            let ok = self
                .command("test")
                .arg("-w")
                .arg(&self.pgdata)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                bail!(
                    "the postgres user cannot reach {} (a parent directory is closed to other users); \
                     set ROLLCALL_DATA_DIR to a directory it can reach, e.g. /var/lib/rollcall",
                    self.pgdata.display()
                );
            }
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = if program == "test" {
            PathBuf::from("test")
        } else {
            self.bin_dir.join(program)
        };
        let mut cmd = Command::new(path);
        cmd.current_dir("/");
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            cmd.env("HOME", &user.dir);
        }
        cmd
    }

    fn init_if_needed(&self) -> Result<()> {
        if self.pgdata.join("PG_VERSION").exists() {
            return Ok(());
        }
        tracing::info!(pgdata = %self.pgdata.display(), "initialising a new PostgreSQL cluster");
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                DB_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.pgdata)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn start_if_needed(mut self) -> Result<LocalPg> {
        if self.is_running() {
            tracing::info!("PostgreSQL cluster already running; attaching to it");
            return Ok(self);
        }
        // PostgreSQL's own default (128 MB) keeps little of a large district's users and
        // indexes in its buffers; a quarter of the machine's memory is the usual setting.
        let buffers = shared_buffers_mib(
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .as_deref()
                .and_then(mem_total_kib),
        );
        let opts = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c max_connections=100 -c shared_buffers={buffers}MB",
            self.socket_dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(self.socket_dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &opts])
            .output()
            .context("running pg_ctl start")?;
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.socket_dir.join("postgres.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            bail!(
                "PostgreSQL did not start: {}\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.started_here = true;
        tracing::info!(socket_dir = %self.socket_dir.display(), "PostgreSQL started");
        Ok(self)
    }

    /// Options for connecting to `database` over the cluster's socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(DB_USER)
            .database(database)
    }

    /// Make sure the application database exists; returns its connect options.
    ///
    /// The two statements here are the only SQL outside `src/db/`: they bootstrap the
    /// managed cluster (on its `postgres` maintenance database, over a one-off connection)
    /// before the application database, and so any pool, exists.
    pub async fn ensure_database(&self) -> Result<PgConnectOptions> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DB_NAME)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {DB_NAME}"))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(self.connect_options(DB_NAME))
    }

    /// Stop the cluster if this process started it.
    pub fn stop(&self) {
        if !self.started_here {
            return;
        }
        match self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "fast", "-w"])
            .output()
        {
            Ok(o) if o.status.success() => tracing::info!("PostgreSQL stopped"),
            Ok(o) => {
                tracing::warn!(stderr = %String::from_utf8_lossy(&o.stderr), "pg_ctl stop failed")
            }
            Err(e) => tracing::warn!(error = %e, "pg_ctl stop failed"),
        }
    }
}

/// `MemTotal` of /proc/meminfo, in KiB.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The local cluster's shared_buffers: a quarter of the machine's memory, at least
/// PostgreSQL's default of 128 MB and at most 4 GB; the default when memory is unknown.
fn shared_buffers_mib(mem_total_kib: Option<u64>) -> u64 {
    mem_total_kib.map_or(128, |kib| (kib / 1024 / 4).clamp(128, 4096))
}

/// `pg_ctl` on PATH, else the newest `/usr/lib/postgresql/*/bin` (Debian's place); if
/// neither, as root on Debian, install the `postgresql` package.
fn find_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = locate_bin_dir() {
        return Ok(dir);
    }
    let root = nix::unistd::geteuid().is_root();
    if root
        && Path::new("/usr/bin/apt-get").exists()
        && std::env::var_os("ROLLCALL_NO_INSTALL").is_none()
    {
        eprintln!(
            "PostgreSQL is not installed; installing Debian's postgresql package (apt-get)..."
        );
        let ok = Command::new("apt-get")
            .arg("update")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && Command::new("apt-get")
                .args(["install", "-y", "postgresql"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        if ok && let Some(dir) = locate_bin_dir() {
            return Ok(dir);
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin.\n\
         Install them with:  sudo apt-get install -y postgresql   (Debian/Ubuntu)\n\
         or point Rollcall at an existing database with DATABASE_URL=postgres://user:pass@host/db"
    )
}

fn locate_bin_dir() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let pg_ctl = dir.join("pg_ctl");
            if pg_ctl.exists() && dir.join("initdb").exists() {
                // Follow symlinks (Debian links /usr/local/bin/pg_ctl into its versioned dir).
                let real = pg_ctl.canonicalize().ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_buffers_are_a_quarter_of_memory_within_bounds() {
        let meminfo = "MemTotal:        8388608 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_kib(meminfo), Some(8_388_608));
        assert_eq!(
            shared_buffers_mib(mem_total_kib(meminfo)),
            2048,
            "8 GiB: 2 GiB"
        );
        assert_eq!(
            shared_buffers_mib(Some(256 * 1024)),
            128,
            "small machine: the default"
        );
        assert_eq!(
            shared_buffers_mib(Some(256 * 1024 * 1024)),
            4096,
            "large machine: capped"
        );
        assert_eq!(shared_buffers_mib(None), 128);
        assert_eq!(mem_total_kib("nothing here"), None);
    }
}
