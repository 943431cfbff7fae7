//! `dafctl hold DIR NAME... [-- CMD ARG...]`: hold references on arrays while CMD runs, or until
//! SIGTERM/SIGINT/SIGHUP. How programs reading by the spec alone take part in reference counting
//! (SPEC [R4], [P7]).
//!
//! The termination signals are blocked in every thread of dafctl (the mask is set before any
//! thread starts) and taken synchronously with `sigwaitinfo`, so no handler runs at an arbitrary
//! point. The child gets a clean signal mask: std's `Command` keeps the caller's mask, so it is
//! emptied in the child between fork and `exec` (otherwise CMD could not be killed by these
//! signals and would exit 0 where it should die of them).

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use dafstore::{Container, Ref};

use super::common::out;
use super::Result;

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The set of termination signals, blocked in the calling thread (and so in every thread it
/// starts afterwards).
struct Blocked(libc::sigset_t);

impl Blocked {
    fn block() -> io::Result<Blocked> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
        unsafe {
            libc::sigemptyset(&mut set);
            for s in SIGNALS {
                libc::sigaddset(&mut set, s);
            }
        }
        // SAFETY: valid set pointer; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Blocked(set))
    }

    /// Waits for one of the signals; returns its number and whether it was sent with kill(2)
    /// (rather than by the kernel, e.g. Ctrl-C on a terminal, which reaches the whole process
    /// group anyway).
    fn wait(&self) -> (libc::c_int, bool) {
        loop {
            // SAFETY: siginfo_t is plain data filled by sigwaitinfo.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointers to the set and to `info`.
            let sig = unsafe { libc::sigwaitinfo(&self.0, &mut info) };
            if sig > 0 {
                let sent = info.si_code == libc::SI_USER || info.si_code == libc::SI_QUEUE;
                return (sig, sent);
            }
            // EINTR (another signal interrupted the wait): wait again.
        }
    }
}

// SAFETY: a sigset_t is plain data, only read by sigwaitinfo.
unsafe impl Send for Blocked {}

pub fn run(dir: &Path, names: &[String], cmd: &[OsString]) -> Result<u8> {
    let signals = Blocked::block()?;
    let c = Container::open(dir)?;
    let mut refs: Vec<Ref> = Vec::with_capacity(names.len());
    for name in names {
        refs.push(c.hold(name)?); // on error, the references taken are released on drop
    }
    out!("held {}", super::common::shown(&names.join(" ")));
    let code = match cmd.split_first() {
        None => {
            signals.wait();
            0
        }
        Some((program, args)) => run_child(program, args, signals)?,
    };
    for r in refs {
        r.release()?;
    }
    Ok(code)
}

/// Runs CMD, forwarding termination signals sent to dafctl, and returns the exit code to use.
fn run_child(program: &OsString, args: &[OsString], signals: Blocked) -> Result<u8> {
    let mut command = Command::new(program);
    command.args(args);
    unblock_signals_in_child(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "dafctl: error: cannot run {}: {e}; the references were released",
                program.to_string_lossy()
            );
            return Ok(if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let pid = child.id();
    // `Some(pid)` while the child has not been reaped: the forwarder signals it only then, so a
    // recycled pid is never signalled.
    let target = Arc::new(Mutex::new(Some(pid)));
    let forward_to = Arc::clone(&target);
    std::thread::spawn(move || loop {
        let (sig, sent) = signals.wait();
        let guard = forward_to.lock().unwrap_or_else(|e| e.into_inner());
        match *guard {
            Some(pid) if sent => {
                // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
                unsafe { libc::kill(pid as libc::pid_t, sig) };
            }
            Some(_) => {}
            None => return,
        }
    });
    wait_exited(pid)?;
    *target.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let status = child.wait()?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    })
}

/// Makes CMD start with an empty signal mask: the mask is inherited across `fork` and `exec`,
/// and dafctl blocks the termination signals to take them with `sigwaitinfo`.
fn unblock_signals_in_child(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before `exec`; it only calls sigemptyset and
    // pthread_sigmask, which are async-signal-safe, on a local sigset_t, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(())
        });
    }
}

/// Waits until the child has exited without reaping it (`WNOWAIT`), so its pid stays reserved.
fn wait_exited(pid: u32) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data filled by waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to `info`; waits for our own child.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
