//! Load locks (SPEC 9.6, [L1]–[L4]): of the processes that need an absent entry at the same
//! moment, the one holding the name's load lock builds it while the others wait on the lock; a
//! loader that dies releases it with the process.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::error::{IoError, PathError};
use crate::format::name::ArrayName;
use crate::fs::beneath;
use crate::fs::sys;

/// A held load lock ([L2]); released when dropped (its display line is cleared first). A child
/// forked while it is open does not keep it: the descriptor is registered before it is locked
/// (and pointed at `/dev/null` in a forked child), and dropping unlocks the open file
/// description explicitly, which also releases any copy a fork made in between.
pub(crate) struct LoadGuard {
    pub(crate) path: PathBuf,
    file: File,
    fork_slot: Option<usize>,
    locked: bool,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if self.locked {
            // The line says who is loading; nobody is once this guard goes.
            let _ = self.file.set_len(0);
            let _ = self.file.unlock();
        }
        sys::release_fork_slot(self.fork_slot);
    }
}

/// Who holds a load lock, as its line says ([L3]): for display only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Loader {
    /// The loader's session id.
    pub session: String,
    /// Its process id (display only; never trusted for liveness).
    pub pid: u32,
    /// The name it is loading.
    pub name: String,
}

impl std::fmt::Display for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} (session {}) loading {:?}",
            self.pid, self.session, self.name
        )
    }
}

/// The outcome of waiting for a load lock.
pub(crate) enum Locked {
    /// Held.
    Held(LoadGuard),
    /// The deadline passed first; the loader's line, if it could be read.
    TimedOut(Option<Loader>),
}

fn parse_line(text: &str) -> Option<Loader> {
    let line = text.lines().next()?;
    let mut parts = line.splitn(3, ' ');
    let session = parts.next()?.to_string();
    let pid = parts.next()?.parse().ok()?;
    let name = parts.next()?.to_string();
    crate::format::is_session_id(&session).then_some(Loader { session, pid, name })
}

fn read_line(file: &mut File) -> Option<Loader> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    parse_line(&text)
}

/// Whether `leaf` in `locks` still names the file whose metadata is `md` (same device and
/// inode): a cleaner may have unlinked it, and a loader made another ([L2], [L4]).
fn names_file(locks: &beneath::Dir, leaf: &OsStr, md: &Metadata) -> Result<bool, PathError> {
    Ok(match locks.open_file(leaf, false)? {
        Some((_, now)) => now.dev() == md.dev() && now.ino() == md.ino(),
        None => false,
    })
}

/// The load lock files in `locks/` (`load-*.lock`; the stripes are `NN.lock`).
fn load_lock_leaves(locks: &beneath::Dir) -> Result<Vec<OsString>, PathError> {
    let mut leaves = locks.names()?;
    leaves.retain(|leaf| {
        let text = leaf.to_string_lossy();
        text.starts_with("load-") && text.ends_with(".lock")
    });
    Ok(leaves)
}

impl Shared {
    /// The path of `name`'s load lock ([L1]).
    pub(crate) fn load_lock_path(&self, name: &ArrayName) -> PathBuf {
        self.dir.join("locks").join(name.load_lock_file())
    }

    /// Takes `name`'s load lock exclusively ([L2]): blocking without a deadline, else polling
    /// until it. Checks after locking that the path still names the locked file (a cleaner may
    /// have unlinked it, [L4]) and locks again if not. Holding it, writes this process's line.
    pub(crate) fn lock_load(
        &self,
        name: &ArrayName,
        deadline: Option<Instant>,
    ) -> Result<Locked, PathError> {
        let path = self.load_lock_path(name);
        let leaf = name.load_lock_file();
        let io = |op: &'static str| {
            let path = path.clone();
            move |e: io::Error| PathError::Io(IoError::new(path, op, e))
        };
        let mut pause = Duration::from_micros(200);
        loop {
            let locks = beneath::reserved(&self.root, "locks")?;
            let (file, md) = locks.open_or_create_file(leaf.as_ref())?;
            let fork_slot = sys::forget_in_forked_child(&file);
            let mut guard = LoadGuard {
                path: path.clone(),
                file,
                fork_slot,
                locked: false,
            };
            match deadline {
                None => loop {
                    // A signal handled without SA_RESTART (Python's) interrupts the wait: wait on.
                    match guard.file.lock() {
                        Ok(()) => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io("lock")(e)),
                    }
                },
                Some(deadline) => loop {
                    match guard.file.try_lock() {
                        Ok(()) => break,
                        Err(std::fs::TryLockError::WouldBlock) => {
                            let now = Instant::now();
                            if now >= deadline {
                                return Ok(Locked::TimedOut(read_line(&mut guard.file)));
                            }
                            thread::sleep(pause.min(deadline - now));
                            pause = (pause * 2).min(Duration::from_millis(20));
                        }
                        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock")(e)),
                    }
                },
            }
            guard.locked = true;
            // [L2]: the path must still name the file we locked.
            if !names_file(&locks, leaf.as_ref(), &md)? {
                // Unlinked by a cleaner after our open: drop it (unlocked, not truncated: the
                // file is no one's now) and lock the file the path names.
                let _ = guard.file.unlock();
                guard.locked = false;
                continue;
            }
            let line = format!("{} {} {}\n", self.session_id(), std::process::id(), name);
            guard.file.set_len(0).map_err(io("write"))?;
            guard.file.seek(SeekFrom::Start(0)).map_err(io("write"))?;
            guard.file.write_all(line.as_bytes()).map_err(io("write"))?;
            return Ok(Locked::Held(guard));
        }
    }

    /// Removes the load locks that no process holds ([L4]): each is locked exclusively without
    /// waiting, unlinked while locked, then closed. A process that opened it before the unlink
    /// finds, once it has the lock, that the path no longer names it, and locks again ([L2]).
    pub(crate) fn remove_idle_load_locks(&self) -> Result<usize, PathError> {
        let locks = beneath::reserved(&self.root, "locks")?;
        let mut removed = 0;
        for leaf in load_lock_leaves(&locks)? {
            let Some((file, md)) = locks.open_file(&leaf, false)? else {
                continue;
            };
            if file.try_lock().is_ok() {
                // Only the file we hold locked, and only while the path still names it: another
                // cleaner may have unlinked it after our open, and a loader made and locked a new
                // one under the name ([L4]).
                if names_file(&locks, &leaf, &md)? {
                    locks.remove_file(&leaf)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Every load in progress ([L3]): the lines of the load locks that some process holds.
    /// A lock this process can take is not a load in progress; taking it to find out is brief
    /// (a waiter that meets it just waits a moment longer).
    pub(crate) fn loads(&self) -> Result<Vec<Loader>, PathError> {
        let locks = beneath::reserved(&self.root, "locks")?;
        let mut found = Vec::new();
        for leaf in load_lock_leaves(&locks)? {
            let Some((mut file, _)) = locks.open_file(&leaf, false)? else {
                continue;
            };
            match file.try_lock_shared() {
                Ok(()) => continue, // nobody holds it exclusively: not loading
                Err(_) => {
                    if let Some(l) = read_line(&mut file) {
                        found.push(l);
                    }
                }
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn a_load_lock_line_parses_and_anything_else_is_no_loader() {
        let l = parse_line("0123456789abcdef0123456789abcdef 42 date/a b\n").unwrap();
        assert_eq!((l.pid, l.name.as_str()), (42, "date/a b"));
        assert!(parse_line("").is_none());
        assert!(parse_line("nothex 42 x").is_none());
        assert!(parse_line("0123456789abcdef0123456789abcdef x y").is_none());
    }
}
