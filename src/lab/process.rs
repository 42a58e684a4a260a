//! Running the lab's server processes as an unprivileged user, and watching
//! them: pid files, liveness, ports.
//!
//! initdb, postgres and pgbouncer refuse to run as root, and our machines run
//! everything as root, so every lab process is started as the lab user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// The account the lab's servers run as.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    /// None when rehearse itself is not root: then servers run as ourselves.
    pub ids: Option<(u32, u32)>,
}

impl RunAs {
    /// Resolve `name` to uid and gid when running as root.
    pub fn resolve(name: &str) -> Result<RunAs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(RunAs {
                name: whoami(),
                ids: None,
            });
        }
        let cname = std::ffi::CString::new(name)
            .map_err(|_| Error::Usage(format!("lab user name {name:?} contains a NUL byte")))?;
        // SAFETY: getpwnam returns a pointer into static storage or null; we
        // copy the two integers out before any other call can reuse it.
        let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
        if pw.is_null() {
            return Err(Error::Usage(format!(
                "the lab user {name:?} does not exist; PostgreSQL refuses to run as root, so the \
                 lab runs its servers as an unprivileged user. Install the postgresql package \
                 (it creates `postgres`) or pass --user with an existing account"
            )));
        }
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        if uid == 0 {
            return Err(Error::Usage(format!(
                "the lab user {name:?} is root; PostgreSQL refuses to run as root, pass --user with an unprivileged account"
            )));
        }
        Ok(RunAs {
            name: name.to_string(),
            ids: Some((uid, gid)),
        })
    }

    /// A command that runs `program` as this user, in `cwd`.
    pub fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd).stdin(Stdio::null());
        // Messages in English and a known locale, whatever the caller's is.
        c.env("LC_ALL", "C.UTF-8").env("LANG", "C.UTF-8");
        if let Some((uid, gid)) = self.ids {
            use std::os::unix::process::CommandExt;
            // std drops root's supplementary groups when it switches uid.
            c.uid(uid).gid(gid);
            // Not root's home, which this user cannot read: libpq (in
            // pg_basebackup and the replica's walreceiver) looks there for
            // ~/.postgresql/postgresql.crt and fails on the permission.
            c.env("HOME", cwd);
        }
        c
    }

    /// Make `path` (a file or a directory, recursively) belong to this user.
    pub fn own(&self, path: &Path) -> Result<()> {
        let Some((uid, gid)) = self.ids else {
            return Ok(());
        };
        let meta = std::fs::symlink_metadata(path).io("reading", path)?;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).io("changing the owner of", path)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).io("listing", path)? {
                let entry = entry.io("listing", path)?;
                self.own(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Fail with a clear message when this user cannot write to `dir`, which
    /// happens when a parent directory is not searchable by others (a home
    /// directory with mode 0700, say).
    pub fn check_can_write(&self, dir: &Path) -> Result<()> {
        if self.ids.is_none() {
            return Ok(());
        }
        let status = self
            .command(Path::new("/usr/bin/test"), Path::new("/"))
            .args(["-w".as_ref(), dir.as_os_str()])
            .status()
            .io("checking access for the lab user to", dir)?;
        if status.success() {
            return Ok(());
        }
        let blocker = dir
            .ancestors()
            .find(|a| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(a)
                    .map(|m| m.permissions().mode() & 0o001 == 0)
                    .unwrap_or(false)
            })
            .map(|a| {
                format!(
                    ": {} is not searchable by others (chmod o+x it)",
                    a.display()
                )
            })
            .unwrap_or_default();
        Err(Error::Lab(format!(
            "the lab user {} cannot write to {}{}; or choose a lab directory under a \
             world-searchable path with --lab-dir (e.g. /var/tmp/rehearse-lab)",
            self.name,
            dir.display(),
            blocker
        )))
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "current user".to_string())
}

/// Run a command to completion; a non-zero exit becomes an error that shows
/// the command's own words and, when given, the tail of its log file.
pub fn run_checked(cmd: &mut Command, what: &str, log: Option<&Path>) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .io(what, Path::new(&program))?;
    if out.status.success() {
        return Ok(out);
    }
    let mut msg = format!("{what} failed ({program} exited with {})", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in [stderr.trim(), stdout.trim()] {
        if !text.is_empty() {
            msg.push_str(&format!("\n{}", tail(text, 15)));
        }
    }
    if let Some(log) = log {
        if let Ok(t) = std::fs::read_to_string(log) {
            msg.push_str(&format!(
                "\nlast lines of {}:\n{}",
                log.display(),
                tail(&t, 15)
            ));
        }
    }
    Err(Error::Lab(msg))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether a process with this pid exists and is not a zombie. A daemon's
/// zombie lingers when the container's init does not reap, so kill(pid, 0)
/// alone would call it alive.
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Read the first line of a pid file (postmaster.pid, pgbouncer.pid, redis.pid).
pub fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

/// Send `signal` and wait up to `grace` for the process to go; SIGKILL after.
pub fn terminate(pid: i32, signal: i32, grace: Duration) {
    // SAFETY: plain kill(2) on a pid we started.
    unsafe { libc::kill(pid, signal) };
    if !wait_gone(pid, grace) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_gone(pid, Duration::from_secs(5));
    }
}

/// Wait until the process has exited.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

/// Whether something listens on 127.0.0.1:port (we cannot bind it).
pub fn port_taken(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// Fail with [`Error::PortInUse`] when the port is taken.
pub fn ensure_port_free(port: u16, component: &str) -> Result<()> {
    if port_taken(port) {
        return Err(Error::PortInUse {
            port,
            component: component.to_string(),
        });
    }
    Ok(())
}

/// Create a directory (and parents) owned by the lab user.
pub fn make_dir(run_as: &RunAs, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).io("creating the directory", dir)?;
    run_as.own(dir)?;
    Ok(dir.to_path_buf())
}

/// Write a file atomically (temp file, then rename), owned by the lab user.
pub fn write_file(run_as: &RunAs, path: &Path, contents: &str) -> Result<()> {
    crate::fsutil::write_atomic(path, contents.as_bytes())?;
    run_as.own(path)
}
