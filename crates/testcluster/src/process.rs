//! Child processes of the cluster (etcd, kube-*): each in its own process group with its
//! output in a log file, killed with the parent as a safety net (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

pub(crate) struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

/// Spawns `program args...` with stdout/stderr to `log`.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so callers spawn
/// from a thread that lives as long as the cluster (the cluster's own runtime thread).
pub(crate) fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Proc, Error> {
    let out = File::create(log).map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Own process group: a terminal's Ctrl-C goes to us, and we kill the whole group.
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting {name} ({})", program.display()), e))?;
    tracing::debug!(pid = child.id(), "started {name}");
    Ok(Proc {
        name: name.to_string(),
        child,
        log: log.to_path_buf(),
    })
}

/// The last `n` lines of a log file (for error messages).
pub(crate) fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Proc {
    /// Errors with the component's log tail if it has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::ComponentExited {
                component: self.name.clone(),
                status: status.to_string(),
                log: self.log.display().to_string(),
                tail: tail(&self.log, 30),
            }),
            Err(e) => Err(Error::io(format!("checking {}", self.name), e)),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn signal_group(p: &Proc, sig: libc::c_int) {
    // SAFETY: plain kill(2) on the child's own process group (pgid == its pid).
    unsafe {
        libc::kill(-(p.child.id() as libc::pid_t), sig);
    }
}

/// SIGTERM every group, give them `grace` to exit, SIGKILL the rest, reap all. Idempotent.
pub(crate) fn kill_all(procs: &mut Vec<Proc>, grace: Duration) {
    for p in procs.iter_mut().rev() {
        if matches!(p.child.try_wait(), Ok(None)) {
            signal_group(p, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && procs
            .iter_mut()
            .any(|p| matches!(p.child.try_wait(), Ok(None)))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in procs.iter_mut() {
        if matches!(p.child.try_wait(), Ok(None)) {
            tracing::debug!("{} did not exit on SIGTERM; killing it", p.name);
            signal_group(p, libc::SIGKILL);
        }
        let _ = p.child.wait();
        // Any stragglers left in the group (none expected) go too.
        signal_group(p, libc::SIGKILL);
    }
    procs.clear();
}

/// Is a process with this pid alive (and not a zombie)?
pub(crate) fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // Field 3, after the parenthesised command name, is the state.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// A free port on 127.0.0.1 (bound and released; the kernel will not hand it out again soon).
pub(crate) fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free loopback port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free loopback port", e))
}
