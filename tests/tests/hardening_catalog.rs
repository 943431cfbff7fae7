//! Catalog hardening (issue 14): what a process sees of the catalog when it cannot write it (another
//! user, a read-only or full file system), rebuilding a lost or damaged catalog from the array
//! files, and what gc reports. Tests that need root (another user, mounts) say so and skip
//! otherwise.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use dafstore::Container;

const READONLY_HELPER: &str = env!("CARGO_BIN_EXE_dafstore-readonly-helper");

fn is_root() -> bool {
    // SAFETY-free: geteuid has no preconditions; libc marks it unsafe only as an FFI call.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}

/// A directory every user can enter and read (tempdir makes 0700 ones).
fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The read-only helper run as user `nobody` (65534), reading DIR.
struct Watcher {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Watcher {
    fn start_as_nobody(dir: &Path) -> Watcher {
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(READONLY_HELPER)
            .arg("watch")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run setpriv");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Watcher {
            child,
            stdin,
            lines,
        }
    }

    /// The state line the reader printed last (the first one after start, the next after `again`).
    fn state(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(l)) => l,
            other => panic!("the reader printed no state: {other:?}"),
        }
    }

    /// Asks the reader, still open, to read everything again.
    fn again(&mut self) -> String {
        writeln!(self.stdin.as_mut().unwrap()).unwrap();
        self.state()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn a_read_only_open_as_another_user_sees_what_the_owner_committed_never_stale_metadata_over_new_bytes(
) {
    if !is_root() {
        eprintln!("skipped: needs root to run a reader as another user (setpriv)");
        return;
    }
    let tmp = world_readable_tempdir();
    let root = tmp.path().join("c");
    {
        let c = Container::create(&root).unwrap();
        c.write_dense::<f64>("a", &[2], &[1.5, 2.5]).unwrap();
        c.write_dense::<f64>("gone", &[1], &[0.0]).unwrap();
    } // closed: the catalog file alone holds this state, the write-ahead log is gone

    // The owner keeps the container open and changes it; the changes wait in the log.
    let owner = Container::open(&root).unwrap();
    owner.write_dense::<i64>("a", &[2], &[7, 8]).unwrap(); // same byte size, another dtype
    owner.remove("gone").unwrap();
    let mut reader = Watcher::start_as_nobody(&root);
    assert_eq!(reader.state(), "names=a a=int64:7,8");
    drop(reader);

    // A reader that opened while nobody else had the container open (no log to read) must still
    // see later commits, made while it stays open.
    drop(owner);
    let mut reader = Watcher::start_as_nobody(&root);
    assert_eq!(reader.state(), "names=a a=int64:7,8");
    let owner = Container::open(&root).unwrap();
    owner.write_dense::<f64>("a", &[2], &[9.5, 10.5]).unwrap();
    owner.write_dense::<f64>("b", &[1], &[1.0]).unwrap();
    assert_eq!(reader.again(), "names=a,b a=float64:9.5,10.5");
    owner.remove("b").unwrap();
    drop(owner); // checkpointed into the catalog file, log removed
    assert_eq!(reader.again(), "names=a a=float64:9.5,10.5");
}
