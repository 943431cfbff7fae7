//! Crash points for the reliability tests (cargo feature `failpoints`, off by default, so never in
//! a release build). Each step of the publish, remove and reference protocols calls
//! [`hit`] (through the `failpoint!` macro) with a stable name such as `publish.after_intent`;
//! without the feature the call is an inlined `Ok(())` and the macro expands to nothing.
//!
//! With the feature, the environment variable `DAFSTORE_FAILPOINT` selects one point and what it
//! does when reached (every hit, unless `-once`: the process ends, or the operation fails):
//!
//! - `NAME` or `NAME:exit` — the process ends at once with status 77 (`std::process::exit`: no
//!   destructor runs, so no session, lock or staging cleanup; as far as the container is concerned
//!   this is a crash at that exact point);
//! - `NAME:error` — the operation fails there with an injected `EIO`;
//! - `NAME:enospc` — the operation fails there with an injected `ENOSPC`;
//! - `NAME:error-once` — the first time the point is reached, `EIO`; later (a retry, recovery
//!   in the same process) it passes;
//! - `NAME:wait=PATH` — the process pauses there until the file PATH exists (at most 60 s), then
//!   goes on: a test can run another process's operation exactly inside that window.
//!
//! The points and what the next open must see are tested in `tests/tests/crash_points.rs`, which
//! also checks that every point named in the engine's sources has a test.

use std::io;

/// Exit status of a process stopped by a failpoint.
#[cfg(feature = "failpoints")]
pub(crate) const EXIT_CODE: i32 = 77;

/// Reaches the failpoint `name`: nothing happens unless `DAFSTORE_FAILPOINT` selects it.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &str) -> io::Result<()> {
    let Ok(spec) = std::env::var("DAFSTORE_FAILPOINT") else {
        return Ok(());
    };
    let (point, action) = spec.split_once(':').unwrap_or((spec.as_str(), "exit"));
    if point != name {
        return Ok(());
    }
    if let Some(path) = action.strip_prefix("wait=") {
        eprintln!("dafstore: failpoint {name}: waiting for {path}");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !std::path::Path::new(path).exists() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        return Ok(());
    }
    match action {
        "error" => Err(io::Error::from_raw_os_error(libc::EIO)),
        "error-once" => {
            static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if FIRED.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        "enospc" => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
        _ => {
            eprintln!("dafstore: failpoint {name}: exiting with status {EXIT_CODE}");
            std::process::exit(EXIT_CODE)
        }
    }
}

/// Without the `failpoints` feature: nothing, inlined away.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &str) -> io::Result<()> {
    Ok(())
}

/// An injected error inside a catalog transaction (rolled back by SQLite like any other error):
/// `enospc` is SQLite's SQLITE_FULL, `error` its SQLITE_IOERR.
pub(crate) fn hit_sql(name: &str) -> rusqlite::Result<()> {
    hit(name).map_err(|e| {
        let code = if e.raw_os_error() == Some(libc::ENOSPC) {
            rusqlite::ffi::SQLITE_FULL
        } else {
            rusqlite::ffi::SQLITE_IOERR
        };
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some(format!("failpoint {name}: {e}")),
        )
    })
}

/// `failpoint!("name")` in a function returning `Result<_, WriteError>`: with the `failpoints`
/// feature, returns the injected error (naming the point) or ends the process there; without it,
/// expands to nothing.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        {
            if let Err(e) = crate::failpoint::hit($name) {
                // Like the OS's error: an injected ENOSPC is `NoSpace`.
                return Err(crate::error::WriteError::io(
                    std::path::PathBuf::from(concat!("<failpoint ", $name, ">")),
                    "continue (injected failure)",
                    e,
                )
                .into());
            }
        }
    };
}
pub(crate) use failpoint;
